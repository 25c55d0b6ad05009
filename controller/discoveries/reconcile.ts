/**
 * DeviceDiscovery reconciler: its status (server-side apply on the status subresource as
 * tether-controller, only when it changed) and its per-discovery Service (while any broker of
 * the discovery exists). Reads only caches; brokers themselves belong to the Device reconciler.
 */
import { API_VERSION } from '../../api/group.ts';
import type { Device, DeviceDiscovery, DeviceDiscoveryStatus } from '../../api/schema.ts';
import { desiredBrokers, templateHash } from '../devices/brokers/desired.ts';
import { BY_DEVICE, BY_DISCOVERY, nodeLookup, observeBrokers, refOf, splitKey, type ControllerContext } from '../context.ts';
import { isApiError } from '../../kube/client.ts';
import { CONTROLLER_FIELD_MANAGER } from '../../api/field-managers.ts';
import { RESOURCES } from '../../kube/resources.ts';
import { COMPONENT_LABEL, DISCOVERY_LABEL, EVICT_ON_OFFLINE_ANNOTATION, discoveryServiceName } from '../../api/labels.ts';
import { evictConsumers } from '../devices/consumers.ts';
import { reconcileDeviceClass } from '../dra/reconcile.ts';
import { isWorkloadKindPending } from '../devices/broker-kinds.ts';
import { nodeInfo, nodeSelected } from '../nodes/nodes.ts';
import { applyServiceAction, type ReconcileResult } from '../devices/reconcile.ts';
import { desiredDiscoveryService, planService } from '../devices/services.ts';
import { BROKERS_READY, conditionsMatch, discoveryStatus, readyCount, settleConditions } from '../status.ts';

/** How soon to look again while a workload kind's cache syncs (one list: well under a second). */
const KIND_SYNC_POLL_MS = 200;

/** Names of the Ready nodes the discovery's nodeSelector selects. */
function selectedNodes(ctx: ControllerContext, discovery: DeviceDiscovery, now: number): Set<string> {
  const names = new Set<string>();
  for (const node of ctx.caches.nodes.list()) {
    const info = nodeInfo(node.metadata?.name ?? '', node, now, ctx.config.nodeLossGraceMs);
    if (info.health === 'Ready' && nodeSelected(discovery.spec.nodeSelector, info)) names.add(info.name);
  }
  return names;
}

/** The consumer sweep a new leader (or an opt-in) asked for, once; a refused eviction retries. */
async function sweepConsumersOnce(ctx: ControllerContext, key: string, discovery: DeviceDiscovery, signal: AbortSignal): Promise<void> {
  if (!ctx.state.consumerSweeps.has(key)) return;
  if (discovery.metadata.annotations?.[EVICT_ON_OFFLINE_ANNOTATION] === 'true') await evictConsumers(ctx, discovery, undefined, signal);
  ctx.state.consumerSweeps.delete(key);
}

