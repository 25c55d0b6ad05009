/**
 * Controller measures on the real control plane (test/cluster, brought up or reused), with the
 * controller in-process and every apiserver request it issues counted (its own client counts
 * them; the benchmark's own setup traffic is not included):
 *
 * - controller-offline: Device deleted → its broker deleted (p50/p99 over 100 rounds), as seen
 *   by a watch on the broker Pods (the DELETE landing: Pod gone or terminating).
 * - controller-scale: 100 fake nodes × 1 000 devices (10 local devices per node, capacity 1,
 *   a Pod broker each, a fake kubelet running them): time from controller start to converged
 *   (every broker created and Running, every Device's BrokersReady=True, the DeviceDiscovery
 *   status final, queues idle), requests issued for it, requests while idle for 10 s, and
 *   requests (and writes) to re-converge after a controller restart.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { deviceName, deviceResourceName } from '../../api/names.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { DEFAULT_CONFIG, type ControllerConfig } from '../../controller/runtime/config.ts';
import { KubeClient, RequestCounter } from '../../kube/client.ts';
import { Informer } from '../../kube/informer.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { startController, type Controller } from '../../controller/main.ts';
import { FakeKubelet, FakeNodes, applyAsAgent } from '../../test/support/fake-cluster.ts';
import { useHttp1ForKubernetes } from '../../kube/http1.ts';
import { clusterUp } from '../../test/cluster/cluster.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';

const log = pino({ level: 'silent' });
const say = (message: string): void => void process.stderr.write(`[controller bench] ${message}\n`);

interface Bench {
  readonly kc: KubeConfig;
  readonly api: Api;
  readonly namespace: string;
  readonly nodes: FakeNodes;
}

async function withBench<T>(body: (bench: Bench) => Promise<T>): Promise<T> {
  useHttp1ForKubernetes(); // as bin/tether.ts does for the real controller
  const info = await clusterUp({ log: (m) => process.stderr.write(`${m}\n`) });
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const api = new Api(new KubeClient(kc));
  const namespace = `bench-ctl-${Date.now().toString(36)}`;
  await api.create({ group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false }, undefined, {
    metadata: { name: namespace },
  });
  const nodes = new FakeNodes(api);
  try {
    return await body({ kc, api, namespace, nodes });
  } finally {
    // Pods bound to fake nodes never terminate on their own (no kubelet): force them out.
    await api.client
      .request('DELETE', `/api/v1/namespaces/${namespace}/pods`, { verb: 'delete', resource: 'pods', query: { gracePeriodSeconds: 0 } })
      .catch(() => undefined);
    await api
      .delete({ group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false }, undefined, namespace)
      .catch(() => undefined);
    await nodes.close();
  }
}

function benchConfig(namespace: string): ControllerConfig {
  return { ...DEFAULT_CONFIG, namespace, httpPort: -1, resyncMs: 0 };
}

async function createDiscovery(bench: Bench, name: string): Promise<void> {
  const body = {
    apiVersion: 'tether.dev/v1alpha1',
    kind: 'DeviceDiscovery',
    metadata: { name, namespace: bench.namespace },
    spec: {
      handler: 'bench',
      capacity: 1,
      broker: { pod: { spec: { containers: [{ name: 'broker', image: 'example.com/broker:1' }] } } },
      discoveryService: { ports: [{ name: 'p', port: 80 }] },
    },
  };
  await bench.api.create(RESOURCES.deviceDiscoveries, bench.namespace, body as never);
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`controller bench: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function writes(counter: RequestCounter): number {
  return Object.entries(counter.snapshot())
    .filter(([key]) => !/^(list|watch|get) /.test(key))
    .reduce((sum, [, n]) => sum + n, 0);
}

// ---------------------------------------------------------------------------------------------

async function offlineLatency(): Promise<Measurement[]> {
  return withBench(async (bench) => {
    const discovery = 'offline';
    await createDiscovery(bench, discovery);
    const node = `bench-ctl-offline-${Date.now().toString(36)}`;
    await bench.nodes.add(node); // Ready, but without the device resource: brokers stay unscheduled
    const controller = await startController(benchConfig(bench.namespace), { kubeConfig: bench.kc, log });
    const pods = new Informer<V1Pod>({
      client: bench.api.client,
      type: RESOURCES.pods,
      namespace: bench.namespace,
      labelSelector: 'tether.dev/component=broker',
      log,
    });
    const waiters: { match: (pod: V1Pod, type: string) => boolean; resolve: (at: number) => void }[] = [];
    pods.onEvent((e) => {
      const at = performance.now();
      for (const w of [...waiters]) {
        if (w.match(e.object, e.type)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(at);
        }
      }
    });
    pods.start();
    await pods.synced();
    const next = (match: (pod: V1Pod, type: string) => boolean): Promise<number> =>
      new Promise((resolve) => waiters.push({ match, resolve }));
    const samples: number[] = [];
    try {
      await until('controller ready', () => controller.isReady(), 30_000);
      for (let i = 0; i < 100; i++) {
        const deviceId = `dev-${i}`;
        const name = deviceName({ namespace: bench.namespace, discovery, deviceId });
        const created = next(
          (p, type) => type !== 'deleted' && p.metadata?.labels?.['tether.dev/device'] === name && p.metadata.deletionTimestamp == null,
        );
        await applyAsAgent(bench.api, { namespace: bench.namespace, name, discovery, deviceId, shared: true, capacity: 1, node });
        await created;
        const gone = next(
          (p, type) => p.metadata?.labels?.['tether.dev/device'] === name && (type === 'deleted' || p.metadata.deletionTimestamp != null),
        );
        const start = performance.now();
        await bench.api.delete(RESOURCES.devices, bench.namespace, name);
        samples.push((await gone) - start);
      }
    } finally {
      await pods.stop();
      await controller.stop();
    }
    say(`offline: p50 ${summarize('', '', samples).p50} ms over ${samples.length} rounds`);
    return [summarize('controller-device-removed-to-broker-deleted', 'ms', samples)];
  });
}

async function scale(nodeCount: number, deviceCount: number): Promise<Measurement[]> {
  return withBench(async (bench) => {
    const discovery = 'scale';
    const stamp = Date.now().toString(36);
    const nodeNames = Array.from({ length: nodeCount }, (_, i) => `bench-ctl-${stamp}-${i}`);
    const devices = Array.from({ length: deviceCount }, (_, i) => {
      const node = nodeNames[i % nodeCount]!;
      const deviceId = `dev-${i}`;
      return { node, deviceId, name: deviceName({ namespace: bench.namespace, discovery, deviceId, node }) };
    });
    say(`creating ${nodeCount} fake nodes and ${deviceCount} Devices (setup, not timed)`);
    await mapLimit(nodeNames, 16, async (node) => {
      const mine = devices.filter((d) => d.node === node);
      await bench.nodes.add(node, Object.fromEntries(mine.map((d) => [deviceResourceName(d.name), '1'])));
    });
    await createDiscovery(bench, discovery);
    await mapLimit(devices, 16, async (d) => {
      await applyAsAgent(bench.api, {
        namespace: bench.namespace,
        name: d.name,
        discovery,
        deviceId: d.deviceId,
        shared: false,
        capacity: 1,
        node: d.node,
      });
    });
    const kubelet = new FakeKubelet(bench.api.client, log, bench.namespace, () => 'run');
    await kubelet.start();

    // Converged: every Device reports BrokersReady=True for 1/1 broker, the discovery status is
    // final, and the controller's queues are idle.
    const watcher = new Informer<Device>({ client: bench.api.client, type: RESOURCES.devices, namespace: bench.namespace, log });
    const discoveries = new Informer<DeviceDiscovery>({
      client: bench.api.client,
      type: RESOURCES.deviceDiscoveries,
      namespace: bench.namespace,
      log,
    });
    watcher.start();
    discoveries.start();
    await Promise.all([watcher.synced(), discoveries.synced()]);
    const converged = (controller: Controller): boolean => {
      if (controller.pending() > 0) return false;
      const ready = watcher
        .list()
        .filter((d) => d.status?.conditions?.some((c) => c.type === 'BrokersReady' && c.status === 'True')).length;
      const status = discoveries.get(bench.namespace, discovery)?.status;
      return ready === deviceCount && status?.brokers === deviceCount && status.devices === deviceCount;
    };

    const results: Measurement[] = [];
    try {
      const counter = new RequestCounter();
      say('starting the controller (cold)');
      const started = performance.now();
      let controller = await startController(benchConfig(bench.namespace), { kubeConfig: bench.kc, log, counter });
      const brokerCount = (): number => [...kubelet.seen.values()].length;
      await until('every broker created', () => brokerCount() >= deviceCount, 600_000);
      const createdS = (performance.now() - started) / 1000;
      say(`every broker created after ${createdS.toFixed(1)} s`);
      await until('convergence', () => converged(controller), 600_000);
      const convergeS = (performance.now() - started) / 1000;
      const coldRequests = counter.total();
      const coldWrites = writes(counter);
      say(
        `converged in ${convergeS.toFixed(1)} s with ${coldRequests} requests (${coldWrites} writes): ${JSON.stringify(counter.snapshot())}`,
      );

      counter.reset();
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      const idleRequests = counter.total();
      say(`idle 10 s: ${idleRequests} requests ${JSON.stringify(counter.snapshot())}`);

      await controller.stop();
      counter.reset();
      const restarted = performance.now();
      controller = await startController(benchConfig(bench.namespace), { kubeConfig: bench.kc, log, counter });
      await until('caches after restart', () => controller.isReady(), 120_000);
      await until('re-convergence', () => converged(controller), 600_000);
      const restartS = (performance.now() - restarted) / 1000;
      const restartRequests = counter.total();
      const restartWrites = writes(counter);
      say(
        `restart: ${restartS.toFixed(1)} s, ${restartRequests} requests (${restartWrites} writes): ${JSON.stringify(counter.snapshot())}`,
      );
      await controller.stop();

      const label = `controller-${nodeCount}-nodes-${deviceCount}-devices`;
      results.push(
        summarize(`${label}: start → every broker created`, 's', [createdS]),
        summarize(`${label}: start → converged (brokers Running, statuses final)`, 's', [convergeS]),
        summarize(`${label}: requests to converge`, 'requests', [coldRequests]),
        summarize(`${label}: writes to converge`, 'requests', [coldWrites]),
        summarize(`${label}: requests per device`, 'requests', [coldRequests / deviceCount]),
        summarize(`${label}: requests while idle (10 s)`, 'requests', [idleRequests]),
        summarize(`${label}: restart → converged`, 's', [restartS]),
        summarize(`${label}: requests on restart`, 'requests', [restartRequests]),
        summarize(`${label}: writes on restart`, 'requests', [restartWrites]),
      );
    } finally {
      await watcher.stop();
      await discoveries.stop();
      await kubelet.stop();
    }
    return results;
  });
}

export const controllerMeasures: Measure[] = [
  { name: 'controller-offline', description: 'controller: Device deleted → broker deleted (p50/p99)', run: offlineLatency },
  {
    name: 'controller-scale',
    description: 'controller: 100 nodes × 1 000 devices → converge time and apiserver requests',
    run: () => scale(100, 1_000),
  },
];
