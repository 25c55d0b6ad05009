/**
 * Readiness of workload brokers (pure), as each kind defines it:
 * - apps/v1 Deployment: the controller saw the current generation, and updated and available
 *   replicas reach the desired count (`spec.replicas`, default 1); Progressing=False
 *   (ProgressDeadlineExceeded) is failed.
 * - apps/v1 StatefulSet: current generation seen, updated and ready replicas reach the desired
 *   count, and the current revision is the update revision.
 * - any other kind: a `Ready` condition in `status.conditions` — True is ready, False is running
 *   (its reason and message are the broker's), absent is pending. A status or condition
 *   observedGeneration older than the object's generation is not ready yet.
 */
import { brokerIdentity, type BrokerKind, type BrokerPhase, type ObservedBroker } from './observe.ts';
import type { WorkloadObject } from './workload.ts';

interface StatusCondition {
  readonly type?: unknown;
  readonly status?: unknown;
  readonly reason?: unknown;
  readonly message?: unknown;
  readonly observedGeneration?: unknown;
}

type Verdict = { readonly phase: BrokerPhase; readonly reason?: string };

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function conditionsOf(status: Record<string, unknown> | undefined): StatusCondition[] {
  const list = status?.conditions;
  return Array.isArray(list) ? (list.filter((c) => c !== null && typeof c === 'object') as StatusCondition[]) : [];
}

function text(...parts: unknown[]): string | undefined {
  const joined = parts.filter((p) => typeof p === 'string' && p !== '').join(': ');
  return joined === '' ? undefined : joined;
}

function stale(object: WorkloadObject, observedGeneration: unknown): boolean {
  const generation = object.metadata?.generation;
  return typeof observedGeneration === 'number' && generation !== undefined && observedGeneration < generation;
}

function desiredReplicas(object: WorkloadObject): number {
  const replicas = object.spec?.replicas;
  return typeof replicas === 'number' ? replicas : 1;
}

function deploymentVerdict(object: WorkloadObject): Verdict {
  const status = object.status;
  const generation = object.metadata?.generation ?? 0;
  if (status === undefined || num(status.observedGeneration) < generation) return { phase: 'pending', reason: 'rollout not observed yet' };
  const want = desiredReplicas(object);
  const updated = num(status.updatedReplicas);
  const available = num(status.availableReplicas);
  const summary = `${available}/${want} replicas available, ${updated} updated`;
  const progressing = conditionsOf(status).find((c) => c.type === 'Progressing');
  if (progressing?.status === 'False') return { phase: 'failed', reason: text(progressing.reason, progressing.message) ?? summary };
  if (updated >= want && available >= want) return { phase: 'ready' };
  return { phase: num(status.replicas) > 0 ? 'running' : 'pending', reason: summary };
}

function statefulSetVerdict(object: WorkloadObject): Verdict {
  const status = object.status;
  const generation = object.metadata?.generation ?? 0;
  if (status === undefined || num(status.observedGeneration) < generation) return { phase: 'pending', reason: 'rollout not observed yet' };
  const want = desiredReplicas(object);
  const ready = num(status.readyReplicas);
  const updated = num(status.updatedReplicas);
  const revisionCurrent = status.updateRevision === undefined || status.currentRevision === status.updateRevision;
  if (ready >= want && updated >= want && revisionCurrent) return { phase: 'ready' };
  return { phase: num(status.replicas) > 0 ? 'running' : 'pending', reason: `${ready}/${want} replicas ready, ${updated} updated` };
}

function readyConditionVerdict(object: WorkloadObject): Verdict {
  const status = object.status;
  const ready = conditionsOf(status).find((c) => c.type === 'Ready');
  if (ready === undefined) return { phase: 'pending', reason: 'no Ready condition yet' };
  const reason = text(ready.reason, ready.message);
  if (stale(object, status?.observedGeneration) || stale(object, ready.observedGeneration))
    return { phase: 'running', reason: 'status not observed for the current generation yet' };
  if (ready.status === 'True') return { phase: 'ready' };
  return reason === undefined ? { phase: 'running' } : { phase: 'running', reason };
}

/** The kind's readiness rule. */
export function workloadVerdict(object: WorkloadObject): Verdict {
  if (object.metadata?.deletionTimestamp != null) return { phase: 'terminating' };
  const apps = object.apiVersion === 'apps/v1';
  if (apps && object.kind === 'Deployment') return deploymentVerdict(object);
  if (apps && object.kind === 'StatefulSet') return statefulSetVerdict(object);
  return readyConditionVerdict(object);
}

/** Summarises a workload broker of `kind` (its `workloadKindKey`). */
export function observeWorkload(object: WorkloadObject, kind: BrokerKind): ObservedBroker {
  const { phase, reason } = workloadVerdict(object);
  return { ...brokerIdentity(kind, object.metadata ?? {}), phase, ...(reason === undefined ? {} : { reason }) };
}
