/**
 * Composition root of `tether controller`: informers on DeviceDiscovery, Device, Pods, Jobs,
 * Services and Nodes; two keyed work queues (Devices, DeviceDiscoveries) fed by informer
 * handlers that map every change to the keys it affects; workers that run the reconcilers
 * while this replica leads; leader election; events; metrics and health endpoints.
 *
 * Handlers never do work — they enqueue keys. Reconcilers get only a key (level-triggered).
 * bin/tether.ts parses flags into a `ControllerConfig` and calls `runController`.
 */
import type { V1Job, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import type { KubeConfigSource } from '../kube/kubeconfig.ts';
import type { Logger } from 'pino';
import type { Device, DeviceDiscovery } from '../api/schema.ts';
import type { ControllerConfig } from './runtime/config.ts';
import { BY_DISCOVERY, BY_NODE, brokerIndexers, labelKey, newSharedState, type Caches, type ControllerContext } from './context.ts';
import { EventRecorder } from './runtime/events.ts';
import { startHttpServer, type HttpServer } from './runtime/http-server.ts';
import { KubeClient, RequestCounter } from '../kube/client.ts';
import { Informer, objectKey, withoutManagedFields, type InformerEvent } from '../kube/informer.ts';
import { Api, RESOURCES } from '../kube/resources.ts';
import {
  COMPONENT_LABEL,
  DEVICE_LABEL,
  DISCOVERY_LABEL,
  EVICT_ON_OFFLINE_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
} from '../api/labels.ts';
import { LeaderElector } from './runtime/leader.ts';
import { createMetrics } from './runtime/metrics.ts';
import { nodesReferenced } from './nodes/nodes.ts';
import { WorkQueue } from './runtime/queue.ts';
import { RetryLater, reconcileDevice, type ReconcileResult } from './devices/reconcile.ts';
import { reconcileDiscovery } from './discoveries/reconcile.ts';
import { waitForDraAnswer } from './dra/availability.ts';
import { DISCOVERY_NAMESPACE_LABEL, type DeviceClass, type ResourceClaimTemplate } from './dra/objects.ts';
import { WorkloadCaches } from './workloads.ts';
import { OnDemandInformers } from './runtime/on-demand.ts';
import type { WorkloadObject } from './devices/brokers/workload.ts';

export interface ControllerDeps {
  readonly kubeConfig: KubeConfigSource;
  readonly log: Logger;
  /** Counts every apiserver request (benchmarks pass their own). */
  readonly counter?: RequestCounter;
}

/** A running controller. */
export interface Controller {
  /** Port of /healthz, /readyz, /metrics (undefined without a server). */
  readonly port: number | undefined;
  readonly requests: RequestCounter;
  isLeader(): boolean;
  /** All caches synced. */
  isReady(): boolean;
  /** Keys queued or being processed in both queues (0 = idle, for benchmarks). */
  pending(): number;
  /** Stops working, releases the lease, stops the caches and the server. Idempotent. */
  stop(): Promise<void>;
}

type Reconciler = (ctx: ControllerContext, key: string, signal: AbortSignal) => Promise<ReconcileResult>;

const SELECT_MANAGED = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

function nodeSignature(node: V1Node | undefined): string {
  if (node === undefined) return 'gone';
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  return JSON.stringify([
    ready?.status,
    String(ready?.lastTransitionTime ?? ''),
    node.spec?.unschedulable === true,
    node.metadata?.labels ?? {},
  ]);
}

/** Nodes carry image lists and more that the controller never reads. */
function leanNode(node: V1Node): V1Node {
  const { metadata, spec, status } = withoutManagedFields(node);
  return {
    apiVersion: node.apiVersion,
    kind: node.kind,
    metadata,
    spec: { unschedulable: spec?.unschedulable },
    status: { conditions: status?.conditions?.filter((c) => c.type === 'Ready') },
  };
}

function makeCaches(client: KubeClient, config: ControllerConfig, log: Logger): Caches {
  const common = { client, namespace: config.namespace, log };
  const lean = { ...common, transform: withoutManagedFields };
  return {
    discoveries: new Informer<DeviceDiscovery>({ ...lean, type: RESOURCES.deviceDiscoveries }),
    devices: new Informer<Device>({
      ...common,
      type: RESOURCES.devices,
      indexers: {
        [BY_DISCOVERY]: (d) => [`${d.metadata.namespace ?? ''}/${d.spec.discovery}`],
        [BY_NODE]: (d) => nodesReferenced(d),
      },
    }),
    pods: new Informer<V1Pod>({ ...lean, type: RESOURCES.pods, labelSelector: SELECT_MANAGED, indexers: brokerIndexers }),
    jobs: new Informer<V1Job>({ ...lean, type: RESOURCES.jobs, labelSelector: SELECT_MANAGED, indexers: brokerIndexers }),
    services: new Informer<V1Service>({ ...lean, type: RESOURCES.services, labelSelector: SELECT_MANAGED, indexers: brokerIndexers }),
    nodes: new Informer<V1Node>({ client, type: RESOURCES.nodes, log, transform: leanNode }),
    deviceClasses: new Informer<DeviceClass>({ ...lean, type: RESOURCES.deviceClasses, labelSelector: SELECT_MANAGED }),
    claimTemplates: new Informer<ResourceClaimTemplate>({ ...lean, type: RESOURCES.resourceClaimTemplates, labelSelector: SELECT_MANAGED }),
  };
}

export async function startController(config: ControllerConfig, deps: ControllerDeps): Promise<Controller> {
  const log = deps.log;
  const counter = deps.counter ?? new RequestCounter();
  const client = new KubeClient(deps.kubeConfig, counter);
  const api = new Api(client);
  const caches = makeCaches(client, config, log);
  const deviceQueue = new WorkQueue(config.requeue);
  const discoveryQueue = new WorkQueue(config.requeue);
  const state = newSharedState();
  let elector: LeaderElector | undefined;
  let leading = false;
  let draServed: boolean | undefined; // whether the apiserver serves DRA; undefined until it answered
  const isLeader = (): boolean => leading;

  const metrics = createMetrics({
    queueDepth: () => ({ device: deviceQueue.length(), discovery: discoveryQueue.length() }),
    brokers: () => brokerPhases(caches),
    devices: () => caches.devices.size(),
    discoveries: () => caches.discoveries.size(),
  });
  counter.onRequest((verb, resource) => metrics.apiRequests.inc({ verb, resource }));
  const identity = config.leaderElection?.identity ?? 'tether-controller';
  const events = new EventRecorder({ api, log: log.child({ component: 'events' }), instance: identity, enabled: isLeader });
  const workloads = makeWorkloadCaches(client, config, log, caches, deviceQueue, () => ctx);
  const ctx: ControllerContext = {
    caches,
    workloads,
    api,
    events,
    metrics,
    log,
    config,
    state,
    enqueueDiscovery: (key) => discoveryQueue.addAfter(key, config.statusBatchMs),
    draServed: () => draServed === true,
  };
  wireHandlers(ctx, deviceQueue, discoveryQueue, isLeader);

  const stopping = new AbortController();
  const workers: Promise<void>[] = [];
  let resync: NodeJS.Timeout | undefined;
  const startWorking = (signal: AbortSignal): void => {
    leading = true;
    metrics.leader.set(1);
    // Devices may have gone while no replica led: sweep each opt-in discovery's consumers once.
    for (const d of caches.discoveries.list())
      if (d.metadata.annotations?.[EVICT_ON_OFFLINE_ANNOTATION] === 'true') state.consumerSweeps.add(objectKey(d));
    enqueueEverything(ctx, deviceQueue, discoveryQueue);
    const gate = (s: AbortSignal): Promise<void> => onDemand.synced(s);
    for (let i = 0; i < config.deviceWorkers; i++) workers.push(runWorker('device', ctx, deviceQueue, reconcileDevice, gate, signal));
    for (let i = 0; i < config.discoveryWorkers; i++)
      workers.push(runWorker('discovery', ctx, discoveryQueue, reconcileDiscovery, gate, signal));
    if (config.resyncMs > 0) {
      clearInterval(resync);
      resync = setInterval(() => enqueueEverything(ctx, deviceQueue, discoveryQueue), config.resyncMs);
      resync.unref();
    }
  };
  const stopWorking = (): void => {
    leading = false;
    metrics.leader.set(0);
    clearInterval(resync);
  };

  const { informers, onDemand, draInformers } = startInformers(caches, log);
  const allSynced = (): boolean => draServed !== undefined && informers.every((i) => i.hasSynced());

  let server: HttpServer | undefined;
  if (config.httpPort >= 0) {
    server = await startHttpServer(config.httpHost, config.httpPort, metrics.registry, {
      healthy: () => ({
        ok: !stopping.signal.aborted,
        detail: informers
          .map((i) => {
            const { state, lastError } = i.health();
            return `${i.type.plural}: ${state}${lastError === undefined ? '' : ` (last error: ${lastError})`}`;
          })
          .join('\n'),
      }),
      ready: () => ({ ok: allSynced(), detail: readyDetail(informers, leading, draServed) }),
    });
  }

  const running = (async (): Promise<void> => {
    draServed = await startDraPart({ client, log, metrics, draInformers, onDemand, namespace: config.namespace }, stopping.signal);
    await syncCaches(informers, onDemand, log, stopping.signal);
    if (stopping.signal.aborted) return;
    log.info({ devices: caches.devices.size(), discoveries: caches.discoveries.size(), nodes: caches.nodes.size() }, 'Caches synced');
    if (config.leaderElection === undefined) {
      startWorking(stopping.signal);
      await abortPromise(stopping.signal);
      stopWorking();
      return;
    }
    elector = new LeaderElector(api, config.leaderElection, log.child({ component: 'leader' }), {
      onStartedLeading: startWorking,
      onStoppedLeading: stopWorking,
      onNewLeader: (holder) => log.info({ leader: holder }, 'Observed a new leader'),
    });
    await elector.run(stopping.signal);
  })();

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping.abort();
      await running;
      await Promise.all(workers);
      await elector?.release();
      await Promise.race([events.flush(), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
      deviceQueue.shutDown();
      discoveryQueue.shutDown();
      await Promise.all([...informers.map((i) => i.stop()), workloads.stop()]);
      await server?.close();
      log.info('Stopped the controller');
    })();
    return stopped;
  };

  return {
    port: server?.port,
    requests: counter,
    isLeader,
    isReady: allSynced,
    pending: () => deviceQueue.length() + discoveryQueue.length() + deviceQueue.processingCount() + discoveryQueue.processingCount(),
    stop,
  };
}

