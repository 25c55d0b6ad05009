/**
 * Foundation measures: handler event → mock kubelet ListAndWatch update, Allocate round
 * trip, and the idle RSS of an agent process serving debug-echo devices.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { deviceName, deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import type { DeviceSink, DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { StandaloneAgent } from '../../agent/standalone.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';

const log = pino({ level: 'silent' });

/** A handler whose sink the benchmark drives directly, so only Tether's path is timed. */
function drivenHandler(): { handler: DiscoveryHandler<unknown>; sink: Promise<DeviceSink> } {
  let resolveSink: (sink: DeviceSink) => void = () => undefined;
  const sink = new Promise<DeviceSink>((resolve) => (resolveSink = resolve));
  const handler: DiscoveryHandler<unknown> = {
    name: 'bench',
    parseDetails: (raw) => raw,
    isShared: () => false,
    run: async (_details, { sink: s, signal }) => {
      resolveSink(s);
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    },
  };
  return { handler, sink };
}

async function withRig<T>(
  devices: number,
  capacity: number,
  body: (rig: { kubelet: MockKubelet; agent: StandaloneAgent; sink: DeviceSink }) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tb-'));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
  const { handler, sink } = drivenHandler();
  const agent = new StandaloneAgent({
    node: 'bench',
    pluginDir: join(dir, 'dp'),
    log,
    discoveries: [
      { namespace: 'default', name: 'bench', handler, details: {}, capacity, offlineGraceMs: 3_600_000, properties: new Map() },
    ],
  });
  agent.start();
  try {
    const s = await sink;
    s.replaceAll(Array.from({ length: devices }, (_, i) => ({ id: `dev-${i}`, properties: { INDEX: String(i) } })));
    await kubelet.waitFor(
      () => (kubelet.resource(discoveryResourceName('bench'))?.devices.length ?? 0) === devices * capacity,
      30_000,
      'bench devices',
    );
    return await body({ kubelet, agent, sink: s });
  } finally {
    await agent.stop();
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function eventToKubelet(): Promise<Measurement[]> {
  return withRig(10, 1, async ({ kubelet, sink }) => {
    const resource = deviceResourceName(deviceName({ namespace: 'default', discovery: 'bench', deviceId: 'dev-0', node: 'bench' }));
    const samples: number[] = [];
    for (let i = 0; i < 300; i++) {
      const online = i % 2 === 1;
      const want = online ? 'Healthy' : 'Unhealthy';
      const arrived = new Promise<number>((resolve) => {
        const onDevices = (name: string, devices: { health: string }[], at: number): void => {
          if (name !== resource || devices[0]?.health !== want) return;
          kubelet.off('devices', onDevices);
          resolve(at);
        };
        kubelet.on('devices', onDevices);
      });
      const start = performance.now();
      if (online) sink.upsert({ id: 'dev-0', properties: { INDEX: '0' } });
      else sink.remove('dev-0');
      samples.push((await arrived) - start);
    }
    return [summarize('event-to-kubelet', 'ms', samples)];
  });
}

async function allocateRoundTrip(): Promise<Measurement[]> {
  return withRig(50, 2, async ({ kubelet, agent }) => {
    const resource = discoveryResourceName('bench');
    const samples: number[] = [];
    const slots = kubelet.resource(resource)!.devices.map((d) => d.ID);
    for (let i = 0; i < 500; i++) {
      const slot = slots[i % slots.length]!;
      const start = performance.now();
      await kubelet.rawAllocate(resource, { container_requests: [{ devices_ids: [slot] }] });
      samples.push(performance.now() - start);
      agent.ledger.release([slot]);
    }
    return [summarize('allocate-round-trip', 'ms', samples)];
  });
}

async function vmRssKiB(pid: number): Promise<number> {
  const statusText = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(statusText)?.[1] ?? Number.NaN);
}

async function idleAgentRss(): Promise<Measurement[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ti-'));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
  await kubelet.start();
  const child = spawn(process.execPath, [new URL('../idle-agent.ts', import.meta.url).pathname, join(dir, 'dp')], { stdio: 'inherit' });
  try {
    await kubelet.waitFor(
      () => (kubelet.resource(discoveryResourceName('idle'))?.devices.length ?? 0) === 20,
      20_000,
      'idle agent devices',
    );
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200)); // sampling interval, not synchronisation
      samples.push((await vmRssKiB(child.pid!)) / 1024);
    }
    return [summarize('agent-idle-rss (debug-echo, 10 devices)', 'MiB', samples, 1)];
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export const foundationMeasures: Measure[] = [
  { name: 'event-to-kubelet', description: 'handler event → mock kubelet ListAndWatch update', run: eventToKubelet },
  { name: 'allocate', description: 'Allocate round trip over the plugin socket', run: allocateRoundTrip },
  { name: 'idle-rss', description: 'RSS of an idle agent process serving debug-echo devices', run: idleAgentRss },
];
