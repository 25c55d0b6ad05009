/**
 * Device reconciler: `reconcileDevice(key)` makes the world match one Device — level-triggered,
 * from the caches, idempotent. In order:
 *
 * 1. Device gone → delete its brokers and Service at once (owner references would let the
 *    garbage collector do it too, later), record DeviceOffline, and — if the discovery opted in
 *    — evict the user pods that consume the device.
 * 2. A node it mentions is lost → release that node's entries with server-side apply as the
 *    node's own agent field managers (see nodes.ts).
 * 3. desiredBrokers → planBrokers (pure) → deletes, creates (I/O).
 * 4. The per-device Service, when the discovery asks for one and brokers exist.
 * 5. The Device's `BrokersReady` condition (server-side apply on status as tether-controller).
 */
import { API_VERSION } from '../../api/group.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { brokerObject, desiredBrokers, type DesiredBrokers } from './brokers/desired.ts';
import { isAppliedKind, type ObservedBroker } from './brokers/observe.ts';
import { InjectionError } from './brokers/workload.ts';
import { brokerApiVersion, brokerResource, kubernetesKind, workloadKindReadiness } from './broker-kinds.ts';
import { planBrokers, type BrokerCreate, type BrokerDelete, type BrokerPlan } from './brokers/plan.ts';
import { BY_DEVICE, brokerObjectsOf, nodeLookup, observeBrokers, refOf, splitKey, type ControllerContext } from '../context.ts';
import { errorCode, isApiError, type KubeObject } from '../../kube/client.ts';
import { CONTROLLER_FIELD_MANAGER } from '../../api/field-managers.ts';
import { RESOURCES } from '../../kube/resources.ts';
import { EVICT_ON_OFFLINE_ANNOTATION, deviceServiceName } from '../../api/labels.ts';
import { deviceMentions, nodesReferenced, planNodeRelease, type NodeLookup } from '../nodes/nodes.ts';
import { evictConsumers } from './consumers.ts';
import { reconcileClaimTemplate } from '../dra/reconcile.ts';
import { desiredDeviceService, planService } from './services.ts';
import { conditionsMatch, deviceBrokersCondition, settleConditions } from '../status.ts';

export interface ReconcileResult {
  readonly requeueAfterMs?: number;
}

const DEVICE_REF_KIND = 'Device';

/**
 * Thrown when the world lags the cache (a create found a same-named object the cache does not
 * show yet): retried with the queue's per-key backoff, logged quietly.
 */
export class RetryLater extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetryLater';
  }
}

