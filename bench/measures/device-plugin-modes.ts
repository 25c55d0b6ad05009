/**
 * Device-plugin modes at scale (#15): a `tether agent` process on the real control plane with
 * N debug-echo devices in one discovery, served to the mock kubelet per device or lean. The
 * agent runs as the image runs it (tsc's JavaScript, the chart's V8 flags);
 * TETHER_BENCH_ENTRY=ts runs it from the sources instead.
 * Reports the time until the kubelet has every slot and until every Device object exists, the
 * agent's RSS (settled and peak), its open file descriptors and plugin sockets against this
 * machine's limit, and Allocate with the durable slot claim through the served resource
 * (in-process agent, so the figure is the plugin's own round trip).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ClusterAgent } from '../../agent/cluster-agent.ts';
import { noPublication, staticDiscoveries } from '../../agent/runtime/adapters.ts';
import { NodeRuntime } from '../../agent/runtime/node-runtime.ts';
import type { DevicePluginMode } from '../../agent/device-plugin/resources.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { createAgentMetrics } from '../../agent/metrics.ts';
import { KubeDevicesApi } from '../../agent/cluster/kube-devices-api.ts';
import { slotsApply, slotsManager } from '../../agent/publish/device-object.ts';
import { deviceName, discoveryResourceName } from '../../api/names.ts';
import type { DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { KubeClient } from '../../kube/client.ts';
import { KubeConfig as TetherKubeConfig } from '../../kube/kubeconfig.ts';
import { Api } from '../../kube/resources.ts';
import { clusterUp } from '../../test/cluster/cluster.ts';
import { freePort, httpGet } from '../../test/cluster/processes.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';
import { buildJavaScript, chartNodeOptions } from '../image-app.ts';

const GROUP = { group: 'tether.dev', version: 'v1alpha1' } as const;

interface Bench {
  readonly kc: KubeConfig;
  readonly custom: CustomObjectsApi;
  readonly namespace: string;
  readonly kubeconfig: string;
}

async function withNamespace<T>(body: (bench: Bench) => Promise<T>): Promise<T> {
  const info = await clusterUp({ log: (m) => process.stderr.write(`${m}\n`) });
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const namespace = `bench-dp-${Date.now().toString(36)}`;
  const core = kc.makeApiClient(CoreV1Api);
  await quietApiserver(core);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  try {
    return await body({ kc, custom, namespace, kubeconfig: info.kubeconfig });
  } finally {
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  }
}

/**
 * Waits until no earlier bench namespace is still being deleted: removing one with 10 000
 * Devices keeps the apiserver busy for minutes, and a run beside it measures that instead.
 */
export async function quietApiserver(core: CoreV1Api): Promise<void> {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    const terminating = (await core.listNamespace()).items.filter(
      (ns) => ns.metadata?.name?.startsWith('bench-') === true && ns.status?.phase === 'Terminating',
    );
    if (terminating.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`bench namespaces still terminating after 15 min: ${terminating.map((ns) => ns.metadata?.name).join(', ')}`);
    process.stderr.write(`[bench] waiting for ${terminating.length} earlier bench namespace(s) to be deleted\n`);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
  }
}

async function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(text)?.[1]) / 1024;
}

async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

async function fdLimit(pid: number): Promise<number> {
  const line = (await readFile(`/proc/${pid}/limits`, 'utf8')).split('\n').find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[3]);
}

/** The V8 heap's size and use, from the agent's /metrics (so RSS can be split into heap and the rest). */
async function heapFigures(port: number): Promise<{ total: number; used: number }> {
  const text = (await httpGet(`http://127.0.0.1:${port}/metrics`)).body;
  const value = (name: string): number => Number(new RegExp(`^\\w*${name} (\\S+)$`, 'm').exec(text)?.[1]) / 1024 / 1024;
  return { total: value('nodejs_heap_size_total_bytes'), used: value('nodejs_heap_size_used_bytes') };
}

