/**
 * End to end on real parts: the Tether agent (the `tether agent` CLI) serves a
 * debug-echo device to the real kubelet through the device-plugin API; the
 * real scheduler places pods by the extended resources; containerd + runc run
 * them; the agent reconciles its slots against the kubelet's real PodResources
 * API. Steps build on each other and run in order.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceName, deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import type { Device } from '../../api/schema.ts';
import { GROUP, ResilientWatch, useTestNamespace, VERSION } from '../integration/support.ts';
import { nodeLayout } from './layout.ts';
import { restartKubelet } from './node.ts';
import {
  allocatable,
  api,
  createDiscovery,
  createPod,
  deletePod,
  devicePod,
  kubeletAllocatableIds,
  nodeName,
  startAgent,
  waitDevice,
  waitFor,
  waitNode,
  waitPodLogLines,
  waitPodRunning,
  waitPodUnschedulable,
  type AgentProcess,
} from './support.ts';

const ns = useTestNamespace('e2e');
const layout = nodeLayout();
const DISCOVERY = 'e2e-echo';
const DESCRIPTION = 'cam-1';
/** What each pod prints: the plain property, then every Tether-set variable. */
const SCRIPT = `echo DESC=$DEBUG_ECHO_DESCRIPTION; env | grep -E '^(TETHER_|DEBUG_ECHO_)' | sort`;

let dir: string;
let availabilityFile: string;
let agent: AgentProcess | undefined;
let device: string;
let deviceResource: string;
let discoveryResource: string;

/** Slot indexes of the Device held by this node. */
const heldSlots = (d: Device): string[] =>
  Object.entries(d.spec.slots ?? {})
    .filter(([, node]) => node === nodeName())
    .map(([slot]) => slot)
    .sort();

/**
 * The log lines a pod with exactly this device must print, spelled out from
 * the README's env scheme (not computed by the agent's own code): the plain
 * property, the property suffixed with the device-name hash, TETHER_DEVICES.
 */
function expectedEnvLines(): string[] {
  const suffix = device.slice(-16).toUpperCase();
  return [
    `DESC=${DESCRIPTION}`,
    `DEBUG_ECHO_DESCRIPTION=${DESCRIPTION}`,
    `DEBUG_ECHO_DESCRIPTION_${suffix}=${DESCRIPTION}`,
    `TETHER_DEVICES=${device}`,
  ];
}

/** Waits for the pod's env lines, and that it got no other Tether variables. */
async function expectDeviceEnv(pod: string): Promise<void> {
  const log = await waitPodLogLines(ns.name, pod, expectedEnvLines());
  const printed = log
    .split('\n')
    .filter((line) => line !== '')
    .sort();
  expect(printed).toEqual([...expectedEnvLines()].sort());
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-e2e-'));
  availabilityFile = join(dir, 'availability');
  await writeFile(availabilityFile, 'online\n');
  device = deviceName({ namespace: ns.name, discovery: DISCOVERY, deviceId: DESCRIPTION, node: nodeName() });
  deviceResource = deviceResourceName(device);
  discoveryResource = discoveryResourceName(DISCOVERY);
  agent = await startAgent({
    node: nodeName(),
    namespace: ns.name,
    devicePluginDir: layout.devicePluginDir,
    podResourcesSocket: layout.podResourcesSocket,
    logFile: join(layout.logDir, 'agent.log'),
    extraArgs: ['--reconcile-interval', '1000', '--slot-grace', '1000', '--startup-timeout', '3000'],
  });
  await createDiscovery(ns.name, DISCOVERY, {
    handler: 'debug-echo',
    details: { descriptions: [DESCRIPTION], availabilityFile },
    capacity: 2,
    offlineGracePeriodSeconds: 1,
  });
});

