/**
 * Broker plan of one Device (pure): what to delete, what to create, what to wait for, given
 * the desired placements and the brokers that exist.
 *
 * - A broker owned by another object (an old Device of the same name), on a node that no
 *   longer gets one, or of the other kind (pod ↔ job) is deleted.
 * - A broker Pod that failed (or exited) is recreated after a capped exponential backoff,
 *   `base · 2^n` with n its recreations so far (reset when it had run for `resetAfterMs`).
 *   The failed Pod stays until then, so the backoff is visible and survives controller
 *   restarts (n is an annotation on the Pod; the failure time is its container finish time).
 *   This bounds recreations to about log2(max/base) + window/max per window — never a hot loop.
 * - A broker made from another template hash is rolled: not-ready ones are replaced at once,
 *   ready ones one at a time per device, only while every other placement is served.
 *   Jobs are replaced at once. Workload kinds (applied, not created) are re-applied in place
 *   instead of deleted — their own controllers roll their pods — with the same pacing.
 * - A failed workload is reported, not recreated: its own controller restarts its pods.
 * - A placement without a broker gets one — unless the name is still held by a terminating
 *   object (same deterministic name), or the template is known to be invalid.
 */
import type { BrokerKind, ObservedBroker } from './observe.ts';
import { isAppliedKind, isAvailable } from './observe.ts';
import type { DesiredBrokers, Placement } from './desired.ts';

export interface BackoffPolicy {
  /** Delay before the first recreation. */
  readonly baseMs: number;
  /** Longest delay. */
  readonly maxMs: number;
  /** A broker that ran this long before failing starts again from `baseMs`. */
  readonly resetAfterMs: number;
}

export interface PlanInput {
  readonly desired: DesiredBrokers;
  readonly observed: readonly ObservedBroker[];
  readonly deviceUid: string;
  readonly nowMs: number;
  readonly backoff: BackoffPolicy;
  /** Recreation count to give a broker about to be recreated (set when its failed Pod was deleted). */
  readonly carried?: (name: string) => number | undefined;
  /** The template failed validation on create: create nothing until it changes. */
  readonly templateBlocked?: boolean;
}

export type DeleteReason = 'Orphaned' | 'Unwanted' | 'KindChanged' | 'Failed' | 'Outdated';

export interface BrokerDelete {
  readonly kind: BrokerKind;
  readonly name: string;
  readonly uid: string;
  readonly node: string | undefined;
  readonly reason: DeleteReason;
}

export interface BrokerCreate {
  readonly placement: Placement;
  readonly recreations: number;
}

export type WaitReason = 'BackOff' | 'Terminating' | 'RollingUpdate' | 'InvalidTemplate' | 'Replacing';

export interface BrokerWait {
  readonly name: string;
  readonly reason: WaitReason;
  /** BackOff: when the broker will be recreated. */
  readonly untilMs?: number;
  /** BackOff: the recreation that will follow. */
  readonly recreation?: number;
}

export interface BrokerPlan {
  readonly deletes: readonly BrokerDelete[];
  readonly creates: readonly BrokerCreate[];
  /** Workload brokers made from another template: re-applied in place (server-side apply). */
  readonly updates: readonly BrokerCreate[];
  readonly waits: readonly BrokerWait[];
  /** Failed brokers seen (for events; the recorder de-duplicates per broker uid). */
  readonly failed: readonly ObservedBroker[];
  /** Reconcile again after this long (the earliest backoff expiry). */
  readonly requeueAfterMs: number | undefined;
}

/** Delay before recreating a failed broker, and the recreation count that follows. */
export function failureBackoff(broker: ObservedBroker, policy: BackoffPolicy, nowMs: number): { dueMs: number; next: number } {
  const failedAt = broker.failedAtMs ?? nowMs;
  const ranLong = broker.startedAtMs !== undefined && failedAt - broker.startedAtMs >= policy.resetAfterMs;
  const n = ranLong ? 0 : broker.recreations;
  const delay = Math.min(policy.baseMs * 2 ** Math.min(n, 30), policy.maxMs);
  return { dueMs: failedAt + delay, next: n + 1 };
}

function isFinished(b: ObservedBroker): boolean {
  return b.kind === 'Pod' && (b.phase === 'failed' || b.phase === 'succeeded');
}

type Verdict =
  | { readonly kind: 'keep' }
  | { readonly kind: 'delete'; readonly reason: DeleteReason; readonly recreateAs?: number }
  | { readonly kind: 'wait'; readonly wait: BrokerWait }
  | { readonly kind: 'outdated' };

/** What to do with one existing (non-terminating) broker. */
function judge(b: ObservedBroker, input: PlanInput, placement: Placement | undefined): Verdict {
  const { desired, deviceUid, nowMs, backoff } = input;
  if (b.ownerUid !== deviceUid) return { kind: 'delete', reason: 'Orphaned' };
  if (placement === undefined || placement.node !== b.node) return { kind: 'delete', reason: 'Unwanted' };
  if (b.kind !== desired.kind) return { kind: 'delete', reason: 'KindChanged' };
  if (isFinished(b)) {
    const { dueMs, next } = failureBackoff(b, backoff, nowMs);
    if (nowMs >= dueMs) return { kind: 'delete', reason: 'Failed', recreateAs: next };
    return { kind: 'wait', wait: { name: b.name, reason: 'BackOff', untilMs: dueMs, recreation: next } };
  }
  return b.templateHash === desired.templateHash ? { kind: 'keep' } : { kind: 'outdated' };
}

