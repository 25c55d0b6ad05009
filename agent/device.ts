/**
 * The agent's one device model. A handler reports a `DiscoveredDevice` (the handler
 * contract); the session names and sanitises it into a `ServedDevice`, which every later
 * stage reads: the device plugins advertise its slots (as kubelet `PluginDevice`s), Allocate
 * builds the container response from it, and the cluster publication writes it as a
 * `Device` object. Stages that need less take a `Pick` of it, not a type of their own.
 */
import { slotId, type DeviceName } from '../api/names.ts';
import type { DeviceMount, DeviceNode } from '../discovery-handlers/contract.ts';

/** A device as this node serves it. Immutable: a change makes a new object. */
export interface ServedDevice {
  /** The Device object name (deterministic, collision-safe). */
  readonly name: DeviceName;
  readonly namespace: string;
  /** DeviceDiscovery name. */
  readonly discovery: string;
  /** uid of the DeviceDiscovery (cluster only): the Device's owner. */
  readonly discoveryUid?: string;
  /** Raw id as the handler reported it. */
  readonly deviceId: string;
  readonly shared: boolean;
  readonly capacity: number;
  readonly online: boolean;
  readonly properties: Readonly<Record<string, string>>;
  readonly mounts: readonly DeviceMount[];
  readonly deviceNodes: readonly DeviceNode[];
}

/** The slot ids of a device: `<device>-0 … <device>-(capacity-1)`. */
export function slotsOf(device: Pick<ServedDevice, 'name' | 'capacity'>): string[] {
  return Array.from({ length: device.capacity }, (_, i) => slotId(device.name, i));
}
