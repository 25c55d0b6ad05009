/**
 * The devices this node serves, and the answers to the kubelet about them.
 *
 * Holds the served devices per discovery session, plans the advertised resources
 * (pure, see device-plugin/resources.ts) and implements the plugin backend: Allocate
 * claims slots in the ledger all-or-nothing and builds the container response.
 */
import { status } from '@grpc/grpc-js';
import { deviceResourceName, discoveryResourceName, parseSlotId, type ResourceName } from '../deploy/crds/names.ts';
import { buildContainerResponse, PathConflictError } from './allocation/container-response.ts';
import { PluginError, type PluginBackend } from './device-plugin/server.ts';
import { desiredResources, preferredSlots, type ServedDevice } from './device-plugin/resources.ts';
import type { SlotLedger } from './ledger/slot-ledger.ts';
import type { ContainerAllocateResponse, ContainerPreferredAllocationRequest, PluginDevice } from './proto/types.ts';

export interface NodeDevicesOptions {
  readonly node: string;
  readonly ledger: SlotLedger;
  /** Called after anything that changes what the plugins advertise. */
  readonly onChange: () => void;
  readonly cdiKind?: string;
}

export class NodeDevices implements PluginBackend {
  readonly #options: NodeDevicesOptions;
  /** session key → device name → device */
  readonly #sessions = new Map<string, Map<string, ServedDevice>>();

  constructor(options: NodeDevicesOptions) {
    this.#options = options;
  }

  /** Replaces the devices of one discovery session. */
  setSessionDevices(session: string, devices: readonly ServedDevice[]): void {
    if (devices.length === 0) this.#sessions.delete(session);
    else this.#sessions.set(session, new Map(devices.map((d) => [d.name, d])));
    this.#options.onChange();
  }

  devices(): ServedDevice[] {
    return [...this.#sessions.values()].flatMap((m) => [...m.values()]);
  }

  device(name: string): ServedDevice | undefined {
    for (const session of this.#sessions.values()) {
      const device = session.get(name);
      if (device !== undefined) return device;
    }
    return undefined;
  }

  resources(): Map<ResourceName, PluginDevice[]> {
    return desiredResources(this.devices(), this.#options.ledger, this.#options.node);
  }

  // Synchronous up to the claim: two concurrent Allocates cannot both win a slot. (The
  // Kubernetes-backed ledger will await its server-side apply here.)
  // eslint-disable-next-line @typescript-eslint/require-await
  async allocate(resourceName: string, deviceIds: readonly string[]): Promise<ContainerAllocateResponse> {
    const devices = deviceIds.map((id) => this.#deviceForSlot(resourceName, id));
    const claim = this.#options.ledger.claim(deviceIds, { node: this.#options.node, resource: resourceName });
    if (!claim.ok) {
      const held = claim.conflicts.map((c) => `${c.slot} (held by node ${c.holder.node} via ${c.holder.resource})`);
      throw new PluginError(status.ABORTED, `slot already allocated: ${held.join(', ')}`);
    }
    try {
      const response = buildContainerResponse(devices, this.#options.cdiKind === undefined ? {} : { cdiKind: this.#options.cdiKind });
      this.#options.onChange();
      return response;
    } catch (error) {
      this.#options.ledger.release(deviceIds);
      const code = error instanceof PathConflictError ? status.FAILED_PRECONDITION : status.INTERNAL;
      throw new PluginError(code, (error as Error).message, { cause: error });
    }
  }

  release(_resourceName: string, deviceIds: readonly string[]): void {
    this.#options.ledger.release(deviceIds);
    this.#options.onChange();
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
      resourceName === deviceResourceName(device.name) || resourceName === discoveryResourceName(device.discovery);
    if (!belongs) throw new PluginError(status.INVALID_ARGUMENT, `device ID ${id} does not belong to resource ${resourceName}`);
    if (!device.online) throw new PluginError(status.FAILED_PRECONDITION, `device ${device.name} is offline`);
    return device;
  }
}
