/**
 * When the agent asks the kubelet's PodResources API (ledger/reconcile.ts) on its periodic
 * tick. Pure.
 *
 * Freeing needs a prompt answer only while this node holds a slot (a slot is freed `graceMs`
 * after its pod is gone), and restoring only concerns slots held here. Every Allocate claims
 * its slots in the ledger first, so "holds no slot" also means no Allocate succeeded since.
 * What is left — adopting a slot the kubelet gave a pod that the ledger never held (only after
 * an agent restart, which always reconciles first) — is checked on a slow idle period, so an
 * idle agent does not wake the kubelet every few seconds (issue 15). A node that serves no
 * device and holds no slot has nothing to adopt at all: after the first call it never asks.
 */

export interface ReconcileTick {
  /** Whether this node holds any slot in the ledger. */
  readonly holdsSlots: boolean;
  /** Whether this node serves any device to the kubelet. */
  readonly servesDevices: boolean;
  /** ms since the last PodResources call; undefined before the first. */
  readonly sinceLastMs: number | undefined;
  /** The longest an idle node goes without asking. */
  readonly idleIntervalMs: number;
}

/** Whether this tick calls PodResources. */
export function shouldReconcile(tick: ReconcileTick): boolean {
  if (tick.holdsSlots || tick.sinceLastMs === undefined) return true;
  return tick.servesDevices && tick.sinceLastMs >= tick.idleIntervalMs;
}
