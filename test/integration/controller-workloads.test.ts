/**
 * Workload brokers (spec.broker.workload, #17) against the real control plane: a Deployment
 * broker and a custom-kind broker (a SpinApp-shaped CRD the test installs), with the controller
 * running under exactly its documented RBAC plus the chart's `controller.brokerKinds` grant for
 * the custom kind. The Deployment's pods are made by the real kube-controller-manager and
 * scheduled by the real scheduler onto fake nodes, where the fake kubelet runs them — so the
 * Deployment's readiness is the real one; the SpinApp has no operator here, so the test plays
 * it and sets its Ready condition. Every assertion is on the state of the world.
 */
import type { KubeConfig, V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceName, deviceResourceName } from '../../api/names.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { DEFAULT_CONFIG } from '../../controller/runtime/config.ts';
import { brokerKindRule } from '../../controller/runtime/rbac.ts';
import { KubeClient, isApiError, type KubeObject, type ResourceType } from '../../kube/client.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { startController, type Controller } from '../../controller/main.ts';
import { FakeKubelet, FakeNodes, applyAsAgent, controllerServiceAccount } from '../support/fake-cluster.ts';
import { installSpinAppCrd, SPINAPPS } from '../support/spinapp.ts';
import { API_VERSION, loadKubeConfig, uniqueSuffix, useTestNamespace, waitFor } from './support.ts';

const namespace = useTestNamespace('it-wl');
const log = pino({ level: process.env.TETHER_TEST_LOG ?? 'silent' });
const suffix = uniqueSuffix();

const DEPLOYMENTS: ResourceType = { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true };
const STATEFULSETS: ResourceType = { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet', namespaced: true };

type Workload = KubeObject & { spec?: Record<string, unknown> };

let admin: Api;
let controller: Controller;
let nodes: FakeNodes;
let kubelet: FakeKubelet;
let cleanupRbac: () => Promise<void> = () => Promise.resolve();
let controllerKubeConfig: KubeConfig;

beforeAll(async () => {
  const kc = loadKubeConfig();
  admin = new Api(new KubeClient(kc));
  await installSpinAppCrd(admin);
  nodes = new FakeNodes(admin);
  const account = await controllerServiceAccount(kc, admin, namespace.name, `tether-controller-wl-${suffix}`, [
    brokerKindRule('core.spinkube.dev', ['spinapps']),
  ]);
  cleanupRbac = account.cleanup;
  kubelet = new FakeKubelet(admin.client, log, namespace.name, () => 'run');
  await kubelet.start();
  controllerKubeConfig = account.kubeConfig;
  controller = await startTestController();
});

async function startTestController(): Promise<Controller> {
  const started = await startController(
    { ...DEFAULT_CONFIG, namespace: namespace.name, httpHost: '127.0.0.1', httpPort: 0, statusBatchMs: 50 },
    { kubeConfig: controllerKubeConfig, log },
  );
  await waitFor(() => started.isReady(), { description: 'controller caches synced' });
  return started;
}

afterAll(async () => {
  await controller?.stop();
  await admin?.client.request('DELETE', `/api/v1/namespaces/${namespace.name}/pods`, {
    verb: 'delete',
    resource: 'pods',
    query: { gracePeriodSeconds: 0 },
  });
  await kubelet?.stop();
  await nodes?.close();
  await cleanupRbac();
});

/** Installs the CRD once per cluster (kept: other runs of this file may use it at the same time). */

async function createDiscovery(name: string, broker: unknown): Promise<DeviceDiscovery> {
  const body = {
    apiVersion: API_VERSION,
    kind: 'DeviceDiscovery',
    metadata: { name, namespace: namespace.name },
    spec: { handler: 'debug-echo', capacity: 1, broker },
  };
  return admin.create(RESOURCES.deviceDiscoveries, namespace.name, body as never);
}

async function patchDiscoverySpec(name: string, spec: Record<string, unknown>): Promise<void> {
  await admin.client.request('PATCH', `/apis/tether.dev/v1alpha1/namespaces/${namespace.name}/devicediscoveries/${name}`, {
    verb: 'patch',
    resource: 'devicediscoveries',
    body: { spec },
    contentType: 'application/merge-patch+json',
  });
}

interface TestDevice {
  readonly name: string;
  readonly resource: string;
  readonly deviceId: string;
  readonly discovery: string;
}

async function deviceOnNode(discovery: string, prefix: string): Promise<{ device: TestDevice; node: string }> {
  const name = deviceName({ namespace: namespace.name, discovery, deviceId: 'dev-1' });
  const device = { name, resource: deviceResourceName(name), deviceId: 'dev-1', discovery };
  const node = `wl-${suffix}-${prefix}`;
  await nodes.add(node, { [device.resource]: '1' }, { 'kubernetes.io/hostname': `${node}.host` });
  await see(device, node);
  return { device, node };
}

async function see(device: TestDevice, node: string): Promise<void> {
  await applyAsAgent(admin, {
    namespace: namespace.name,
    name: device.name,
    discovery: device.discovery,
    deviceId: device.deviceId,
    shared: true,
    capacity: 1,
    node,
  });
}

async function brokersOf(type: ResourceType, device: string): Promise<Workload[]> {
  const list = await admin.list<Workload>(type, {
    namespace: namespace.name,
    labelSelector: `tether.dev/device=${device}`,
  });
  return list.items.filter((o) => o.metadata?.deletionTimestamp == null);
}

async function oneBroker(type: ResourceType, device: string, ready: (o: Workload) => boolean = () => true): Promise<Workload> {
  return waitFor(
    async () => {
      const live = await brokersOf(type, device);
      return live.length === 1 && ready(live[0]!) && live[0];
    },
    { description: `one ${type.kind} broker of ${device}` },
  );
}

function condition(
  object: { status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } },
  type: string,
) {
  return object.status?.conditions?.find((c) => c.type === type);
}

