/**
 * Network handler measures, through StandaloneAgent to the mock kubelet over real gRPC, against
 * real peers (needs `mosquitto`; the mDNS measure needs root and iproute2 for a netns link):
 *
 * - mqtt-latency: Home Assistant announcement → kubelet (discovery resource slot Healthy, and the
 *   device's own resource registered), last will → Unhealthy.
 * - mqtt-10k: 10 000 Home Assistant devices announced at once (one burst of retained configs)
 *   → all at the kubelet; then an agent restart re-syncing the same 10 000 from the retained
 *   state; RSS of the agent process (a child process: this file in `agent` mode).
 * - mdns-latency: DNS-SD announcement from another network namespace → kubelet, goodbye →
 *   Unhealthy.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { StandaloneAgent } from '../../agent/standalone.ts';
import { deviceName, deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import type { AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { createMdnsHandler } from '../../discovery-handlers/mdns/mdns.ts';
import { createMqttHandler } from '../../discovery-handlers/mqtt/mqtt.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { HomeAssistantDevice } from '../../mocks/mqtt-devices/devices.ts';
import { startMosquitto, type Mosquitto } from '../../test/peers/mosquitto.ts';
import { runHandler } from '../../test/peers/handler-run.ts';
import { createNetnsLink } from '../../test/peers/netns.ts';
import { PeerGroup } from '../../test/peers/process.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';

const log = pino({ level: 'silent' });

interface Rig {
  readonly kubelet: MockKubelet;
  readonly agent: StandaloneAgent;
  readonly dir: string;
}

async function withRig<T>(
  peers: PeerGroup,
  discovery: string,
  handler: AnyDiscoveryHandler,
  details: unknown,
  body: (rig: Rig) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-bench-net-'));
  peers.defer('bench dir', () => rm(dir, { recursive: true, force: true }));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
  await kubelet.start();
  peers.defer('kubelet', () => kubelet.stop());
  const agent = new StandaloneAgent({
    node: 'bench',
    pluginDir: join(dir, 'dp'),
    log,
    discoveries: [
      {
        namespace: 'default',
        name: discovery,
        handler,
        details: handler.parseDetails(details),
        capacity: 1,
        offlineGraceMs: 3_600_000,
        properties: new Map(),
      },
    ],
  });
  agent.start();
  peers.defer('agent', () => agent.stop());
  return body({ kubelet, agent, dir });
}

/** Resolves with the time the kubelet got a ListAndWatch update satisfying `ok` for `resource`. */
function nextUpdate(kubelet: MockKubelet, resource: string, ok: (devices: { ID: string; health: string }[]) => boolean): Promise<number> {
  return new Promise((resolve) => {
    const listener = (name: string, devices: { ID: string; health: string }[], at: number): void => {
      if (name !== resource || !ok(devices)) return;
      kubelet.off('devices', listener);
      resolve(at);
    };
    kubelet.on('devices', listener);
  });
}

const slotHealth = (slot: string, health: string) => (devices: { ID: string; health: string }[]) =>
  devices.some((d) => d.ID === slot && d.health === health);

async function mqttLatency(): Promise<Measurement[]> {
  const peers = new PeerGroup();
  try {
    const broker = await startMosquitto(peers);
    return await withRig(
      peers,
      'mqtt-bench',
      createMqttHandler(),
      { broker: broker.url, homeAssistant: { prefix: 'bench' } },
      async ({ kubelet }) => {
        const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
        peers.defer('publisher', () => publisher.endAsync());
        const any = discoveryResourceName('mqtt-bench');
        const toDiscovery: number[] = [];
        const toOwnResource: number[] = [];
        for (let i = 0; i < 100; i++) {
          const name = deviceName({ namespace: 'default', discovery: 'mqtt-bench', deviceId: `ha/plug-${i}` });
          const own = nextUpdate(kubelet, deviceResourceName(name), slotHealth(`${name}-0`, 'Healthy'));
          const inDiscovery = nextUpdate(kubelet, any, slotHealth(`${name}-0`, 'Healthy'));
          const started = performance.now();
          await publisher.publishAsync(
            `bench/switch/plug-${i}/relay/config`,
            JSON.stringify({
              name: 'Relay',
              uniq_id: `plug-${i}-relay`,
              cmd_t: `plug-${i}/cmd`,
              dev: { ids: `plug-${i}`, name: `plug-${i}` },
            }),
            { retain: true, qos: 0 },
          );
          toDiscovery.push((await inDiscovery) - started);
          toOwnResource.push((await own) - started);
        }
        // Last will: devices with an availability topic, whose connection drops.
        const toUnhealthy: number[] = [];
        for (let i = 0; i < 50; i++) {
          const device = new HomeAssistantDevice({ url: broker.url }, `lwt-${i}`, { prefix: 'bench' });
          const name = deviceName({ namespace: 'default', discovery: 'mqtt-bench', deviceId: `ha/lwt-${i}` });
          const online = nextUpdate(kubelet, any, slotHealth(`${name}-0`, 'Healthy'));
          await device.start();
          await online;
          const offline = nextUpdate(kubelet, any, slotHealth(`${name}-0`, 'Unhealthy'));
          const started = performance.now();
          await device.crash();
          toUnhealthy.push((await offline) - started);
        }
        return [
          summarize('mqtt announce → kubelet (discovery resource)', 'ms', toDiscovery),
          summarize('mqtt announce → kubelet (own resource registered)', 'ms', toOwnResource),
          summarize('mqtt last will → Unhealthy', 'ms', toUnhealthy),
        ];
      },
    );
  } finally {
    await peers.close();
  }
}

