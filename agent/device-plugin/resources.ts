/**
 * Pure planning of what this node's device plugins advertise.
 *
 * Every served device with capacity N has slots `<device>-0 … <device>-(N-1)`, offered
 * through `tether.dev/<discovery>` (any device of the discovery) and, in per-device mode or
 * for a device that needs it (a brokered discovery's, in lean mode), `tether.dev/<device>`
 * (this device). A slot is Healthy in a resource only if the device is online and the ledger
 * lets that resource advertise it.
 */
import { deviceResourceName, discoveryResourceName, type ResourceName } from '../../api/names.ts';
import { slotsOf, type ServedDevice } from '../device.ts';
import type { SlotLedger } from '../ledger/slot-ledger.ts';
import type { PluginDevice } from '../../proto/types.ts';

/**
 * How devices are offered to the kubelet:
 *   - `per-device`: every device through its own resource and its discovery's (one gRPC
 *     server and socket per device, plus one per discovery);
 *   - `lean`: only through the discovery's resource, so servers, sockets and the kubelet's
 *     connections grow with discoveries, not devices. A device still gets its own resource
 *     when something must request exactly that device (a broker: see `servesOwnResource`).
 */
export type DevicePluginMode = 'per-device' | 'lean';

export const DEVICE_PLUGIN_MODES: readonly DevicePluginMode[] = ['per-device', 'lean'];

/**
 * Resource name → the devices (slots) it advertises, for every served device.
 * `ownResource(device)` says whether the device is also offered as `tether.dev/<device>`
 * (always, in per-device mode).
 */
export function desiredResources(
  devices: readonly ServedDevice[],
  ledger: SlotLedger,
  node: string,
  ownResource: (device: ServedDevice) => boolean = () => true,
  slotIds: (device: ServedDevice) => readonly string[] = slotsOf,
): Map<ResourceName, PluginDevice[]> {
  const resources = new Map<ResourceName, PluginDevice[]>();
  const add = (resource: ResourceName, device: ServedDevice): void => {
    const list = resources.get(resource) ?? [];
    for (const slot of slotIds(device)) {
      const healthy = device.online && ledger.isAdvertisable(slot, node, resource);
      list.push({ ID: slot, health: healthy ? 'Healthy' : 'Unhealthy' });
    }
    resources.set(resource, list);
  };
  for (const device of devices) {
    if (ownResource(device)) add(deviceResourceName(device.name), device);
    add(discoveryResourceName(device.discovery), device);
  }
  return resources;
}

/**
 * The preferred choice of `size` slots: the must-include ones, then spread over as many
 * distinct devices as possible (a pod asking for two cameras wants two cameras), ties
 * broken by device name and slot index so the answer is deterministic.
 *
 * The kubelet asks with every free ID of the resource — in lean mode every free slot of the
 * discovery — so each ID is split once and grouped by device, with no sort of all of them:
 * O(available) plus O(devices) per chosen slot.
 */
export function preferredSlots(available: readonly string[], mustInclude: readonly string[], size: number): string[] {
  const chosen = [...new Set(mustInclude)];
  const perDevice = new Map<string, number>();
  for (const slot of chosen) perDevice.set(deviceOf(slot), (perDevice.get(deviceOf(slot)) ?? 0) + 1);
  const byDevice = groupByDevice(available, new Set(chosen));
  while (chosen.length < size) {
    const best = leastUsed(byDevice, perDevice);
    if (best === undefined) break;
    const slots = byDevice.get(best)!;
    chosen.push(slots.shift()!);
    if (slots.length === 0) byDevice.delete(best);
    perDevice.set(best, (perDevice.get(best) ?? 0) + 1);
  }
  return chosen;
}

/** The device part of a slot ID. No validation: IDs come from the kubelet, which only has ours. */
function deviceOf(slot: string): string {
  const dash = slot.lastIndexOf('-');
  return dash <= 0 ? slot : slot.slice(0, dash);
}

/** Device → its slots in index order, each slot once, leaving out `exclude`. */
function groupByDevice(slots: readonly string[], exclude: ReadonlySet<string>): Map<string, string[]> {
  const byDevice = new Map<string, string[]>();
  for (const slot of slots) {
    if (exclude.has(slot)) continue;
    const device = deviceOf(slot);
    const list = byDevice.get(device);
    if (list === undefined) byDevice.set(device, [slot]);
    else if (!list.includes(slot)) list.push(slot);
  }
  const indexOf = (slot: string): number => Number(slot.slice(slot.lastIndexOf('-') + 1));
  for (const list of byDevice.values()) if (list.length > 1) list.sort((x, y) => indexOf(x) - indexOf(y));
  return byDevice;
}

/** Of the devices with a slot left, the one used least so far; ties go to the first by name. */
function leastUsed(byDevice: ReadonlyMap<string, unknown>, used: ReadonlyMap<string, number>): string | undefined {
  let best: string | undefined;
  let bestCount = Number.POSITIVE_INFINITY;
  for (const device of byDevice.keys()) {
    const count = used.get(device) ?? 0;
    if (count < bestCount || (count === bestCount && device < best!)) [best, bestCount] = [device, count];
  }
  return best;
}
