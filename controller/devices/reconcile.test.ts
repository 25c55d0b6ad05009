/**
 * The Device reconciler against an in-memory world: the caches show what the world holds, the
 * Api changes it (with the apiserver's answers: 404, 409, graceful Pod deletion), and the tests
 * assert the world after each reconcile — brokers, Services, status, events — not the calls.
 */
import type { WorkloadCaches } from '../workloads.ts';
import { ApiException, type V1Job, type V1Node, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { deviceResourceName } from '../../api/names.ts';
import {
  DEVICE_LABEL,
  EVICT_ON_OFFLINE_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  NODE_ANNOTATION,
  RECREATIONS_ANNOTATION,
  brokerName,
  deviceServiceName,
} from '../../api/labels.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import type { KubeObject, ResourceType } from '../../kube/client.ts';
import type { Api, DeleteOptions } from '../../kube/resources.ts';
import { DEVICE, DEVICE_UID, device, discovery } from '../../test/support/broker-fixtures.ts';
import { BY_DISCOVERY, BY_NODE, brokerIndexers, newSharedState, type Caches, type ControllerContext } from '../context.ts';
import { nodesReferenced } from '../nodes/nodes.ts';
import { DEFAULT_CONFIG, type ControllerConfig } from '../runtime/config.ts';
import type { EventInput, EventRecorder } from '../runtime/events.ts';
import type { ControllerMetrics } from '../runtime/metrics.ts';
import { RetryLater, reconcileDevice } from './reconcile.ts';

const KEY = `ns/${DEVICE}`;
const RESOURCE = deviceResourceName(DEVICE);
const never = new AbortController().signal;

type Plural = 'devices' | 'devicediscoveries' | 'pods' | 'jobs' | 'services' | 'nodes' | 'deviceclasses' | 'resourceclaimtemplates';

const keyOf = (namespace: string | undefined, name: string): string =>
  namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;

const apiError = (code: number, message: string): ApiException<string> => new ApiException(code, message, message, {});

/**
 * What the apiserver holds, and the controller context that reads it through caches and
 * changes it through the Api. Objects in `unseen` exist but are not in the caches yet.
 */
class World {
  readonly #objects = new Map<Plural, Map<string, KubeObject>>();
  readonly unseen = new Set<string>();
  readonly events: EventInput[] = [];
  readonly evicted: string[] = [];
  readonly enqueued: string[] = [];
  /** Writes that reached the world (creates, deletes, applies, evictions). */
  writes = 0;
  readonly #failures: { verb: string; plural: string; code: number }[] = [];
  #serial = 0;
  readonly state = newSharedState();
  readonly config: ControllerConfig;

  constructor(config: Partial<ControllerConfig> = {}) {
    this.config = { ...DEFAULT_CONFIG, statusBatchMs: 0, ...config };
    for (const p of [
      'devices',
      'devicediscoveries',
      'pods',
      'jobs',
      'services',
      'nodes',
      'deviceclasses',
      'resourceclaimtemplates',
    ] as const)
      this.#objects.set(p, new Map());
  }

  /** Stores `object` as the apiserver would (uid, resourceVersion, creationTimestamp). */
  put<T extends KubeObject>(plural: Plural, object: T): T {
    const stored = structuredClone(object) as T & { metadata: NonNullable<KubeObject['metadata']> };
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.#serial) };
    stored.metadata.uid ??= `uid-${this.#serial}`;
    (stored.metadata as { creationTimestamp?: Date }).creationTimestamp ??= new Date();
    this.#objects.get(plural)!.set(keyOf(stored.metadata.namespace, stored.metadata.name ?? ''), stored);
    return structuredClone(stored);
  }

  get<T extends KubeObject>(plural: Plural, namespace: string | undefined, name: string): T | undefined {
    return this.#objects.get(plural)!.get(keyOf(namespace, name)) as T | undefined;
  }

  all<T extends KubeObject>(plural: Plural): T[] {
    return [...this.#objects.get(plural)!.values()] as T[];
  }

  remove(plural: Plural, namespace: string | undefined, name: string): void {
    this.#objects.get(plural)!.delete(keyOf(namespace, name));
  }

  /** The next `verb` on `plural` fails with `code`. */
  failNext(verb: 'create' | 'delete' | 'apply' | 'evict', plural: string, code: number): void {
    this.#failures.push({ verb, plural, code });
  }

  /** Broker Pods not being deleted, by name. */
  liveBrokers(): V1Pod[] {
    return this.all<V1Pod>('pods')
      .filter((p) => p.metadata?.labels?.[DEVICE_LABEL] !== undefined && p.metadata.deletionTimestamp == null)
      .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  }

  /** What a kubelet does for terminating Pods: finishes their deletion. */
  finishDeletions(): void {
    for (const pod of this.all<V1Pod>('pods'))
      if (pod.metadata?.deletionTimestamp != null) this.remove('pods', pod.metadata.namespace, pod.metadata.name ?? '');
  }

  /** Sets a Pod's status as its kubelet would. */
  setPodStatus(name: string, status: V1Pod['status']): void {
    const pod = this.get<V1Pod>('pods', 'ns', name);
    if (pod === undefined) throw new Error(`no pod ${name}`);
    pod.status = status;
  }

  reasons(): string[] {
    return this.events.map((e) => e.reason);
  }

  context(): ControllerContext {
    // As controller/main.ts builds them: broker caches hold only managed objects.
    const managed = (o: KubeObject): boolean => o.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
    const deviceIndexers = {
      [BY_DISCOVERY]: (d: Device) => [`${d.metadata.namespace ?? ''}/${d.spec.discovery}`],
      [BY_NODE]: (d: Device) => nodesReferenced(d),
    };
    const cache = (
      plural: Plural,
      indexers: Record<string, (o: never) => string[]> = {},
      keep: (o: KubeObject) => boolean = () => true,
    ): unknown => {
      const visible = (): KubeObject[] =>
        this.all(plural).filter((o) => keep(o) && !this.unseen.has(`${plural}/${keyOf(o.metadata?.namespace, o.metadata?.name ?? '')}`));
      return {
        get: (namespace: string | undefined, name: string) =>
          visible().find((o) => keyOf(o.metadata?.namespace, o.metadata?.name ?? '') === keyOf(namespace, name)),
        list: visible,
        size: () => visible().length,
        byIndex: (index: string, value: string) => visible().filter((o) => indexers[index]?.(o as never).includes(value) ?? false),
      };
    };
    const caches = {
      discoveries: cache('devicediscoveries'),
      devices: cache('devices', deviceIndexers),
      pods: cache('pods', brokerIndexers, managed),
      jobs: cache('jobs', brokerIndexers, managed),
      services: cache('services', brokerIndexers, managed),
      nodes: cache('nodes'),
      deviceClasses: cache('deviceclasses', {}, managed),
      claimTemplates: cache('resourceclaimtemplates', {}, managed),
    } as unknown as Caches;
    const counter = { inc: () => undefined };
    const workloads = { ensure: () => ({ state: 'pending' }), typeOf: () => undefined, byIndex: () => [], list: () => [] };
    return {
      caches,
      workloads: workloads as unknown as WorkloadCaches,
      api: this.#api() as unknown as Api,
      events: { record: (e: EventInput) => this.events.push(e) } as unknown as EventRecorder,
      metrics: { brokerActions: counter, nodeReleases: counter } as unknown as ControllerMetrics,
      log: pino({ level: 'silent' }),
      config: this.config,
      state: this.state,
      enqueueDiscovery: (key) => this.enqueued.push(key),
    };
  }

  reconcile(key = KEY): ReturnType<typeof reconcileDevice> {
    return reconcileDevice(this.context(), key, never);
  }

  #fail(verb: string, plural: string): void {
    const i = this.#failures.findIndex((f) => f.verb === verb && f.plural === plural);
    if (i < 0) return;
    const [failure] = this.#failures.splice(i, 1);
    throw apiError(failure!.code, `injected ${verb} ${plural} failure`);
  }

  #api(): Partial<Record<keyof Api, unknown>> {
    return {
      create: (type: ResourceType, namespace: string | undefined, body: KubeObject) => {
        this.#fail('create', type.plural);
        const plural = type.plural as Plural;
        const name = body.metadata?.name ?? '';
        if (this.get(plural, namespace, name) !== undefined) return Promise.reject(apiError(409, `${type.plural} ${name} already exists`));
        this.writes++;
        const object = structuredClone(body) as KubeObject & { status?: unknown };
        if (plural === 'pods') object.status = { phase: 'Pending' };
        return Promise.resolve(this.put(plural, object));
      },
      delete: (type: ResourceType, namespace: string | undefined, name: string, options: DeleteOptions = {}) => {
        this.#fail('delete', type.plural);
        const plural = type.plural as Plural;
        const object = this.get(plural, namespace, name);
        if (object === undefined) return Promise.reject(apiError(404, `${type.plural} ${name} not found`));
        const { uid, resourceVersion } = options.preconditions ?? {};
        if (
          (uid !== undefined && uid !== object.metadata?.uid) ||
          (resourceVersion !== undefined && resourceVersion !== object.metadata?.resourceVersion)
        ) {
          return Promise.reject(apiError(409, `precondition failed for ${name}`));
        }
        this.writes++;
        const phase = (object as V1Pod).status?.phase;
        // A running Pod terminates gracefully (its name stays taken); a finished one goes at once.
        if (plural === 'pods' && phase !== 'Failed' && phase !== 'Succeeded') {
          (object.metadata as { deletionTimestamp?: Date }).deletionTimestamp = new Date();
        } else this.remove(plural, namespace, name);
        return Promise.resolve();
      },
      apply: (type: ResourceType, body: KubeObject & { status?: object }, options: { fieldManager: string; subresource?: 'status' }) => {
        this.#fail('apply', type.plural);
        const plural = type.plural as Plural;
        const namespace = body.metadata?.namespace;
        const name = body.metadata?.name ?? '';
        const existing = this.get<KubeObject & { status?: object }>(plural, namespace, name);
        this.writes++;
        if (options.subresource === 'status') {
          if (existing === undefined) return Promise.reject(apiError(404, `${type.plural} ${name} not found`));
          existing.status = { ...(existing.status ?? {}), ...body.status };
          return Promise.resolve(structuredClone(existing));
        }
        return Promise.resolve(this.put(plural, { ...body, metadata: { ...body.metadata, uid: existing?.metadata?.uid } }));
      },
      list: (type: ResourceType, options: { namespace?: string; fieldSelector?: string } = {}) => {
        const items = this.all<V1Pod>(type.plural as Plural).filter(
          (o) => (options.namespace === undefined || o.metadata?.namespace === options.namespace) && selects(options.fieldSelector, o),
        );
        return Promise.resolve({ metadata: {}, items: structuredClone(items) });
      },
      evict: (namespace: string, name: string) => {
        this.#fail('evict', 'pods');
        if (this.get('pods', namespace, name) === undefined) return Promise.reject(apiError(404, `pod ${name} not found`));
        this.writes++;
        this.evicted.push(`${namespace}/${name}`);
        this.remove('pods', namespace, name);
        return Promise.resolve();
      },
    };
  }
}