export function planBrokers(input: PlanInput): BrokerPlan {
  const { desired, observed, nowMs } = input;
  const byPlacementName = new Map(desired.placements.map((p) => [p.name, p]));
  const deletes: BrokerDelete[] = [];
  const waits: BrokerWait[] = [];
  const recreate = new Map<string, number>(); // name → recreations of the broker replacing a failed one
  const outdated: ObservedBroker[] = [];
  const byName = new Map<string, ObservedBroker>();

  for (const b of [...observed].sort((x, y) => x.name.localeCompare(y.name))) {
    byName.set(b.name, b);
    if (b.phase === 'terminating') continue;
    const verdict = judge(b, input, byPlacementName.get(b.name));
    if (verdict.kind === 'delete') {
      deletes.push({ kind: b.kind, name: b.name, uid: b.uid, node: b.node, reason: verdict.reason });
      if (verdict.recreateAs !== undefined) recreate.set(b.name, verdict.recreateAs);
    } else if (verdict.kind === 'wait') waits.push(verdict.wait);
    else if (verdict.kind === 'outdated') outdated.push(b);
  }

  const updates: BrokerCreate[] = [];
  planRollout(desired, outdated, byName, { deletes, updates, waits });
  const creates = planCreates(input, byName, deletes, recreate, waits);
  const failed = observed.filter((b) => b.phase === 'failed');

  let requeueAfterMs: number | undefined;
  for (const w of waits) {
    if (w.untilMs === undefined) continue;
    const after = Math.max(1, w.untilMs - nowMs);
    requeueAfterMs = requeueAfterMs === undefined ? after : Math.min(requeueAfterMs, after);
  }
  return { deletes, creates, updates, waits, failed, requeueAfterMs };
}

/** A create per placement without a broker (or whose failed broker is being replaced). */
function planCreates(
  input: PlanInput,
  byName: ReadonlyMap<string, ObservedBroker>,
  deletes: readonly BrokerDelete[],
  recreate: ReadonlyMap<string, number>,
  waits: BrokerWait[],
): BrokerCreate[] {
  const deleted = new Map(deletes.map((d) => [d.name, d]));
  const creates: BrokerCreate[] = [];
  for (const placement of input.desired.placements) {
    const existing = byName.get(placement.name);
    const deletion = deleted.get(placement.name);
    // A failed Pod is deleted at once by the apiserver (terminal phase): its replacement can
    // be created in the same pass. Anything else must be gone first (same name).
    if (existing !== undefined && deletion?.reason !== 'Failed') {
      if (existing.phase === 'terminating') waits.push({ name: placement.name, reason: 'Terminating' });
      else if (deletion !== undefined) waits.push({ name: placement.name, reason: 'Replacing' });
      continue;
    }
    if (input.templateBlocked === true) {
      waits.push({ name: placement.name, reason: 'InvalidTemplate' });
      continue;
    }
    const recreations = recreate.get(placement.name) ?? input.carried?.(placement.name) ?? 0;
    creates.push({ placement, recreations });
  }
  return creates;
}

/** Rolls outdated brokers: Jobs and unavailable ones at once, available ones one at a time. */
function planRollout(
  desired: DesiredBrokers,
  outdated: readonly ObservedBroker[],
  byName: ReadonlyMap<string, ObservedBroker>,
  out: { deletes: BrokerDelete[]; updates: BrokerCreate[]; waits: BrokerWait[] },
): void {
  const { deletes, updates, waits } = out;
  const placements = new Map(desired.placements.map((p) => [p.name, p]));
  const roll = (b: ObservedBroker): void => {
    const placement = placements.get(b.name);
    if (isAppliedKind(b.kind) && placement !== undefined) updates.push({ placement, recreations: b.recreations });
    else deletes.push({ kind: b.kind, name: b.name, uid: b.uid, node: b.node, reason: 'Outdated' });
  };
  const servingOutdated: ObservedBroker[] = [];
  for (const b of outdated) {
    if (b.kind === 'Job' || !isAvailable(b)) roll(b);
    else servingOutdated.push(b);
  }
  if (servingOutdated.length === 0) return;
  const rolling = new Set([...deletes.map((d) => d.name), ...updates.map((u) => u.placement.name)]);
  // Placements not served right now (missing, terminating, not available, or being rolled).
  const unserved = desired.placements.filter((p) => {
    const b = byName.get(p.name);
    return b === undefined || rolling.has(p.name) || b.phase === 'terminating' || !isAvailable(b);
  }).length;
  const [first, ...rest] = servingOutdated;
  if (unserved === 0 && first !== undefined) {
    roll(first);
    for (const b of rest) waits.push({ name: b.name, reason: 'RollingUpdate' });
  } else {
    for (const b of servingOutdated) waits.push({ name: b.name, reason: 'RollingUpdate' });
  }
}