async function deviceCondition(name: string, status: string): Promise<{ reason: string; message: string }> {
  return waitFor(
    async () => {
      const d = await admin.get<Device>(RESOURCES.devices, namespace.name, name);
      const c = condition(d, 'BrokersReady');
      return c?.status === status && c;
    },
    { description: `Device ${name} BrokersReady=${status}` },
  );
}

async function discoveryCondition(name: string, reason: string): Promise<{ status: string; message: string }> {
  return waitFor(
    async () => {
      const d = await admin.get<DeviceDiscovery>(RESOURCES.deviceDiscoveries, namespace.name, name);
      const c = condition(d, 'BrokersReady');
      return c?.reason === reason && c;
    },
    { description: `DeviceDiscovery ${name} BrokersReady reason ${reason}` },
  );
}

async function warnings(reason: string, discovery: string): Promise<{ note?: string }[]> {
  const list = await admin.list<KubeObject & { reason: string; type: string; note?: string; regarding?: { name?: string } }>(
    RESOURCES.events,
    {
      namespace: namespace.name,
    },
  );
  return list.items.filter((e) => e.reason === reason && e.type === 'Warning' && e.regarding?.name === discovery);
}

function appliedByController(object: Workload): boolean {
  return object.metadata?.managedFields?.some((f) => f.manager === 'tether-controller' && f.operation === 'Apply') ?? false;
}

// ---------------------------------------------------------------------------------------------

