/**
 * The controller's DRA objects on the real control plane (apiserver, controller-manager with its
 * resource-claim controller, scheduler with its DRA plugin), the controller under exactly its
 * RBAC rules. A DRA DeviceDiscovery gets its DeviceClass (and loses it when it leaves DRA or is
 * deleted); a brokered device gets its ResourceClaimTemplate; the broker's claim is allocated by
 * the real scheduler from a ResourceSlice written as the agent writes it, and pods that only ask
 * for the extended resource `tether.dev/<discovery>` are served through the DeviceClass and share
 * the device's consumable slots, until they run out.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentManager } from '../../api/field-managers.ts';
import { deviceName } from '../../api/names.ts';
import { desiredPools, planSlices, type ResourceSlice } from '../../agent/cluster/resource-slices.ts';
import type { DeviceClass, ResourceClaimTemplate } from '../../controller/dra/objects.ts';
import { DEFAULT_CONFIG } from '../../controller/runtime/config.ts';
import { startController, type Controller } from '../../controller/main.ts';
import { KubeClient, isApiError, type KubeObject } from '../../kube/client.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { FakeKubelet, FakeNodes, applyAsAgent, controllerServiceAccount } from '../support/fake-cluster.ts';
import { API_VERSION, loadKubeConfig, uniqueSuffix, useTestNamespace, waitFor } from './support.ts';

const namespace = useTestNamespace('it-ctl-dra');
const log = pino({ level: process.env['TETHER_TEST_LOG'] ?? 'silent' });
const suffix = uniqueSuffix();

let admin: Api;
let controller: Controller;
let controllerKubeConfig: KubeConfig;
let nodes: FakeNodes;
let kubelet: FakeKubelet;
let cleanupRbac: () => Promise<void> = () => Promise.resolve();
const slicesToDelete: string[] = [];

beforeAll(async () => {
  const kc = loadKubeConfig();
  admin = new Api(new KubeClient(kc));
  nodes = new FakeNodes(admin);
  const account = await controllerServiceAccount(kc, admin, namespace.name, `tether-controller-dra-${suffix}`);
  cleanupRbac = account.cleanup;
  kubelet = new FakeKubelet(admin.client, log, namespace.name, () => 'run');
  await kubelet.start();
  controllerKubeConfig = account.kubeConfig;
  controller = await startController(
    { ...DEFAULT_CONFIG, namespace: namespace.name, httpHost: '127.0.0.1', httpPort: 0, statusBatchMs: 50 },
    { kubeConfig: controllerKubeConfig, log },
  );
  await waitFor(() => controller.isReady(), { description: 'controller caches synced' });
});

afterAll(async () => {
  await controller?.stop();
  await admin?.client.request('DELETE', `/api/v1/namespaces/${namespace.name}/pods`, {
    verb: 'delete',
    resource: 'pods',
    query: { gracePeriodSeconds: 0 },
  });
  for (const name of slicesToDelete) await admin.delete(RESOURCES.resourceSlices, undefined, name).catch(() => undefined);
  await kubelet?.stop();
  await nodes?.close();
  await cleanupRbac();
});

async function createDiscovery(name: string, spec: Record<string, unknown>): Promise<void> {
  const body = { apiVersion: API_VERSION, kind: 'DeviceDiscovery', metadata: { name, namespace: namespace.name }, spec };
  await admin.create(RESOURCES.deviceDiscoveries, namespace.name, body);
}

async function setBackend(name: string, backend: 'DRA' | 'DevicePlugin'): Promise<void> {
  const body = { apiVersion: API_VERSION, kind: 'DeviceDiscovery', metadata: { name, namespace: namespace.name }, spec: { backend } };
  await admin.apply(RESOURCES.deviceDiscoveries, body, { fieldManager: 'test-backend', force: true });
}

async function deviceClass(name: string): Promise<DeviceClass | undefined> {
  try {
    return await admin.get<DeviceClass & KubeObject>(RESOURCES.deviceClasses, undefined, name);
  } catch (error) {
    if (isApiError(error, 404)) return undefined;
    throw error;
  }
}

async function pod(name: string): Promise<V1Pod> {
  return admin.get<V1Pod & KubeObject>(RESOURCES.pods, namespace.name, name);
}

interface Claim extends KubeObject {
  status?: {
    allocation?: { devices?: { results?: { driver: string; pool: string; device: string; consumedCapacity?: Record<string, string> }[] } };
  };
}

/** The device a pod's (only) allocated claim got, if any. */
async function allocatedDevice(podName: string): Promise<string | undefined> {
  const claims = await admin.list<Claim>(
    { group: 'resource.k8s.io', version: 'v1', plural: 'resourceclaims', kind: 'ResourceClaim', namespaced: true },
    { namespace: namespace.name },
  );
  const mine = claims.items.filter((c) => c.metadata?.ownerReferences?.some((o) => o.kind === 'Pod' && o.name === podName));
  return mine[0]?.status?.allocation?.devices?.results?.[0]?.device;
}