/** The Pod field selectors the apiserver supports that the controller uses: `a=b`, `a!=b`, ANDed. */
function selects(selector: string | undefined, pod: V1Pod): boolean {
  const fields: Record<string, string | undefined> = {
    'spec.nodeName': pod.spec?.nodeName,
    'status.phase': pod.status?.phase,
    'metadata.name': pod.metadata?.name,
  };
  return (selector ?? '')
    .split(',')
    .filter((term) => term !== '')
    .every((term) => {
      const [, field = '', not, value = ''] = /^([^!=]+)(!?)=(.*)$/.exec(term) ?? [];
      if (!(field in fields)) throw new Error(`field selector ${term} not supported by the fake`);
      return (fields[field] === value) !== (not === '!');
    });
}

function readyNode(name: string): V1Node {
  return { metadata: { name }, status: { conditions: [{ type: 'Ready', status: 'True' }] } };
}

/** A world with Ready nodes, the `cams` discovery and the Device seen by `nodes`. */
function world(
  nodes: string[],
  options: { capacity?: number; discovery?: DeviceDiscovery; config?: Partial<ControllerConfig> } = {},
): World {
  const w = new World(options.config);
  for (const n of ['a', 'b', 'c']) w.put('nodes', readyNode(n));
  w.put('devicediscoveries', options.discovery ?? discovery());
  w.put('devices', device(nodes, options.capacity ?? 2));
  return w;
}