describe('a Deployment broker', () => {
  it('is applied per node, owned by the Device, ready when its pods are, rolled in place, torn down offline and restored online', async () => {
    const dd = `deploy-${suffix}`;
    const template = (image: string): unknown => ({
      workload: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { labels: { team: 'edge' } },
        spec: { template: { metadata: { labels: { app: 'broker' } }, spec: { containers: [{ name: 'broker', image }] } } },
      },
    });
    await createDiscovery(dd, template('example.com/broker:1'));
    const { device, node } = await deviceOnNode(dd, 'deploy');

    const applied = await oneBroker(DEPLOYMENTS, device.name);
    const owner = await admin.get<Device>(RESOURCES.devices, namespace.name, device.name);
    expect(applied.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'Device', uid: owner.metadata.uid, controller: true }),
    ]);
    expect(applied.metadata?.labels).toMatchObject({ team: 'edge', 'tether.dev/device': device.name, 'tether.dev/node': node });
    expect(appliedByController(applied)).toBe(true);
    const deployment = applied as unknown as V1Deployment;
    expect(deployment.spec?.strategy?.type).toBe('Recreate');
    const pod = deployment.spec!.template;
    expect(pod.spec?.containers[0]?.resources?.limits).toEqual({ [device.resource]: '1' });
    expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] },
    ]);

    // Its pod runs (real ReplicaSet, scheduler; fake kubelet): the Deployment is available.
    expect((await deviceCondition(device.name, 'True')).message).toBe('1/1 brokers ready');
    await waitFor(async () => (await admin.get<DeviceDiscovery>(RESOURCES.deviceDiscoveries, namespace.name, dd)).status?.brokers === 1, {
      description: 'DeviceDiscovery counts 1 broker',
    });

    // Template change: the same Deployment (same uid) gets the new template by server-side apply.
    const before = applied.metadata!;
    await patchDiscoverySpec(dd, { broker: template('example.com/broker:2') });
    const rolled = await oneBroker(
      DEPLOYMENTS,
      device.name,
      (o) => (o as unknown as V1Deployment).spec?.template.spec?.containers[0]?.image === 'example.com/broker:2',
    );
    expect(rolled.metadata?.uid).toBe(before.uid);
    expect(rolled.metadata?.labels?.['tether.dev/template-hash']).not.toBe(before.labels?.['tether.dev/template-hash']);
    expect((await deviceCondition(device.name, 'True')).message).toBe('1/1 brokers ready');

    // Offline: gone. Online: back, owned by the new Device.
    await admin.delete(RESOURCES.devices, namespace.name, device.name);
    await waitFor(async () => (await brokersOf(DEPLOYMENTS, device.name)).length === 0, {
      description: 'Deployment deleted',
      timeoutMs: 5_000,
    });
    await see(device, node);
    const back = await admin.get<Device>(RESOURCES.devices, namespace.name, device.name);
    const restored = await oneBroker(DEPLOYMENTS, device.name);
    expect(restored.metadata?.ownerReferences?.[0]?.uid).toBe(back.metadata.uid);
    expect(restored.metadata?.uid).not.toBe(before.uid);
  });
});

describe('a controller restart', () => {
  it('writes nothing to workload brokers that are as they should be', async () => {
    const dd = `restart-${suffix}`;
    const workload = {
      workload: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        spec: { template: { spec: { containers: [{ name: 'broker', image: 'example.com/broker:1' }] } } },
      },
    };
    await createDiscovery(dd, workload);
    const { device } = await deviceOnNode(dd, 'restart');
    await deviceCondition(device.name, 'True');
    const before = await oneBroker(DEPLOYMENTS, device.name);
    const deviceBefore = await admin.get<Device>(RESOURCES.devices, namespace.name, device.name);

    await controller.stop();
    controller = await startTestController();
    // A second device of the same discovery, seen after the restart: once its broker exists and
    // the queues are empty, the restarted controller has reconciled the first device too.
    const second = deviceName({ namespace: namespace.name, discovery: dd, deviceId: 'dev-2' });
    const node2 = `wl-${suffix}-restart-2`;
    await nodes.add(node2, { [deviceResourceName(second)]: '1' });
    await applyAsAgent(admin, {
      namespace: namespace.name,
      name: second,
      discovery: dd,
      deviceId: 'dev-2',
      shared: true,
      capacity: 1,
      node: node2,
    });
    await oneBroker(DEPLOYMENTS, second);
    await waitFor(() => controller.pending() === 0, { description: 'controller queues empty' });

    // The Deployment controller keeps writing its status; what the controller applies is unchanged:
    // same generation, and its Apply entry (time included) as it was.
    const after = await oneBroker(DEPLOYMENTS, device.name);
    expect(after.metadata?.uid).toBe(before.metadata?.uid);
    expect(after.metadata?.generation).toBe(before.metadata?.generation);
    const applyEntry = (o: Workload): unknown => o.metadata?.managedFields?.find((f) => f.manager === 'tether-controller');
    expect(applyEntry(after)).toEqual(applyEntry(before));
    const deviceAfter = await admin.get<Device>(RESOURCES.devices, namespace.name, device.name);
    expect(deviceAfter.metadata.resourceVersion).toBe(deviceBefore.metadata.resourceVersion);
  });
});