/** /readyz's text: each informer, leadership, whether DRA is served. */
function readyDetail(informers: readonly Informer<never>[], leading: boolean, draServed: boolean | undefined): string {
  const dra = draServed === undefined ? 'asking' : draServed ? 'served' : 'not served';
  return `${informers.map((i) => `${i.type.plural}: ${i.hasSynced() ? 'synced' : 'syncing'}`).join('\n')}\nleader: ${String(leading)}\ndra: ${dra}`;
}

/**
 * Starts the informers needed at once; the brokers' ones start on demand (runtime/on-demand.ts),
 * and the DRA ones, returned here, on demand too and only once the apiserver said it serves
 * resource.k8s.io/v1: on a cluster without it they would never sync, and the controller would
 * never be ready.
 */
function startInformers(
  caches: Caches,
  log: Logger,
): { informers: Informer<never>[]; onDemand: OnDemandInformers; draInformers: Informer<never>[] } {
  const informers = [caches.discoveries, caches.devices, caches.nodes] as unknown as Informer<never>[];
  for (const informer of informers) informer.start();
  const onDemand = new OnDemandInformers(informers, log);
  onDemand.add([caches.pods, caches.jobs, caches.services] as unknown as Informer<never>[]);
  caches.discoveries.onEvent(() => onDemand.start('a DeviceDiscovery exists'));
  caches.devices.onEvent(() => onDemand.start('a Device exists'));
  return { informers, onDemand, draInformers: [caches.deviceClasses, caches.claimTemplates] as unknown as Informer<never>[] };
}

