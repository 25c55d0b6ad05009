/**
 * What a broker looks like to the planner: a small, pure summary of the object — Pod, Job, or a
 * workload of any kind (Deployment, StatefulSet, a custom resource: readiness is kind-aware).
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { NODE_ANNOTATION, RECREATIONS_ANNOTATION, TEMPLATE_HASH_LABEL } from '../../../api/labels.ts';
import { toMillis } from '../../runtime/time.ts';

/** 'Pod', 'Job', or a workload kind as `Kind.group` (workload.ts `workloadKindKey`). */
export type BrokerKind = string;

/** Pods and Jobs are created and deleted; every other kind is applied (server-side apply). */
export function isAppliedKind(kind: BrokerKind): boolean {
  return kind !== 'Pod' && kind !== 'Job';
}

/**
 * - pending: not running yet (unscheduled, or waiting for its node);
 * - running: running, not ready; ready: running and ready (a Job: has a ready pod);
 * - failed: a Pod that failed (or was refused admission) / a Job whose Failed condition is set;
 * - succeeded: a Pod that exited 0 (a long-lived broker should not) / a complete Job;
 * - workloads: ready as their kind defines it (workload-status.ts); failed is reported, never
 *   recreated (their own controllers restart their pods);
 * - terminating: being deleted.
 */
export type BrokerPhase = 'pending' | 'running' | 'ready' | 'failed' | 'succeeded' | 'terminating';

export interface ObservedBroker {
  readonly kind: BrokerKind;
  readonly name: string;
  readonly uid: string;
  /** The node it is pinned to (annotation), undefined if unreadable. */
  readonly node: string | undefined;
  readonly templateHash: string | undefined;
  /** uid of the controller owner reference (the Device). */
  readonly ownerUid: string | undefined;
  readonly phase: BrokerPhase;
  /** Recreations after failure so far (annotation). */
  readonly recreations: number;
  /** When it failed (container finish time, else when first seen failed). */
  readonly failedAtMs?: number;
  /** When it started (Pod status.startTime). */
  readonly startedAtMs?: number;
  /** Why it is not ready / failed, for status and events. */
  readonly reason?: string;
}

function controllerOwnerUid(ownerReferences: { uid: string; controller?: boolean }[] | undefined): string | undefined {
  return ownerReferences?.find((ref) => ref.controller === true)?.uid;
}

