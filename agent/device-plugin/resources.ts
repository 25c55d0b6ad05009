/**
 * Pure planning of what this node's device plugins advertise.
 *
 * Every served device with capacity N has slots `<device>-0 … <device>-(N-1)`, offered
 * through `tether.dev/<discovery>` (any device of the discovery) and, in per-device mode or
 * for a device that needs it (a brokered discovery's, in lean mode), `tether.dev/<device>`
 * (this device). A slot is Healthy in a resource only if the device is online and the ledger
 * lets that resource advertise it.
 */
import { deviceResourceName, discoveryResourceName, parseSlotId, type ResourceName } from '../../api/names.ts';
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
): Map<ResourceName, PluginDevice[]> {
  const resources = new Map<ResourceName, PluginDevice[]>();
  const add = (resource: ResourceName, device: ServedDevice): void => {
    const list = resources.get(resource) ?? [];
    for (const slot of slotsOf(device)) {
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
 * discovery — so each ID is parsed once and grouped by device: O(available · log) plus
 * O(devices) per chosen slot, not a parse per comparison.
 */
export function preferredSlots(available: readonly string[], mustInclude: readonly string[], size: number): string[] {
  const chosen = [...new Set(mustInclude)];
  const perDevice = new Map<string, number>();
  for (const slot of chosen) perDevice.set(refOf(slot).device, (perDevice.get(refOf(slot).device) ?? 0) + 1);
  const byDevice = groupByDevice(available, new Set(chosen));
  const devices = [...byDevice.keys()].sort();
  const next = new Map<string, number>(); // device → position of its next unchosen slot
  while (chosen.length < size) {
    const best = leastUsed(devices, perDevice, (device) => (next.get(device) ?? 0) < byDevice.get(device)!.length);
    if (best === undefined) break;
    const position = next.get(best) ?? 0;
    chosen.push(byDevice.get(best)![position]!);
    next.set(best, position + 1);
    perDevice.set(best, (perDevice.get(best) ?? 0) + 1);
  }
  return chosen;
}

function refOf(slot: string): { device: string; index: number } {
  const ref = parseSlotId(slot);
  return ref === undefined ? { device: slot, index: -1 } : { device: ref.deviceName, index: ref.index };
}

/** Device → its slots in index order, each slot once, leaving out `exclude`. */
function groupByDevice(slots: readonly string[], exclude: ReadonlySet<string>): Map<string, string[]> {
  const byDevice = new Map<string, { slot: string; index: number }[]>();
  const seen = new Set(exclude);
  for (const slot of slots) {
    if (seen.has(slot)) continue;
    seen.add(slot);
    const { device, index } = refOf(slot);
    const list = byDevice.get(device) ?? [];
    list.push({ slot, index });
    byDevice.set(device, list);
  }
  return new Map([...byDevice].map(([device, list]) => [device, list.sort((a, b) => a.index - b.index).map((e) => e.slot)]));
}

/** The first of `devices` (in order) among those with a slot left that is used least so far. */
function leastUsed(
  devices: readonly string[],
  used: ReadonlyMap<string, number>,
  hasSlot: (device: string) => boolean,
): string | undefined {
  let best: string | undefined;
  let bestCount = Number.POSITIVE_INFINITY;
  for (const device of devices) {
    if (!hasSlot(device)) continue;
    const count = used.get(device) ?? 0;
    if (count === 0) return device; // nothing is used less
    if (count < bestCount) [best, bestCount] = [device, count];
  }
  return best;
}