const nodeOf = (pod: V1Pod): string | undefined => pod.metadata?.annotations?.[NODE_ANNOTATION];
const brokerNodes = (w: World): string[] =>
  w
    .liveBrokers()
    .map(nodeOf)
    .filter((n): n is string => n !== undefined)
    .sort();

function updateDevice(w: World, change: (d: Device) => void): void {
  const d = structuredClone(w.get<Device>('devices', 'ns', DEVICE)!);
  change(d);
  w.put('devices', d);
}

/** Reconciles until a pass writes nothing (what the queue does with the events it causes). */
async function settle(w: World, finishDeletions = true): Promise<void> {
  for (let pass = 0; pass < 6; pass++) {
    const before = w.writes;
    await w.reconcile();
    if (finishDeletions) w.finishDeletions();
    if (w.writes === before) return;
  }
  throw new Error('the reconciler kept writing');
}

describe('brokers', () => {
  it('creates one broker Pod per node that sees the device: pinned there, owned by the Device, using one slot', async () => {
    const w = world(['a', 'b']);
    await w.reconcile();
    const pods = w.liveBrokers();
    expect(pods.map((p) => p.metadata?.name).sort()).toEqual([brokerName(DEVICE, 'a'), brokerName(DEVICE, 'b')].sort());
    for (const pod of pods) {
      const node = nodeOf(pod)!;
      expect(pod.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'Device', uid: DEVICE_UID, controller: true })]);
      expect(pod.spec?.containers[0]?.resources?.limits).toEqual({ [RESOURCE]: '1' });
      expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
        { matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] },
      ]);
    }
    expect(w.reasons()).toEqual(['BrokerCreated', 'BrokerCreated']);
    expect(w.enqueued).toContain('ns/cams');
  });

  it('is idempotent: with the world unchanged, a second reconcile writes nothing', async () => {
    const w = world(['a', 'b']);
    await w.reconcile();
    const uids = w.liveBrokers().map((p) => p.metadata?.uid);
    const writes = w.writes;
    await w.reconcile();
    expect(w.writes).toBe(writes);
    expect(w.liveBrokers().map((p) => p.metadata?.uid)).toEqual(uids);
  });

  it('creates Jobs when the template is a Job', async () => {
    const w = world(['a'], {
      discovery: discovery({
        broker: { job: { spec: { template: { spec: { containers: [{ name: 'once', image: 'j:1' }], restartPolicy: 'Never' } } } } },
      }),
    });
    await w.reconcile();
    expect(w.liveBrokers()).toEqual([]);
    const jobs = w.all<V1Job>('jobs');
    expect(jobs.map((j) => j.metadata?.name)).toEqual([brokerName(DEVICE, 'a')]);
    expect(jobs[0]?.spec?.template.spec?.containers[0]?.resources?.limits).toEqual({ [RESOURCE]: '1' });
  });

  it.each([
    { what: 'more nodes than slots', nodes: ['a', 'b', 'c'], capacity: 2, brokers: 2 },
    { what: 'one slot', nodes: ['a', 'b'], capacity: 1, brokers: 1 },
    { what: 'fewer nodes than slots', nodes: ['a'], capacity: 3, brokers: 1 },
  ])('never more brokers than slots: $what', async ({ nodes, capacity, brokers }) => {
    const w = world(nodes, { capacity });
    await settle(w);
    expect(w.liveBrokers()).toHaveLength(brokers);
    expect(brokerNodes(w).every((n) => nodes.includes(n))).toBe(true);
  });

  it('gives no broker to a node that is not Ready, or cordoned', async () => {
    const w = world(['a', 'b', 'c'], { capacity: 3 });
    w.put('nodes', {
      metadata: { name: 'b' },
      status: { conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: new Date() }] },
    });
    w.put('nodes', { metadata: { name: 'c' }, spec: { unschedulable: true }, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
    await settle(w);
    expect(brokerNodes(w)).toEqual(['a']);
  });

  it('deletes the broker of a node that no longer sees the device', async () => {
    const w = world(['a', 'b']);
    await settle(w);
    updateDevice(w, (d) => (d.spec.nodes = ['a']));
    await w.reconcile();
    expect(brokerNodes(w)).toEqual(['a']);
    const deleted = w.events.find((e) => e.reason === 'BrokerDeleted');
    expect(deleted?.regarding.name).toBe(brokerName(DEVICE, 'b'));
    expect(deleted?.note).toContain('no longer gets a broker');
  });

  it('deletes surplus brokers when the capacity drops', async () => {
    const w = world(['a', 'b', 'c'], { capacity: 3 });
    await settle(w);
    expect(w.liveBrokers()).toHaveLength(3);
    updateDevice(w, (d) => (d.spec.capacity = 1));
    await settle(w);
    expect(w.liveBrokers()).toHaveLength(1);
  });

  it('restores a broker deleted behind its back, under the same name', async () => {
    const w = world(['a']);
    await settle(w);
    const [before] = w.liveBrokers();
    w.remove('pods', 'ns', before!.metadata!.name!);
    await w.reconcile();
    const [after] = w.liveBrokers();
    expect(after?.metadata?.name).toBe(before?.metadata?.name);
    expect(after?.metadata?.uid).not.toBe(before?.metadata?.uid);
  });

  it('waits for a broker of the same name to finish terminating before creating its replacement', async () => {
    const w = world(['a']);
    await settle(w);
    const name = w.liveBrokers()[0]!.metadata!.name!;
    updateDevice(w, (d) => (d.spec.nodes = []));
    await w.reconcile(); // deleting: the Pod terminates gracefully
    updateDevice(w, (d) => (d.spec.nodes = ['a']));
    await w.reconcile();
    expect(w.liveBrokers()).toEqual([]); // the name is still taken
    w.finishDeletions();
    await w.reconcile();
    expect(w.liveBrokers().map((p) => p.metadata?.name)).toEqual([name]);
  });

  it('replaces brokers owned by an earlier Device of the same name', async () => {
    const w = world(['a']);
    await settle(w);
    const old = w.liveBrokers()[0]!;
    // The Device is deleted and re-created (new uid) while the controller was away.
    updateDevice(w, (d) => (d.metadata.uid = 'device-uid-2'));
    await settle(w);
    const [current] = w.liveBrokers();
    expect(current?.metadata?.uid).not.toBe(old.metadata?.uid);
    expect(current?.metadata?.ownerReferences?.[0]?.uid).toBe('device-uid-2');
  });

  it('recreates a failed broker after its backoff, counting the recreation', async () => {
    const w = world(['a']);
    await settle(w);
    const name = w.liveBrokers()[0]!.metadata!.name!;
    const failed = (at: Date): V1Pod['status'] => ({
      phase: 'Failed',
      containerStatuses: [
        {
          name: 'broker',
          image: 'b:1',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 1, reason: 'Error', finishedAt: at } },
        },
      ],
    });

    w.setPodStatus(name, failed(new Date()));
    const result = await w.reconcile();
    expect(w.get<V1Pod>('pods', 'ns', name)?.status?.phase).toBe('Failed'); // kept while backing off
    expect(result.requeueAfterMs).toBeGreaterThan(DEFAULT_CONFIG.brokerBackoff.baseMs - 1_000);
    expect(result.requeueAfterMs).toBeLessThanOrEqual(DEFAULT_CONFIG.brokerBackoff.baseMs);
    expect(w.reasons()).toContain('BrokerFailed');

    // The backoff runs from when the controller first saw the failure: move the clock past it.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + DEFAULT_CONFIG.brokerBackoff.baseMs + 1_000 });
    try {
      await w.reconcile();
    } finally {
      vi.useRealTimers();
    }
    const [replacement] = w.liveBrokers();
    expect(replacement?.metadata?.name).toBe(name);
    expect(replacement?.status?.phase).toBe('Pending');
    expect(replacement?.metadata?.annotations?.[RECREATIONS_ANNOTATION]).toBe('1');
  });

  it('gives a lost node no broker, and leaves entries its agent does not hold as they are', async () => {
    const w = world(['a', 'gone']); // no Node 'gone': deleted, so lost at once
    await settle(w);
    expect(brokerNodes(w)).toEqual(['a']);
    expect(w.reasons()).toContain('NodeNotReleased');
    expect(w.get<Device>('devices', 'ns', DEVICE)?.spec.nodes).toEqual(['a', 'gone']);
    expect(w.state.unreleasable.has(`${DEVICE_UID}/gone`)).toBe(true);
  });

  it('creates nothing, and deletes the brokers, when the discovery is gone', async () => {
    const w = world(['a']);
    await settle(w);
    w.remove('devicediscoveries', 'ns', 'cams');
    await settle(w);
    expect(w.liveBrokers()).toEqual([]);
    expect(w.get<Device>('devices', 'ns', DEVICE)?.status?.conditions?.[0]).toMatchObject({ type: 'BrokersReady', status: 'False' });
  });
});

