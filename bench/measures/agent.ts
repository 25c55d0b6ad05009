/**
 * Cluster-agent measures on the real control plane (test/cluster, brought up or reused):
 * event → kubelet latency, Allocate round trip (local and shared devices, including the
 * durable slot claim), apiserver writes per device transition and on restart, and RSS /
 * CPU of a `tether agent` process at 1 000 and 10 000 devices.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ClusterAgent } from '../../agent/cluster-agent.ts';
import { createAgentMetrics } from '../../agent/metrics.ts';
import { deviceName, deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import type { DeviceSink, DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { clusterUp } from '../../test/cluster/cluster.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';

const log = pino({ level: 'silent' });

interface Bench {
  kc: KubeConfig;
  namespace: string;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  kubeconfig: string;
}

async function withNamespace<T>(body: (bench: Bench) => Promise<T>): Promise<T> {
  const info = await clusterUp({ log: (m) => process.stderr.write(`${m}\n`) });
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const namespace = `bench-${Date.now().toString(36)}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  try {
    return await body({ kc, namespace, core, custom, kubeconfig: info.kubeconfig });
  } finally {
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  }
}

function drivenHandler(shared: boolean): { handler: DiscoveryHandler<unknown>; sinks: DeviceSink[]; ready: Promise<DeviceSink> } {
  const sinks: DeviceSink[] = [];
  let resolveReady: (s: DeviceSink) => void = () => undefined;
  const ready = new Promise<DeviceSink>((resolve) => (resolveReady = resolve));
  return {
    sinks,
    ready,
    handler: {
      name: shared ? 'bench-shared' : 'bench-local',
      parseDetails: (raw) => raw ?? {},
      isShared: () => shared,
      run: async (details, { sink, signal }) => {
        sinks.push(sink);
        const count = Number((details as { devices?: number }).devices ?? 1);
        sink.replaceAll(Array.from({ length: count }, (_, i) => ({ id: `dev-${i}`, properties: { INDEX: String(i) } })));
        resolveReady(sink);
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      },
    },
  };
}

async function createDiscovery(bench: Bench, name: string, handler: string, devices: number, capacity: number): Promise<void> {
  await bench.custom.createNamespacedCustomObject({
    group: 'tether.dev',
    version: 'v1alpha1',
    namespace: bench.namespace,
    plural: 'devicediscoveries',
    body: {
      apiVersion: 'tether.dev/v1alpha1',
      kind: 'DeviceDiscovery',
      metadata: { name },
      spec: { handler, details: { devices }, capacity, offlineGracePeriodSeconds: 3600 },
    },
  });
}

async function startAgent(
  bench: Bench,
  node: string,
  handlers: DiscoveryHandler<unknown>[],
): Promise<{ agent: ClusterAgent; kubelet: MockKubelet; stop: () => Promise<void>; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tba-'));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
  const agent = new ClusterAgent({
    node,
    kc: bench.kc,
    log,
    pluginDir: join(dir, 'dp'),
    podResourcesSocket: kubelet.podResourcesSocket!,
    namespace: bench.namespace,
    handlers: new Map(handlers.map((h) => [h.name, h])),
    // Bench handlers are not built-ins: the agent runs them as external (registered) handlers.
    externalHandler: (name) => handlers.find((h) => h.name === name),
    metrics: createAgentMetrics({ defaultMetrics: false }),
    startupTimeoutMs: 2_000,
    reconcileIntervalMs: 0,
  });
  await agent.start();
  return {
    agent,
    kubelet,
    dir,
    stop: async () => {
      await agent.stop();
      await kubelet.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const totalWrites = (agent: ClusterAgent): number => agent.api.writes.apply + agent.api.writes.status + agent.api.writes.delete;

async function eventsAndWrites(): Promise<Measurement[]> {
  return withNamespace(async (bench) => {
    const driven = drivenHandler(false);
    await createDiscovery(bench, 'events', 'bench-local', 10, 1);
    const node = await startAgent(bench, 'bench-node', [driven.handler]);
    try {
      const sink = await driven.ready;
      const resource = deviceResourceName(
        deviceName({ namespace: bench.namespace, discovery: 'events', deviceId: 'dev-0', node: 'bench-node' }),
      );
      await node.kubelet.waitFor(() => node.kubelet.resource(resource)?.devices[0]?.health === 'Healthy', 30_000, 'device online');
      await node.agent.settled();
      const writesBefore = totalWrites(node.agent);
      const samples: number[] = [];
      const transitions = 200;
      for (let i = 0; i < transitions; i++) {
        const online = i % 2 === 1;
        const want = online ? 'Healthy' : 'Unhealthy';
        const arrived = new Promise<number>((resolve) => {
          const listener = (name: string, devices: { health: string }[], at: number): void => {
            if (name !== resource || devices[0]?.health !== want) return;
            node.kubelet.off('devices', listener);
            resolve(at);
          };
          node.kubelet.on('devices', listener);
        });
        const start = performance.now();
        if (online) sink.upsert({ id: 'dev-0', properties: { INDEX: '0' } });
        else sink.remove('dev-0');
        samples.push((await arrived) - start);
        await node.agent.settled();
      }
      const perTransition = (totalWrites(node.agent) - writesBefore) / transitions;
      // Restart: a fresh agent for the same node, after its first reports.
      await node.agent.stop();
      const restarted = new ClusterAgent({
        node: 'bench-node',
        kc: bench.kc,
        log,
        pluginDir: join(node.dir, 'dp'),
        namespace: bench.namespace,
        handlers: new Map([[driven.handler.name, driven.handler]]),
        externalHandler: (name) => (name === driven.handler.name ? driven.handler : undefined),
        metrics: createAgentMetrics({ defaultMetrics: false }),
        startupTimeoutMs: 500,
        reconcileIntervalMs: 0,
      });
      await restarted.start();
      await node.kubelet.waitFor(
        () => (node.kubelet.resource(discoveryResourceName('events'))?.updates ?? 0) > 0,
        10_000,
        'restarted plugins',
      );
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // past the startup timeout: let any churn happen
      await restarted.settled();
      const restartWrites = totalWrites(restarted);
      await restarted.stop();
      await node.kubelet.stop();
      return [
        summarize('agent-event-to-kubelet', 'ms', samples),
        summarize('agent-writes-per-transition', 'writes', [perTransition]),
        summarize('agent-writes-on-restart (10 devices)', 'writes', [restartWrites]),
      ];
    } finally {
      await rm(node.dir, { recursive: true, force: true });
    }
  });
}

async function allocateLatency(): Promise<Measurement[]> {
  return withNamespace(async (bench) => {
    const local = drivenHandler(false);
    const shared = drivenHandler(true);
    await createDiscovery(bench, 'alloc-local', 'bench-local', 1, 200);
    await createDiscovery(bench, 'alloc-shared', 'bench-shared', 1, 200);
    const node = await startAgent(bench, 'alloc-node', [local.handler, shared.handler]);
    try {
      const results: Measurement[] = [];
      for (const [label, discovery, isShared] of [
        ['local', 'alloc-local', false],
        ['shared', 'alloc-shared', true],
      ] as const) {
        const name = deviceName({ namespace: bench.namespace, discovery, deviceId: 'dev-0', ...(isShared ? {} : { node: 'alloc-node' }) });
        const resource = deviceResourceName(name);
        await node.kubelet.waitFor(() => (node.kubelet.resource(resource)?.devices.length ?? 0) === 200, 30_000, `${label} slots`);
        await node.agent.settled();
        const samples: number[] = [];
        for (let i = 0; i < 200; i++) {
          const start = performance.now();
          await node.kubelet.rawAllocate(resource, { container_requests: [{ devices_ids: [`${name}-${i}`] }] });
          samples.push(performance.now() - start);
        }
        results.push(summarize(`agent-allocate-${label} (SSA slot claim)`, 'ms', samples));
      }
      return results;
    } finally {
      await node.stop();
    }
  });
}

async function cpuTicks(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, clock ticks
}

async function rssMiB(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

async function scale(devices: number): Promise<Measurement[]> {
  return withNamespace(async (bench) => {
    const dir = await mkdtemp(join(tmpdir(), 'tbs-'));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
    await kubelet.start();
    await bench.custom.createNamespacedCustomObject({
      group: 'tether.dev',
      version: 'v1alpha1',
      namespace: bench.namespace,
      plural: 'devicediscoveries',
      body: {
        apiVersion: 'tether.dev/v1alpha1',
        kind: 'DeviceDiscovery',
        metadata: { name: 'scale' },
        spec: { handler: 'debug-echo', details: { descriptions: Array.from({ length: devices }, (_, i) => `d${i}`) } },
      },
    });
    const cli = fileURLToPath(new URL('../../bin/tether.ts', import.meta.url));
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [
        cli,
        'agent',
        '--node-name',
        'scale-node',
        '--namespace',
        bench.namespace,
        '--device-plugin-dir',
        join(dir, 'dp'),
        '--pod-resources-socket',
        '',
        '--registration-socket',
        '',
        '--http-address',
        `127.0.0.1:${port}`,
        '--log-level',
        'error',
      ],
      { env: { ...process.env, KUBECONFIG: bench.kubeconfig }, stdio: 'inherit' },
    );
    try {
      const resource = discoveryResourceName('scale');
      await kubelet.waitFor(
        () => (kubelet.resource(resource)?.devices.length ?? 0) === devices,
        600_000,
        `${devices} devices at the kubelet`,
      );
      const toKubelet = performance.now() - started;
      let objects = 0;
      for (let continueToken: string | undefined; ;) {
        const page = (await bench.custom.listNamespacedCustomObject({
          group: 'tether.dev',
          version: 'v1alpha1',
          namespace: bench.namespace,
          plural: 'devices',
          limit: 500,
          ...(continueToken ? { _continue: continueToken } : {}),
        })) as { items: unknown[]; metadata: { continue?: string } };
        objects += page.items.length;
        continueToken = page.metadata.continue;
        if (!continueToken) {
          if (objects >= devices) break;
          objects = 0;
          await new Promise((resolve) => setTimeout(resolve, 500)); // polling the apiserver for convergence
        }
      }
      const toDevices = performance.now() - started;
      const convergeTicks = await cpuTicks(child.pid!);
      await new Promise((resolve) => setTimeout(resolve, 10_000)); // let the tail of the watch events drain
      const before = await cpuTicks(child.pid!);
      await new Promise((resolve) => setTimeout(resolve, 10_000)); // idle window for CPU sampling
      const idleCpuPercent = ((await cpuTicks(child.pid!)) - before) / 10; // ticks are 1/100 s
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const heapUsed = Number(/^tether_agent_nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1] ?? Number.NaN) / 1048576;
      return [
        summarize(`agent-${devices}-devices: JS heap used`, 'MiB', [heapUsed], 1),
        summarize(`agent-${devices}-devices: to kubelet`, 's', [toKubelet / 1000]),
        summarize(`agent-${devices}-devices: to Device objects`, 's', [toDevices / 1000]),
        summarize(`agent-${devices}-devices: CPU to converge`, 's', [convergeTicks / 100]),
        summarize(`agent-${devices}-devices: idle CPU`, '%', [idleCpuPercent]),
        summarize(`agent-${devices}-devices: RSS`, 'MiB', [await rssMiB(child.pid!)], 1),
      ];
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
      await kubelet.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

export const agentMeasures: Measure[] = [
  { name: 'agent-events', description: 'cluster agent: event → kubelet, writes per transition and on restart', run: eventsAndWrites },
  { name: 'agent-allocate', description: 'cluster agent: Allocate with the SSA slot claim, local and shared', run: allocateLatency },
  { name: 'agent-scale-1k', description: 'cluster agent process with 1 000 devices: convergence, RSS, CPU', run: () => scale(1_000) },
  { name: 'agent-scale-10k', description: 'cluster agent process with 10 000 devices: convergence, RSS, CPU', run: () => scale(10_000) },
];
