/**
 * The controller against the real control plane (apiserver + controller-manager + scheduler),
 * running in-process under a ServiceAccount bound to exactly its documented RBAC rules.
 * No kubelet: fake Nodes stay Ready through Lease heartbeats and advertise the device
 * resources; a fake kubelet runs, fails and finishes deleting broker Pods. Devices are written
 * the way agents write them (server-side apply under their field managers). Every assertion is
 * on the state of the world: Pods, Jobs, Services, Device and DeviceDiscovery status, Events.
 */
import type { KubeConfig, V1Job, V1Pod, V1Service } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceName, deviceResourceName } from '../../api/names.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { agentManager } from '../../api/field-managers.ts';
import { DEFAULT_CONFIG } from '../../controller/runtime/config.ts';
import { KubeClient, isApiError } from '../../kube/client.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { startController, type Controller } from '../../controller/main.ts';
import { FakeKubelet, FakeNodes, applyAsAgent, controllerServiceAccount, type PodFate } from '../support/fake-cluster.ts';
import { API_VERSION, loadKubeConfig, uniqueSuffix, useTestNamespace, waitFor as waitForState, type WaitForOptions } from './support.ts';

const namespace = useTestNamespace('it-ctl');
const log = pino({ level: process.env.TETHER_TEST_LOG ?? 'silent' });
const suffix = uniqueSuffix();
const BACKOFF = { baseMs: 1_000, maxMs: 4_000, resetAfterMs: 60_000 };
const NODE_LOSS_GRACE_MS = 3_000;

let admin: Api;
let controller: Controller;
let controllerKubeConfig: KubeConfig;
let nodes: FakeNodes;
let kubelet: FakeKubelet;
let cleanupRbac: () => Promise<void> = () => Promise.resolve();
/** What the fake kubelet does with brokers of a device (default: run them). */
const fates = new Map<string, PodFate>();

beforeAll(async () => {
  const kc = loadKubeConfig();
  admin = new Api(new KubeClient(kc));
  nodes = new FakeNodes(admin);
  const account = await controllerServiceAccount(kc, admin, namespace.name, `tether-controller-${suffix}`);
  cleanupRbac = account.cleanup;
  kubelet = new FakeKubelet(
    admin.client,
    log,
    namespace.name,
    (pod) => fates.get(pod.metadata?.labels?.['tether.dev/device'] ?? '') ?? 'run',
  );
  await kubelet.start();
  controllerKubeConfig = account.kubeConfig;
  controller = await startTestController();
});

/** A controller under the chart's RBAC, caches synced. */
async function startTestController(): Promise<Controller> {
  const started = await startController(
    {
      ...DEFAULT_CONFIG,
      namespace: namespace.name,
      httpHost: '127.0.0.1',
      httpPort: 0,
      brokerBackoff: BACKOFF,
      nodeLossGraceMs: NODE_LOSS_GRACE_MS,
      statusBatchMs: 50,
    },
    { kubeConfig: controllerKubeConfig, log },
  );
  await waitForState(() => started.isReady(), { description: 'controller caches synced' });
  return started;
}

