/**
 * usb: USB devices from sysfs, with their device nodes.
 *
 * Source of truth is `<sysfsRoot>/bus/usb/devices`, rescanned
 * - when something changes in a watched directory — by default `/run/udev/data`, where udevd
 *   writes a record for every device it has processed (add) and deletes it (remove): an
 *   inotify-able stand-in for the kernel's uevent netlink socket, which Node cannot open
 *   without native code; and
 * - every `pollIntervalSeconds` (default 1 s) regardless, so a missed or absent event source
 *   costs at most one interval.
 * Every scan reports the full set (`replaceAll`); the agent diffs it.
 *
 * Identity never comes from devnum or tty numbering: a device with a serial number is
 * `usb:<vid>:<pid>:serial:<serial>`, one without (or with a serial another device of the same
 * model shares) is `usb:<vid>:<pid>:port:<controller>-<port chain>`. A re-enumerated device
 * (reset, replug into the same port) keeps its id and reports its new node paths (Akri #734).
 */
import type { DeviceNode, DiscoveredDevice, DiscoveryHandler, HandlerContext } from '../contract.ts';
import { runWatchedScans } from '../watched-scans.ts';
import { parseUsbDetails, type ClassMatch, type NodeKind, type UsbDetails, type UsbMatcher } from './details.ts';
import { NoUsbBusError, scanUsbDevices, type UsbDevice } from './sysfs.ts';

export type { UsbDetails } from './details.ts';

export interface UsbHandlerOptions {
  /** Where sysfs is mounted (default /sys). */
  readonly sysfsRoot?: string;
  /** Where device nodes live on the host, as containers must be given them (default /dev). */
  readonly devRoot?: string;
  /** Directories whose changes trigger a rescan (default /run/udev/data); missing ones are skipped. */
  readonly watchPaths?: readonly string[];
}

const DEBOUNCE_MS = 10;

const hex2 = (n: number | undefined): string | undefined => (n === undefined ? undefined : n.toString(16).padStart(2, '0'));

function classMatches(want: ClassMatch, cls: number | undefined, subclass: number | undefined, protocol: number | undefined): boolean {
  return (
    want.class === cls &&
    (want.subclass === undefined || want.subclass === subclass) &&
    (want.protocol === undefined || want.protocol === protocol)
  );
}

/** The sysfs port name without the bus: `1-1.2` → `1.2`. */
function portChain(device: UsbDevice): string {
  return device.name.slice(device.name.indexOf('-') + 1);
}

/** Whether `device` satisfies every field of `m`. Pure. */
export function matchesUsb(device: UsbDevice, m: UsbMatcher): boolean {
  if (m.vendorId !== undefined && m.vendorId !== device.vendorId) return false;
  if (m.productId !== undefined && m.productId !== device.productId) return false;
  const text = (pattern: UsbMatcher['serial'], value: string | undefined): boolean =>
    pattern === undefined || (value !== undefined && pattern.test(value));
  if (!text(m.serial, device.serial) || !text(m.manufacturer, device.manufacturer) || !text(m.product, device.product)) return false;
  if (m.portPath !== undefined && !m.portPath.test(device.name)) return false;
  if (m.driver !== undefined && !device.interfaces.some((i) => i.driver !== undefined && m.driver!.test(i.driver))) return false;
  if (m.classes !== undefined) {
    const want = m.classes;
    const onDevice = classMatches(want, device.deviceClass, device.deviceSubclass, device.deviceProtocol);
    if (!onDevice && !device.interfaces.some((i) => classMatches(want, i.class, i.subclass, i.protocol))) return false;
  }
  return true;
}

/** Whether the details select `device`. Hubs are skipped unless a matcher asks for them. */
export function isSelected(device: UsbDevice, details: UsbDetails): boolean {
  if (details.exclude.some((m) => matchesUsb(device, m))) return false;
  if (details.match.length === 0) return device.deviceClass !== 0x09;
  return details.match.some((m) => matchesUsb(device, m));
}

/** Stable device ids for a scan: serial-based unless the serial is missing or not unique. Pure. */
export function usbIdentities(devices: readonly UsbDevice[], mode: UsbDetails['identity']): Map<UsbDevice, string> {
  const key = (d: UsbDevice): string => `${d.vendorId}:${d.productId}:${d.serial ?? ''}`;
  const seen = new Map<string, number>();
  for (const d of devices) if (d.serial !== undefined) seen.set(key(d), (seen.get(key(d)) ?? 0) + 1);
  const ids = new Map<UsbDevice, string>();
  for (const d of devices) {
    const useSerial = mode !== 'port' && d.serial !== undefined && (mode === 'serial' || seen.get(key(d)) === 1);
    const port = `${d.controller ?? `bus${d.busnum}`}-${portChain(d)}`;
    ids.set(d, useSerial ? `usb:${d.vendorId}:${d.productId}:serial:${d.serial}` : `usb:${d.vendorId}:${d.productId}:port:${port}`);
  }
  return ids;
}