/** Waits for the running informers; starts the on-demand ones when objects of theirs are left, and waits for those too. */
async function syncCaches(
  informers: readonly Informer<never>[],
  onDemand: OnDemandInformers,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  await Promise.race([Promise.all(informers.map((i) => i.synced())), abortPromise(signal)]);
  if (signal.aborted) return;
  if (!onDemand.started && (await leftOver(onDemand, log, signal))) onDemand.start('objects of an earlier run are left');
  await onDemand.synced(signal);
}

/** Whether objects of the on-demand informers are left (brokers or DeviceClasses of deleted discoveries); true when it cannot tell. */
async function leftOver(onDemand: OnDemandInformers, log: Logger, signal: AbortSignal): Promise<boolean> {
  try {
    return await onDemand.anyLeftOver(signal);
  } catch (error) {
    log.warn({ err: error }, 'Could not ask whether broker or DRA objects are left; watching them');
    return true;
  }
}

/**
 * Asks whether the apiserver serves resource.k8s.io/v1 (until it answers); when it does, starts
 * the DRA informers and adds them to `informers`. False when not served or stopped first.
 */
async function startDraPart(
  part: {
    client: KubeClient;
    log: Logger;
    metrics: ReturnType<typeof createMetrics>;
    draInformers: readonly Informer<never>[];
    onDemand: OnDemandInformers;
    /** The controller's --namespace; undefined: all. */
    namespace: string | undefined;
  },
  signal: AbortSignal,
): Promise<boolean> {
  const served = await waitForDraAnswer(
    (path) => part.client.request('GET', path, { verb: 'get', resource: 'discovery', signal }),
    signal,
    (error) => part.log.warn({ err: error }, 'Could not ask whether the apiserver serves resource.k8s.io/v1; asking again'),
  );
  if (signal.aborted) return false;
  part.metrics.draServed.set(served ? 1 : 0);
  if (served) {
    for (const informer of part.draInformers) {
      // DeviceClasses are cluster-scoped: a namespaced controller's leftovers are its namespace's.
      const own = informer.type.namespaced || part.namespace === undefined ? undefined : `${DISCOVERY_NAMESPACE_LABEL}=${part.namespace}`;
      part.onDemand.add([informer], own);
    }
  } else {
    part.log.warn('The apiserver serves no resource.k8s.io/v1: running without the DRA part (no DeviceClasses for DRA discoveries)');
  }
  return served;
}