afterAll(async () => {
  await controller?.stop();
  // Pods bound to fake nodes never finish terminating on their own: let the namespace go.
  await admin?.client.request('DELETE', `/api/v1/namespaces/${namespace.name}/pods`, {
    verb: 'delete',
    resource: 'pods',
    query: { gracePeriodSeconds: 0 },
  });
  await kubelet?.stop();
  await nodes?.close();
  await cleanupRbac();
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** waitFor, adding the controller's view (informers, queues, reconciles) to a timeout. */
async function waitFor<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitForOptions = {},
): Promise<T> {
  try {
    return await waitForState(probe, options);
  } catch (error) {
    const base = `http://127.0.0.1:${controller.port}`;
    const health = await (await fetch(`${base}/healthz`)).text().catch(() => '?');
    const metrics = await (await fetch(`${base}/metrics`)).text().catch(() => '');
    const lines = metrics.split('\n').filter((l) => /^tether_controller_(queue_depth|reconciles_total|leader)/.test(l));
    const requests = JSON.stringify(controller.requests.snapshot());
    throw new Error(`${(error as Error).message}\ncontroller informers:\n${health}\n${lines.join('\n')}\nrequests: ${requests}`, {
      cause: error,
    });
  }
}

const podBroker = { pod: { spec: { containers: [{ name: 'broker', image: 'example.com/broker:1' }] } } };

async function createDiscovery(
  name: string,
  spec: Partial<DeviceDiscovery['spec']>,
  annotations: Record<string, string> = {},
): Promise<DeviceDiscovery> {
  const body = {
    apiVersion: API_VERSION,
    kind: 'DeviceDiscovery',
    metadata: { name, namespace: namespace.name, annotations },
    spec: { handler: 'debug-echo', ...spec },
  };
  return admin.create(RESOURCES.deviceDiscoveries, namespace.name, body as never);
}

interface TestDevice {
  readonly name: string;
  readonly resource: string;
  readonly deviceId: string;
  readonly discovery: string;
}

function testDevice(discovery: string, deviceId: string): TestDevice {
  const name = deviceName({ namespace: namespace.name, discovery, deviceId });
  return { name, resource: deviceResourceName(name), deviceId, discovery };
}

async function see(device: TestDevice, node: string, capacity: number, slots?: number[]): Promise<void> {
  await applyAsAgent(admin, {
    namespace: namespace.name,
    name: device.name,
    discovery: device.discovery,
    deviceId: device.deviceId,
    shared: true,
    capacity,
    node,
    ...(slots === undefined ? {} : { slots }),
  });
}

function getDevice(name: string): Promise<Device> {
  return admin.get<Device>(RESOURCES.devices, namespace.name, name);
}

async function getDiscovery(name: string): Promise<DeviceDiscovery> {
  return admin.get<DeviceDiscovery>(RESOURCES.deviceDiscoveries, namespace.name, name);
}

/** A user's edit of the spec (JSON merge patch: no conflict with the controller's status writes). */
async function patchDiscoverySpec(name: string, spec: Record<string, unknown>): Promise<void> {
  await admin.client.request('PATCH', `/apis/tether.dev/v1alpha1/namespaces/${namespace.name}/devicediscoveries/${name}`, {
    verb: 'patch',
    resource: 'devicediscoveries',
    body: { spec },
    contentType: 'application/merge-patch+json',
  });
}

async function brokerPods(device: string): Promise<V1Pod[]> {
  const list = await admin.list<V1Pod>(RESOURCES.pods, { namespace: namespace.name, labelSelector: `tether.dev/device=${device}` });
  return list.items.filter((p) => p.metadata?.ownerReferences?.some((r) => r.kind === 'Device'));
}

async function livePods(device: string): Promise<V1Pod[]> {
  return (await brokerPods(device)).filter((p) => p.metadata?.deletionTimestamp == null);
}

async function findService(name: string): Promise<V1Service | undefined> {
  try {
    return await admin.get<V1Service>(RESOURCES.services, namespace.name, name);
  } catch (error) {
    if (isApiError(error, 404)) return undefined;
    throw error;
  }
}

function condition(
  object: { status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } },
  type: string,
): { status: string; reason: string; message: string } | undefined {
  return object.status?.conditions?.find((c) => c.type === type);
}

interface EventRecord {
  reason: string;
  note?: string;
  regarding?: { kind?: string; name?: string };
  reportingController?: string;
}

async function events(): Promise<EventRecord[]> {
  const list = await admin.list<EventRecord & { metadata?: object }>(RESOURCES.events, { namespace: namespace.name });
  return list.items.filter((e) => e.reportingController === 'tether.dev/controller');
}

async function nodesFor(prefix: string, count: number, devices: TestDevice[], capacity: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `ctl-${suffix}-${prefix}-${i}`);
  const allocatable = Object.fromEntries(devices.map((d) => [d.resource, String(capacity)]));
  for (const n of names) await nodes.add(n, allocatable);
  return names;
}

// ---------------------------------------------------------------------------------------------

describe('an idle controller', () => {
  it("watches only DeviceDiscoveries, Devices and Nodes until the first DeviceDiscovery, then the brokers' kinds too", async () => {
    const watched = (): string[] =>
      Object.keys(controller.requests.snapshot())
        .filter((k) => k.startsWith('watch '))
        .map((k) => k.slice('watch '.length))
        .sort();
    await waitFor(() => watched().length >= 3, { description: 'the first watches' });
    expect(watched()).toEqual(['devicediscoveries', 'devices', 'nodes']);

    await createDiscovery(`idle-${suffix}`, { broker: podBroker });
    await waitFor(() => ['jobs', 'pods', 'services'].every((k) => watched().includes(k)), { description: 'broker watches' });
    // Ready again once those caches (and the DRA ones started with them) have synced.
    await waitFor(() => controller.isReady(), { description: 'the controller ready with the new caches synced' });
  });
});