/** The property holding a subsystem's node paths. */
const NODE_PROPERTY: Record<NodeKind, string> = {
  usb: 'USB_DEVICE_NODE',
  tty: 'USB_TTY',
  video4linux: 'USB_VIDEO',
  hidraw: 'USB_HIDRAW',
  input: 'USB_INPUT',
  sound: 'USB_SOUND',
};

/** The DiscoveredDevice for one selected USB device. Pure. */
export function usbDevice(device: UsbDevice, id: string, details: UsbDetails, devRoot: string): DiscoveredDevice {
  const nodes = [device.node, ...device.interfaces.flatMap((i) => i.nodes)].filter((n) => details.nodes.includes(n.subsystem as NodeKind));
  const hostPath = (devname: string): string => `${devRoot.replace(/\/$/, '')}/${devname}`;
  const deviceNodes: DeviceNode[] = [...new Map(nodes.map((n) => [hostPath(n.devname), n])).keys()].map((path) => ({
    containerPath: path,
    hostPath: path,
    permissions: details.permissions,
  }));
  const properties: Record<string, string> = {
    USB_VENDOR_ID: device.vendorId,
    USB_PRODUCT_ID: device.productId,
    USB_BUS: String(device.busnum),
    USB_DEVICE_NUMBER: String(device.devnum),
    USB_PORT_PATH: device.name,
    USB_SYSFS_PATH: `/sys/${device.sysfsPath}`,
  };
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') properties[key] = value;
  };
  set('USB_SERIAL', device.serial);
  set('USB_MANUFACTURER', device.manufacturer);
  set('USB_PRODUCT', device.product);
  set('USB_SPEED', device.speed);
  set('USB_DEVICE_CLASS', hex2(device.deviceClass));
  set('USB_INTERFACE_CLASSES', [...new Set(device.interfaces.map((i) => hex2(i.class)).filter((c) => c !== undefined))].join(','));
  set('USB_DRIVERS', [...new Set(device.interfaces.map((i) => i.driver).filter((d) => d !== undefined))].sort().join(','));
  for (const kind of details.nodes) {
    set(NODE_PROPERTY[kind], [...new Set(nodes.filter((n) => n.subsystem === kind).map((n) => hostPath(n.devname)))].join(','));
  }
  return { id, properties, deviceNodes };
}

/** What a scan reports. Pure. */
export function usbDevices(scan: readonly UsbDevice[], details: UsbDetails, devRoot: string): DiscoveredDevice[] {
  const selected = scan.filter((d) => isSelected(d, details));
  const ids = usbIdentities(selected, details.identity);
  const byId = new Map<string, DiscoveredDevice>();
  for (const d of selected) {
    const id = ids.get(d)!;
    // `identity: serial` with two devices claiming one serial: keep the first, never report one id twice.
    if (!byId.has(id)) byId.set(id, usbDevice(d, id, details, devRoot));
  }
  return [...byId.values()];
}

async function run(details: UsbDetails, context: HandlerContext, options: UsbHandlerOptions): Promise<void> {
  const { sink, log } = context;
  const root = options.sysfsRoot ?? '/sys';
  const devRoot = options.devRoot ?? '/dev';
  let noBusReported = false;

  const scanOnce = async (): Promise<void> => {
    try {
      sink.replaceAll(usbDevices(await scanUsbDevices(root), details, devRoot));
      noBusReported = false;
    } catch (error) {
      if (!(error instanceof NoUsbBusError)) throw error;
      // No USB bus (yet): nothing to report, which is not a failure.
      if (!noBusReported) log.warn({ root }, 'No USB bus in sysfs; reporting no devices');
      noBusReported = true;
      sink.replaceAll([]);
    }
  };
  await runWatchedScans(
    {
      scan: scanOnce,
      watchPaths: options.watchPaths ?? ['/run/udev/data'],
      pollIntervalMs: details.pollIntervalMs,
      debounceMs: DEBOUNCE_MS,
      what: 'USB',
      logFields: { root },
    },
    context,
  );
}

export function createUsbHandler(options: UsbHandlerOptions = {}): DiscoveryHandler<UsbDetails> {
  return {
    name: 'usb',
    parseDetails: parseUsbDetails,
    isShared: () => false,
    run: (details, context) => run(details, context, options),
  };
}
