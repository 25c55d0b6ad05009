/**
 * Small Kubernetes helpers for the real-node bench (bench/measures/real-node.ts), taking a
 * KubeConfig: the e2e suite's own helpers (test/e2e/chart-support.ts, test/integration/
 * support.ts) import vitest and cannot run outside it. Every wait watches with a deadline;
 * the one poll is the kubelet's PodResources view, which has no watch.
 */
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import type { Device } from '../../api/schema.ts';
import { kubeletAllocatable } from '../../test/e2e/kubelet-view.ts';
import { watchSetUntil, watchUntil } from '../../test/e2e/watch.ts';

export { kubeletAllocatable };

export const GROUP = 'tether.dev';
export const VERSION = 'v1alpha1';
export const TETHER_CRDS = ['devicediscoveries.tether.dev', 'devices.tether.dev'] as const;

function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Runs `request`, treating the listed HTTP statuses as success (e.g. 404 on a delete). */
export async function tolerating(statuses: readonly number[], request: () => Promise<unknown>): Promise<void> {
  try {
    await request();
  } catch (error) {
    if (!statuses.includes(statusCode(error) ?? -1)) throw error;
  }
}

export function isPodReady(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp == null && (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Running with every container ready (a broker has no probes: ready = started). */
export function isPodRunning(pod: V1Pod): boolean {
  return (
    pod.metadata?.deletionTimestamp == null && pod.status?.phase === 'Running' && (pod.status.containerStatuses ?? []).every((c) => c.ready)
  );
}

/** Waits until no object of a cluster-scoped collection is named `name` (list, then watch). */
export async function waitGone(kc: KubeConfig, path: string, names: readonly string[], timeoutMs = 120_000): Promise<void> {
  await watchSetUntil(kc, {
    path,
    predicate: (objects) => !objects.some((o) => names.includes(o.metadata?.name ?? '')),
    timeoutMs,
    description: `${names.join(', ')} gone from ${path}`,
  });
}

/** Deletes the Tether CRDs (helm refuses to adopt the ones the e2e control plane applied). */
export async function deleteTetherCrds(kc: KubeConfig): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const name of TETHER_CRDS) await tolerating([404], () => ext.deleteCustomResourceDefinition({ name }));
  await waitGone(kc, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', TETHER_CRDS);
}

export async function createNamespace(kc: KubeConfig, name: string, labels: Record<string, string> = {}): Promise<void> {
  await tolerating([409], () => kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels } } }));
}

/** Deletes a namespace and waits until it is gone (its Devices, brokers and Events with it). */
export async function deleteNamespace(kc: KubeConfig, name: string, timeoutMs = 180_000): Promise<void> {
  await tolerating([404], () => kc.makeApiClient(CoreV1Api).deleteNamespace({ name }));
  await waitGone(kc, '/api/v1/namespaces', [name], timeoutMs);
}

export async function createDiscovery(kc: KubeConfig, namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: 'devicediscoveries',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'DeviceDiscovery', metadata: { name }, spec },
  });
}

export async function listDevices(kc: KubeConfig, namespace: string): Promise<Device[]> {
  const list = (await kc
    .makeApiClient(CustomObjectsApi)
    .listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'devices' })) as { items: Device[] };
  return list.items;
}

export function brokerSelector(discovery: string): string {
  return `tether.dev/component=broker,tether.dev/discovery=${discovery}`;
}

/** Waits until the discovery has exactly `count` live brokers, all Running; `at`: when the watch saw it. */
export async function waitBrokers(
  kc: KubeConfig,
  namespace: string,
  discovery: string,
  count: number,
  timeoutMs = 120_000,
): Promise<{ pods: V1Pod[]; at: number }> {
  const { objects, at } = await watchSetUntil<V1Pod>(kc, {
    path: `/api/v1/namespaces/${namespace}/pods`,
    labelSelector: brokerSelector(discovery),
    predicate: (pods) => {
      const live = pods.filter((p) => p.metadata?.deletionTimestamp == null);
      return count === 0 ? pods.length === 0 : live.length === count && live.every(isPodRunning);
    },
    timeoutMs,
    description: `${count} Running broker(s) of ${namespace}/${discovery}`,
    describe: (pods) =>
      pods
        .map((p) => `${p.metadata?.name ?? '?'}:${p.status?.phase ?? '?'}${p.metadata?.deletionTimestamp ? '(terminating)' : ''}`)
        .join(', ') || 'none',
  });
  return { pods: objects.filter((p) => p.metadata?.deletionTimestamp == null), at };
}

/** Watches a collection from `resourceVersion`; resolves with the arrival time of the first object `predicate` accepts. */
export async function firstEventAt<T extends KubernetesObject>(
  kc: KubeConfig,
  options: {
    path: string;
    labelSelector?: string;
    fieldSelector?: string;
    resourceVersion?: string;
    predicate: (object: T, type: string) => boolean;
    description: string;
    timeoutMs?: number;
  },
): Promise<number> {
  let at = 0;
  await watchUntil<T>(kc, {
    ...options,
    timeoutMs: options.timeoutMs ?? 180_000,
    predicate: (object, type) => {
      if (!options.predicate(object, type)) return false;
      at = Date.now();
      return true;
    },
  });
  return at;
}

/**
 * Polls the kubelet's PodResources view (it has no watch) every 50 ms until `accept` takes it,
 * within a deadline; resolves with the time it did.
 */