describe('errors', () => {
  it('throws RetryLater when a broker name is taken by an object the cache does not show yet', async () => {
    const w = world(['a']);
    w.put('pods', { metadata: { name: brokerName(DEVICE, 'a'), namespace: 'ns' } });
    w.unseen.add(`pods/ns/${brokerName(DEVICE, 'a')}`);
    await expect(w.reconcile()).rejects.toBeInstanceOf(RetryLater);
  });

  it('stops creating from a template the apiserver refuses, until the template changes', async () => {
    const w = world(['a', 'b']);
    w.failNext('create', 'pods', 422);
    await w.reconcile();
    expect(w.liveBrokers()).toEqual([]);
    expect(w.reasons()).toContain('InvalidBrokerTemplate');
    expect(w.get<Device>('devices', 'ns', DEVICE)?.status?.conditions?.[0]).toMatchObject({ status: 'False', reason: 'InvalidTemplate' });
    await w.reconcile();
    expect(w.liveBrokers()).toEqual([]); // no retry of the same template

    w.put('devicediscoveries', discovery({ broker: { pod: { spec: { containers: [{ name: 'broker', image: 'b:2' }] } } } }));
    await w.reconcile();
    expect(w.liveBrokers()).toHaveLength(2);
  });

  it('throws other API errors with the cause, for the queue to retry', async () => {
    const w = world(['a']);
    w.failNext('create', 'pods', 500);
    const error = await w.reconcile().catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(RetryLater);
    expect((error as Error).message).toBe(`creating broker Pod ns/${brokerName(DEVICE, 'a')}`);
    expect(((error as Error).cause as ApiException<string>).code).toBe(500);
    await w.reconcile();
    expect(w.liveBrokers()).toHaveLength(1);
  });
});

