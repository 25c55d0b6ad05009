/**
 * Which resource serves each broker kind, and whether a workload kind can be used yet: Pods
 * and Jobs are built in; a workload kind (`spec.broker.workload`) needs its informer synced
 * (controller/workloads.ts) before the Device reconciler plans with it, and a kind the
 * apiserver does not serve blocks the discovery's brokers with a clear condition and a Warning
 * Event until it is served (retried) or the template changes.
 */
import { API_VERSION } from '../../api/group.ts';
import type { DeviceDiscovery } from '../../api/schema.ts';
import { apiVersionOf, type ResourceType } from '../../kube/client.ts';
import { RESOURCES } from '../../kube/resources.ts';
import { refOf, type ControllerContext } from '../context.ts';
import type { DesiredBrokers } from './brokers/desired.ts';
import { isAppliedKind, type BrokerKind } from './brokers/observe.ts';
import { WORKLOAD_FIELD } from './brokers/workload.ts';

/** The resource of a broker kind; undefined for a workload kind not (yet) watched. */
export function brokerResource(ctx: ControllerContext, kind: BrokerKind): ResourceType | undefined {
  if (kind === 'Pod') return RESOURCES.pods;
  if (kind === 'Job') return RESOURCES.jobs;
  return ctx.workloads.typeOf(kind);
}

/** apiVersion of a broker kind, for Events ('' when unknown). */
export function brokerApiVersion(ctx: ControllerContext, kind: BrokerKind): string {
  const type = brokerResource(ctx, kind);
  return type === undefined ? '' : apiVersionOf(type);
}

/** Kubernetes kind of a broker kind (`Deployment.apps` → `Deployment`). */
export function kubernetesKind(kind: BrokerKind): string {
  const dot = kind.indexOf('.');
  return dot < 0 ? kind : kind.slice(0, dot);
}

export interface KindReadiness {
  /** The kind's cache is synced: the reconciler may create and apply brokers of it. */
  readonly ready: boolean;
  /**
   * The kind's cache is still syncing: its brokers are invisible, so nothing that depends on
   * them (Services, status) may be written yet — a controller restart must not flap them.
   */
  readonly pending: boolean;
  /** The kind is not served: look again after this long. */
  readonly retryInMs?: number;
}

/**
 * Whether the desired kind can be planned with now. Records (and clears) an unknown kind as the
 * discovery's template error, with a Warning Event the first time.
 */
export function workloadKindReadiness(
  ctx: ControllerContext,
  discovery: DeviceDiscovery | undefined,
  discoveryKey: string,
  desired: DesiredBrokers,
): KindReadiness {
  const workload = discovery?.spec.broker?.workload;
  if (discovery === undefined || workload === undefined || desired.kind === undefined || !isAppliedKind(desired.kind))
    return { ready: true, pending: false };
  const state = ctx.workloads.ensure(workload.apiVersion, workload.kind);
  const recorded = ctx.state.templateErrors.get(discoveryKey);
  if (state.state === 'ready') {
    if (recorded?.unknownKind === true) ctx.state.templateErrors.delete(discoveryKey);
    return { ready: true, pending: false };
  }
  if (state.state === 'pending') return { ready: false, pending: true };
  const message = `${WORKLOAD_FIELD}: ${state.message}`;
  if (recorded?.message !== message && desired.templateHash !== undefined) {
    ctx.state.templateErrors.set(discoveryKey, { hash: desired.templateHash, message, unknownKind: true });
    ctx.events.record({
      regarding: refOf('DeviceDiscovery', API_VERSION, discovery),
      type: 'Warning',
      reason: 'UnknownBrokerKind',
      action: 'Create',
      note: message,
    });
    ctx.enqueueDiscovery(discoveryKey);
  }
  return { ready: false, pending: false, retryInMs: Math.max(1, state.retryAtMs - Date.now()) };
}

/** Whether the discovery's workload kind is still syncing (its brokers not visible yet). */
export function isWorkloadKindPending(ctx: ControllerContext, discovery: DeviceDiscovery): boolean {
  const workload = discovery.spec.broker?.workload;
  return workload !== undefined && ctx.workloads.ensure(workload.apiVersion, workload.kind).state === 'pending';
}