describe('DRA objects of the controller', () => {
  it('keeps a DeviceClass per DRA discovery: made, removed when it leaves DRA, back, swept when deleted', async () => {
    const name = `cls-${suffix}`;
    const className = `${namespace.name}.${name}.tether.dev`;
    await createDiscovery(name, { handler: 'debug-echo', backend: 'DRA' });
    const made = await waitFor(() => deviceClass(className), { description: 'DeviceClass made' });
    expect(made.spec).toEqual({
      selectors: [
        {
          cel: {
            expression: `device.driver == "tether.dev" && device.attributes["tether.dev"].namespace == "${namespace.name}" && device.attributes["tether.dev"].discovery == "${name}"`,
          },
        },
      ],
      extendedResourceName: `tether.dev/${name}`,
    });
    await setBackend(name, 'DevicePlugin');
    await waitFor(async () => (await deviceClass(className)) === undefined, { description: 'DeviceClass removed' });
    await setBackend(name, 'DRA');
    await waitFor(() => deviceClass(className), { description: 'DeviceClass back' });
    await admin.delete(RESOURCES.deviceDiscoveries, namespace.name, name);
    await waitFor(async () => (await deviceClass(className)) === undefined, { description: 'DeviceClass swept' });
  });

  it('gives a broker its device through a claim template; extended-resource pods share the slots through DRA', async () => {
    const discovery = `dra-${suffix}`;
    const node = `ctl-dra-${suffix}`;
    await nodes.add(node);
    await createDiscovery(discovery, {
      handler: 'debug-echo',
      backend: 'DRA',
      capacity: 2,
      broker: { pod: { spec: { containers: [{ name: 'broker', image: 'example.com/broker:1' }] } } },
    });
    const device = deviceName({ namespace: namespace.name, discovery, deviceId: 'echo-1', node });
    await applyAsAgent(admin, { namespace: namespace.name, name: device, discovery, deviceId: 'echo-1', shared: false, capacity: 2, node });
    // The node's slice, exactly as its agent writes it.
    const served = {
      name: device,
      namespace: namespace.name,
      discovery,
      deviceId: 'echo-1',
      shared: false,
      capacity: 2,
      online: true,
      properties: {},
    };
    const plan = planSlices(
      node,
      desiredPools(node, [served], () => ({ evictOnOffline: false, attributeTypes: {} })),
      [],
    );
    for (const slice of plan.apply) {
      slicesToDelete.push(slice.metadata.name);
      await admin.apply<ResourceSlice & KubeObject>(RESOURCES.resourceSlices, slice, {
        fieldManager: agentManager(node),
        force: true,
      });
    }

    const template = await waitFor(
      () => admin.get<ResourceClaimTemplate & KubeObject>(RESOURCES.resourceClaimTemplates, namespace.name, `${device}-claim`),
      { description: 'claim template' },
    );
    expect(template.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Device', name: device });
    const broker = await waitFor(
      async () => {
        const pods = await admin.list<V1Pod & KubeObject>(RESOURCES.pods, {
          namespace: namespace.name,
          labelSelector: `tether.dev/device=${device}`,
        });
        return pods.items.find((p) => p.spec?.nodeName === node);
      },
      { description: 'broker scheduled by the real scheduler' },
    );
    expect(broker.spec?.resourceClaims).toEqual([{ name: 'tether-device', resourceClaimTemplateName: `${device}-claim` }]);
    expect(await waitFor(() => allocatedDevice(broker.metadata!.name!), { description: 'broker claim allocated' })).toBe(device);

    // A consumer that asks only for the extended resource: served through the DeviceClass, from the same device.
    const consumer = (n: string): KubeObject =>
      ({
        metadata: { name: n, namespace: namespace.name },
        spec: { containers: [{ name: 'app', image: 'example.com/app:1', resources: { limits: { [`tether.dev/${discovery}`]: '1' } } }] },
      }) as KubeObject;
    await admin.create(RESOURCES.pods, namespace.name, consumer('consumer-1'));
    await waitFor(async () => (await pod('consumer-1')).spec?.nodeName === node, { description: 'consumer scheduled through DRA' });
    expect(await waitFor(() => allocatedDevice('consumer-1'), { description: 'consumer claim allocated' })).toBe(device);
    // Capacity 2: the broker and one consumer hold both slots; a second consumer must wait.
    await admin.create(RESOURCES.pods, namespace.name, consumer('consumer-2'));
    const pending = await waitFor(
      async () => (await pod('consumer-2')).status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False'),
      { description: 'second consumer unschedulable' },
    );
    expect(pending.reason).toBe('Unschedulable');
    expect((await pod('consumer-2')).spec?.nodeName).toBeUndefined();
    // The first consumer goes: its slot frees and the second one is scheduled.
    await admin.delete(RESOURCES.pods, namespace.name, 'consumer-1', { gracePeriodSeconds: 0 });
    await waitFor(async () => (await pod('consumer-2')).spec?.nodeName === node, {
      description: 'second consumer scheduled once a slot freed',
    });
  });
});
