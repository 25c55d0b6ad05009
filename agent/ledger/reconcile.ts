/**
 * Pure reconciliation of the slot ledger against the kubelet's PodResources answer, in
 * both directions:
 *   - a slot this node holds that no pod holds any more is freed, once it has been missing
 *     for `graceMs` (Allocate happens before the pod shows up in PodResources);
 *   - a slot the kubelet has given to a pod but the ledger lacks (e.g. claimed before an
 *     agent restart) is adopted, with the resource the kubelet reports;
 *   - a slot held here and in use, but missing from the cluster's record (the controller
 *     released it while this node was lost, and its pods outlived the outage), is restored,
 *     so no other node can take it. Only a live kubelet's answer restores: while the kubelet
 *     is down nothing here fights the controller's release.
 * Slot IDs are compared exactly as the kubelet reports them (`<device>-<index>`), the
 * same strings the plugins advertise — no reformatting (Akri's reclaim compared
 * differently formatted IDs and never freed anything).
 */
import type { PodResources } from '../../proto/types.ts';
import type { SlotHolder } from './slot-ledger.ts';

export interface ReconcileInput {
  readonly node: string;
  readonly held: Iterable<readonly [string, SlotHolder]>;
  readonly pods: readonly PodResources[];
  /** Resources this agent serves; other plugins' devices are ignored. */
  readonly isOwnResource: (resource: string) => boolean;
  /** When each held slot was first seen missing from PodResources (carried between runs). */
  readonly missingSince: ReadonlyMap<string, number>;
  readonly now: number;
  readonly graceMs: number;
  /** True when the cluster's record of the slot's device is known and names no holder for it. */
  readonly isUnrecorded?: (slot: string) => boolean;
}

export interface ReconcilePlan {
  readonly free: string[];
  readonly adopt: { readonly slot: string; readonly resource: string }[];
  /** Slots held here and in use that the cluster no longer records: write them again. */
  readonly restore: string[];
  readonly missingSince: Map<string, number>;
}

export function planLedgerReconcile(input: ReconcileInput): ReconcilePlan {
  const inUse = new Map<string, string>();
  for (const pod of input.pods) {
    for (const container of pod.containers) {
      for (const devices of container.devices) {
        if (!input.isOwnResource(devices.resource_name)) continue;
        for (const id of devices.device_ids) inUse.set(id, devices.resource_name);
      }
    }
  }
  const free: string[] = [];
  const missingSince = new Map<string, number>();
  const heldHere = new Map<string, string>();
  for (const [slot, holder] of input.held) {
    if (holder.node !== input.node) continue;
    heldHere.set(slot, holder.resource);
    if (inUse.has(slot)) continue;
    const since = input.missingSince.get(slot) ?? input.now;
    if (input.now - since >= input.graceMs) free.push(slot);
    else missingSince.set(slot, since);
  }
  // Adopt what the ledger lacks, and fix the resource of entries restored without one.
  const adopt = [...inUse].filter(([slot, resource]) => heldHere.get(slot) !== resource).map(([slot, resource]) => ({ slot, resource }));
  const unrecorded = input.isUnrecorded ?? (() => false);
  const restore = [...inUse].filter(([slot, resource]) => heldHere.get(slot) === resource && unrecorded(slot)).map(([slot]) => slot);
  return { free: free.sort(), adopt, restore, missingSince };
}
