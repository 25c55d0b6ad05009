/**
 * Reads USB devices from sysfs (`<root>/bus/usb/devices`): the kernel's own view, always
 * current, readable without libusb or root. Pure I/O, no policy: filters and identity live in
 * usb.ts. A device that disappears while it is being read is skipped (it is gone).
 */
import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';

export interface UsbNode {
  /** Kernel subsystem: usb, tty, video4linux, hidraw, input, … */
  readonly subsystem: string;
  /** DEVNAME from uevent, relative to /dev (e.g. `bus/usb/001/004`, `ttyUSB0`). */
  readonly devname: string;
}

export interface UsbInterface {
  readonly name: string;
  readonly class: number | undefined;
  readonly subclass: number | undefined;
  readonly protocol: number | undefined;
  readonly driver: string | undefined;
  readonly nodes: readonly UsbNode[];
}

export interface UsbDevice {
  /** sysfs name, e.g. `1-1.2` (bus 1, root port 1, hub port 2). */
  readonly name: string;
  /** Device directory relative to the sysfs root, e.g. `devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.2`. */
  readonly sysfsPath: string;
  /** The host controller the bus hangs off (e.g. `0000:00:14.0`), when it can be told. */
  readonly controller: string | undefined;
  readonly busnum: number;
  readonly devnum: number;
  readonly vendorId: string;
  readonly productId: string;
  readonly serial: string | undefined;
  readonly manufacturer: string | undefined;
  readonly product: string | undefined;
  readonly deviceClass: number | undefined;
  readonly deviceSubclass: number | undefined;
  readonly deviceProtocol: number | undefined;
  readonly speed: string | undefined;
  /** The device's own node (`bus/usb/BBB/DDD`). */
  readonly node: UsbNode;
  readonly interfaces: readonly UsbInterface[];
}

const DEVICE_NAME = /^\d+-\d+(\.\d+)*$/;
const MAX_STRING = 256;
const MAX_WALK_DEPTH = 6;
const SAFE_DEVNAME = /^[A-Za-z0-9_.+:-]+(\/[A-Za-z0-9_.+:-]+)*$/;

function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODEV';
}

/** An attribute's trimmed text, or undefined when absent. */
async function attr(dir: string, name: string): Promise<string | undefined> {
  try {
    // eslint-disable-next-line no-control-regex
    const text = (await readFile(join(dir, name), 'utf8')).replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
    return text === '' ? undefined : text.slice(0, MAX_STRING);
  } catch (error) {
    if (isGone(error) || (error as NodeJS.ErrnoException).code === 'EACCES') return undefined;
    throw error;
  }
}

function hexByte(text: string | undefined): number | undefined {
  if (text === undefined || !/^[0-9a-fA-F]{1,2}$/.test(text)) return undefined;
  return parseInt(text, 16);
}

/** DEVNAME from a uevent file, when it is a safe relative path. */
async function devname(dir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, 'uevent'), 'utf8');
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
  const name = /^DEVNAME=(.+)$/m.exec(text)?.[1]?.trim();
  if (name === undefined || !SAFE_DEVNAME.test(name) || name.split('/').some((s) => s === '..' || s === '.')) return undefined;
  return name;
}

async function linkName(path: string): Promise<string | undefined> {
  try {
    return basename(await readlink(path));
  } catch {
    return undefined;
  }
}

/** Class devices (tty, video4linux, hidraw, …) below an interface directory, without following links. */
async function childNodes(dir: string, depth: number, out: UsbNode[]): Promise<void> {
  if (depth > MAX_WALK_DEPTH) return;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isGone(error)) return;
    throw error;
  }
  if (depth > 0 && entries.some((e) => e.name === 'uevent' && e.isFile())) {
    const name = await devname(dir);
    if (name !== undefined) out.push({ subsystem: (await linkName(join(dir, 'subsystem'))) ?? basename(dirname(dir)), devname: name });
  }
  for (const entry of entries) {
    if (entry.isDirectory() && entry.name !== 'power') await childNodes(join(dir, entry.name), depth + 1, out);
  }
}