describe('brokers', () => {
  it('runs one broker per node that sees the device: device resource requested, pinned to the node, owned by the Device', async () => {
    const dd = `brokers-${suffix}`;
    await createDiscovery(dd, { capacity: 2, broker: podBroker });
    const device = testDevice(dd, 'cam-1');
    const [a, b] = await nodesFor('per-node', 2, [device], 2);
    await see(device, a!, 2);
    await see(device, b!, 2);

    const pods = await waitFor(
      async () => {
        const live = await livePods(device.name);
        return live.length === 2 && live.every((p) => p.spec?.nodeName !== undefined) && live;
      },
      { description: 'two scheduled brokers' },
    );
    const owner = await getDevice(device.name);
    expect(pods.map((p) => p.spec?.nodeName).sort()).toEqual([a, b].sort());
    for (const pod of pods) {
      const node = pod.spec!.nodeName!;
      expect(pod.metadata?.ownerReferences).toEqual([
        { apiVersion: API_VERSION, kind: 'Device', name: device.name, uid: owner.metadata.uid, controller: true },
      ]);
      expect(pod.metadata?.labels).toMatchObject({ 'tether.dev/discovery': dd, 'tether.dev/device': device.name, 'tether.dev/node': node });
      expect(pod.metadata?.name).toMatch(new RegExp(`^${device.name}-[0-9a-f]{5,10}$`));
      expect(pod.spec?.containers[0]?.resources?.limits).toEqual({ [device.resource]: '1' });
      expect(pod.spec?.containers[0]?.resources?.requests).toEqual({ [device.resource]: '1' });
      expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
        { matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] },
      ]);
    }

    // The fake kubelet runs them: the Device and the DeviceDiscovery report ready brokers.
    const ready = await waitFor(
      async () => {
        const d = await getDevice(device.name);
        return condition(d, 'BrokersReady')?.status === 'True' && d;
      },
      { description: 'Device BrokersReady=True' },
    );
    expect(condition(ready, 'BrokersReady')?.message).toBe('2/2 brokers ready');
    const status = await waitFor(
      async () => {
        const s = (await getDiscovery(dd)).status;
        return s?.brokers === 2 && s;
      },
      { description: 'DeviceDiscovery status with 2 brokers' },
    );
    expect(status).toMatchObject({ observedGeneration: 1, devices: 1, brokers: 2 });
    expect(status.nodes).toBeGreaterThanOrEqual(2);
    expect(Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c.status]))).toEqual({
      Discovering: 'True',
      DevicesAvailable: 'True',
      BrokersReady: 'True',
      HandlersHealthy: 'True',
    });
    const recorded = await waitFor(
      async () => {
        const all = await events();
        return all.filter((e) => e.reason === 'BrokerCreated' && e.note?.includes(device.name)).length === 2 && all;
      },
      { description: 'BrokerCreated events' },
    );
    expect(recorded.some((e) => e.reason === 'DeviceOnline' && e.regarding?.name === device.name)).toBe(true);
  });

  it('never runs more brokers than the device has slots', async () => {
    const dd = `capacity-${suffix}`;
    await createDiscovery(dd, { capacity: 1, broker: podBroker });
    const device = testDevice(dd, 'cam-1');
    const names = await nodesFor('cap', 3, [device], 1);
    for (const n of names) await see(device, n, 1);
    const settled = await waitFor(
      async () => {
        const d = await getDevice(device.name);
        return (d.spec.nodes ?? []).length === 3 && condition(d, 'BrokersReady')?.status === 'True' && d;
      },
      { description: 'the device seen by 3 nodes, its broker ready' },
    );
    expect(condition(settled, 'BrokersReady')?.message).toBe('1/1 brokers ready');
    expect(await livePods(device.name)).toHaveLength(1);
    // Status is written after every reconcile of the device, so the count above is settled.
    const pods = await brokerPods(device.name);
    expect(pods).toHaveLength(1);
  });

  it('runs a Job per node when the broker is a Job', async () => {
    const dd = `jobs-${suffix}`;
    const job = {
      job: {
        spec: {
          backoffLimit: 1,
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'once', image: 'example.com/once:1' }] } },
        },
      },
    };
    await createDiscovery(dd, { capacity: 2, broker: job });
    const device = testDevice(dd, 'usb-1');
    const [n] = await nodesFor('job', 1, [device], 2);
    await see(device, n!, 2);
    const jobs = await waitFor(
      async () => {
        const list = await admin.list<V1Job>(RESOURCES.jobs, {
          namespace: namespace.name,
          labelSelector: `tether.dev/device=${device.name}`,
        });
        return list.items.length === 1 && list.items;
      },
      { description: 'a broker Job' },
    );
    const spec = jobs[0]!.spec!;
    expect(jobs[0]!.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Device', name: device.name, controller: true });
    expect(spec.template.metadata?.labels).toMatchObject({ 'tether.dev/device': device.name, 'tether.dev/node': n });
    expect(spec.template.spec?.containers[0]?.resources?.limits).toEqual({ [device.resource]: '1' });
    expect(
      spec.template.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]?.matchFields,
    ).toEqual([{ key: 'metadata.name', operator: 'In', values: [n] }]);
  });

  it('reports a broker template the apiserver refuses, without retrying it in a loop, and recovers when fixed', async () => {
    const dd = `invalid-${suffix}`;
    await createDiscovery(dd, { capacity: 1, broker: { pod: { spec: { containers: [{ name: 'Not_A_DNS_Label', image: 'x' }] } } } });
    const device = testDevice(dd, 'cam-1');
    const [n] = await nodesFor('invalid', 1, [device], 1);
    await see(device, n!, 1);
    const refused = await waitFor(
      async () => {
        const d = await getDevice(device.name);
        return condition(d, 'BrokersReady')?.reason === 'InvalidTemplate' && d;
      },
      { description: 'Device BrokersReady=False/InvalidTemplate' },
    );
    expect(condition(refused, 'BrokersReady')?.message).toContain('Not_A_DNS_Label');
    await waitFor(async () => condition(await getDiscovery(dd), 'BrokersReady')?.reason === 'InvalidTemplate', {
      description: 'discovery InvalidTemplate',
    });
    const creates = controller.requests.snapshot()['create pods'] ?? 0;
    await see(device, n!, 1); // any event on the device: reconciled again, but the refused template is not retried
    await waitFor(async () => (await events()).some((e) => e.reason === 'InvalidBrokerTemplate'), {
      description: 'InvalidBrokerTemplate event',
    });
    expect(controller.requests.snapshot()['create pods'] ?? 0).toBe(creates);

    await patchDiscoverySpec(dd, { broker: podBroker });
    await waitFor(async () => (await livePods(device.name)).length === 1, { description: 'broker after the template was fixed' });
  });
});