/** Counts Device objects until there are `want`, polling (the figure is "all exist by"). */
async function waitForDevices(bench: Bench, want: number): Promise<void> {
  for (;;) {
    let objects = 0;
    for (let token: string | undefined; ;) {
      const page = (await bench.custom.listNamespacedCustomObject({
        ...GROUP,
        namespace: bench.namespace,
        plural: 'devices',
        limit: 1_000,
        ...(token ? { _continue: token } : {}),
      })) as { items: unknown[]; metadata: { continue?: string } };
      objects += page.items.length;
      token = page.metadata.continue;
      if (!token) break;
    }
    if (objects >= want) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const SLICES = { group: 'resource.k8s.io', version: 'v1', plural: 'resourceslices' } as const;

interface SliceList {
  readonly items: { metadata: { name: string }; spec: { devices?: unknown[] } }[];
}

/** This node's ResourceSlices. */
async function nodeSlices(bench: Bench, node: string): Promise<SliceList> {
  return (await bench.custom.listClusterCustomObject({ ...SLICES, fieldSelector: `spec.nodeName=${node}` })) as SliceList;
}

/** Devices listed in this node's ResourceSlices. */
async function slicedDevices(bench: Bench, node: string): Promise<number> {
  return (await nodeSlices(bench, node)).items.reduce((n, slice) => n + (slice.spec.devices?.length ?? 0), 0);
}

/** Deletes this node's ResourceSlices (an agent leaves them on stop, so a restart does not churn them). */
async function deleteSlices(bench: Bench, node: string): Promise<void> {
  for (const slice of (await nodeSlices(bench, node)).items) {
    await bench.custom.deleteClusterCustomObject({ ...SLICES, name: slice.metadata.name }).catch(() => undefined);
  }
}

/**
 * A `tether agent` process with `devices` debug-echo devices, served `mode`: per device or
 * lean through the device plugins, or `dra` (a DRA discovery, `tether agent --dra`: the
 * figure is every device in this node's ResourceSlices).
 */
async function scale(mode: DevicePluginMode | 'dra', devices: number): Promise<Measurement[]> {
  return withNamespace(async (bench) => {
    const dir = await mkdtemp(join(tmpdir(), 'tdpm-'));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
    await kubelet.start();
    await bench.custom.createNamespacedCustomObject({
      ...GROUP,
      namespace: bench.namespace,
      plural: 'devicediscoveries',
      body: {
        apiVersion: 'tether.dev/v1alpha1',
        kind: 'DeviceDiscovery',
        metadata: { name: 'scale' },
        spec: {
          handler: 'debug-echo',
          details: { descriptions: Array.from({ length: devices }, (_, i) => `d${i}`) },
          ...(mode === 'dra' ? { backend: 'DRA' } : {}),
        },
      },
    });
    const asImage = (process.env['TETHER_BENCH_ENTRY'] ?? 'js') === 'js';
    const cli = asImage ? await buildJavaScript() : fileURLToPath(new URL('../../bin/tether.mjs', import.meta.url));
    const nodeFlags = asImage ? await chartNodeOptions('agent') : [];
    const metricsPort = await freePort();
    const started = performance.now();
    // Flags as the chart sets them, minus the host paths this bench replaces.
    const child = spawn(
      process.execPath,
      [
        ...nodeFlags,
        cli,
        'agent',
        '--node-name',
        'scale-node',
        '--namespace',
        bench.namespace,
        '--device-plugin-dir',
        join(dir, 'dp'),
        // Per-device is the default: left out, the same bench runs against agents without the flag.
        ...(mode === 'per-device'
          ? []
          : mode === 'dra'
            ? ['--dra', '--kubelet-dir', join(dir, 'kubelet'), '--cdi-dir', join(dir, 'cdi'), '--state-dir', join(dir, 'state')]
            : ['--device-plugin-mode', mode]),
        '--pod-resources-socket',
        '',
        '--registration-socket',
        '',
        '--http-address',
        `127.0.0.1:${metricsPort}`,
        '--log-level',
        process.env['TETHER_BENCH_AGENT_LOG'] ?? 'error',
      ],
      { env: { ...process.env, KUBECONFIG: bench.kubeconfig, ...(asImage ? { NODE_ENV: 'production' } : {}) }, stdio: 'inherit' },
    );
    const pid = child.pid!;
    let maxFds = 0;
    const sampler = setInterval(() => {
      openFds(pid).then(
        (n) => (maxFds = Math.max(maxFds, n)),
        () => undefined,
      );
    }, 200);
    try {
      const resource = discoveryResourceName('scale');
      const ready = (): boolean =>
        kubelet.resource(resource)?.devices.filter((d) => d.health === 'Healthy').length === devices &&
        kubelet.resourceNames().length === (mode === 'lean' ? 1 : devices + 1);
      if (mode === 'dra') {
        while ((await slicedDevices(bench, 'scale-node')) < devices) {
          if (child.exitCode !== null) throw new Error(`the agent exited ${child.exitCode}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } else {
        await kubelet.waitFor(ready, 600_000, `${devices} devices at the kubelet`);
      }
      const toKubelet = performance.now() - started;
      await waitForDevices(bench, devices);
      const toDevices = performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 10_000)); // let watch events and GC settle
      const sockets = (await readdir(join(dir, 'dp'))).filter((f) => f.startsWith('tether-')).length;
      const label = `dp-${mode}-${devices}`;
      const heap = await heapFigures(metricsPort);
      return [
        summarize(`${label}: ${mode === 'dra' ? 'to ResourceSlices (every device listed)' : 'to kubelet (every slot Healthy)'}`, 's', [
          toKubelet / 1000,
        ]),
        summarize(`${label}: to Device objects (all ${devices})`, 's', [toDevices / 1000]),
        summarize(`${label}: RSS settled`, 'MiB', [await procStatus(pid, 'VmRSS')], 1),
        summarize(`${label}: RSS peak (VmHWM)`, 'MiB', [await procStatus(pid, 'VmHWM')], 1),
        summarize(`${label}: V8 heap total`, 'MiB', [heap.total], 1),
        summarize(`${label}: V8 heap used`, 'MiB', [heap.used], 1),
        summarize(`${label}: open fds (max sampled)`, 'fds', [Math.max(maxFds, await openFds(pid))], 0),
        summarize(`${label}: fd limit (ulimit -n)`, 'fds', [await fdLimit(pid)], 0),
        summarize(`${label}: plugin sockets / kubelet resources`, 'count', [sockets, kubelet.resourceNames().length], 0),
      ];
    } finally {
      clearInterval(sampler);
      child.kill('SIGTERM');
      await once(child, 'exit');
      await kubelet.stop();
      await rm(dir, { recursive: true, force: true });
      if (mode === 'dra') await deleteSlices(bench, 'scale-node');
    }
  });
}

function benchHandler(): DiscoveryHandler<unknown> {
  return {
    name: 'bench-many',
    parseDetails: (raw) => raw ?? {},
    isShared: () => false,
    run: async (details, { sink, signal }) => {
      const count = Number((details as { devices?: number }).devices ?? 1);
      sink.replaceAll(Array.from({ length: count }, (_, i) => ({ id: `dev-${i}`, properties: { INDEX: String(i) } })));
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    },
  };
}

/**
 * Allocate through the discovery resource with the durable slot claim (an SSA of the Device's
 * slots), the kubelet choosing the slot as it does (free, Healthy, preferred allocation), with
 * `devices` devices served so the per-Allocate sync costs of a big node are in the figure.
 */
async function allocate(mode: DevicePluginMode, devices: number, samples: number): Promise<Measurement[]> {
  return withNamespace(async (bench) => {
    await bench.custom.createNamespacedCustomObject({
      ...GROUP,
      namespace: bench.namespace,
      plural: 'devicediscoveries',
      body: {
        apiVersion: 'tether.dev/v1alpha1',
        kind: 'DeviceDiscovery',
        metadata: { name: 'alloc' },
        spec: { handler: 'bench-many', details: { devices }, capacity: 1, offlineGracePeriodSeconds: 3600 },
      },
    });
    const dir = await mkdtemp(join(tmpdir(), 'tdpa-'));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
    await kubelet.start();
    const handler = benchHandler();
    const agent = new ClusterAgent({
      node: 'alloc-node',
      kc: bench.kc,
      log: pino({ level: 'silent' }),
      pluginDir: join(dir, 'dp'),
      namespace: bench.namespace,
      handlers: new Map(),
      externalHandler: (name) => (name === handler.name ? handler : undefined), // not a built-in name
      metrics: createAgentMetrics({ defaultMetrics: false }),
      startupTimeoutMs: 2_000,
      reconcileIntervalMs: 0,
      devicePluginMode: mode,
    });
    await agent.start();
    try {
      const resource = discoveryResourceName('alloc');
      await kubelet.waitFor(() => kubelet.freeDevices(resource).length === devices, 120_000, `${devices} slots`);
      await agent.settled();
      const times: number[] = [];
      for (let i = 0; i < samples; i++) {
        const start = performance.now();
        await kubelet.allocate({ namespace: 'bench', name: `p${i}` }, resource, 1);
        times.push(performance.now() - start);
      }
      return [
        summarize(`dp-${mode}-${devices}: Allocate incl. durable slot claim`, 'ms', times),
        // The last device by name: the kubelet's preferred allocation took the first ones.
        ...(await claimWrites(bench, `dp-${mode}-${devices}`, `dev-${devices - 1}`, samples)),
      ];
    } finally {
      await agent.stop();
      await kubelet.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

/**
 * The durable claim alone: the slot apply an Allocate makes (and the release after it) on a
 * served Device nobody allocated, through the agent's own Device API — the apiserver's share
 * of the Allocate figure, measured right after it on the same objects.
 */
async function claimWrites(bench: Bench, label: string, deviceId: string, samples: number): Promise<Measurement[]> {
  const kc = new TetherKubeConfig();
  kc.loadFromFile(bench.kubeconfig);
  const api = new KubeDevicesApi(new Api(new KubeClient(kc)));
  const name = deviceName({ namespace: bench.namespace, discovery: 'alloc', deviceId, node: 'alloc-node' });
  const claims: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    await api.apply(slotsApply(name, bench.namespace, [0], 'alloc-node'), slotsManager('alloc-node'), false);
    claims.push(performance.now() - start);
    await api.apply(slotsApply(name, bench.namespace, [], 'alloc-node'), slotsManager('alloc-node'), false);
  }
  return [summarize(`${label}: the durable claim alone (slot apply to the apiserver)`, 'ms', claims)];
}

/**
 * The plugin's own share of Allocate (no apiserver: the durable claim is a no-op), with
 * `devices` devices served: GetPreferredAllocation over every free ID, the ID check, the
 * ledger claim, the response, and the plugin sync each claim triggers.
 */
async function allocateInProcess(mode: DevicePluginMode, devices: number, samples: number): Promise<Measurement[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tdpi-'));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
  const spec = {
    namespace: 'bench',
    name: 'alloc',
    handler: benchHandler(),
    details: { devices },
    capacity: 1,
    offlineGraceMs: 3_600_000,
    properties: new Map<string, string>(),
  };
  const runtime = new NodeRuntime({
    node: 'n1',
    log: pino({ level: 'silent' }),
    pluginDir: join(dir, 'dp'),
    source: staticDiscoveries([spec]),
    publication: noPublication(),
    reconcileIntervalMs: 0,
    devicePluginMode: mode,
  });
  await runtime.start();
  try {
    const resource = discoveryResourceName('alloc');
    await kubelet.waitFor(() => kubelet.freeDevices(resource).length === devices, 300_000, `${devices} slots`);
    await runtime.settled();
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const start = performance.now();
      await kubelet.allocate({ namespace: 'bench', name: `p${i}` }, resource, 1);
      times.push(performance.now() - start);
    }
    return [summarize(`dp-${mode}-${devices}: Allocate, plugin only (no apiserver)`, 'ms', times)];
  } finally {
    await runtime.stop();
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export const devicePluginModeMeasures: Measure[] = [
  {
    name: 'dp-allocate-inproc',
    description: "Allocate's plugin-side cost without an apiserver: 1 000 devices per-device, 10 000 lean",
    run: async () => [...(await allocateInProcess('per-device', 1_000, 200)), ...(await allocateInProcess('lean', 10_000, 200))],
  },
  {
    name: 'dp-lean-10k',
    description: 'agent process, 10 000 devices, lean mode: to kubelet, to Device objects, RSS, fds',
    onlyWhenNamed: true,
    run: () => scale('lean', 10_000),
  },
  {
    name: 'dra-10k',
    description: 'agent process, 10 000 devices, DRA backend: to ResourceSlices, to Device objects, RSS, fds',
    onlyWhenNamed: true,
    run: () => scale('dra', 10_000),
  },
  {
    name: 'dp-per-device-1k',
    description: 'agent process, 1 000 devices, per-device mode: to kubelet, to Device objects, RSS, fds',
    onlyWhenNamed: true,
    run: () => scale('per-device', 1_000),
  },
  {
    name: 'dp-lean-1k',
    description: 'agent process, 1 000 devices, lean mode (compare with dp-per-device-1k)',
    onlyWhenNamed: true,
    run: () => scale('lean', 1_000),
  },
  {
    name: 'dp-allocate',
    description: 'Allocate through the discovery resource with the durable claim, 1 000 devices served, per-device and lean',
    onlyWhenNamed: true,
    run: async () => [...(await allocate('per-device', 1_000, 200)), ...(await allocate('lean', 1_000, 200))],
  },
];