async function readInterface(deviceDir: string, name: string): Promise<UsbInterface> {
  const dir = join(deviceDir, name);
  const nodes: UsbNode[] = [];
  await childNodes(dir, 0, nodes);
  nodes.sort((a, b) => (a.devname < b.devname ? -1 : a.devname > b.devname ? 1 : 0));
  return {
    name,
    class: hexByte(await attr(dir, 'bInterfaceClass')),
    subclass: hexByte(await attr(dir, 'bInterfaceSubClass')),
    protocol: hexByte(await attr(dir, 'bInterfaceProtocol')),
    driver: await linkName(join(dir, 'driver')),
    nodes,
  };
}

/** `0000:00:14.0` from `…/0000:00:14.0/usb1/1-1/1-1.2`: the directory above the root hub. */
function controllerOf(path: string): string | undefined {
  const parts = path.split('/');
  const hub = parts.findIndex((p) => /^usb\d+$/.test(p));
  return hub > 0 ? parts[hub - 1] : undefined;
}

async function readDevice(root: string, name: string): Promise<UsbDevice | undefined> {
  const dir = await realpath(join(root, 'bus/usb/devices', name));
  const [vendorId, productId, busText, devText] = await Promise.all(['idVendor', 'idProduct', 'busnum', 'devnum'].map((a) => attr(dir, a)));
  // Half-gone or half-made: skip this round; the next scan sees it whole (or not at all).
  if (vendorId === undefined || productId === undefined || busText === undefined || devText === undefined) return undefined;
  const busnum = Number(busText);
  const devnum = Number(devText);
  if (!Number.isInteger(busnum) || !Number.isInteger(devnum)) return undefined;
  const interfaces: UsbInterface[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && entry.name.startsWith(`${name}:`)) interfaces.push(await readInterface(dir, entry.name));
  }
  interfaces.sort((a, b) => (a.name < b.name ? -1 : 1));
  const pad = (n: number): string => String(n).padStart(3, '0');
  const sysfsPath = relative(await realpath(root), dir);
  return {
    name,
    sysfsPath,
    controller: controllerOf(sysfsPath),
    busnum,
    devnum,
    vendorId: vendorId.toLowerCase(),
    productId: productId.toLowerCase(),
    serial: await attr(dir, 'serial'),
    manufacturer: await attr(dir, 'manufacturer'),
    product: await attr(dir, 'product'),
    deviceClass: hexByte(await attr(dir, 'bDeviceClass')),
    deviceSubclass: hexByte(await attr(dir, 'bDeviceSubClass')),
    deviceProtocol: hexByte(await attr(dir, 'bDeviceProtocol')),
    speed: await attr(dir, 'speed'),
    node: { subsystem: 'usb', devname: (await devname(dir)) ?? `bus/usb/${pad(busnum)}/${pad(devnum)}` },
    interfaces,
  };
}

/** Thrown when `<root>/bus/usb/devices` does not exist: this machine has no USB bus. */
export class NoUsbBusError extends Error {
  constructor(root: string, options?: ErrorOptions) {
    super(`${join(root, 'bus/usb/devices')} does not exist (no USB bus)`, options);
    this.name = 'NoUsbBusError';
  }
}

/** Every USB device (not root hubs, not interfaces) under `root`, sorted by name. */
export async function scanUsbDevices(root: string): Promise<UsbDevice[]> {
  let names: string[];
  try {
    names = await readdir(join(root, 'bus/usb/devices'));
  } catch (error) {
    if (isGone(error)) throw new NoUsbBusError(root, { cause: error });
    throw error;
  }
  const devices: UsbDevice[] = [];
  for (const name of names.filter((n) => DEVICE_NAME.test(n)).sort()) {
    try {
      const device = await readDevice(root, name);
      if (device !== undefined) devices.push(device);
    } catch (error) {
      if (!isGone(error)) throw error;
    }
  }
  return devices;
}