async function rssMiB(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

/**
 * The agent process whose RSS mqtt-10k reads: StandaloneAgent + the mqtt handler and nothing
 * else (an inline module, so none of the benchmark's own imports inflate it).
 */
const AGENT_MODULE = `
import { once } from 'node:events';
import { pino } from 'pino';
import { StandaloneAgent } from ${JSON.stringify(new URL('../../agent/standalone.ts', import.meta.url).href)};
import { createMqttHandler } from ${JSON.stringify(new URL('../../discovery-handlers/mqtt/mqtt.ts', import.meta.url).href)};
const [pluginDir, broker] = process.argv.slice(1);
const handler = createMqttHandler();
const agent = new StandaloneAgent({
  node: 'scale',
  pluginDir,
  log: pino({ level: 'silent' }),
  discoveries: [{
    namespace: 'default', name: 'scale', handler, capacity: 1, offlineGraceMs: 3_600_000, properties: new Map(),
    details: handler.parseDetails({ broker, homeAssistant: { prefix: 'scale' }, limits: { maxDevices: 20_000 } }),
  }],
});
agent.start();
await once(process, 'SIGTERM');
await agent.stop();
`;

function spawnAgent(pluginDir: string, broker: Mosquitto): ReturnType<typeof spawn> {
  return spawn(process.execPath, ['--input-type=module', '-e', AGENT_MODULE, pluginDir, broker.url], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** The handler alone (no agent): burst → all 10 000 reported to its sink, and how many sink calls that took. */
async function handlerOnly(broker: Mosquitto, devices: number): Promise<Measurement[]> {
  const handler = runHandler(createMqttHandler(), {
    broker: broker.url,
    homeAssistant: { prefix: 'solo' },
    limits: { maxDevices: 20_000 },
  });
  try {
    await handler.sink.waitFor(() => handler.sink.calls.length > 0, 10_000, 'initial sync');
    const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    const started = performance.now();
    for (let i = 0; i < devices; i++)
      publisher.publish(`solo/sensor/n${i}/t/config`, JSON.stringify({ uniq_id: `n${i}`, dev: { ids: `n${i}` } }), {
        qos: 0,
        retain: true,
      });
    await handler.sink.waitFor(() => handler.sink.devices.size === devices, 120_000, 'all devices at the sink');
    const elapsed = performance.now() - started;
    await publisher.endAsync();
    return [
      summarize('mqtt 10k: announced at once → all at the handler sink', 's', [elapsed / 1000]),
      summarize('mqtt 10k: sink calls for the burst', 'calls', [handler.sink.calls.length - 1], 0),
    ];
  } finally {
    await handler.stop();
  }
}

async function mqttScale(): Promise<Measurement[]> {
  const devices = 10_000;
  const peers = new PeerGroup();
  try {
    const broker = await startMosquitto(peers);
    const solo = await handlerOnly(broker, devices);
    const dir = await mkdtemp(join(tmpdir(), 'tether-bench-10k-'));
    peers.defer('dir', () => rm(dir, { recursive: true, force: true }));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
    await kubelet.start();
    peers.defer('kubelet', () => kubelet.stop());
    const any = discoveryResourceName('scale');
    const slots = (): number => (kubelet.resource(any)?.devices ?? []).filter((d) => d.health === 'Healthy').length;

    let child = spawnAgent(join(dir, 'dp'), broker);
    peers.defer('agent', async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    });
    const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    peers.defer('publisher', () => publisher.endAsync());
    const config = (i: number): string =>
      JSON.stringify({
        name: 'Temperature',
        uniq_id: `node-${i}-t`,
        stat_t: `node-${i}/sensor/temperature/state`,
        dev_cla: 'temperature',
        dev: { ids: `node-${i}`, name: `node-${i}`, mf: 'espressif', mdl: 'esp32dev' },
      });
    // A canary first: once it is at the kubelet, the agent is up and subscribed.
    await publisher.publishAsync('scale/sensor/canary/temperature/config', config(-1), { qos: 1, retain: true });
    await kubelet.waitFor(() => slots() === 1, 30_000, 'canary at the kubelet');
    const idleRss = await rssMiB(child.pid!);

    // The burst: one client publishes 10 000 retained discovery configs as fast as it can.
    const started = performance.now();
    for (let i = 0; i < devices; i++) {
      publisher.publish(`scale/sensor/node-${i}/temperature/config`, config(i), { qos: 0, retain: true });
    }
    // The broker handles one connection's messages in order: this PUBACK means all arrived.
    await publisher.publishAsync('scale/flushed', '', { qos: 1 });
    const published = performance.now() - started;
    await kubelet.waitFor(() => slots() === devices + 1, 600_000, `${devices} devices at the kubelet`);
    const allAtKubelet = performance.now() - started;
    const loadedRss = await rssMiB(child.pid!);

    // Restart: a new agent re-syncs all 10 000 from the broker's retained state.
    child.kill('SIGTERM');
    await once(child, 'exit');
    await kubelet.waitFor(() => kubelet.resource(any)?.connected === false, 30_000, 'old agent gone');
    const restarted = performance.now();
    child = spawnAgent(join(dir, 'dp'), broker);
    await kubelet.waitFor(
      () => kubelet.resource(any)?.connected === true && slots() === devices + 1,
      600_000,
      `${devices} devices after restart`,
    );
    const resync = performance.now() - restarted;
    const resyncRss = await rssMiB(child.pid!);
    return [
      ...solo,
      summarize('mqtt 10k: burst published by the client', 's', [published / 1000]),
      summarize('mqtt 10k: announced at once → all at kubelet', 's', [allAtKubelet / 1000]),
      summarize('mqtt 10k: agent restart → all re-synced at kubelet', 's', [resync / 1000]),
      summarize('mqtt 10k: agent RSS before the burst', 'MiB', [idleRss], 1),
      summarize('mqtt 10k: agent RSS with 10k devices', 'MiB', [loadedRss], 1),
      summarize('mqtt 10k: agent RSS after re-sync', 'MiB', [resyncRss], 1),
    ];
  } finally {
    await peers.close();
  }
}

async function mdnsLatency(): Promise<Measurement[]> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('mdns-latency: skipped (needs root for a network namespace)\n');
    return [];
  }
  const peers = new PeerGroup();
  try {
    const link = await createNetnsLink(peers, 'bench');
    const responder = link.spawn('mdns responder', process.execPath, [
      fileURLToPath(new URL('../../mocks/mdns/responder.ts', import.meta.url)),
      link.peerAddress,
    ]);
    await responder.waitForOutput(/^ready$/m, 10_000);
    let id = 0;
    const command = async (cmd: Record<string, unknown>): Promise<void> => {
      const n = ++id;
      responder.child.stdin!.write(`${JSON.stringify({ id: n, ...cmd })}\n`);
      await responder.waitForOutput(new RegExp(`^ok ${n}$`, 'm'), 5_000);
    };
    const details = { serviceTypes: ['_bench._tcp'], interfaces: [link.hostIf], discoveryTimeoutSeconds: 0.5 };
    return await withRig(peers, 'mdns-bench', createMdnsHandler(), details, async ({ kubelet }) => {
      const any = discoveryResourceName('mdns-bench');
      // A canary first: once it is at the kubelet, the first browse window is over.
      await command({
        cmd: 'publish',
        service: { name: 'Canary', type: '_bench._tcp', port: 8999, host: 'bench-host', address: link.peerAddress },
      });
      await kubelet.waitFor(() => (kubelet.resource(any)?.devices.length ?? 0) === 1, 10_000, 'canary');
      const announce: number[] = [];
      const goodbye: number[] = [];
      for (let i = 0; i < 50; i++) {
        const fullName = `Bench ${i}._bench._tcp.local`;
        const name = deviceName({ namespace: 'default', discovery: 'mdns-bench', deviceId: fullName });
        const online = nextUpdate(kubelet, any, slotHealth(`${name}-0`, 'Healthy'));
        let started = performance.now();
        await command({
          cmd: 'publish',
          service: { name: `Bench ${i}`, type: '_bench._tcp', port: 9000 + i, host: 'bench-host', address: link.peerAddress },
        });
        announce.push((await online) - started);
        const offline = nextUpdate(kubelet, any, slotHealth(`${name}-0`, 'Unhealthy'));
        started = performance.now();
        await command({ cmd: 'unpublish', fullName });
        goodbye.push((await offline) - started);
      }
      return [
        summarize('mdns announce → kubelet (discovery resource)', 'ms', announce),
        summarize('mdns goodbye → Unhealthy', 'ms', goodbye),
      ];
    });
  } finally {
    await peers.close();
  }
}

export const networkHandlerMeasures: Measure[] = [
  { name: 'mqtt-latency', description: 'MQTT announcement → kubelet, last will → Unhealthy (real Mosquitto)', run: mqttLatency },
  { name: 'mqtt-10k', description: '10 000 MQTT devices announced at once → kubelet; re-sync after restart; agent RSS', run: mqttScale },
  { name: 'mdns-latency', description: 'mDNS announcement → kubelet, goodbye → Unhealthy (netns link, mock responder)', run: mdnsLatency },
];