describe('Service and status', () => {
  const withService = (): DeviceDiscovery => discovery({ deviceService: { type: 'ClusterIP', ports: [{ name: 'rtsp', port: 554 }] } });

  it('applies the device Service while brokers exist and deletes it when none remain', async () => {
    const w = world(['a'], { discovery: withService() });
    await w.reconcile();
    const service = w.get<V1Service>('services', 'ns', deviceServiceName(DEVICE));
    expect(service?.spec?.selector).toEqual({ 'tether.dev/component': 'broker', 'tether.dev/device': DEVICE });
    updateDevice(w, (d) => (d.spec.nodes = []));
    await settle(w);
    expect(w.get('services', 'ns', deviceServiceName(DEVICE))).toBeUndefined();
    expect(w.reasons()).toContain('ServiceDeleted');
  });

  it('writes no Service when the discovery asks for none', async () => {
    const w = world(['a']);
    await settle(w);
    expect(w.all('services')).toEqual([]);
  });

  it('reports BrokersReady on the Device once its brokers are ready', async () => {
    const w = world(['a']);
    await settle(w);
    expect(w.get<Device>('devices', 'ns', DEVICE)?.status?.conditions?.[0]).toMatchObject({
      type: 'BrokersReady',
      status: 'False',
      observedGeneration: 1,
    });
    w.setPodStatus(w.liveBrokers()[0]!.metadata!.name!, { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] });
    await w.reconcile();
    expect(w.get<Device>('devices', 'ns', DEVICE)?.status?.conditions?.[0]).toMatchObject({
      type: 'BrokersReady',
      status: 'True',
      message: '1/1 brokers ready',
    });
  });

  it('holds the status write until broker changes settle, and asks to be requeued for it', async () => {
    const w = world(['a'], { config: { statusBatchMs: 60_000 } });
    const first = await w.reconcile();
    expect(w.liveBrokers()).toHaveLength(1);
    expect(w.get<Device>('devices', 'ns', DEVICE)?.status).toBeUndefined();
    expect(first.requeueAfterMs).toBeGreaterThan(59_000);
    expect(first.requeueAfterMs).toBeLessThanOrEqual(60_000);
  });
});

