/**
 * The devices this node serves, their slots, and the answers to the kubelet about them.
 *
 * Holds the served devices per discovery session, plans the advertised resources (pure, see
 * device-plugin/resources.ts) and implements the plugin backend: Allocate claims slots
 * all-or-nothing and builds the container response.
 *
 * The only writer of the slot ledger: local claims and releases (Allocate), the kubelet's
 * PodResources answer (`reconcileSlots`) and what the cluster says other nodes hold
 * (`mirrorServerSlots`) all come through here, so the rules of who may overwrite what live
 * in one place (ledger/slot-ledger.ts).
 */
import { status } from '@grpc/grpc-js';
import { deviceResourceName, discoveryResourceName, parseSlotId, type ResourceName } from '../../api/names.ts';
import { buildContainerResponse, PathConflictError } from '../allocation/container-response.ts';
import { slotsOf, type ServedDevice } from '../device.ts';
import { PluginError, type PluginBackend } from '../device-plugin/server.ts';
import { desiredResources, preferredSlots, type DevicePluginMode } from '../device-plugin/resources.ts';
import type { ReconcilePlan } from '../ledger/reconcile.ts';
import type { SlotLedger } from '../ledger/slot-ledger.ts';
import { ApplyConflictError } from '../publish/devices-api.ts';
import type { ContainerAllocateResponse, ContainerPreferredAllocationRequest, PluginDevice } from '../../proto/types.ts';

export interface NodeDevicesOptions {
  readonly node: string;
  readonly ledger: SlotLedger;
  /** Called after the served devices changed (the plugins and the publication must follow). */
  readonly onChange: () => void;
  /**
   * Called after only slot holdings or resource choices changed: the plugins must advertise
   * anew, the published devices are unchanged (a claim is made durable by `persistSlots`).
   * Kept apart so an Allocate does not recompute the publication of every device. `devices`
   * names the devices whose slots changed (their resources are all that must advertise anew,
   * see `resourcesOf`); 'all' when any device's may have. Default: `onChange`.
   */
  readonly onSlotsChange?: (devices: ReadonlySet<string> | 'all') => void;
  readonly cdiKind?: string;
  /** How devices are offered to the kubelet; default `per-device`. */
  readonly mode?: DevicePluginMode;
  /**
   * Makes a device's slot holdings durable (e.g. on the Device object). Gets every slot
   * index this node holds on the device after the change. Rejects with
   * ApplyConflictError when another node holds one of them.
   */
  readonly persistSlots?: (device: ServedDevice, held: readonly number[]) => Promise<void>;
  /** Observes every Allocate outcome (for metrics). */
  readonly onAllocate?: (outcome: 'ok' | 'conflict' | 'error', seconds: number) => void;
  /**
   * Called when an Allocate has claimed `slots` in the ledger: a slot the kubelet just gave a new
   * pod is in use again, whatever PodResources said about its previous pod.
   */
  readonly onClaimed?: (slots: readonly string[]) => void;
}

export class NodeDevices implements PluginBackend {
  readonly #options: NodeDevicesOptions;
  /** session key → device name → device */
  readonly #sessions = new Map<string, Map<string, ServedDevice>>();
  /** Sessions (`namespace/discovery`) whose discovery runs brokers: their devices keep their own resource in lean mode. */
  readonly #brokered = new Set<string>();
  /**
   * Devices whose slots have not been mirrored from the cluster since they appeared (or their
   * capacity changed). Later changes of a served device's slots arrive one device at a time
   * (`mirrorServerSlots`), so a sync mirrors only these: O(changed devices), not O(devices).
   */
  readonly #unmirrored = new Set<string>();
  readonly #slotIds = new WeakMap<ServedDevice, readonly string[]>();

  constructor(options: NodeDevicesOptions) {
    this.#options = options;
  }

  /** Replaces the devices of one discovery session. */
  setSessionDevices(session: string, devices: readonly ServedDevice[]): void {
    const before = this.#sessions.get(session);
    for (const device of devices) {
      // Served devices are immutable: the same object is the same device, nothing to mirror.
      const old = before?.get(device.name);
      if (old === device) continue;
      if (old === undefined || old.capacity !== device.capacity) this.#unmirrored.add(device.name);
    }
    if (devices.length === 0) this.#sessions.delete(session);
    else this.#sessions.set(session, new Map(devices.map((d) => [d.name, d])));
    this.#options.onChange();
  }

