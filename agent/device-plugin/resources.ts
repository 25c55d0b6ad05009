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
 */
export function preferredSlots(available: readonly string[], mustInclude: readonly string[], size: number): string[] {
  const chosen = [...new Set(mustInclude)];
  const perDevice = new Map<string, number>();
  const deviceOf = (slot: string): string => parseSlotId(slot)?.deviceName ?? slot;
  for (const slot of chosen) perDevice.set(deviceOf(slot), (perDevice.get(deviceOf(slot)) ?? 0) + 1);
  const remaining = available
    .filter((slot) => !chosen.includes(slot))
    .sort((a, b) => {
      const [ra, rb] = [parseSlotId(a), parseSlotId(b)];
      if (ra && rb && ra.deviceName === rb.deviceName) return ra.index - rb.index;
      return a < b ? -1 : a > b ? 1 : 0;
    });
  while (chosen.length < size && remaining.length > 0) {
    let best = 0;
    for (let i = 1; i < remaining.length; i++) {
      if ((perDevice.get(deviceOf(remaining[i]!)) ?? 0) < (perDevice.get(deviceOf(remaining[best]!)) ?? 0)) best = i;
    }
    const [slot] = remaining.splice(best, 1);
    chosen.push(slot!);
    perDevice.set(deviceOf(slot!), (perDevice.get(deviceOf(slot!)) ?? 0) + 1);
  }
  return chosen;
}