export async function reconcileDevice(ctx: ControllerContext, key: string, signal: AbortSignal): Promise<ReconcileResult> {
  const { namespace, name } = splitKey(key);
  const device = ctx.caches.devices.get(namespace, name);
  if (device === undefined || device.metadata.deletionTimestamp != null) {
    await teardownDevice(ctx, key, signal);
    return {};
  }
  const now = Date.now();
  const nodes = nodeLookup(ctx, now);
  const uid = device.metadata.uid ?? '';
  const referenced = nodesReferenced(device);
  const lost = referenced.filter((n) => nodes(n).health === 'Lost' && !ctx.state.unreleasable.has(`${uid}/${n}`));
  // A release that fails (conflict, RBAC) must not block the brokers: they are reconciled
  // anyway (lost nodes get none), then the error requeues the key with backoff.
  let releaseError: Error | undefined;
  if (lost.length > 0) {
    await releaseLostNodes(ctx, device, lost, nodes, signal).catch((error: unknown) => {
      releaseError = error instanceof Error ? error : new Error(String(error));
    });
  }
  noteOnline(ctx, key, device);

  const discovery = ctx.caches.discoveries.get(namespace, device.spec.discovery);
  const discoveryKey = `${namespace}/${device.spec.discovery}`;
  const observed = observeBrokers(ctx, BY_DEVICE, key, now);
  const desired = desiredBrokers(device, discovery, nodes, observed);
  // A workload kind: its cache must be synced (and the kind served) before planning creates.
  const kindReadiness = workloadKindReadiness(ctx, discovery, discoveryKey, desired);
  const plan = planBrokers({
    desired,
    observed,
    deviceUid: uid,
    nowMs: now,
    backoff: ctx.config.brokerBackoff,
    carried: (broker) => ctx.state.carried.get(`${namespace}/${broker}`),
    templateBlocked: !kindReadiness.ready || currentTemplateError(ctx, discoveryKey, desired) !== undefined,
  });
  recordFailures(ctx, device, plan);

  await applyDeletes(ctx, device, plan.deletes, signal);
  // DRA brokers claim their device from this template: it exists before they are created.
  await reconcileClaimTemplate(ctx, device, discovery, signal);
  const hostname = (node: string): string => nodes(node).labels['kubernetes.io/hostname'] ?? node;
  const created = await applyCreates(ctx, { device, discovery, desired, hostname }, plan.creates, signal);
  const updated = await applyCreates(ctx, { device, discovery, desired, hostname, update: true }, plan.updates, signal);

  const after = afterApply(observed, plan, created.brokers);
  const changed = plan.deletes.length > 0 || created.brokers.length > 0 || updated.brokers.length > 0;
  // Until the kind's cache has synced its brokers are invisible: leave Service and status be.
  const settleMs = kindReadiness.pending
    ? undefined
    : await settleDevice(ctx, { key, device, discovery, desired, plan, after, changed, now }, signal);
  if (releaseError !== undefined) throw releaseError;
  if (created.conflicts > 0) throw new RetryLater(`${created.conflicts} broker name(s) of ${key} still taken`);
  const requeueAfterMs = minDefined(earliestLoss(referenced, nodes, now), plan.requeueAfterMs, settleMs, kindReadiness.retryInMs);
  return requeueAfterMs === undefined ? {} : { requeueAfterMs };
}

/**
 * The device's Service and its `BrokersReady` status after the plan's writes. Status settles a
 * moment after the last broker change, so a broker that is created and becomes ready within that
 * moment costs one status write, not one per step; returns how long until it settles, if not yet.
 */
async function settleDevice(
  ctx: ControllerContext,
  input: {
    key: string;
    device: Device;
    discovery: DeviceDiscovery | undefined;
    desired: DesiredBrokers;
    plan: BrokerPlan;
    after: readonly ObservedBroker[];
    changed: boolean;
    now: number;
  },
  signal: AbortSignal,
): Promise<number | undefined> {
  const { key, device, discovery, desired, plan, after, now } = input;
  await reconcileDeviceService(
    ctx,
    device,
    discovery,
    after.some((b) => b.phase !== 'terminating'),
    signal,
  );
  const discoveryKey = `${device.metadata.namespace ?? ''}/${device.spec.discovery}`;
  if (input.changed) {
    ctx.state.lastBrokerChange.set(key, now);
    ctx.enqueueDiscovery(discoveryKey);
  }
  const settleMs = (ctx.state.lastBrokerChange.get(key) ?? -Infinity) + ctx.config.statusBatchMs - now;
  if (settleMs > 0) return settleMs;
  ctx.state.lastBrokerChange.delete(key);
  await applyDeviceStatus(ctx, device, desired, after, plan, currentTemplateError(ctx, discoveryKey, desired), now, signal);
  return undefined;
}

function minDefined(...values: (number | undefined)[]): number | undefined {
  const defined = values.filter((v): v is number => v !== undefined);
  return defined.length === 0 ? undefined : Math.min(...defined);
}

/** A Device that appeared while this replica led: record DeviceOnline once. */
function noteOnline(ctx: ControllerContext, key: string, device: Device): void {
  ctx.state.tombstones.delete(key);
  if (!ctx.state.appeared.delete(key)) return;
  const seenBy = (device.spec.nodes ?? []).join(', ') || 'no node yet';
  ctx.events.record({
    regarding: refOf(DEVICE_REF_KIND, API_VERSION, device),
    type: 'Normal',
    reason: 'DeviceOnline',
    action: 'Observe',
    note: `device ${device.metadata.name ?? ''} is online (seen by ${seenBy})`,
  });
}