describe('a StatefulSet broker', () => {
  it('is applied with the device in its pod template and ready when its pod is', async () => {
    const dd = `sts-${suffix}`;
    await createDiscovery(dd, {
      workload: {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        spec: { template: { spec: { containers: [{ name: 'broker', image: 'example.com/broker:1' }] } } },
      },
    });
    const { device, node } = await deviceOnNode(dd, 'sts');
    const applied = await oneBroker(STATEFULSETS, device.name);
    expect(appliedByController(applied)).toBe(true);
    const template = (applied.spec as { template: { spec: { containers: { resources?: { limits?: object } }[] } } }).template;
    expect(template.spec.containers[0]?.resources?.limits).toEqual({ [device.resource]: '1' });
    // Its pod (<name>-0, made by the real StatefulSet controller) runs on the node: ready.
    expect((await deviceCondition(device.name, 'True')).message).toBe('1/1 brokers ready');
    const pods = await admin.list<KubeObject & { spec?: { nodeName?: string } }>(RESOURCES.pods, {
      namespace: namespace.name,
      labelSelector: `tether.dev/device=${device.name}`,
    });
    expect(pods.items.map((p) => [p.metadata?.name, p.spec?.nodeName])).toEqual([[`${applied.metadata!.name!}-0`, node]]);
  });
});