describe('offline and back', () => {
  /** The Device goes away as the informer reports it: gone from the world, a tombstone kept. */
  function deleteDevice(w: World): void {
    const last = w.get<Device>('devices', 'ns', DEVICE)!;
    w.remove('devices', 'ns', DEVICE);
    w.state.tombstones.set(KEY, { device: structuredClone(last), at: Date.now() });
  }

  function consumer(name: string, node: string, extra: Partial<V1Pod> = {}): V1Pod {
    return {
      metadata: { name, namespace: 'ns' },
      spec: { nodeName: node, containers: [{ name: 'app', image: 'app:1', resources: { limits: { [RESOURCE]: '1' } } }] },
      status: { phase: 'Running' },
      ...extra,
    };
  }

  it('tears down at once when the Device is gone: brokers and Service deleted, DeviceOffline recorded', async () => {
    const w = world(['a', 'b'], { discovery: discovery({ deviceService: { ports: [{ name: 'rtsp', port: 554 }] } }) });
    await settle(w);
    expect(w.liveBrokers()).toHaveLength(2);
    w.enqueued.length = 0;

    deleteDevice(w);
    await w.reconcile();
    expect(w.liveBrokers()).toEqual([]);
    expect(w.get('services', 'ns', deviceServiceName(DEVICE))).toBeUndefined();
    const offline = w.events.find((e) => e.reason === 'DeviceOffline');
    expect(offline).toMatchObject({ regarding: { kind: 'DeviceDiscovery', name: 'cams' }, related: { kind: 'Device', name: DEVICE } });
    expect(w.enqueued).toEqual(['ns/cams']);
    expect(w.state.tombstones.has(KEY)).toBe(false);
    // Without the opt-in, consumers are left alone.
    expect(w.evicted).toEqual([]);
  });

  it('evicts running consumers of the device when the discovery opts in — not finished pods, not other pods', async () => {
    const w = world(['a'], {
      discovery: { ...discovery(), metadata: { ...discovery().metadata, annotations: { [EVICT_ON_OFFLINE_ANNOTATION]: 'true' } } },
    });
    await settle(w);
    w.put('pods', consumer('viewer', 'a'));
    w.put('pods', consumer('done', 'a', { status: { phase: 'Succeeded' } }));
    w.put('pods', {
      metadata: { name: 'unrelated', namespace: 'ns' },
      spec: { nodeName: 'a', containers: [{ name: 'x', image: 'x' }] },
      status: { phase: 'Running' },
    });

    deleteDevice(w);
    await w.reconcile();
    expect(w.evicted).toEqual(['ns/viewer']);
    expect(w.reasons()).toContain('ConsumerEvicted');
  });

  it('keeps the tombstone and throws when an eviction is refused, and evicts on the retry', async () => {
    const w = world(['a'], {
      discovery: { ...discovery(), metadata: { ...discovery().metadata, annotations: { [EVICT_ON_OFFLINE_ANNOTATION]: 'true' } } },
    });
    await settle(w);
    w.put('pods', consumer('viewer', 'a'));
    deleteDevice(w);
    w.failNext('evict', 'pods', 429);
    await expect(w.reconcile()).rejects.toThrow('evicting ns/viewer');
    expect(w.state.tombstones.has(KEY)).toBe(true);
    await w.reconcile();
    expect(w.evicted).toEqual(['ns/viewer']);
    expect(w.state.tombstones.has(KEY)).toBe(false);
  });

  it('tears down a Device being deleted (deletionTimestamp) like a gone one', async () => {
    const w = world(['a']);
    await settle(w);
    updateDevice(w, (d) => (d.metadata.deletionTimestamp = new Date()));
    await w.reconcile();
    expect(w.liveBrokers()).toEqual([]);
  });

  it('restores the brokers when the device comes back, and records DeviceOnline once', async () => {
    const w = world(['a', 'b']);
    await settle(w);
    deleteDevice(w);
    await w.reconcile();
    w.finishDeletions();
    expect(w.liveBrokers()).toEqual([]);

    // Back (a new Device object, as an agent creates it), seen by the informer as added.
    w.put('devices', { ...device(['a', 'b']), metadata: { ...device(['a']).metadata, uid: 'device-uid-2' } });
    w.state.appeared.add(KEY);
    await settle(w);
    expect(brokerNodes(w)).toEqual(['a', 'b']);
    expect(w.liveBrokers().every((p) => p.metadata?.ownerReferences?.[0]?.uid === 'device-uid-2')).toBe(true);
    expect(w.reasons().filter((r) => r === 'DeviceOnline')).toHaveLength(1);
  });
});