function recordFailures(ctx: ControllerContext, device: Device, plan: BrokerPlan): void {
  for (const failed of plan.failed) {
    ctx.events.record({
      regarding: {
        apiVersion: brokerApiVersion(ctx, failed.kind),
        kind: kubernetesKind(failed.kind),
        name: failed.name,
        namespace: device.metadata.namespace,
        uid: failed.uid,
      },
      related: refOf(DEVICE_REF_KIND, API_VERSION, device),
      type: 'Warning',
      reason: 'BrokerFailed',
      action: 'Observe',
      note: `broker ${failed.name} on node ${failed.node ?? '?'} failed${failed.reason === undefined ? '' : `: ${failed.reason}`}`,
    });
  }
}

/** When the first NotReady node the device mentions becomes lost. */
function earliestLoss(referenced: readonly string[], nodes: NodeLookup, now: number): number | undefined {
  let earliest: number | undefined;
  for (const n of referenced) {
    const at = nodes(n).lostAtMs;
    if (at !== undefined) earliest = Math.min(earliest ?? Infinity, Math.max(1, at - now + 10));
  }
  return earliest;
}

function currentTemplateError(ctx: ControllerContext, discoveryKey: string, desired: DesiredBrokers): string | undefined {
  const error = ctx.state.templateErrors.get(discoveryKey);
  return error !== undefined && error.hash === desired.templateHash ? error.message : undefined;
}

/** The brokers as they are once the plan's writes landed (for Service and status). */
function afterApply(observed: readonly ObservedBroker[], plan: BrokerPlan, created: readonly CreatedBroker[]): ObservedBroker[] {
  const deleted = new Map(plan.deletes.map((d) => [d.name, d]));
  const out: ObservedBroker[] = [];
  for (const b of observed) {
    const deletion = deleted.get(b.name);
    if (deletion === undefined) out.push(b);
    else if (deletion.reason !== 'Failed') out.push({ ...b, phase: 'terminating' });
  }
  for (const c of created) out.push(c.observed);
  return out;
}