function recreationsOf(annotations: Record<string, string> | undefined): number {
  const n = Number(annotations?.[RECREATIONS_ANNOTATION] ?? '0');
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

function podPhase(pod: V1Pod): BrokerPhase {
  if (pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null) return 'terminating';
  switch (pod.status?.phase) {
    case 'Running': {
      const ready = pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      return ready ? 'ready' : 'running';
    }
    case 'Failed':
      return 'failed';
    case 'Succeeded':
      return 'succeeded';
    default:
      return 'pending';
  }
}

function podFailedAt(pod: V1Pod): number | undefined {
  let latest: number | undefined;
  for (const status of pod.status?.containerStatuses ?? []) {
    const at = toMillis(status.state?.terminated?.finishedAt);
    if (at !== undefined && (latest === undefined || at > latest)) latest = at;
  }
  return latest;
}

function joined(...parts: (string | undefined)[]): string | undefined {
  const text = parts.filter((p) => p !== undefined && p !== '').join(': ');
  return text === '' ? undefined : text;
}

function podReason(pod: V1Pod, phase: BrokerPhase): string | undefined {
  const status = pod.status;
  const own = joined(status?.reason, status?.message);
  if (own !== undefined) return own;
  if (phase === 'pending') {
    const scheduled = status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    if (scheduled !== undefined) return joined(scheduled.reason, scheduled.message);
  }
  const terminated = status?.containerStatuses?.find((c) => c.state?.terminated !== undefined)?.state?.terminated;
  if (terminated !== undefined)
    return `container exited with code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}`;
  return undefined;
}

/**
 * Summarises a broker Pod. `firstSeenFailedAtMs` is when the controller first saw it failed
 * (the only failure time of a Pod refused at admission, which has no container state).
 */
export function observePod(pod: V1Pod, firstSeenFailedAtMs?: number): ObservedBroker {
  const phase = podPhase(pod);
  const meta = pod.metadata ?? {};
  // The later of the container finish time (seconds precision) and when the controller first
  // saw the failure: a backoff is never shortened by timestamp truncation.
  const finished =
    phase === 'failed' || phase === 'succeeded' ? [podFailedAt(pod), firstSeenFailedAtMs].filter((t) => t !== undefined) : [];
  const failedAtMs = finished.length > 0 ? Math.max(...finished) : undefined;
  const startedAtMs = toMillis(pod.status?.startTime);
  const reason = podReason(pod, phase);
  return {
    kind: 'Pod',
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    node: meta.annotations?.[NODE_ANNOTATION],
    templateHash: meta.labels?.[TEMPLATE_HASH_LABEL],
    ownerUid: controllerOwnerUid(meta.ownerReferences),
    phase,
    recreations: recreationsOf(meta.annotations),
    ...(failedAtMs === undefined ? {} : { failedAtMs }),
    ...(startedAtMs === undefined ? {} : { startedAtMs }),
    ...(reason === undefined || reason === '' ? {} : { reason }),
  };
}

function jobPhase(job: V1Job): { phase: BrokerPhase; reason?: string } {
  if (job.metadata?.deletionTimestamp !== undefined && job.metadata.deletionTimestamp !== null) return { phase: 'terminating' };
  const conditions = job.status?.conditions ?? [];
  const failed = conditions.find((c) => (c.type === 'Failed' || c.type === 'FailureTarget') && c.status === 'True');
  if (failed !== undefined) return { phase: 'failed', reason: [failed.reason, failed.message].filter(Boolean).join(': ') };
  if (conditions.some((c) => (c.type === 'Complete' || c.type === 'SuccessCriteriaMet') && c.status === 'True'))
    return { phase: 'succeeded' };
  if ((job.status?.ready ?? 0) > 0) return { phase: 'ready' };
  if ((job.status?.active ?? 0) > 0) return { phase: 'running' };
  return { phase: 'pending' };
}

/** The parts of a summary every kind reads the same way: name, uid, node, hash, owner. */
export function brokerIdentity(
  kind: BrokerKind,
  meta: {
    readonly name?: string;
    readonly uid?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
    readonly ownerReferences?: { uid: string; controller?: boolean }[];
  },
): Pick<ObservedBroker, 'kind' | 'name' | 'uid' | 'node' | 'templateHash' | 'ownerUid' | 'recreations'> {
  return {
    kind,
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    node: meta.annotations?.[NODE_ANNOTATION],
    templateHash: meta.labels?.[TEMPLATE_HASH_LABEL],
    ownerUid: controllerOwnerUid(meta.ownerReferences),
    recreations: recreationsOf(meta.annotations),
  };
}

/** Summarises a broker Job. Failed Jobs are not recreated (the Job's backoffLimit retries). */
export function observeJob(job: V1Job): ObservedBroker {
  const meta = job.metadata ?? {};
  const { phase, reason } = jobPhase(job);
  return {
    kind: 'Job',
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    node: meta.annotations?.[NODE_ANNOTATION],
    templateHash: meta.labels?.[TEMPLATE_HASH_LABEL],
    ownerUid: controllerOwnerUid(meta.ownerReferences),
    phase,
    recreations: recreationsOf(meta.annotations),
    ...(reason === undefined || reason === '' ? {} : { reason }),
  };
}

/** Whether the broker serves (counts as available for rollouts and status). */
export function isAvailable(broker: ObservedBroker): boolean {
  return broker.phase === 'ready' || (broker.kind === 'Job' && broker.phase === 'succeeded');
}