afterAll(async () => {
  // Pods first (the kubelet stops them), then the agent: it removes its sockets.
  await api()
    .core.deleteCollectionNamespacedPod({ namespace: ns.name, gracePeriodSeconds: 0 })
    .catch(() => undefined);
  await agent?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('a Tether device on a real kubelet', () => {
  it('appears in the Node status with its capacity, as the device and the discovery resource', async () => {
    const node = await waitNode(
      (n) => allocatable(n, deviceResource) === '2' && allocatable(n, discoveryResource) === '2',
      `allocatable ${deviceResource}=2 and ${discoveryResource}=2`,
    );
    expect(node.status?.capacity?.[deviceResource]).toBe('2');
    expect(await kubeletAllocatableIds(layout.podResourcesSocket, deviceResource)).toEqual([`${device}-0`, `${device}-1`]);
  });

  it('a pod requesting the device runs and sees its env vars; the Device records the slot', async () => {
    await createPod(ns.name, devicePod('pod-a', deviceResource, SCRIPT));
    const pod = await waitPodRunning(ns.name, 'pod-a');
    expect(pod.spec?.nodeName).toBe(nodeName());
    await expectDeviceEnv('pod-a');
    const claimed = await waitDevice(ns.name, device, (d) => heldSlots(d).length === 1, 'one slot held by the node');
    expect(Object.keys(claimed.spec.slots ?? {})).toHaveLength(1);
  });

  it('capacity is respected: a second pod runs, a third stays Pending (Insufficient), and the discovery resource is used up', async () => {
    await createPod(ns.name, devicePod('pod-b', deviceResource, SCRIPT));
    await waitPodRunning(ns.name, 'pod-b');
    await waitDevice(ns.name, device, (d) => heldSlots(d).join() === '0,1', 'both slots held by the node');
    await createPod(ns.name, devicePod('pod-c', deviceResource, SCRIPT));
    expect(await waitPodUnschedulable(ns.name, 'pod-c')).toContain(`Insufficient ${deviceResource}`);
    // Slots held through the device resource are Unhealthy in the discovery resource.
    await waitNode((n) => allocatable(n, discoveryResource) === '0', `allocatable ${discoveryResource}=0 while both slots are held`);
  });

  it('deleting a pod frees its capacity: the pending pod is scheduled and runs with the device', async () => {
    await deletePod(ns.name, 'pod-a');
    const pod = await waitPodRunning(ns.name, 'pod-c');
    expect(pod.spec?.nodeName).toBe(nodeName());
    await expectDeviceEnv('pod-c');
  });

  it('kubelet restart: the plugins re-register, allocatable comes back, running pods keep their slots', async () => {
    const before = await kubeletAllocatableIds(layout.podResourcesSocket, deviceResource);
    expect(before).toHaveLength(2);
    const watch = new ResilientWatch(api().kc, `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/devices`);
    await watch.start();
    const restart = await restartKubelet({ log: () => undefined });
    // The restarted kubelet starts with no healthy devices; only a plugin that
    // registers again (on the new kubelet.sock, from a fresh socket) brings them back.
    const ids = await waitFor(
      async () => {
        const current = await kubeletAllocatableIds(layout.podResourcesSocket, deviceResource);
        return current.length === 2 ? current : undefined;
      },
      { timeoutMs: 30_000, description: 'the restarted kubelet lists the device again' },
    );
    expect(ids).toEqual(before);
    console.info(
      `kubelet restart: old process stopped in ${restart.stoppedMs} ms; new one Ready after ${restart.readyMs} ms; device allocatable again ${Date.now() - restart.startedAt} ms after start`,
    );
    const since = Math.floor(restart.startedAt / 1_000) * 1_000;
    await waitNode((n) => {
      const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
      return (
        ready?.status === 'True' && new Date(ready.lastHeartbeatTime ?? 0).getTime() >= since && allocatable(n, deviceResource) === '2'
      );
    }, `Node status from the restarted kubelet with allocatable ${deviceResource}=2`);
    for (const name of ['pod-b', 'pod-c']) {
      const pod = await api().core.readNamespacedPod({ namespace: ns.name, name });
      expect(pod.status?.phase).toBe('Running');
      expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    }
    // While the kubelet was down the agent could not ask PodResources: it must
    // not have freed (even briefly) or deleted anything.
    const held = await waitDevice(ns.name, device, () => true, 'the Device');
    watch.stop();
    expect(heldSlots(held)).toEqual(['0', '1']);
    const changes = watch.events.filter((e) => e.object.metadata?.name === device && e.type !== 'ADDED');
    expect(changes.filter((e) => e.type === 'DELETED' || heldSlots(e.object as Device).join() !== '0,1')).toEqual([]);
  });

  it('deleting the pods frees the slots on the Device (reconciled against the real PodResources API)', async () => {
    await Promise.all([deletePod(ns.name, 'pod-b'), deletePod(ns.name, 'pod-c')]);
    const freed = await waitDevice(ns.name, device, (d) => heldSlots(d).length === 0, 'no slot held', 30_000);
    expect(freed.spec.slots ?? {}).toEqual({});
    await waitNode((n) => allocatable(n, discoveryResource) === '2', `allocatable ${discoveryResource}=2 again`);
  });

  it('a pod requesting the discovery resource (any device of it) runs after the restart', async () => {
    await createPod(ns.name, devicePod('pod-d', discoveryResource, SCRIPT));
    await waitPodRunning(ns.name, 'pod-d');
    await expectDeviceEnv('pod-d');
    await deletePod(ns.name, 'pod-d');
    await waitDevice(ns.name, device, (d) => heldSlots(d).length === 0, 'slot of pod-d freed');
  });

  it('a device going offline drops out of allocatable, and comes back when online again', async () => {
    await writeFile(availabilityFile, 'OFFLINE\n');
    await waitNode(
      (n) => (allocatable(n, deviceResource) ?? '0') === '0' && (allocatable(n, discoveryResource) ?? '0') === '0',
      `allocatable ${deviceResource} and ${discoveryResource} drop to 0`,
    );
    await writeFile(availabilityFile, 'online\n');
    await waitNode(
      (n) => allocatable(n, deviceResource) === '2' && allocatable(n, discoveryResource) === '2',
      'allocatable back to 2 when the device is online again',
    );
    agent?.assertRunning();
  });
});
