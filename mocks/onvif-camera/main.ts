#!/usr/bin/env node
/**
 * Runs simulated ONVIF cameras in this process — e.g. inside a test network namespace:
 *
 *   ip netns exec <ns> node mocks/onvif-camera/main.ts --address 10.77.0.2 --address 10.77.0.3 \
 *     --username admin --password secret
 *
 * One camera per `--address` (repeatable; `--uuid` pairs up with them in order). Other flags:
 * --ws-port, --multicast-interface, --username/--password (digest auth required), --auth
 * ws-security|http-digest, --clock-offset-ms=N, --manufacturer, --model, --legacy (no
 * GetServices), --no-hello, --probe-reply-max-delay-ms (WS-Discovery APP_MAX_DELAY). Prints one
 * JSON line per event on stdout — first `{"event":"ready","cameras":[{uuid,address,serviceUrl}]}`.
 * Commands on stdin, one per line; each is acknowledged with `{"event":"done","line":"…"}`:
 *
 *   offline <uuid|all> [bye]    stop answering (after a Bye when `bye`)
 *   online  <uuid|all> [changed] answer again and multicast Hello (new MetadataVersion when `changed`)
 *   hello   <uuid|all>          multicast Hello
 *   bye     <uuid|all>          multicast Bye (keeps answering)
 *   quit                        Bye from every camera, then exit
 *
 * SIGTERM/SIGINT do what `quit` does.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { SimulatedCamera } from './camera.ts';

const { values } = parseArgs({
  options: {
    address: { type: 'string', multiple: true },
    uuid: { type: 'string', multiple: true },
    'ws-port': { type: 'string', default: '3702' },
    'multicast-interface': { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    auth: { type: 'string', default: 'ws-security' },
    'clock-offset-ms': { type: 'string', default: '0' },
    manufacturer: { type: 'string' },
    model: { type: 'string' },
    legacy: { type: 'boolean', default: false },
    'no-hello': { type: 'boolean', default: false },
    'probe-reply-max-delay-ms': { type: 'string', default: '0' },
  },
});

const addresses = values.address ?? ['127.0.0.1'];
const credentials = values.username === undefined ? undefined : { username: values.username, password: values.password ?? '' };
if (values.auth !== 'ws-security' && values.auth !== 'http-digest') throw new Error('--auth must be ws-security or http-digest');
const auth = values.auth;
const cameras = addresses.map(
  (address, i) =>
    new SimulatedCamera({
      address,
      ...(values.uuid?.[i] === undefined ? {} : { uuid: values.uuid[i] }),
      wsDiscoveryPort: Number(values['ws-port']),
      ...(values['multicast-interface'] === undefined ? {} : { multicastInterface: values['multicast-interface'] }),
      ...(credentials === undefined ? {} : { credentials }),
      auth,
      clockOffsetMs: Number(values['clock-offset-ms']),
      identity: {
        ...(values.manufacturer === undefined ? {} : { manufacturer: values.manufacturer }),
        ...(values.model === undefined ? {} : { model: values.model }),
      },
      legacy: values.legacy,
      helloOnStart: !values['no-hello'],
      probeReplyMaxDelayMs: Number(values['probe-reply-max-delay-ms']),
    }),
);

const emit = (event: object): void => void process.stdout.write(`${JSON.stringify(event)}\n`);

for (const camera of cameras) await camera.start();
emit({ event: 'ready', cameras: cameras.map((c) => ({ uuid: c.uuid, address: c.address, serviceUrl: c.serviceUrl })) });

let quitting = false;
async function quit(): Promise<void> {
  if (quitting) return;
  quitting = true;
  await Promise.all(cameras.map((c) => c.stop()));
  emit({ event: 'stopped' });
  process.exit(0);
}

async function command(line: string): Promise<void> {
  const [verb, target = 'all', flag] = line.trim().split(/\s+/);
  const selected = cameras.filter((c) => target === 'all' || c.uuid === target);
  if (verb === 'quit') return quit();
  if (selected.length === 0) throw new Error(`no camera ${target}`);
  for (const camera of selected) {
    if (verb === 'offline') await camera.goOffline({ bye: flag === 'bye' });
    else if (verb === 'online') await camera.goOnline({ changed: flag === 'changed' });
    else if (verb === 'hello') await camera.sendHello();
    else if (verb === 'bye') await camera.sendBye();
    else throw new Error(`unknown command ${verb ?? ''}`);
  }
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void quit());
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  try {
    await command(line);
    emit({ event: 'done', line });
  } catch (error) {
    emit({ event: 'error', line, message: (error as Error).message });
  }
}
await quit();