/** Runs the controller until `signal` aborts (SIGTERM), then stops it (releasing the lease). */
export async function runController(config: ControllerConfig, deps: ControllerDeps, signal: AbortSignal): Promise<void> {
  const controller = await startController(config, deps);
  deps.log.info(
    { port: controller.port, namespace: config.namespace ?? '(all)', leaderElection: config.leaderElection?.name ?? false },
    'Started the controller',
  );
  await abortPromise(signal);
  await controller.stop();
}

function abortPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function brokerPhases(caches: Caches): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const pod of caches.pods.list()) {
    if (!(pod.metadata?.ownerReferences ?? []).some((r) => r.kind === 'Device')) continue;
    const phase = pod.metadata?.deletionTimestamp != null ? 'Terminating' : (pod.status?.phase ?? 'Unknown');
    counts[phase] = (counts[phase] ?? 0) + 1;
  }
  counts.Job = caches.jobs.size();
  return counts;
}

function enqueueEverything(ctx: ControllerContext, devices: WorkQueue, discoveries: WorkQueue): void {
  const caches = ctx.caches;
  for (const d of caches.discoveries.list()) discoveries.add(objectKey(d));
  for (const d of caches.devices.list()) devices.add(objectKey(d));
  // DeviceClasses whose DeviceDiscovery is gone (the label sweep of controller/dra/objects.ts).
  for (const c of caches.deviceClasses.list()) for (const key of deviceClassOwner(c, undefined)) discoveries.add(key);
  // Brokers and Services whose Device or DeviceDiscovery is gone (deleted while no replica led).
  const workloads = ctx.workloads.list().map((w) => w.object);
  for (const o of [...caches.pods.list(), ...caches.jobs.list(), ...caches.services.list(), ...workloads]) {
    for (const key of labelKey(o, DEVICE_LABEL)) if (caches.devices.get(...splitOnce(key)) === undefined) devices.add(key);
    if (o.metadata?.labels?.[COMPONENT_LABEL] === 'service' && o.metadata.labels[DEVICE_LABEL] === undefined) {
      for (const key of labelKey(o, DISCOVERY_LABEL)) discoveries.add(key);
    }
  }
}

