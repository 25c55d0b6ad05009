/**
 * A device as udev sees it, and the pure parsers of the two files it is made from: the kernel's
 * `uevent` (sysfs) and udevd's database record (`/run/udev/data/<id>`). sysfs.ts does the
 * reading; matching and reporting (match.ts, devices.ts) work on these records only.
 */

/** One sysfs device, with what the rules and the report need. Immutable; built once per scan. */
export interface UdevDevice {
  /** udev's devpath: the sysfs path below the sysfs root, e.g. `/devices/pci0000:00/…/video0`. */
  readonly devpath: string;
  /** KERNEL: the directory name, `!` read as `/` as udev does (`cciss!c0d0` → `cciss/c0d0`). */
  readonly sysname: string;
  readonly subsystem: string | undefined;
  readonly driver: string | undefined;
  /** DEVNAME relative to /dev (`video0`, `bus/usb/001/004`), when the device has a node and it is a safe path. */
  readonly devname: string | undefined;
  /** ENV: the uevent's keys (as udev's environment has them), overlaid by the udev database's `E:` lines. */
  readonly env: ReadonlyMap<string, string>;
  /** TAG: the database's `G:` and `Q:` tags. */
  readonly tags: ReadonlySet<string>;
  /** Device links from the database's `S:` lines, relative to /dev. */
  readonly links: readonly string[];
  /** ATTR/ATTRS values the rules ask for; undefined when the attribute is absent or unreadable. */
  readonly attrs: ReadonlyMap<string, string | undefined>;
  /** The parent device's devpath (the nearest ancestor directory with a `uevent`). */
  readonly parent: string | undefined;
  /**
   * False for a device with a node (or a network interface) that udevd has not recorded yet:
   * udev's own enumeration skips those, so a rule never sees a half-processed device.
   */
  readonly initialized: boolean;
}

/** Every device of a scan by devpath, ancestors included. */
export type DeviceIndex = ReadonlyMap<string, UdevDevice>;

/** What a udev database record says about a device. */
export interface UdevDbRecord {
  readonly env: ReadonlyMap<string, string>;
  readonly tags: ReadonlySet<string>;
  readonly links: readonly string[];
}

/** Most lines read from one uevent or database file. */
const MAX_LINES = 512;
/** Longest key and value kept. */
export const MAX_KEY_LENGTH = 128;
export const MAX_VALUE_LENGTH = 1024;
const KEY = /^[A-Za-z0-9_.-]+$/;
const SAFE_DEVNAME = /^[A-Za-z0-9_.+:@-]+(\/[A-Za-z0-9_.+:@-]+)*$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;

function clean(value: string): string {
  return value.replace(CONTROL, ' ').slice(0, MAX_VALUE_LENGTH);
}

function lines(text: string): string[] {
  return text.split('\n', MAX_LINES);
}

/** `KEY=VALUE` lines of a uevent file; malformed lines are skipped. */
export function parseUevent(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of lines(text)) {
    const eq = line.indexOf('=');
    if (eq <= 0 || eq > MAX_KEY_LENGTH) continue;
    const key = line.slice(0, eq);
    if (KEY.test(key)) env.set(key, clean(line.slice(eq + 1)));
  }
  return env;
}

/** A database record's `E:KEY=VALUE`, `G:`/`Q:` tag and `S:` link lines; the rest is udevd's own. */
export function parseUdevDb(text: string): UdevDbRecord {
  const env = new Map<string, string>();
  const tags = new Set<string>();
  const links: string[] = [];
  for (const line of lines(text)) {
    const body = line.slice(2);
    if (line.startsWith('E:')) {
      const eq = body.indexOf('=');
      if (eq > 0 && eq <= MAX_KEY_LENGTH && KEY.test(body.slice(0, eq))) env.set(body.slice(0, eq), clean(body.slice(eq + 1)));
    } else if ((line.startsWith('G:') || line.startsWith('Q:')) && body !== '' && tags.size < 64) {
      tags.add(clean(body).slice(0, MAX_KEY_LENGTH));
    } else if (line.startsWith('S:') && safeDevname(body) !== undefined && links.length < 64) {
      links.push(body);
    }
  }
  return { env, tags, links };
}

/** `name` when it is a safe path relative to /dev (no `..`, no odd characters), else undefined. */
export function safeDevname(name: string | undefined): string | undefined {
  if (name === undefined || name.length > 255 || !SAFE_DEVNAME.test(name)) return undefined;
  return name.split('/').some((s) => s === '.' || s === '..') ? undefined : name;
}

/**
 * The database file name udevd uses for a device: `c<major>:<minor>` (`b…` for block devices),
 * `n<ifindex>` for a network interface, else `+<subsystem>:<sysname>`; undefined without a subsystem.
 */
export function udevDbName(uevent: ReadonlyMap<string, string>, subsystem: string | undefined, dirName: string): string | undefined {
  const major = uevent.get('MAJOR');
  const minor = uevent.get('MINOR');
  if (major !== undefined && minor !== undefined && /^\d{1,10}$/.test(major) && /^\d{1,10}$/.test(minor) && major !== '0') {
    return `${subsystem === 'block' ? 'b' : 'c'}${major}:${minor}`;
  }
  const ifindex = uevent.get('IFINDEX');
  if (ifindex !== undefined && /^\d{1,10}$/.test(ifindex)) return `n${ifindex}`;
  if (subsystem === undefined || dirName.includes('/')) return undefined;
  return `+${subsystem}:${dirName}`;
}

/**
 * udev's environment for a device: the uevent's keys (DEVNAME as an absolute /dev path), DEVPATH,
 * SUBSYSTEM, DEVLINKS and TAGS/CURRENT_TAGS, overlaid by the database's `E:` properties.
 */
export function udevEnvironment(
  devpath: string,
  subsystem: string | undefined,
  uevent: ReadonlyMap<string, string>,
  db: UdevDbRecord | undefined,
): Map<string, string> {
  const env = new Map(uevent);
  const devname = safeDevname(uevent.get('DEVNAME'));
  if (devname !== undefined) env.set('DEVNAME', `/dev/${devname}`);
  env.set('DEVPATH', devpath);
  if (subsystem !== undefined) env.set('SUBSYSTEM', subsystem);
  if (db !== undefined) {
    if (db.links.length > 0) env.set('DEVLINKS', db.links.map((l) => `/dev/${l}`).join(' '));
    if (db.tags.size > 0) env.set('TAGS', `:${[...db.tags].join(':')}:`);
    if (db.tags.size > 0) env.set('CURRENT_TAGS', `:${[...db.tags].join(':')}:`);
    for (const [key, value] of db.env) env.set(key, value);
  }
  return env;
}
