/**
 * Shared pieces of the fault suite: the controller in-process under the chart's RBAC, fake
 * Ready Nodes (no kubelet runs here), debug-echo discoveries with an availability file each,
 * state probes (Devices, broker Pods, slots) and the figure printer. Assertions in the cases
 * are on the state of the world; timings are printed, never asserted.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { inject } from 'vitest';
import { deviceName } from '../../api/names.ts';
import type { Device } from '../../api/schema.ts';
import { DEFAULT_CONFIG, type ControllerConfig } from '../../controller/runtime/config.ts';
import { startController, type Controller } from '../../controller/main.ts';
import { KubeClient, type RequestCounter } from '../../kube/client.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { controllerServiceAccount, FakeNodes } from '../support/fake-cluster.ts';
import { API_VERSION, loadKubeConfig, uniqueSuffix, waitFor } from '../integration/support.ts';

export { waitFor };

/** The fault control plane's cache dir (provided by test/faults/global-setup.ts). */
export function cacheDir(): string {
  return inject('faultCacheDir');
}

/** Seconds of the apiserver + etcd outage (`TETHER_FAULT_OUTAGE_S`, default 60). */
export function outageSeconds(): number {
  return Number(process.env.TETHER_FAULT_OUTAGE_S ?? 60);
}

/** Prints one figure line, `faults: <text>`, to the test output. */
export function figure(text: string): void {
  process.stdout.write(`faults: ${text}\n`);
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export const podBroker = { pod: { spec: { containers: [{ name: 'broker', image: 'example.com/broker:1' }] } } };

/** A cluster admin client plus the namespace the case runs in. */
export interface Scene {
  readonly admin: Api;
  readonly namespace: string;
  readonly nodes: FakeNodes;
  readonly dir: string;
  readonly cleanups: (() => Promise<unknown>)[];
}

export async function openScene(namespace: string): Promise<Scene> {
  const admin = new Api(new KubeClient(loadKubeConfig()));
  const dir = await mkdtemp(join(tmpdir(), 'tfault-'));
  const scene: Scene = { admin, namespace, nodes: new FakeNodes(admin), dir, cleanups: [] };
  scene.cleanups.push(
    () => rm(dir, { recursive: true, force: true }),
    () => scene.nodes.close(),
  );
  return scene;
}

export async function closeScene(scene: Scene | undefined): Promise<void> {
  if (scene === undefined) return;
  for (const cleanup of scene.cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
}

/** The controller in-process under a ServiceAccount bound to exactly the chart's rules. */
export async function startTestController(
  scene: Scene,
  log: Logger,
  counter?: RequestCounter,
  config: Partial<ControllerConfig> = {},
): Promise<Controller> {
  const account = await controllerServiceAccount(loadKubeConfig(), scene.admin, scene.namespace, `tether-controller-${uniqueSuffix()}`);
  scene.cleanups.push(account.cleanup);
  const controller = await startController(
    { ...DEFAULT_CONFIG, namespace: scene.namespace, httpHost: '127.0.0.1', httpPort: -1, statusBatchMs: 50, ...config },
    { kubeConfig: account.kubeConfig, log, ...(counter === undefined ? {} : { counter }) },
  );
  scene.cleanups.push(() => controller.stop());
  await waitFor(() => controller.isReady(), { description: 'controller caches synced' });
  return controller;
}

/** A debug-echo discovery whose devices follow `availabilityFile` (returned). */
export async function createEchoDiscovery(
  scene: Scene,
  name: string,
  options: {
    descriptions: string[];
    online?: boolean;
    graceS?: number;
    capacity?: number;
    broker?: boolean;
    annotations?: Record<string, string>;
  },
): Promise<string> {
  const file = join(scene.dir, `${name}.availability`);
  await writeFile(file, options.online === false ? 'OFFLINE' : 'ONLINE');
  const spec = {
    handler: 'debug-echo',
    details: { descriptions: options.descriptions, availabilityFile: file },
    offlineGracePeriodSeconds: options.graceS ?? 2,
    capacity: options.capacity ?? 1,
    ...(options.broker === false ? {} : { broker: podBroker }),
  };
  const body = {
    apiVersion: API_VERSION,
    kind: 'DeviceDiscovery',
    metadata: { name, namespace: scene.namespace, annotations: options.annotations ?? {} },
    spec,
  };
  await scene.admin.create(RESOURCES.deviceDiscoveries, scene.namespace, body as never);
  return file;
}

export function setOnline(file: string, online: boolean): Promise<void> {
  return writeFile(file, online ? 'ONLINE' : 'OFFLINE');
}

/** The Device name the agent of `node` gives a (not shared) debug-echo device. */
export function echoDeviceName(namespace: string, discovery: string, deviceId: string, node: string): string {
  return deviceName({ namespace, discovery, deviceId, node });
}

export async function listDevices(scene: Scene): Promise<Device[]> {
  return (await scene.admin.list<Device>(RESOURCES.devices, { namespace: scene.namespace })).items;
}

/** Broker Pods (owned by a Device) not being deleted, by device name. */
export async function liveBrokers(scene: Scene): Promise<Map<string, V1Pod[]>> {
  const list = await scene.admin.list<V1Pod>(RESOURCES.pods, { namespace: scene.namespace, labelSelector: 'tether.dev/component=broker' });
  const byDevice = new Map<string, V1Pod[]>();
  for (const pod of list.items) {
    if (pod.metadata?.deletionTimestamp != null) continue;
    const device = pod.metadata?.labels?.['tether.dev/device'] ?? '';
    byDevice.set(device, [...(byDevice.get(device) ?? []), pod]);
  }
  return byDevice;
}

/** This node's state in a Device's status (`Online`/`Offline`), if any. */
export function nodeState(device: Device, node: string): string | undefined {
  return device.status?.nodeStates?.find((s) => s.node === node)?.state;
}

/** Requests that change something (not list/watch/get), from a counter's snapshot. */
export function writesOf(snapshot: Record<string, number>): number {
  return Object.entries(snapshot)
    .filter(([key]) => !/^(list|watch|get) /.test(key))
    .reduce((sum, [, n]) => sum + n, 0);
}

/** The difference of two counter snapshots (after − before), non-zero entries only. */
export function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, n] of Object.entries(after)) if (n - (before[key] ?? 0) !== 0) out[key] = n - (before[key] ?? 0);
  return out;
}
