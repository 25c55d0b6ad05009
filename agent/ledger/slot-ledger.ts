/**
 * Who holds which slot, and what each resource may advertise. Pure and synchronous,
 * so a claim is atomic within the process.
 *
 * A slot is one unit of a device's capacity, named `<device>-<index>`. The same slot is
 * offered through two resources (the device's own and its discovery's), so a slot held
 * through one must never look allocatable through the other (Akri #849): only the
 * resource that holds it keeps it Healthy, because there the kubelet already counts it
 * as in use.
 */

export interface SlotHolder {
  readonly node: string;
  /** The extended resource through which the slot was allocated. */
  readonly resource: string;
}

export type ClaimResult =
  { readonly ok: true } | { readonly ok: false; readonly conflicts: readonly { slot: string; holder: SlotHolder }[] };

function sameHolder(a: SlotHolder, b: SlotHolder): boolean {
  return a.node === b.node && a.resource === b.resource;
}

export class SlotLedger {
  readonly #held = new Map<string, SlotHolder>();

  /** Claims all of `slots` for `holder`, or none of them. Re-claiming one's own slot is fine. */
  claim(slots: readonly string[], holder: SlotHolder): ClaimResult {
    const conflicts = slots.flatMap((slot) => {
      const current = this.#held.get(slot);
      return current !== undefined && !sameHolder(current, holder) ? [{ slot, holder: current }] : [];
    });
    if (conflicts.length > 0) return { ok: false, conflicts };
    for (const slot of slots) this.#held.set(slot, holder);
    return { ok: true };
  }

  release(slots: Iterable<string>): void {
    for (const slot of slots) this.#held.delete(slot);
  }

  /**
   * Releases the slots `node` still holds, leaving any another node took meanwhile: a claim
   * that lost a race must not erase the winner's holding the cluster already reported.
   */
  releaseHeldBy(slots: Iterable<string>, node: string): void {
    for (const slot of slots) if (this.#held.get(slot)?.node === node) this.#held.delete(slot);
  }

  holderOf(slot: string): SlotHolder | undefined {
    return this.#held.get(slot);
  }

  /** Slots currently held, with their holders. */
  entries(): IterableIterator<[string, SlotHolder]> {
    return this.#held.entries();
  }

  /**
   * Mirrors one device's `spec.slots` (index → node) from the server. Other nodes' entries
   * are replaced wholesale; this node's entries are only added (restart: resource not yet
   * known, so the empty resource marks them Unhealthy everywhere until PodResources
   * reconciliation tells which resource holds them) — this node's own claims in flight are
   * never dropped by a stale read.
   */
  mirrorDevice(slotIds: readonly string[], slots: Readonly<Record<string, string>>, node: string): boolean {
    let changed = false;
    slotIds.forEach((slot, index) => {
      const serverNode = slots[String(index)];
      const current = this.#held.get(slot);
      if (serverNode === undefined) {
        if (current !== undefined && current.node !== node) {
          this.#held.delete(slot);
          changed = true;
        }
      } else if (serverNode !== node) {
        if (current?.node !== serverNode) {
          this.#held.set(slot, { node: serverNode, resource: '' });
          changed = true;
        }
      } else if (current === undefined) {
        this.#held.set(slot, { node, resource: '' });
        changed = true;
      }
    });
    return changed;
  }

  /**
   * Applies a PodResources reconciliation (ledger/reconcile.ts): frees `free`, and records
   * each adopted slot as held by `node` through the resource the kubelet reports — the
   * kubelet is authoritative about what its pods hold.
   */
  applyReconcile(
    plan: { readonly free: readonly string[]; readonly adopt: readonly { slot: string; resource: string }[] },
    node: string,
  ): void {
    this.release(plan.free);
    for (const { slot, resource } of plan.adopt) this.#held.set(slot, { node, resource });
  }

  /** May `resource` on `node` report `slot` as Healthy? */
  isAdvertisable(slot: string, node: string, resource: string): boolean {
    const holder = this.#held.get(slot);
    return holder === undefined || sameHolder(holder, { node, resource });
  }
}