export async function pollKubeletUntil(
  podResourcesSocket: string,
  accept: (ids: Map<string, string[]>) => boolean,
  description: string,
  timeoutMs = 60_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const ids = await kubeletAllocatable(podResourcesSocket).catch((error: unknown) => {
      last = (error as Error).message;
      return undefined;
    });
    if (ids !== undefined && accept(ids)) return Date.now();
    if (ids !== undefined) last = JSON.stringify(Object.fromEntries(ids));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}; kubelet last listed ${last.slice(0, 2_000)}`);
}

/** One write Tether made, as a watch event showed it. */
export interface ObservedWrite {
  readonly at: number;
  /** e.g. `Device MODIFIED status`, `broker created`, `Event Normal/BrokerCreated`. */
  readonly what: string;
  readonly name: string;
}

type Classify = (type: string, object: KubernetesObject) => string | undefined;

/**
 * Records the writes Tether makes, cluster-wide, from `start()`: every Device watch event
 * (ADDED/MODIFIED/DELETED, spec, status or metadata), broker Pods created or deleted (a
 * deletion counted once, when the DELETE lands: deletionTimestamp or gone), and core Events
 * from Tether's agent or controller. A write that changes nothing makes no watch event and
 * is not counted.
 */
export class WriteRecorder {
  readonly writes: ObservedWrite[] = [];
  /** Watch errors (the counts may be short if any). */
  readonly errors: string[] = [];
  readonly #kc: KubeConfig;
  readonly #controllers: AbortController[] = [];
  #stopped = false;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
  }

  async start(): Promise<void> {
    const core = this.#kc.makeApiClient(CoreV1Api);
    const custom = this.#kc.makeApiClient(CustomObjectsApi);
    const devices = (await custom.listCustomObjectForAllNamespaces({ group: GROUP, version: VERSION, resourcePlural: 'devices' })) as {
      items: Device[];
      metadata?: { resourceVersion?: string };
    };
    const previous = new Map(devices.items.map((d) => [d.metadata?.uid ?? '', d]));
    const pods = await core.listPodForAllNamespaces({ labelSelector: 'tether.dev/component=broker' });
    const deleting = new Set(pods.items.filter((p) => p.metadata?.deletionTimestamp != null).map((p) => p.metadata?.uid ?? ''));
    const events = await core.listEventForAllNamespaces({});
    await this.#watch(`/apis/${GROUP}/${VERSION}/devices`, undefined, devices.metadata?.resourceVersion, (type, object) => {
      const device = object as Device;
      const uid = device.metadata?.uid ?? '';
      const before = previous.get(uid);
      if (type === 'DELETED') previous.delete(uid);
      else previous.set(uid, device);
      return `Device ${type}${type === 'MODIFIED' ? ` ${changedParts(before, device)}` : ''}`;
    });
    await this.#watch('/api/v1/pods', 'tether.dev/component=broker', pods.metadata?.resourceVersion, (type, object) => {
      const uid = object.metadata?.uid ?? '';
      if (type === 'ADDED') return 'broker created';
      if (deleting.has(uid) || (type !== 'DELETED' && object.metadata?.deletionTimestamp == null)) return undefined;
      deleting.add(uid);
      return 'broker deleted';
    });
    await this.#watch('/api/v1/events', undefined, events.metadata?.resourceVersion, (type, object) => {
      const event = object as { reportingComponent?: string; source?: { component?: string }; type?: string; reason?: string };
      const fromTether = (event.reportingComponent ?? '').startsWith('tether.dev/') || (event.source?.component ?? '').startsWith('tether');
      return fromTether && type !== 'DELETED' ? `Event ${event.type ?? '?'}/${event.reason ?? '?'}` : undefined;
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const controller of this.#controllers) controller.abort();
  }

  /** Writes observed in [from, to]. */
  between(from: number, to: number): ObservedWrite[] {
    return this.writes.filter((w) => w.at >= from && w.at <= to);
  }

  async #watch(path: string, labelSelector: string | undefined, resourceVersion: string | undefined, classify: Classify): Promise<void> {
    const watch = new Watch(this.#kc);
    let version = resourceVersion;
    const connect = async (): Promise<void> => {
      if (this.#stopped) return;
      const reconnect = (): void => {
        if (!this.#stopped) setTimeout(() => void connect().catch(reconnect), 200);
      };
      const controller = await watch.watch(
        path,
        { allowWatchBookmarks: true, resourceVersion: version, ...(labelSelector === undefined ? {} : { labelSelector }) },
        (type: string, object: KubernetesObject) => {
          if (type === 'ERROR') {
            // 410 Gone: replaying from scratch would count every object again; report instead.
            this.errors.push(`watch ${path}: ${JSON.stringify(object).slice(0, 300)}`);
            return;
          }
          version = object.metadata?.resourceVersion ?? version;
          if (type === 'BOOKMARK') return;
          const what = classify(type, object);
          if (what !== undefined)
            this.writes.push({ at: Date.now(), what, name: `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}` });
        },
        reconnect,
      );
      this.#controllers.push(controller);
    };
    await connect();
  }
}

function changedParts(before: Device | undefined, after: Device): string {
  if (before === undefined) return 'unknown';
  const parts: string[] = [];
  if (JSON.stringify(before.spec) !== JSON.stringify(after.spec)) parts.push('spec');
  if (JSON.stringify(before.status) !== JSON.stringify(after.status)) parts.push('status');
  const meta = (d: Device): string =>
    JSON.stringify({
      labels: d.metadata?.labels,
      annotations: d.metadata?.annotations,
      finalizers: d.metadata?.finalizers,
      ownerReferences: d.metadata?.ownerReferences,
    });
  if (meta(before) !== meta(after)) parts.push('metadata');
  return parts.join('+') || 'nothing visible';
}