  /**
   * Whether a session's discovery has a broker template. In lean mode its devices are also
   * offered through their own resource, the one a broker requests (see `servesOwnResource`).
   */
  setBrokered(session: string, brokered: boolean): void {
    if (this.#brokered.has(session) === brokered) return;
    if (brokered) this.#brokered.add(session);
    else this.#brokered.delete(session);
    if (this.#options.mode === 'lean') this.#slotsChanged('all');
  }

  /**
   * Whether `device` is offered as `tether.dev/<device>`. Always in per-device mode. In lean
   * mode only for a brokered discovery's devices: a broker must get exactly its device, and
   * through the discovery-wide resource the kubelet picks the slot (GetPreferredAllocation
   * cannot tell which pod asks), so only a resource of its own can pin it.
   */
  servesOwnResource(device: Pick<ServedDevice, 'namespace' | 'discovery'>): boolean {
    if (this.#options.mode !== 'lean') return true;
    return this.#brokered.size > 0 && this.#brokered.has(`${device.namespace}/${device.discovery}`);
  }

  /** A device's slot IDs, made once per device object (immutable), not on every plugin sync. */
  #slotIdsOf(device: ServedDevice): readonly string[] {
    let ids = this.#slotIds.get(device);
    if (ids === undefined) {
      ids = slotsOf(device);
      this.#slotIds.set(device, ids);
    }
    return ids;
  }

  /**
   * Mirrors the cluster's record of slots (`serverSlots`) into the ledger for the devices
   * not yet mirrored, and only for them. True when the ledger changed.
   */
  mirrorNewDevices(serverSlots: (device: ServedDevice) => Readonly<Record<string, string>> | undefined): boolean {
    let changed = false;
    for (const name of this.#unmirrored) {
      const device = this.device(name);
      const slots = device === undefined ? undefined : serverSlots(device);
      if (device !== undefined && slots !== undefined) {
        changed = this.#options.ledger.mirrorDevice(slotsOf(device), slots, this.#options.node) || changed;
      }
    }
    this.#unmirrored.clear();
    return changed;
  }

  devices(): ServedDevice[] {
    return [...this.#sessions.values()].flatMap((m) => [...m.values()]);
  }

  /** Whether any session serves a device. */
  servesAny(): boolean {
    for (const session of this.#sessions.values()) if (session.size > 0) return true;
    return false;
  }

  device(name: string): ServedDevice | undefined {
    for (const session of this.#sessions.values()) {
      const device = session.get(name);
      if (device !== undefined) return device;
    }
    return undefined;
  }

  resources(): Map<ResourceName, PluginDevice[]> {
    return desiredResources(
      this.devices(),
      this.#options.ledger,
      this.#options.node,
      (d) => this.servesOwnResource(d),
      (d) => this.#slotIdsOf(d),
    );
  }

  /**
   * The resources that advertise any of `names` (each device's own, its discovery's), each
   * exactly as `resources()` has it: after an Allocate, two lists are made instead of one
   * per served device. Unknown names are skipped.
   */
  resourcesOf(names: ReadonlySet<string>): Map<ResourceName, PluginDevice[]> {
    const all = this.devices();
    const discoveries = new Set(all.filter((d) => names.has(d.name)).map((d) => discoveryResourceName(d.discovery)));
    return desiredResources(
      all.filter((d) => discoveries.has(discoveryResourceName(d.discovery))),
      this.#options.ledger,
      this.#options.node,
      (d) => names.has(d.name) && this.servesOwnResource(d),
      (d) => this.#slotIdsOf(d),
    );
  }

  /**
   * Mirrors what the cluster says about one served device's slots (index → node): other
   * nodes' holdings replace the ledger's, this node's are only added. True when the ledger
   * changed (the plugins must advertise anew).
   */
  mirrorServerSlots(name: string, slots: Readonly<Record<string, string>>): boolean {
    const device = this.device(name);
    if (device === undefined) return false;
    return this.#options.ledger.mirrorDevice(slotsOf(device), slots, this.#options.node);
  }

  /**
   * True when the cluster's record of the slot's device is known (`serverSlots`) and names
   * no holder for the slot's index. Unknown devices and unpublished ones are not "unrecorded".
   */
  isUnrecorded(slot: string, serverSlots: (device: ServedDevice) => Readonly<Record<string, string>> | undefined): boolean {
    const ref = parseSlotId(slot);
    const device = ref === undefined ? undefined : this.device(ref.deviceName);
    const recorded = device === undefined ? undefined : serverSlots(device);
    return recorded !== undefined && recorded[String(ref!.index)] === undefined;
  }

  /**
   * Applies a PodResources reconciliation (frees and adopts slots) and makes the result
   * durable for every device it touched. Rejects when persisting fails (retried at the next
   * reconciliation, which finds the same difference).
   */
  async reconcileSlots(plan: ReconcilePlan): Promise<void> {
    this.#options.ledger.applyReconcile(plan, this.#options.node);
    const touched = new Map<string, ServedDevice>();
    for (const slot of [...plan.free, ...plan.adopt.map((a) => a.slot), ...plan.restore]) {
      const ref = parseSlotId(slot);
      const device = ref === undefined ? undefined : this.device(ref.deviceName);
      if (device !== undefined) touched.set(device.name, device);
    }
    this.#slotsChanged(new Set(touched.keys()));
    await this.#persist([...touched.values()]);
  }

  async allocate(resourceName: string, deviceIds: readonly string[]): Promise<ContainerAllocateResponse> {
    const started = performance.now();
    const observe = (outcome: 'ok' | 'conflict' | 'error'): void =>
      this.#options.onAllocate?.(outcome, (performance.now() - started) / 1000);
    // Synchronous up to the local claim: two concurrent Allocates in this process cannot
    // both win a slot; the durable claim below settles races between nodes.
    const devices = deviceIds.map((id) => this.#deviceForSlot(resourceName, id));
    const claim = this.#options.ledger.claim(deviceIds, { node: this.#options.node, resource: resourceName });
    if (!claim.ok) {
      observe('conflict');
      const held = claim.conflicts.map(
        (c) => `${c.slot} (held by node ${c.holder.node}${c.holder.resource ? ` via ${c.holder.resource}` : ''})`,
      );
      throw new PluginError(status.ABORTED, `slot already allocated: ${held.join(', ')}`);
    }
    this.#options.onClaimed?.(deviceIds);
    try {
      const response = buildContainerResponse(devices, this.#options.cdiKind === undefined ? {} : { cdiKind: this.#options.cdiKind });
      await this.#persist(devices);
      this.#slotsChanged(namesOf(devices));
      observe('ok');
      return response;
    } catch (error) {
      // The winner's holding may already be mirrored from the cluster: keep it.
      this.#options.ledger.releaseHeldBy(deviceIds, this.#options.node);
      this.#slotsChanged(namesOf(devices));
      if (error instanceof ApplyConflictError) {
        observe('conflict');
        throw new PluginError(status.ABORTED, `slot already allocated by another node: ${deviceIds.join(', ')}`, { cause: error });
      }
      observe('error');
      const code = error instanceof PathConflictError ? status.FAILED_PRECONDITION : status.UNAVAILABLE;
      throw new PluginError(code, (error as Error).message, { cause: error });
    }
  }

  release(_resourceName: string, deviceIds: readonly string[]): void {
    const devices = deviceIds.flatMap((id) => {
      const ref = parseSlotId(id);
      const device = ref === undefined ? undefined : this.device(ref.deviceName);
      return device === undefined ? [] : [device];
    });
    this.#options.ledger.release(deviceIds);
    this.#slotsChanged(namesOf(devices));
    this.#persist(devices).catch(() => undefined); // retried by ledger reconciliation
  }

  /** Indexes of the slots this node holds on `device`. */
  heldIndexes(device: ServedDevice): number[] {
    const held: number[] = [];
    for (const [slot, holder] of this.#options.ledger.entries()) {
      const ref = parseSlotId(slot);
      if (ref?.deviceName === device.name && holder.node === this.#options.node) held.push(ref.index);
    }
    return held.sort((a, b) => a - b);
  }

  #slotsChanged(devices: ReadonlySet<string> | 'all'): void {
    if (this.#options.onSlotsChange === undefined) this.#options.onChange();
    else this.#options.onSlotsChange(devices);
  }

  /** Persists the slot holdings of each distinct device. */
  async #persist(devices: readonly ServedDevice[]): Promise<void> {
    const persist = this.#options.persistSlots;
    if (persist === undefined) return;
    const distinct = [...new Map(devices.map((d) => [d.name, d])).values()];
    await Promise.all(distinct.map((d) => persist(d, this.heldIndexes(d))));
  }

  preferredAllocation(_resourceName: string, request: ContainerPreferredAllocationRequest): readonly string[] {
    return preferredSlots(request.available_deviceIDs, request.must_include_deviceIDs, request.allocation_size);
  }

  #deviceForSlot(resourceName: string, id: string): ServedDevice {
    const ref = parseSlotId(id);
    const device = ref === undefined ? undefined : this.device(ref.deviceName);
    if (ref === undefined || device === undefined || ref.index >= device.capacity) {
      throw new PluginError(status.NOT_FOUND, `unknown device ID ${id} for resource ${resourceName}`);
    }
    const belongs =
      (resourceName === deviceResourceName(device.name) && this.servesOwnResource(device)) ||
      resourceName === discoveryResourceName(device.discovery);
    if (!belongs) throw new PluginError(status.INVALID_ARGUMENT, `device ID ${id} does not belong to resource ${resourceName}`);
    if (!device.online) throw new PluginError(status.FAILED_PRECONDITION, `device ${device.name} is offline`);
    return device;
  }
}

function namesOf(devices: readonly ServedDevice[]): Set<string> {
  return new Set(devices.map((d) => d.name));
}
