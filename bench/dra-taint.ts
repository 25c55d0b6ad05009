/**
 * DRA offline taint latency (issue 15: "device offline → taint applied ≤ 1 s"): a real cluster
 * agent (in-process, mock kubelet) against the local control plane, one DRA discovery whose
 * test handler the bench drives. Each round the device vanishes (the handler reports it gone)
 * and the bench waits, on its own ResourceSlice watch, for the device's `tether.dev/offline`
 * taint; then it comes back and the bench waits for the taint to go. The taint is applied when
 * the device goes offline, at the start of the offline grace period (pods that want to wait
 * tolerate it for a while: DeviceToleration.tolerationSeconds), so this latency is the whole
 * delay. `--devices N` puts N devices in the pool (N/64 slices), of which one flaps.
 *
 *   node bench/dra-taint.ts [--rounds 50] [--devices 1]
 *
 * Also usable as a Measure (`draTaintMeasure`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ClusterAgent } from '../agent/cluster-agent.ts';
import type { ResourceSlice } from '../agent/cluster/resource-slices.ts';
import { MockKubelet } from '../agent/kubelet/mock-kubelet.ts';
import { createAgentMetrics } from '../agent/metrics.ts';
import { deviceName } from '../api/names.ts';
import type { DeviceSink, DiscoveredDevice, DiscoveryHandler } from '../discovery-handlers/contract.ts';
import { KubeClient, type KubeObject } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import { KubeConfig } from '../kube/kubeconfig.ts';
import { Api, RESOURCES } from '../kube/resources.ts';
import { clusterUp } from '../test/cluster/cluster.ts';
import { summarize, type Measure, type Measurement } from './harness.ts';

interface Options {
  readonly rounds: number;
  readonly devices: number;
}

/** Resolves when `predicate` holds for the slices seen by `informer` (checked on every event). */
function until(
  what: string,
  informer: Informer<ResourceSlice>,
  predicate: (slices: ResourceSlice[]) => boolean,
  timeoutMs = 10_000,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      if (!predicate(informer.list())) return false;
      clearTimeout(timer);
      resolve(performance.now());
      return true;
    };
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    informer.onEvent(() => void check());
    check();
  });
}

export async function measureDraTaint(options: Options): Promise<Measurement[]> {
  const info = await clusterUp({ log: (m) => process.stderr.write(`${m}\n`) });
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const client = new KubeClient(kc);
  const api = new Api(client);
  const log = pino({ level: process.env['TETHER_BENCH_LOG'] ?? 'silent' });
  const id = Date.now().toString(36);
  const namespace = `bench-dra-${id}`;
  const node = `bench-dra-${id}`;
  await api.create({ group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false }, undefined, {
    metadata: { name: namespace },
  });
  let sink: DeviceSink | undefined;
  const handler: DiscoveryHandler<unknown> = {
    name: 'bench-dra',
    parseDetails: (raw) => raw,
    isShared: () => false,
    run: async (_details, context) => {
      sink = context.sink;
      await new Promise((resolve) => context.signal.addEventListener('abort', resolve, { once: true }));
    },
  };
  const dir = await mkdtemp(join(tmpdir(), 'bench-dra-'));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
  const agent = new ClusterAgent({
    node,
    kc,
    log,
    pluginDir: join(dir, 'dp'),
    namespace,
    handlers: new Map(),
    externalHandler: (name) => (name === handler.name ? handler : undefined),
    metrics: createAgentMetrics({ defaultMetrics: false }),
    startupTimeoutMs: 1_000,
    reconcileIntervalMs: 0,
    slotGraceMs: 0,
    // One device-plugin server per discovery, not per device: the slices are what is measured.
    devicePluginMode: 'lean',
    // Slices are published only by an agent that is its node's DRA plugin.
    dra: { kubeletDir: join(dir, 'kubelet'), cdiDir: join(dir, 'cdi'), stateDir: join(dir, 'state') },
  });
  const slices = new Informer<ResourceSlice>({ client, type: RESOURCES.resourceSlices, fieldSelector: `spec.nodeName=${node}`, log });
  try {
    const spec = { handler: handler.name, backend: 'DRA', dra: { evictOnOffline: true }, offlineGracePeriodSeconds: 3600 };
    const body = { apiVersion: 'tether.dev/v1alpha1', kind: 'DeviceDiscovery', metadata: { name: 'flap', namespace }, spec };
    await api.create(RESOURCES.deviceDiscoveries, namespace, body);
    await agent.start();
    slices.start();
    await slices.synced();
    const all: DiscoveredDevice[] = Array.from({ length: options.devices }, (_, i) => ({ id: `d${i}`, properties: { INDEX: String(i) } }));
    const flapping = deviceName({ namespace, discovery: 'flap', deviceId: 'd0', node });
    const taintOf = (list: ResourceSlice[]): string | undefined =>
      list.flatMap((s) => s.spec.devices ?? []).find((d) => d.name === flapping)?.taints?.[0]?.effect;
    const listed = (list: ResourceSlice[]): number => list.reduce((n, s) => n + (s.spec.devices?.length ?? 0), 0);
    while (sink === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    const publishStart = performance.now();
    sink.replaceAll(all);
    const published = await until(
      'every device listed',
      slices,
      (list) => listed(list) === options.devices && taintOf(list) === undefined,
      60_000,
    );
    // Steady state first: the Device objects of the initial publication are written too (the
    // runtime publishes serially, so a flap during them would wait for them).
    await agent.settled();
    const settled = performance.now();
    const on: number[] = [];
    const off: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const gone = performance.now();
      sink.replaceAll(all.slice(1));
      on.push((await until('the taint', slices, (list) => taintOf(list) === 'NoExecute')) - gone);
      const back = performance.now();
      sink.replaceAll(all);
      off.push((await until('the taint gone', slices, (list) => listed(list) === options.devices && taintOf(list) === undefined)) - back);
    }
    return [
      summarize(`dra: ${options.devices} device(s) published (report → all in ResourceSlices)`, 'ms', [published - publishStart]),
      summarize(`dra: ${options.devices} device(s) settled (report → Devices and slices written)`, 'ms', [settled - publishStart]),
      summarize(`dra: device offline → NoExecute taint in its ResourceSlice (${options.devices} devices)`, 'ms', on),
      summarize(`dra: device back online → taint removed (${options.devices} devices)`, 'ms', off),
    ];
  } finally {
    await agent.stop().catch(() => undefined);
    await slices.stop();
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
    // The agent does not delete its slices on stop (a restart must not churn them): the bench does.
    for (const slice of (await api.list<ResourceSlice & KubeObject>(RESOURCES.resourceSlices, { fieldSelector: `spec.nodeName=${node}` }))
      .items) {
      await api.delete(RESOURCES.resourceSlices, undefined, slice.metadata.name).catch(() => undefined);
    }
    await api
      .delete({ group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false }, undefined, namespace)
      .catch(() => undefined);
  }
}

export const draTaintMeasure: Measure = {
  name: 'dra-taint',
  description: 'DRA: device offline → taint applied in its ResourceSlice, back online → removed (real apiserver)',
  onlyWhenNamed: true,
  run: () => measureDraTaint({ rounds: 50, devices: 1 }),
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '50' }, devices: { type: 'string', default: '1' } } });
  const results = await measureDraTaint({ rounds: Number(values.rounds), devices: Number(values.devices) });
  for (const r of results)
    process.stdout.write(`${r.name}: n=${r.n} p50=${r.p50} ${r.unit} p99=${r.p99} ${r.unit} max=${r.max} ${r.unit}\n`);
  process.exit(0);
}