export async function reconcileDiscovery(ctx: ControllerContext, key: string, signal: AbortSignal): Promise<ReconcileResult> {
  const { namespace, name } = splitKey(key);
  const discovery = ctx.caches.discoveries.get(namespace, name);
  const serviceName = discoveryServiceName(name);
  const cachedService = ctx.caches.services.get(namespace, serviceName);
  const ownService =
    cachedService?.metadata?.labels?.[COMPONENT_LABEL] === 'service' && cachedService.metadata.labels[DISCOVERY_LABEL] === name
      ? cachedService
      : undefined;
  // Its DeviceClass (DRA): present while the discovery is DRA, swept when it is gone.
  await reconcileDeviceClass(ctx, namespace, name, discovery, signal);
  if (discovery === undefined || discovery.metadata.deletionTimestamp != null) {
    ctx.state.templateErrors.delete(key);
    await applyServiceAction(
      ctx,
      namespace,
      planService(undefined, ownService),
      { apiVersion: API_VERSION, kind: 'DeviceDiscovery', name, namespace },
      signal,
    );
    return {};
  }
  // Its brokers' kind is still syncing (a controller restart): counts and Service would flap.
  if (isWorkloadKindPending(ctx, discovery)) return { requeueAfterMs: KIND_SYNC_POLL_MS };
  const hash = templateHash(discovery);
  const refused = ctx.state.templateErrors.get(key);
  if (refused !== undefined && refused.hash !== hash) ctx.state.templateErrors.delete(key);

  const now = Date.now();
  const devices = ctx.caches.devices.byIndex(BY_DISCOVERY, key).filter((d) => d.metadata.deletionTimestamp == null);
  const { placements, ready, backingOff } = brokerTotals(ctx, discovery, devices, now);
  const brokers = observeBrokers(ctx, BY_DISCOVERY, key, now);
  const running = brokers.filter((b) => b.phase === 'ready' || b.phase === 'running').length;
  const brokersExist = brokers.some((b) => b.phase !== 'terminating');
  const selectedNames = selectedNodes(ctx, discovery, now);
  const selected = selectedNames.size;
  // Reports of nodes that are gone, not Ready or no longer selected are stale: not counted.
  const nodeProblems = (discovery.status?.nodeReports ?? []).filter((r) => selectedNames.has(r.node));

  const { status, conditions } = discoveryStatus({
    generation: discovery.metadata.generation,
    hasBrokerTemplate: discovery.spec.broker !== undefined,
    devices: devices.length,
    nodes: selected,
    placements,
    ready,
    running,
    backingOff,
    invalidTemplate: ctx.state.templateErrors.get(key)?.message,
    nodeProblems,
  });
  await applyDiscoveryStatus(ctx, discovery, status, conditions, now, signal);

  const action = planService(desiredDiscoveryService(discovery, brokersExist), ownService);
  await applyServiceAction(ctx, namespace, action, refOf('DeviceDiscovery', API_VERSION, discovery), signal);

  await sweepConsumersOnce(ctx, key, discovery, signal);
  return {};
}

/** Broker placements, ready brokers and devices backing off, over the discovery's devices. */
function brokerTotals(
  ctx: ControllerContext,
  discovery: DeviceDiscovery,
  devices: readonly Device[],
  now: number,
): { placements: number; ready: number; backingOff: number } {
  const nodes = nodeLookup(ctx, now);
  let placements = 0;
  let ready = 0;
  let backingOff = 0;
  for (const device of devices) {
    const deviceKey = `${device.metadata.namespace ?? ''}/${device.metadata.name ?? ''}`;
    const observed = observeBrokers(ctx, BY_DEVICE, deviceKey, now);
    const desired = desiredBrokers(device, discovery, nodes, observed);
    placements += desired.placements.length;
    ready += readyCount(desired, observed);
    if (device.status?.conditions?.some((c) => c.type === BROKERS_READY && c.reason === 'BackOff')) backingOff++;
  }
  return { placements, ready, backingOff };
}

async function applyDiscoveryStatus(
  ctx: ControllerContext,
  discovery: DeviceDiscovery,
  status: Omit<DeviceDiscoveryStatus, 'conditions'>,
  drafts: ReturnType<typeof discoveryStatus>['conditions'],
  now: number,
  signal: AbortSignal,
): Promise<void> {
  const current = discovery.status ?? {};
  const same =
    current.observedGeneration === status.observedGeneration &&
    current.devices === status.devices &&
    current.brokers === status.brokers &&
    current.nodes === status.nodes &&
    conditionsMatch(drafts, current.conditions);
  if (same) return;
  const body = {
    apiVersion: API_VERSION,
    kind: 'DeviceDiscovery',
    metadata: { name: discovery.metadata.name, namespace: discovery.metadata.namespace },
    status: { ...status, conditions: settleConditions(drafts, current.conditions, now) },
  };
  try {
    await ctx.api.apply(RESOURCES.deviceDiscoveries, body, {
      fieldManager: CONTROLLER_FIELD_MANAGER,
      force: true,
      subresource: 'status',
      signal,
    });
  } catch (error) {
    if (isApiError(error, 404)) return;
    throw new Error(`applying DeviceDiscovery ${discovery.metadata.namespace ?? ''}/${discovery.metadata.name ?? ''} status`, {
      cause: error,
    });
  }
}