/** `namespace/name` of the DeviceDiscovery a DeviceClass was made for (none outside `--namespace`). */
function deviceClassOwner(object: DeviceClass, only: string | undefined): string[] {
  const namespace = object.metadata.labels?.[DISCOVERY_NAMESPACE_LABEL];
  const name = object.metadata.labels?.[DISCOVERY_LABEL];
  if (namespace === undefined || name === undefined || (only !== undefined && namespace !== only)) return [];
  return [`${namespace}/${name}`];
}

function splitOnce(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/** Maps informer events to the keys they affect. Cheap and synchronous. */
function wireHandlers(ctx: ControllerContext, deviceQueue: WorkQueue, discoveryQueue: WorkQueue, isLeader: () => boolean): void {
  const { caches, state } = ctx;
  caches.discoveries.onEvent((e) => {
    const key = objectKey(e.object);
    const old = e.old;
    const changed =
      e.type !== 'updated' ||
      old?.metadata.generation !== e.object.metadata.generation ||
      old?.metadata.annotations?.[EVICT_ON_OFFLINE_ANNOTATION] !== e.object.metadata.annotations?.[EVICT_ON_OFFLINE_ANNOTATION];
    if (!changed) {
      // A status-only update (usually our own write): batched like other status triggers.
      ctx.enqueueDiscovery(key);
      return;
    }
    const optedIn = e.object.metadata.annotations?.[EVICT_ON_OFFLINE_ANNOTATION] === 'true';
    if (optedIn && old?.metadata.annotations?.[EVICT_ON_OFFLINE_ANNOTATION] !== 'true') state.consumerSweeps.add(key);
    discoveryQueue.add(key);
    for (const d of caches.devices.byIndex(BY_DISCOVERY, key)) deviceQueue.add(objectKey(d));
  });
  caches.devices.onEvent((e: InformerEvent<Device>) => {
    const key = objectKey(e.object);
    deviceQueue.add(key);
    ctx.enqueueDiscovery(`${e.object.metadata.namespace ?? ''}/${e.object.spec.discovery}`);
    if (e.initial || !isLeader()) return;
    if (e.type === 'added') {
      state.appeared.add(key);
      state.tombstones.delete(key);
    } else if (e.type === 'deleted') {
      state.appeared.delete(key);
      state.tombstones.set(key, { device: e.old ?? e.object, at: Date.now() });
    }
  });
  const onBroker = (e: InformerEvent<V1Pod | V1Job | V1Service>): void => onBrokerEvent(ctx, deviceQueue, e);
  caches.pods.onEvent(onBroker);
  caches.jobs.onEvent(onBroker);
  caches.services.onEvent(onBroker);
  // DRA objects: a change (or a class whose discovery is gone) reconciles their owner.
  caches.deviceClasses.onEvent((e) => {
    for (const key of deviceClassOwner(e.object, ctx.config.namespace)) discoveryQueue.add(key);
    // A class gone may free its extended resource for a same-named discovery elsewhere; a new
    // one may be an older discovery's (switched to DRA) that takes it from a younger holder.
    const name = e.object.metadata.labels?.[DISCOVERY_LABEL];
    if (e.type !== 'updated' && name !== undefined) {
      for (const d of caches.discoveries.list()) if (d.metadata.name === name) discoveryQueue.add(objectKey(d));
    }
  });
  caches.claimTemplates.onEvent((e) => {
    for (const key of labelKey(e.object, DEVICE_LABEL)) deviceQueue.add(key);
  });
  caches.nodes.onEvent((e) => {
    if (e.type === 'updated' && nodeSignature(e.old) === nodeSignature(e.object)) return;
    const name = e.object.metadata?.name ?? '';
    for (const d of caches.devices.byIndex(BY_NODE, name)) deviceQueue.add(objectKey(d));
    for (const d of caches.discoveries.list()) ctx.enqueueDiscovery(objectKey(d));
  });
}

/** Informers of workload broker kinds, started on demand (controller/workloads.ts). */
function makeWorkloadCaches(
  client: KubeClient,
  config: ControllerConfig,
  log: Logger,
  caches: Caches,
  deviceQueue: WorkQueue,
  context: () => ControllerContext,
): WorkloadCaches {
  return new WorkloadCaches({
    client,
    namespace: config.namespace,
    log: log.child({ component: 'workloads' }),
    onEvent: (e) => onBrokerEvent(context(), deviceQueue, e),
    // A broker kind became watchable (or failed to resolve): reconcile the devices again.
    onSettled: () => {
      for (const d of caches.devices.list()) deviceQueue.add(objectKey(d));
    },
  });
}

/** A broker (or Service) changed: reconcile its device, and its discovery's status. */
function onBrokerEvent(ctx: ControllerContext, deviceQueue: WorkQueue, e: InformerEvent<V1Pod | V1Job | V1Service | WorkloadObject>): void {
  for (const key of labelKey(e.object, DEVICE_LABEL)) deviceQueue.add(key);
  for (const key of labelKey(e.object, DISCOVERY_LABEL)) ctx.enqueueDiscovery(key);
  if (e.type === 'deleted' && e.object.metadata?.uid !== undefined) ctx.state.failedSeen.delete(e.object.metadata.uid);
}

async function runWorker(
  name: string,
  ctx: ControllerContext,
  queue: WorkQueue,
  reconcile: Reconciler,
  /** Resolves when the caches a reconcile reads are synced (on-demand informers just started). */
  gate: (signal: AbortSignal) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  for (;;) {
    const key = await queue.get(signal);
    if (key === undefined) return;
    const end = ctx.metrics.reconcileDuration.startTimer({ controller: name });
    try {
      await gate(signal);
      // Stopped while waiting: the key goes back (below), and done() still runs.
      if (signal.aborted) throw new Error('stopped before the reconcile');
      const result = await reconcile(ctx, key, signal);
      queue.forget(key);
      if (result.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
      ctx.metrics.reconciles.inc({ controller: name, result: result.requeueAfterMs === undefined ? 'success' : 'requeue' });
    } catch (error) {
      if (signal.aborted) {
        queue.add(key);
      } else {
        const delay = queue.addRateLimited(key);
        if (error instanceof RetryLater) {
          ctx.metrics.reconciles.inc({ controller: name, result: 'requeue' });
          ctx.log.debug({ controller: name, key, reason: error.message, retryInMs: delay }, 'Reconcile deferred');
        } else {
          ctx.metrics.reconciles.inc({ controller: name, result: 'error' });
          ctx.log.warn({ controller: name, key, err: error, retryInMs: delay }, 'Reconcile failed; retrying');
        }
      }
    } finally {
      end();
      queue.done(key);
    }
  }
}