describe('a custom-kind broker (SpinApp-shaped)', () => {
  const spinApp = (inject: Record<string, unknown>): unknown => ({
    workload: {
      apiVersion: 'core.spinkube.dev/v1alpha1',
      kind: 'SpinApp',
      spec: { image: 'ghcr.io/example/device-app:1', executor: 'containerd-shim-spin', replicas: 1 },
      inject,
    },
  });

  it('is applied with the device where inject says, ready on its Ready condition, torn down offline and restored online', async () => {
    const dd = `spin-${suffix}`;
    await createDiscovery(
      dd,
      spinApp({ resources: ['/spec/resources/limits'], env: ['/spec/variables'], nodeSelector: ['/spec/deploymentConfig/nodeSelector'] }),
    );
    const { device, node } = await deviceOnNode(dd, 'spin');
    const app = await oneBroker(SPINAPPS, device.name);
    const owner = await admin.get<Device>(RESOURCES.devices, namespace.name, device.name);
    expect(app.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'Device', uid: owner.metadata.uid, controller: true })]);
    expect(appliedByController(app)).toBe(true);
    expect(app.spec).toEqual({
      image: 'ghcr.io/example/device-app:1',
      executor: 'containerd-shim-spin',
      replicas: 1,
      resources: { limits: { [device.resource]: '1' } },
      variables: [
        { name: 'TETHER_DEVICE', value: device.name },
        { name: 'TETHER_DISCOVERY', value: dd },
        { name: 'TETHER_NODE', value: node },
      ],
      deploymentConfig: { nodeSelector: { 'kubernetes.io/hostname': `${node}.host` } },
    });

    // No Ready condition yet: not ready. The "operator" reports Ready: the broker is.
    expect((await deviceCondition(device.name, 'False')).message).toMatch(/0\/1 brokers ready/);
    await admin.client.request(
      'PATCH',
      `/apis/core.spinkube.dev/v1alpha1/namespaces/${namespace.name}/spinapps/${app.metadata!.name!}/status`,
      {
        verb: 'patch',
        resource: 'spinapps/status',
        body: { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Available', message: '' }] } },
        contentType: 'application/merge-patch+json',
      },
    );
    expect((await deviceCondition(device.name, 'True')).message).toBe('1/1 brokers ready');
    await waitFor(async () => (await admin.get<DeviceDiscovery>(RESOURCES.deviceDiscoveries, namespace.name, dd)).status?.brokers === 1, {
      description: 'DeviceDiscovery counts 1 broker',
    });

    await admin.delete(RESOURCES.devices, namespace.name, device.name);
    await waitFor(async () => (await brokersOf(SPINAPPS, device.name)).length === 0, { description: 'SpinApp deleted', timeoutMs: 5_000 });
    await see(device, node);
    const back = await admin.get<Device>(RESOURCES.devices, namespace.name, device.name);
    const restored = await oneBroker(SPINAPPS, device.name);
    expect(restored.metadata?.ownerReferences?.[0]?.uid).toBe(back.metadata.uid);
  });

  it.each([
    [
      'a pointer outside /spec',
      { resources: ['/status/limits'] },
      /spec\.broker\.workload\.inject\.resources\[0\]: Invalid value: "\/status\/limits": .*should match/,
    ],
    [
      'no place for the device',
      { env: ['/spec/variables'] },
      /spec\.broker\.workload\.inject: Invalid value: .*needs inject\.podTemplates or inject\.resources/,
    ],
  ])('is refused at admission with %s, naming the field', async (_what, inject, message) => {
    const error = await createDiscovery(`bad-${suffix}`, spinApp(inject)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isApiError(error, 422)).toBe(true);
    expect((error as Error).message).toMatch(message);
  });

  it('a pointer that cannot be followed: InvalidTemplate on the DeviceDiscovery with the field path, a Warning Event, no broker', async () => {
    const dd = `unfollowable-${suffix}`;
    await createDiscovery(dd, spinApp({ resources: ['/spec/image/limits'] }));
    const { device } = await deviceOnNode(dd, 'unfollowable');
    const refused = await discoveryCondition(dd, 'InvalidTemplate');
    expect(refused.status).toBe('False');
    expect(refused.message).toContain('spec.broker.workload.inject.resources[0]: /spec/image/limits: /spec/image is a string');
    await waitFor(async () => (await warnings('InvalidBrokerTemplate', dd)).length > 0, { description: 'InvalidBrokerTemplate event' });
    expect((await deviceCondition(device.name, 'False')).reason).toBe('InvalidTemplate');
    expect(await brokersOf(SPINAPPS, device.name)).toEqual([]);

    // Fixed: the broker follows.
    await patchDiscoverySpec(dd, { broker: spinApp({ resources: ['/spec/resources/limits'] }) });
    await oneBroker(SPINAPPS, device.name);
  });
});

describe('a kind the apiserver does not serve', () => {
  it('is a clear condition and a Warning Event on the DeviceDiscovery, not a crash', async () => {
    const dd = `unknown-${suffix}`;
    await createDiscovery(dd, {
      workload: { apiVersion: 'gadgets.example.com/v1', kind: 'Gizmo', spec: {}, inject: { resources: ['/spec/limits'] } },
    });
    const { device } = await deviceOnNode(dd, 'unknown');
    const refused = await discoveryCondition(dd, 'InvalidTemplate');
    expect(refused.message).toBe('spec.broker.workload: the apiserver serves no gadgets.example.com/v1 (no such group-version)');
    await waitFor(async () => (await warnings('UnknownBrokerKind', dd)).length > 0, { description: 'UnknownBrokerKind event' });
    expect((await deviceCondition(device.name, 'False')).reason).toBe('InvalidTemplate');
    expect(controller.isReady()).toBe(true);
  });
});