interface CreatedBroker {
  readonly observed: ObservedBroker;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const DELETE_NOTES: Record<BrokerDelete['reason'], string> = {
  Orphaned: 'it belongs to an earlier Device of the same name',
  Unwanted: 'its node no longer gets a broker (node gone from the device, lost, or capacity reached)',
  KindChanged: 'the broker kind changed (pod, job or workload kind)',
  Failed: 'it failed; recreating it after its backoff',
  Outdated: 'the broker template changed; rolling it',
};

async function applyDeletes(ctx: ControllerContext, device: Device, deletes: readonly BrokerDelete[], signal: AbortSignal): Promise<void> {
  const namespace = device.metadata.namespace ?? '';
  await mapLimit(deletes, 16, async (d) => {
    const type = brokerResource(ctx, d.kind);
    if (type === undefined) return; // a workload kind no longer watched (cannot happen: seen in its cache)
    try {
      await ctx.api.delete(
        type,
        namespace,
        d.name,
        { preconditions: { uid: d.uid }, ...(d.kind === 'Pod' ? {} : { propagationPolicy: 'Background' as const }) },
        signal,
      );
    } catch (error) {
      if (isApiError(error, 404, 409)) return; // already gone, or replaced by another object
      throw new Error(`deleting broker ${d.kind} ${namespace}/${d.name}`, { cause: error });
    }
    ctx.metrics.brokerActions.inc({ action: 'delete', reason: d.reason });
    ctx.events.record({
      regarding: { apiVersion: brokerApiVersion(ctx, d.kind), kind: kubernetesKind(d.kind), name: d.name, namespace, uid: d.uid },
      related: refOf(DEVICE_REF_KIND, API_VERSION, device),
      type: d.reason === 'Failed' ? 'Warning' : 'Normal',
      reason: 'BrokerDeleted',
      action: 'Delete',
      note: `deleted broker ${d.name} on node ${d.node ?? '?'}: ${DELETE_NOTES[d.reason]}`,
    });
  });
}

interface CreateContext {
  readonly device: Device;
  readonly discovery: DeviceDiscovery | undefined;
  readonly desired: DesiredBrokers;
  /** The `kubernetes.io/hostname` label of a node. */
  readonly hostname: (node: string) => string;
  /** Re-applying outdated workload brokers (rollout) rather than creating missing brokers. */
  readonly update?: boolean;
}

/**
 * Records a template the apiserver (or the injection) refused: no broker is created from it
 * until it changes (InvalidTemplate on the DeviceDiscovery and its Devices, a Warning Event).
 */
function refuseTemplate(ctx: ControllerContext, discovery: DeviceDiscovery, hash: string, message: string, code?: number): void {
  const discoveryKey = `${discovery.metadata.namespace ?? ''}/${discovery.metadata.name ?? ''}`;
  ctx.state.templateErrors.set(discoveryKey, { hash, message });
  ctx.events.record({
    regarding: refOf('DeviceDiscovery', API_VERSION, discovery),
    type: 'Warning',
    reason: 'InvalidBrokerTemplate',
    action: 'Create',
    note: message,
  });
  ctx.log.warn({ discovery: discoveryKey, code }, 'Broker template refused');
}

/**
 * Creates Pods and Jobs; applies workload brokers (server-side apply as tether-controller,
 * forced: the controller owns what it puts in them), for new placements and, with `update`,
 * for rollouts.
 */
async function applyCreates(
  ctx: ControllerContext,
  input: CreateContext,
  creates: readonly BrokerCreate[],
  signal: AbortSignal,
): Promise<{ brokers: CreatedBroker[]; conflicts: number }> {
  const { device, discovery, desired } = input;
  if (discovery === undefined || desired.kind === undefined || desired.templateHash === undefined || creates.length === 0)
    return { brokers: [], conflicts: 0 };
  const namespace = device.metadata.namespace ?? '';
  for (const c of creates) if (c.recreations > 0) ctx.state.carried.set(`${namespace}/${c.placement.name}`, c.recreations);
  const hash = desired.templateHash;
  const kind = desired.kind;
  const type = brokerResource(ctx, kind);
  if (type === undefined) return { brokers: [], conflicts: 0 }; // the kind's cache is not ready (planned as blocked)
  const applied = isAppliedKind(kind);
  let refused = false;
  let conflicts = 0;
  const results = await mapLimit(creates, 16, async (c): Promise<CreatedBroker | undefined> => {
    if (refused) return undefined;
    let result: KubeObject;
    try {
      const object = brokerObject({
        device,
        discovery,
        placement: c.placement,
        templateHash: hash,
        recreations: c.recreations,
        hostname: input.hostname(c.placement.node),
      });
      result = applied
        ? await ctx.api.apply(type, object, { fieldManager: CONTROLLER_FIELD_MANAGER, force: true, signal })
        : await ctx.api.create(type, namespace, object, signal);
    } catch (error) {
      if (error instanceof InjectionError) {
        refused = true;
        refuseTemplate(ctx, discovery, hash, `the broker template cannot be used: ${error.message}`);
        return undefined;
      }
      if (isApiError(error, 409)) {
        conflicts++; // an object of that name the cache does not show (yet)
        return undefined;
      }
      if (isApiError(error, 400, 422)) {
        refused = true;
        const what = kubernetesKind(kind);
        refuseTemplate(
          ctx,
          discovery,
          hash,
          `the apiserver refused the broker ${what} made from the template: ${(error as Error).message}`,
          errorCode(error),
        );
        return undefined;
      }
      throw new Error(`${input.update === true ? 'updating' : 'creating'} broker ${kind} ${namespace}/${c.placement.name}`, {
        cause: error,
      });
    }
    ctx.state.carried.delete(`${namespace}/${c.placement.name}`);
    recordCreated(ctx, input, c, kind, result.metadata?.uid ?? '');
    const observed: ObservedBroker = {
      kind,
      name: c.placement.name,
      uid: result.metadata?.uid ?? '',
      node: c.placement.node,
      templateHash: hash,
      ownerUid: device.metadata.uid,
      phase: 'pending',
      recreations: c.recreations,
    };
    return { observed };
  });
  return { brokers: results.filter((r): r is CreatedBroker => r !== undefined), conflicts };
}

function recordCreated(ctx: ControllerContext, input: CreateContext, c: BrokerCreate, kind: string, uid: string): void {
  const namespace = input.device.metadata.namespace ?? '';
  const recreated = c.recreations > 0 && input.update !== true;
  const action = input.update === true ? 'Update' : recreated ? 'Recreate' : 'Create';
  ctx.metrics.brokerActions.inc({
    action: input.update === true ? 'update' : 'create',
    reason: recreated ? 'Recreate' : input.update === true ? 'Outdated' : 'New',
  });
  ctx.events.record({
    regarding: { apiVersion: brokerApiVersion(ctx, kind), kind: kubernetesKind(kind), name: c.placement.name, namespace, uid },
    related: refOf(DEVICE_REF_KIND, API_VERSION, input.device),
    type: 'Normal',
    reason: input.update === true ? 'BrokerUpdated' : 'BrokerCreated',
    action,
    note:
      input.update === true
        ? `applied the changed broker template to ${c.placement.name} on node ${c.placement.node}`
        : recreated
          ? `recreated broker ${c.placement.name} on node ${c.placement.node} (recreation ${c.recreations} after failure)`
          : `created broker ${c.placement.name} on node ${c.placement.node}`,
  });
}

async function reconcileDeviceService(
  ctx: ControllerContext,
  device: Device,
  discovery: DeviceDiscovery | undefined,
  brokersExist: boolean,
  signal: AbortSignal,
): Promise<void> {
  const namespace = device.metadata.namespace ?? '';
  const name = deviceServiceName(device.metadata.name ?? '');
  const action = planService(desiredDeviceService(device, discovery, brokersExist), ctx.caches.services.get(namespace, name));
  await applyServiceAction(ctx, namespace, action, refOf(DEVICE_REF_KIND, API_VERSION, device), signal);
}

/** Applies or deletes a Service. A conflict with another field manager is reported, not retried. */
export async function applyServiceAction(
  ctx: ControllerContext,
  namespace: string,
  action: ReturnType<typeof planService>,
  owner: ReturnType<typeof refOf>,
  signal: AbortSignal,
): Promise<void> {
  if (action.action === 'none') return;
  if (action.action === 'delete') {
    try {
      await ctx.api.delete(RESOURCES.services, namespace, action.name, {}, signal);
    } catch (error) {
      if (!isApiError(error, 404)) throw new Error(`deleting Service ${namespace}/${action.name}`, { cause: error });
    }
    ctx.events.record({
      regarding: owner,
      type: 'Normal',
      reason: 'ServiceDeleted',
      action: 'Delete',
      note: `deleted Service ${action.name}: no brokers remain`,
    });
    return;
  }
  try {
    await ctx.api.apply(RESOURCES.services, action.service, { fieldManager: CONTROLLER_FIELD_MANAGER, force: false, signal });
  } catch (error) {
    if (isApiError(error, 409)) {
      ctx.events.record({
        regarding: owner,
        type: 'Warning',
        reason: 'ServiceConflict',
        action: 'Apply',
        note: `Service ${action.service.metadata?.name ?? ''} is managed by someone else: ${(error as Error).message}`,
      });
      return;
    }
    throw new Error(`applying Service ${namespace}/${action.service.metadata?.name ?? ''}`, { cause: error });
  }
}

async function applyDeviceStatus(
  ctx: ControllerContext,
  device: Device,
  desired: DesiredBrokers,
  brokers: readonly ObservedBroker[],
  plan: BrokerPlan,
  templateError: string | undefined,
  now: number,
  signal: AbortSignal,
): Promise<void> {
  const draft = deviceBrokersCondition(desired, brokers, plan, templateError, device.metadata.generation);
  if (conditionsMatch([draft], device.status?.conditions)) return;
  const conditions = settleConditions([draft], device.status?.conditions, now);
  const body = {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata: { name: device.metadata.name, namespace: device.metadata.namespace },
    status: { conditions },
  };
  try {
    await ctx.api.apply(RESOURCES.devices, body, { fieldManager: CONTROLLER_FIELD_MANAGER, force: true, subresource: 'status', signal });
  } catch (error) {
    if (isApiError(error, 404)) return;
    throw new Error(`applying Device ${device.metadata.namespace ?? ''}/${device.metadata.name ?? ''} status`, { cause: error });
  }
}

// ---------------------------------------------------------------------------------------------
// Device gone

async function teardownDevice(ctx: ControllerContext, key: string, signal: AbortSignal): Promise<void> {
  const { namespace, name } = splitKey(key);
  const { pods, jobs, workloads } = brokerObjectsOf(ctx.caches, BY_DEVICE, key, ctx.workloads);
  const live: { kind: string; object: KubeObject }[] = [
    ...pods.map((p) => ({ kind: 'Pod', object: p })),
    ...jobs.map((j) => ({ kind: 'Job', object: j })),
    ...workloads,
  ].filter((b) => b.object.metadata?.deletionTimestamp == null);
  await mapLimit(live, 16, async ({ kind, object }) => {
    const brokerName = object.metadata?.name ?? '';
    const type = brokerResource(ctx, kind);
    if (type === undefined) return;
    try {
      await ctx.api.delete(type, namespace, brokerName, kind === 'Pod' ? {} : { propagationPolicy: 'Background' }, signal);
    } catch (error) {
      if (isApiError(error, 404)) return;
      throw new Error(`deleting broker ${kind} ${namespace}/${brokerName}`, { cause: error });
    }
    ctx.metrics.brokerActions.inc({ action: 'delete', reason: 'DeviceOffline' });
    ctx.events.record({
      regarding: refOf(kubernetesKind(kind), brokerApiVersion(ctx, kind), object),
      type: 'Normal',
      reason: 'BrokerDeleted',
      action: 'Delete',
      note: `deleted broker ${brokerName}: device ${name} is offline`,
    });
  });
  const service = ctx.caches.services.get(namespace, deviceServiceName(name));
  if (service !== undefined && service.metadata?.deletionTimestamp == null) {
    try {
      await ctx.api.delete(RESOURCES.services, namespace, deviceServiceName(name), {}, signal);
    } catch (error) {
      if (!isApiError(error, 404)) throw new Error(`deleting Service ${namespace}/${deviceServiceName(name)}`, { cause: error });
    }
  }
  ctx.state.appeared.delete(key);
  ctx.state.lastBrokerChange.delete(key);
  for (const carriedKey of ctx.state.carried.keys()) if (carriedKey.startsWith(`${key}-`)) ctx.state.carried.delete(carriedKey);

  const tombstone = ctx.state.tombstones.get(key);
  if (tombstone !== undefined) {
    const discovery = ctx.caches.discoveries.get(namespace, tombstone.device.spec.discovery);
    const regarding =
      discovery !== undefined ? refOf('DeviceDiscovery', API_VERSION, discovery) : refOf(DEVICE_REF_KIND, API_VERSION, tombstone.device);
    ctx.events.record({
      regarding,
      related: refOf(DEVICE_REF_KIND, API_VERSION, tombstone.device),
      type: 'Normal',
      reason: 'DeviceOffline',
      action: 'Observe',
      note: `device ${name} is offline`,
    });
    if (discovery?.metadata.annotations?.[EVICT_ON_OFFLINE_ANNOTATION] === 'true')
      await evictConsumers(ctx, discovery, new Set([name]), signal);
    ctx.state.tombstones.delete(key);
    ctx.enqueueDiscovery(`${namespace}/${tombstone.device.spec.discovery}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Node loss

/** Applies the release of one lost node; returns the Device as the last apply left it. */
async function releaseNode(ctx: ControllerContext, device: Device, node: string, signal: AbortSignal): Promise<Device> {
  let latest = device;
  for (const apply of planNodeRelease(device, node)) {
    try {
      latest = await ctx.api.apply<Device>(RESOURCES.devices, apply.body, {
        fieldManager: apply.fieldManager,
        force: false,
        subresource: apply.subresource,
        signal,
      });
      ctx.metrics.nodeReleases.inc({ result: 'applied' });
    } catch (error) {
      ctx.metrics.nodeReleases.inc({ result: 'error' });
      throw new Error(
        `releasing lost node ${node} from Device ${device.metadata.namespace ?? ''}/${device.metadata.name ?? ''} as ${apply.fieldManager}`,
        { cause: error },
      );
    }
  }
  return latest;
}

/**
 * Releases what lost nodes hold on `device`, as their own agents would (server-side apply under
 * their field managers, never forced, so a concurrent change by a live agent wins). A Device no
 * node sees any more is deleted (with a resourceVersion precondition: a node that re-adds
 * itself meanwhile keeps it), as its last agent would have.
 */
async function releaseLostNodes(
  ctx: ControllerContext,
  device: Device,
  lost: readonly string[],
  nodes: NodeLookup,
  signal: AbortSignal,
): Promise<void> {
  let latest = device;
  const uid = device.metadata.uid ?? '';
  const regarding = refOf(DEVICE_REF_KIND, API_VERSION, device);
  let allReleased = true;
  for (const node of lost) {
    try {
      latest = await releaseNode(ctx, latest, node, signal);
    } catch (error) {
      if (isApiError((error as Error).cause, 404)) return; // the Device is gone
      throw error;
    }
    const why =
      ctx.caches.nodes.get(undefined, node) === undefined
        ? 'deleted'
        : `NotReady for over ${Math.round(ctx.config.nodeLossGraceMs / 1000)} s`;
    if (deviceMentions(latest, node)) {
      allReleased = false;
      ctx.state.unreleasable.add(`${uid}/${node}`);
      ctx.events.record({
        regarding,
        type: 'Warning',
        reason: 'NodeNotReleased',
        action: 'Release',
        note: `node ${node} is lost (${why}) but its entries are not held by its agent's field managers; left as they are`,
      });
      continue;
    }
    ctx.events.record({
      regarding,
      type: 'Warning',
      reason: 'NodeLost',
      action: 'Release',
      note: `node ${node} is lost (${why}): released its nodes entry, slots and nodeStates entry`,
    });
    ctx.log.info(
      { device: device.metadata.name, namespace: device.metadata.namespace, node, why, health: nodes(node).health },
      'Released a lost node from a Device',
    );
  }
  const empty = (latest.spec.nodes ?? []).length === 0 && Object.keys(latest.spec.slots ?? {}).length === 0;
  if (allReleased && empty) await deleteUnseenDevice(ctx, latest, signal);
}

async function deleteUnseenDevice(ctx: ControllerContext, device: Device, signal: AbortSignal): Promise<void> {
  const { namespace, name, uid, resourceVersion } = device.metadata;
  try {
    await ctx.api.delete(RESOURCES.devices, namespace, name ?? '', { preconditions: { uid, resourceVersion } }, signal);
  } catch (error) {
    if (isApiError(error, 404, 409)) return; // gone, or a node re-added itself meanwhile
    throw new Error(`deleting Device ${namespace ?? ''}/${name ?? ''} that no node sees`, { cause: error });
  }
}
