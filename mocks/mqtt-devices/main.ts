#!/usr/bin/env node
/**
 * Runs one simulated Home Assistant (ESPHome-style) MQTT device in this process — e.g. inside
 * a test network namespace, so a test can kill it and the broker publishes its last will:
 *
 *   ip netns exec <ns> node mocks/mqtt-devices/main.ts --url mqtt://10.250.90.1:1883 --node porch
 *
 * Flags: --url (required), --node (default `mock-node`), --prefix (discovery prefix, default
 * `homeassistant`), --protocol-version 4|5 (default 4). The device is `HomeAssistantDevice` of
 * devices.ts: client id `esphome-<node>`, retained configs
 * `<prefix>/{sensor,switch}/<node>/<node>_{temperature,relay}/config`, retained `online` on
 * `<node>/status`, last will `offline` (retained) on the same topic.
 *
 * Prints one JSON line per event on stdout: `{"event":"ready",…}` once the configs and
 * `online` are acknowledged by the broker (QoS 1), `{"event":"stopped"}` after a clean stop.
 *
 * - SIGTERM/SIGINT: clean stop (publishes `offline`, then DISCONNECT: no will).
 * - SIGKILL: the kernel closes the TCP connection without DISCONNECT, so the broker publishes
 *   the will (`offline`) — the abrupt death a test wants.
 * - A lost broker connection ends the process (no reconnecting; the next start re-announces).
 */
import { parseArgs } from 'node:util';
import { HomeAssistantDevice } from './devices.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    node: { type: 'string', default: 'mock-node' },
    prefix: { type: 'string', default: 'homeassistant' },
    'protocol-version': { type: 'string', default: '4' },
  },
});

if (values.url === undefined) throw new Error('--url is required (e.g. mqtt://127.0.0.1:1883)');
const protocolVersion = values['protocol-version'] === '5' ? 5 : 4;
const emit = (event: object): void => void process.stdout.write(`${JSON.stringify(event)}\n`);

const device = new HomeAssistantDevice({ url: values.url, protocolVersion }, values.node, { prefix: values.prefix });
await device.start();
emit({
  event: 'ready',
  node: device.node,
  clientId: `esphome-${device.node}`,
  statusTopic: device.statusTopic,
  configTopics: device.components.map((c) => device.configTopic(c)),
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await device.stop();
  emit({ event: 'stopped' });
  process.exit(0);
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void stop());
