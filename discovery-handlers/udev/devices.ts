/**
 * From matched sysfs devices to what the handler reports, as Akri's udev handler does. Pure.
 *
 * - A matched device without a node stands for its nearest ancestor with one (Akri: a rule that
 *   matches a USB interface reports the USB device, `/dev/bus/usb/BBB/DDD`); with no such
 *   ancestor it is reported as itself, without a node. Duplicates collapse by devpath.
 * - id = that devpath (`/devices/pci0000:00/…/video4linux/video0`), property `UDEV_DEVPATH`;
 *   `UDEV_DEVNODE` = its node.
 * - `groupRecursive`: a found device below another found device joins it: one device per
 *   topmost found device, id = its devpath, its nodes and those of every found descendant as
 *   `UDEV_DEVNODE_0`, `_1`, … (in devpath order: the top device first). Only found devices are
 *   grouped — a rule matching only `video0` and `video1` gives two devices; one that also matches
 *   their USB device (e.g. `ATTRS{idVendor}=="046d"`) gives one.
 */
import type { DeviceNode, DiscoveredDevice } from '../contract.ts';
import type { UdevDetails } from './details.ts';
import { chainOf, matchesAny } from './match.ts';
import type { DeviceIndex, UdevDevice } from './records.ts';

/** Most `UDEV_ID_*` properties taken from the udev database per device. */
export const MAX_ID_PROPERTIES = 24;
/** Most device nodes of a grouped device. */
export const MAX_GROUP_NODES = 64;
/** Longest property value reported. */
export const MAX_PROPERTY_LENGTH = 512;

const ID_KEY = /^ID_[A-Z0-9_]{1,60}$/;

/** The device a match stands for: itself when it has a node, else its nearest ancestor with one. */
export function reportedDevice(device: UdevDevice, index: DeviceIndex): UdevDevice {
  if (device.devname !== undefined) return device;
  return chainOf(device, index).find((d) => d.devname !== undefined) ?? device;
}

/** The found devices of a scan by devpath: initialized candidates matching any rule, resolved to their node. */
export function foundDevices(candidates: readonly UdevDevice[], index: DeviceIndex, details: UdevDetails): Map<string, UdevDevice> {
  const found = new Map<string, UdevDevice>();
  for (const device of candidates) {
    if (!device.initialized || !matchesAny(details.udevRules, device, index)) continue;
    const reported = reportedDevice(device, index);
    found.set(reported.devpath, reported);
  }
  return found;
}

/** Groups found devices under their topmost found ancestor (by devpath), each group sorted, top first. */
export function groupDevices(found: ReadonlyMap<string, UdevDevice>): UdevDevice[][] {
  const groups = new Map<string, UdevDevice[]>();
  for (const path of [...found.keys()].sort()) {
    const parts = path.split('/');
    let root: string | undefined;
    for (let n = 2; n < parts.length && root === undefined; n++) {
      const prefix = parts.slice(0, n).join('/');
      if (groups.has(prefix)) root = prefix;
    }
    if (root === undefined) groups.set(path, [found.get(path)!]);
    else groups.get(root)!.push(found.get(path)!);
  }
  return [...groups.values()];
}

const bounded = (value: string): string => (value.length > MAX_PROPERTY_LENGTH ? value.slice(0, MAX_PROPERTY_LENGTH) : value);

/** Tether's richer properties of the top device: subsystem, kernel name, driver, links, udev's ID_* keys. */
function describe(top: UdevDevice): Record<string, string> {
  const properties: Record<string, string> = {};
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') properties[key] = bounded(value);
  };
  set('UDEV_SUBSYSTEM', top.subsystem);
  set('UDEV_KERNEL', top.sysname);
  set('UDEV_DRIVER', top.driver);
  set('UDEV_DEVTYPE', top.env.get('DEVTYPE'));
  set('UDEV_DEVLINKS', top.links.map((l) => `/dev/${l}`).join(' '));
  const ids = [...top.env.keys()].filter((k) => ID_KEY.test(k)).sort();
  for (const key of ids.slice(0, MAX_ID_PROPERTIES)) set(`UDEV_${key}`, top.env.get(key));
  return properties;
}

/** The DiscoveredDevice for one group (one device unless `groupRecursive`). */
export function udevDevice(group: readonly UdevDevice[], details: UdevDetails, devRoot: string): DiscoveredDevice {
  const top = group[0]!;
  const root = devRoot.replace(/\/$/, '');
  const nodes = [...new Set(group.flatMap((d) => (d.devname === undefined ? [] : [`${root}/${d.devname}`])))].slice(0, MAX_GROUP_NODES);
  const properties: Record<string, string> = { UDEV_DEVPATH: top.devpath };
  if (!details.groupRecursive) {
    if (nodes[0] !== undefined) properties['UDEV_DEVNODE'] = nodes[0];
  } else {
    nodes.forEach((node, i) => (properties[`UDEV_DEVNODE_${i}`] = node));
    if (nodes.length > 0) properties['UDEV_DEVNODES'] = bounded(nodes.join(','));
  }
  Object.assign(properties, describe(top));
  const deviceNodes: DeviceNode[] = nodes.map((path) => ({ containerPath: path, hostPath: path, permissions: details.permissions }));
  return { id: top.devpath, properties, deviceNodes };
}

/** What one scan reports: sorted by id, at most `maxDevices` (the rest counted in `dropped`). */
export function udevDevices(
  candidates: readonly UdevDevice[],
  index: DeviceIndex,
  details: UdevDetails,
  devRoot: string,
): { devices: DiscoveredDevice[]; dropped: number } {
  const found = foundDevices(candidates, index, details);
  const groups = details.groupRecursive ? groupDevices(found) : [...found.keys()].sort().map((path) => [found.get(path)!]);
  const devices = groups.slice(0, details.maxDevices).map((group) => udevDevice(group, details, devRoot));
  return { devices, dropped: Math.max(0, groups.length - details.maxDevices) };
}