describe('offline and online', () => {
  it('removes brokers and Services within 1 s of the Device going away, and restores them when it returns', async () => {
    const dd = `offline-${suffix}`;
    const services = {
      deviceService: { ports: [{ name: 'rtsp', port: 554 }] },
      discoveryService: { ports: [{ name: 'rtsp', port: 554 }] },
    };
    await createDiscovery(dd, { capacity: 1, broker: podBroker, ...services });
    const device = testDevice(dd, 'cam-1');
    const [n] = await nodesFor('offline', 1, [device], 1);
    await see(device, n!, 1);
    await waitFor(async () => (await livePods(device.name)).length === 1, { description: 'the broker' });
    await waitFor(async () => (await findService(`${device.name}-svc`)) !== undefined, { description: 'the device Service' });
    await waitFor(async () => (await findService(`${dd}-svc`)) !== undefined, { description: 'the discovery Service' });
    const deviceSvc = (await findService(`${device.name}-svc`))!;
    expect(deviceSvc.spec?.selector).toEqual({ 'tether.dev/component': 'broker', 'tether.dev/device': device.name });
    expect(deviceSvc.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Device', name: device.name });
    expect((await findService(`${dd}-svc`))!.spec?.selector).toEqual({ 'tether.dev/component': 'broker', 'tether.dev/discovery': dd });

    const started = Date.now();
    await admin.delete(RESOURCES.devices, namespace.name, device.name);
    await waitFor(
      async () =>
        (await livePods(device.name)).length === 0 &&
        (await findService(`${device.name}-svc`)) === undefined &&
        (await findService(`${dd}-svc`)) === undefined,
      {
        description: 'brokers deleted and Services removed',
        timeoutMs: 5_000,
      },
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThanOrEqual(1_000);
    await waitFor(async () => (await events()).some((e) => e.reason === 'DeviceOffline' && e.note?.includes(device.name)), {
      description: 'DeviceOffline event',
    });

    // The device comes back: a new Device (new uid) gets its broker and Services again.
    await see(device, n!, 1);
    const back = await getDevice(device.name);
    const pods = await waitFor(
      async () => {
        const live = await livePods(device.name);
        return live.length === 1 && live;
      },
      { description: 'broker restored' },
    );
    expect(pods[0]!.metadata?.ownerReferences?.[0]?.uid).toBe(back.metadata.uid);
    await waitFor(async () => (await findService(`${device.name}-svc`)) !== undefined && (await findService(`${dd}-svc`)) !== undefined, {
      description: 'Services restored',
    });
  });

  it('evicts pods that consume an offline device when the DeviceDiscovery opts in — and only then', async () => {
    const optIn = `evict-${suffix}`;
    const optOut = `keep-${suffix}`;
    await createDiscovery(optIn, { capacity: 2 }, { 'tether.dev/evict-consumers-on-offline': 'true' });
    await createDiscovery(optOut, { capacity: 2 });
    const evicted = testDevice(optIn, 'cam-1');
    const kept = testDevice(optOut, 'cam-1');
    const [n] = await nodesFor('evict', 1, [evicted, kept], 2);
    const consumer = (name: string, resource: string): V1Pod => ({
      metadata: { name, namespace: namespace.name },
      spec: { nodeName: n!, containers: [{ name: 'app', image: 'example.com/app:1', resources: { limits: { [resource]: '1' } } }] },
    });
    for (const [d, pod] of [
      [evicted, 'consumer-evicted'],
      [kept, 'consumer-kept'],
    ] as const) {
      await see(d, n!, 2);
      await admin.create(RESOURCES.pods, namespace.name, consumer(pod, d.resource));
    }
    await waitFor(
      async () =>
        condition(await getDevice(evicted.name), 'BrokersReady') !== undefined &&
        condition(await getDevice(kept.name), 'BrokersReady') !== undefined,
      {
        description: 'both devices reconciled',
      },
    );
    await admin.delete(RESOURCES.devices, namespace.name, evicted.name);
    await admin.delete(RESOURCES.devices, namespace.name, kept.name);
    // The wait is the assertion: it fails unless the pod is deleted or terminating. Only a 404
    // counts as deleted; any other error fails the test rather than passing it.
    await waitFor(
      async () => {
        const pod = await admin.get<V1Pod>(RESOURCES.pods, namespace.name, 'consumer-evicted').catch((error: unknown) => {
          if (isApiError(error, 404)) return undefined;
          throw error;
        });
        return pod === undefined || pod.metadata?.deletionTimestamp != null;
      },
      { description: 'the consumer of the opted-in device evicted' },
    );
    await waitFor(async () => (await events()).some((e) => e.reason === 'ConsumerEvicted' && e.regarding?.name === 'consumer-evicted'), {
      description: 'ConsumerEvicted event',
    });
    await waitFor(async () => (await events()).some((e) => e.reason === 'DeviceOffline' && e.note?.includes(kept.name)), {
      description: 'the other device handled',
    });
    const untouched = await admin.get<V1Pod>(RESOURCES.pods, namespace.name, 'consumer-kept');
    expect(untouched.metadata?.deletionTimestamp).toBeUndefined();
  });

  it('still evicts when the device went while no controller ran: a restart between offline and teardown loses nothing', async () => {
    const dd = `evict-restart-${suffix}`;
    await createDiscovery(dd, { capacity: 2 }, { 'tether.dev/evict-consumers-on-offline': 'true' });
    const cam = testDevice(dd, 'cam-1');
    const [n] = await nodesFor('evict-restart', 1, [cam], 2);
    await see(cam, n!, 2);
    const consumer = (name: string, resource: string): V1Pod => ({
      metadata: { name, namespace: namespace.name },
      spec: { nodeName: n!, containers: [{ name: 'app', image: 'example.com/app:1', resources: { limits: { [resource]: '1' } } }] },
    });
    await admin.create(RESOURCES.pods, namespace.name, consumer('restart-device-consumer', cam.resource));
    await admin.create(RESOURCES.pods, namespace.name, consumer('restart-any-consumer', `tether.dev/${dd}`));
    await admin.create(RESOURCES.pods, namespace.name, consumer('restart-bystander', 'cpu'));
    await waitFor(async () => condition(await getDevice(cam.name), 'BrokersReady') !== undefined, { description: 'device reconciled' });

    await controller.stop();
    await admin.delete(RESOURCES.devices, namespace.name, cam.name);
    controller = await startTestController();

    const evicted = async (pod: string): Promise<boolean> => {
      const found = await admin.get<V1Pod>(RESOURCES.pods, namespace.name, pod).catch((error: unknown) => {
        if (isApiError(error, 404)) return undefined;
        throw error;
      });
      return found === undefined || found.metadata?.deletionTimestamp != null;
    };
    // The waits are the assertions: they fail unless both consumers are evicted.
    await waitFor(() => evicted('restart-device-consumer'), { description: 'the device consumer evicted by the new controller' });
    await waitFor(() => evicted('restart-any-consumer'), {
      description: 'the discovery-wide consumer evicted (no device left on its node)',
    });
    let recorded: string[] = [];
    await waitFor(
      async () => {
        const evictions = (await events()).filter((e) => e.reason === 'ConsumerEvicted' && e.regarding?.name?.startsWith('restart-'));
        recorded = evictions.map((e) => `${e.regarding?.name ?? '?'}: ${e.note ?? ''}`).sort();
        return ['restart-any-consumer', 'restart-device-consumer'].every((pod) => recorded.some((r) => r.startsWith(`${pod}:`)));
      },
      { description: 'a ConsumerEvicted event for each consumer' },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nConsumerEvicted events so far: ${JSON.stringify(recorded)}`, { cause: error });
    });
    expect(recorded).toHaveLength(2); // one each, not one per sweep
    expect(await evicted('restart-bystander')).toBe(false);
  });
});

describe('failed brokers', () => {
  it('recreates a failing broker with capped exponential backoff — the recreations over the window are bounded', async () => {
    const dd = `failing-${suffix}`;
    await createDiscovery(dd, { capacity: 1, broker: podBroker });
    const device = testDevice(dd, 'cam-1');
    fates.set(device.name, 'fail');
    const [n] = await nodesFor('failing', 1, [device], 1);
    await see(device, n!, 1);

    // Driven by the fake kubelet failing every broker at once; wait until the 3rd recreation.
    const third = await waitFor(
      async () => {
        const d = await getDevice(device.name);
        const c = condition(d, 'BrokersReady');
        return c?.reason === 'BackOff' && c.message.includes('recreation 4') && c;
      },
      { description: 'backoff before the 4th recreation', timeoutMs: 30_000 },
    );
    expect(third.status).toBe('False');
    const created = [...kubelet.seen.values()]
      .filter((s) => s.name.startsWith(device.name))
      .map((s) => s.at)
      .sort((a, b) => a - b);
    // First broker + 3 recreations, spaced by at least 1 s, 2 s, 4 s (capped at 4 s).
    expect(created).toHaveLength(4);
    const gaps = created.slice(1).map((t, i) => t - created[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(BACKOFF.baseMs);
    expect(gaps[1]).toBeGreaterThanOrEqual(2 * BACKOFF.baseMs);
    expect(gaps[2]).toBeGreaterThanOrEqual(BACKOFF.maxMs);
    // The bound for any window W: log2(max/base) + 1 + W/max recreations (here W = the span seen).
    const window = created.at(-1)! - created[0]!;
    expect(created.length - 1).toBeLessThanOrEqual(Math.log2(BACKOFF.maxMs / BACKOFF.baseMs) + 1 + window / BACKOFF.maxMs);

    const pods = await brokerPods(device.name);
    expect(pods.map((p) => p.metadata?.annotations?.['tether.dev/recreations'])).toEqual(['3']);
    const recorded = await events();
    expect(recorded.filter((e) => e.reason === 'BrokerFailed' && e.note?.includes(device.name)).length).toBeGreaterThanOrEqual(3);
    expect(recorded.some((e) => e.reason === 'BrokerCreated' && e.note?.includes('recreation 3 after failure'))).toBe(true);

    // The broker stops failing: the next recreation runs and the Device reports it ready.
    fates.set(device.name, 'run');
    await waitFor(async () => condition(await getDevice(device.name), 'BrokersReady')?.status === 'True', {
      description: 'BrokersReady after recovery',
      timeoutMs: 15_000,
    });
  });
});

describe('template changes', () => {
  it('rolls brokers to a new template one at a time, keeping the device served', async () => {
    const dd = `roll-${suffix}`;
    await createDiscovery(dd, { capacity: 2, broker: podBroker });
    const device = testDevice(dd, 'cam-1');
    const [a, b] = await nodesFor('roll', 2, [device], 2);
    await see(device, a!, 2);
    await see(device, b!, 2);
    await waitFor(async () => condition(await getDevice(device.name), 'BrokersReady')?.status === 'True', {
      description: 'two ready brokers',
    });
    const before = await livePods(device.name);
    const oldHash = before[0]!.metadata?.labels?.['tether.dev/template-hash'];

    // Sample how many brokers serve (Running + Ready, not terminating) during the roll.
    let minServing = Infinity;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const serving = (await livePods(device.name)).filter((p) => p.status?.phase === 'Running').length;
        minServing = Math.min(minServing, serving);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await patchDiscoverySpec(dd, { broker: { pod: { spec: { containers: [{ name: 'broker', image: 'example.com/broker:2' }] } } } });
    const after = await waitFor(
      async () => {
        const live = await livePods(device.name);
        const ok =
          live.length === 2 &&
          live.every((p) => p.metadata?.labels?.['tether.dev/template-hash'] !== oldHash && p.status?.phase === 'Running');
        return ok && live;
      },
      { description: 'both brokers rolled and running' },
    );
    sampling = false;
    await sampler;
    expect(after.map((p) => p.spec?.containers[0]?.image)).toEqual(['example.com/broker:2', 'example.com/broker:2']);
    expect(after.map((p) => p.metadata?.uid)).not.toContain(before[0]!.metadata?.uid);
    expect(minServing).toBeGreaterThanOrEqual(1);
    await waitFor(async () => condition(await getDevice(device.name), 'BrokersReady')?.status === 'True', {
      description: 'ready after the roll',
    });
  });
});

describe('node loss', () => {
  it('releases a deleted node from Devices — its nodes entry, slots and state — with server-side apply, nothing else', async () => {
    const dd = `nodeloss-${suffix}`;
    await createDiscovery(dd, { capacity: 3, broker: podBroker });
    const shared = testDevice(dd, 'cam-shared');
    const local = testDevice(dd, 'cam-local');
    const [a, b] = await nodesFor('loss', 2, [shared, local], 3);
    await see(shared, a!, 3, [0]);
    await see(shared, b!, 3, [1, 2]);
    await see(local, b!, 3, [0]);
    await waitFor(async () => (await livePods(shared.name)).length === 2 && (await livePods(local.name)).length === 1, {
      description: 'brokers on both nodes',
    });
    const before = await getDevice(shared.name);
    expect(before.spec.slots).toEqual({ '0': a, '1': b, '2': b });

    await nodes.delete(b!);
    const after = await waitFor(
      async () => {
        const d = await getDevice(shared.name);
        return (d.spec.nodes ?? []).length === 1 && (d.status?.nodeStates ?? []).length === 1 && d;
      },
      { description: 'node b released from the shared device' },
    );
    expect(after.spec.nodes).toEqual([a]);
    expect(after.spec.slots).toEqual({ '0': a });
    expect((after.status?.nodeStates ?? []).map((s) => s.node)).toEqual([a]);
    // Nothing else changed: identity fields and node a's entries are as they were.
    expect({ ...after.spec, nodes: undefined, slots: undefined }).toEqual({ ...before.spec, nodes: undefined, slots: undefined });
    const bManagers = (after.metadata.managedFields ?? []).filter((e) => e.manager?.startsWith(`tether-agent/${b}`));
    for (const entry of bManagers) {
      const owned = JSON.stringify(entry.fieldsV1 ?? {});
      expect(owned).not.toContain('f:nodes');
      expect(owned).not.toContain('f:slots');
      expect(owned).not.toContain('nodeStates');
    }
    // The device only node b saw is gone, and so are the brokers on b.
    await waitFor(
      async () => {
        try {
          await getDevice(local.name);
          return false;
        } catch (error) {
          return isApiError(error, 404);
        }
      },
      { description: 'the device only b saw is deleted' },
    );
    await waitFor(
      async () => {
        const live = await livePods(shared.name);
        return live.length === 1 && live[0]!.metadata?.annotations?.['tether.dev/node'] === a;
      },
      { description: 'only the broker on a remains' },
    );
    await waitFor(async () => (await events()).some((e) => e.reason === 'NodeLost' && e.note?.includes(b!)), {
      description: 'NodeLost event',
    });
  });

  it('releases a node only after it has been NotReady for the grace period', async () => {
    const dd = `notready-${suffix}`;
    await createDiscovery(dd, { capacity: 2, broker: podBroker });
    const device = testDevice(dd, 'cam-1');
    const [a, b] = await nodesFor('notready', 2, [device], 2);
    await see(device, a!, 2, [0]);
    await see(device, b!, 2, [1]);
    await waitFor(async () => (await livePods(device.name)).length === 2, { description: 'two brokers' });

    const since = Date.now();
    await nodes.setNotReady(b!, since);
    // Within the grace period the node keeps its entries and its broker.
    await waitFor(async () => (await getDevice(device.name)).spec.nodes?.length === 2, { description: 'still two nodes' });
    expect((await livePods(device.name)).length).toBe(2);
    const released = await waitFor(
      async () => {
        const d = await getDevice(device.name);
        return (d.spec.nodes ?? []).length === 1 && d;
      },
      { description: 'NotReady node released after the grace period', timeoutMs: 20_000 },
    );
    // Node conditions have seconds precision: the grace runs from the recorded transition time.
    expect(Date.now() - Math.floor(since / 1000) * 1000).toBeGreaterThanOrEqual(NODE_LOSS_GRACE_MS);
    expect(released.spec.nodes).toEqual([a]);
    expect(released.spec.slots).toEqual({ '0': a });
  });
});

describe('node reports', () => {
  it('folds the agents’ nodeReports of Ready selected nodes into HandlersHealthy, and clears it when they go', async () => {
    const dd = `reports-${suffix}`;
    await createDiscovery(dd, {});
    const [ready] = await nodesFor('reports', 1, [], 1);
    // As the agent of `node` applies it (agent/cluster/node-reports.ts); no reason: no entry.
    const report = (node: string, reason: string, message: string) => {
      const nodeReports = reason === '' ? [] : [{ node, reason, message, since: '2026-12-06T10:00:00Z' }];
      const body = {
        apiVersion: API_VERSION,
        kind: 'DeviceDiscovery',
        metadata: { name: dd, namespace: namespace.name },
        status: { nodeReports },
      };
      return admin.apply(RESOURCES.deviceDiscoveries, body, { fieldManager: agentManager(node), force: true, subresource: 'status' });
    };
    await report(ready!, 'InvalidDetails', 'Rejected discovery details: details.descriptions: must be a list');
    // A report from a node the cluster does not have is stale: not counted.
    await report('gone-node', 'HandlerUnavailable', 'no debug-echo handler');
    const failing = await waitFor(
      async () => {
        const c = condition(await getDiscovery(dd), 'HandlersHealthy');
        return c?.status === 'False' ? c : undefined;
      },
      { description: 'HandlersHealthy False' },
    );
    expect(failing).toMatchObject({
      reason: 'InvalidDetails',
      message: `1 node cannot run the discovery: ${ready!}: InvalidDetails: Rejected discovery details: details.descriptions: must be a list`,
    });

    await report(ready!, '', '');
    await waitFor(async () => condition(await getDiscovery(dd), 'HandlersHealthy')?.status === 'True', {
      description: 'HandlersHealthy True again',
    });
  });
});

describe('operations', () => {
  it('serves /healthz, /readyz and Prometheus metrics', async () => {
    const base = `http://127.0.0.1:${controller.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'tether_controller_reconciles_total',
      'tether_controller_queue_depth',
      'tether_controller_brokers',
      'tether_controller_api_requests_total',
      'tether_controller_broker_actions_total',
    ]) {
      expect(metrics).toContain(name);
    }
    expect(metrics).toMatch(/tether_controller_reconciles_total\{controller="device",result="success"\} [1-9]/);
  });
});
