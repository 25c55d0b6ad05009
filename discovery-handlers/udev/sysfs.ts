/**
 * Reads devices as udev sees them: sysfs device directories (each with a `uevent` file, found
 * through the `/sys/class/<subsystem>/<name>` and `/sys/bus/<bus>/devices/<name>` links, as
 * libudev's enumerator finds them) and udevd's database records (`/run/udev/data`). I/O only:
 * matching and reporting are in match.ts and devices.ts.
 *
 * WARNING: this reads a tree that changes under it and that a device's firmware partly writes.
 * Every read is bounded (file sizes, entries listed, parent depth) and every error of one device
 * drops that device from this scan (it is gone, or half-made: the next scan sees it whole);
 * nothing here throws.
 */
import { lstat, open, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MAX_PARENT_DEPTH, type ScanNeeds } from './match.ts';
import { parseUdevDb, parseUevent, safeDevname, udevDbName, udevEnvironment, type UdevDevice } from './records.ts';

/** Where to read from (injected so tests use a fixture tree). */
export interface UdevRoots {
  /** Where sysfs is mounted (default /sys). */
  readonly sysfsRoot: string;
  /** udevd's database directory (default /run/udev/data). */
  readonly udevDataRoot: string;
}

/** One scan's result. */
export interface UdevScan {
  /** Devices listed under class/ and bus/ (the ones rules are matched against), by devpath. */
  readonly candidates: readonly UdevDevice[];
  /** Candidates and their ancestors, by devpath. */
  readonly index: ReadonlyMap<string, UdevDevice>;
  /** False when sysfs has neither class/ nor bus/ (not mounted). */
  readonly sysfs: boolean;
  /** False when the udev database directory is missing: ENV is then the uevent's keys only and no device waits for udevd. */
  readonly udevDb: boolean;
  /** True when more entries were listed than a scan reads. */
  readonly truncated: boolean;
}

/** Most class/bus entries a scan looks at. */
export const MAX_ENTRIES = 16_384;
const MAX_UEVENT_BYTES = 16 * 1024;
const MAX_DB_BYTES = 64 * 1024;
/** A sysfs attribute is at most a page; more is not an attribute. */
const MAX_ATTR_BYTES = 4096;
const CONCURRENCY = 16;

/** Up to `max` bytes of a regular file as text; undefined when it is missing, unreadable or not a file. */
async function readBounded(path: string, max: number): Promise<string | undefined> {
  try {
    const handle = await open(path, 'r');
    try {
      if (!(await handle.stat()).isFile()) return undefined;
      const buffer = Buffer.alloc(max);
      const { bytesRead } = await handle.read(buffer, 0, max, 0);
      return buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

async function linkName(path: string): Promise<string | undefined> {
  try {
    return basename(await readlink(path));
  } catch {
    return undefined;
  }
}

/** ATTR{name}: a file's text without trailing whitespace, or a link's target name (udev reads `driver`, `subsystem` so). */
async function readAttr(dir: string, name: string): Promise<string | undefined> {
  const path = join(dir, name);
  try {
    const info = await lstat(path);
    if (info.isSymbolicLink()) return basename(await readlink(path));
    if (!info.isFile()) return undefined;
  } catch {
    return undefined;
  }
  return (await readBounded(path, MAX_ATTR_BYTES))?.trimEnd();
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** The class/bus entries to resolve: `class/<s>/<name>` and `bus/<s>/devices/<name>`, bounded. */
async function entries(root: string, subsystems: readonly string[] | undefined): Promise<{ paths: string[]; truncated: boolean }> {
  const paths: string[] = [];
  for (const [top, below] of [
    ['class', ''],
    ['bus', 'devices'],
  ] as const) {
    for (const subsystem of subsystems ?? (await list(join(root, top)))) {
      const dir = join(root, top, subsystem, below);
      for (const name of await list(dir)) {
        if (paths.length >= MAX_ENTRIES) return { paths, truncated: true };
        paths.push(join(dir, name));
      }
    }
  }
  return { paths, truncated: false };
}

/** Loads devices (memoised per scan, ancestors through the same path). */
class Loader {
  readonly #devices = new Map<string, Promise<UdevDevice | undefined>>();
  readonly #isDevice = new Map<string, Promise<boolean>>();

  readonly root: string;
  readonly roots: UdevRoots;
  readonly udevDb: boolean;
  readonly attrs: readonly string[];

  constructor(root: string, roots: UdevRoots, udevDb: boolean, attrs: readonly string[]) {
    this.root = root;
    this.roots = roots;
    this.udevDb = udevDb;
    this.attrs = attrs;
  }

  load(devpath: string, depth = 0): Promise<UdevDevice | undefined> {
    let device = this.#devices.get(devpath);
    if (device === undefined) {
      device = this.#read(devpath, depth).catch(() => undefined);
      this.#devices.set(devpath, device);
    }
    return device;
  }

  async loaded(): Promise<Map<string, UdevDevice>> {
    const index = new Map<string, UdevDevice>();
    for (const [path, device] of this.#devices) {
      const d = await device;
      if (d !== undefined) index.set(path, d);
    }
    return index;
  }

  #hasUevent(dir: string): Promise<boolean> {
    let known = this.#isDevice.get(dir);
    if (known === undefined) {
      known = stat(join(dir, 'uevent')).then(
        (s) => s.isFile(),
        () => false,
      );
      this.#isDevice.set(dir, known);
    }
    return known;
  }

  /** The nearest ancestor directory that is a device, below `<root>/devices`. */
  async #parent(dir: string): Promise<string | undefined> {
    const top = join(this.root, 'devices');
    for (let d = dirname(dir), n = 0; d.startsWith(`${top}/`) && n < MAX_PARENT_DEPTH; d = dirname(d), n++) {
      if (await this.#hasUevent(d)) return d.slice(this.root.length);
    }
    return undefined;
  }

  async #read(devpath: string, depth: number): Promise<UdevDevice | undefined> {
    const dir = join(this.root, devpath);
    const text = await readBounded(join(dir, 'uevent'), MAX_UEVENT_BYTES);
    if (text === undefined) return undefined;
    const uevent = parseUevent(text);
    const [subsystem, driver] = await Promise.all([linkName(join(dir, 'subsystem')), linkName(join(dir, 'driver'))]);
    const name = basename(dir);
    const dbName = this.udevDb ? udevDbName(uevent, subsystem, name) : undefined;
    const dbText = dbName === undefined ? undefined : await readBounded(join(this.roots.udevDataRoot, dbName), MAX_DB_BYTES);
    const db = dbText === undefined ? undefined : parseUdevDb(dbText);
    const devname = safeDevname(uevent.get('DEVNAME'));
    const attrs = new Map<string, string | undefined>();
    for (const attr of this.attrs) attrs.set(attr, await readAttr(dir, attr));
    const parent = await this.#parent(dir);
    // Ancestors are loaded too (memoised: siblings share them), so the index holds every device
    // a parent key or a node lookup may look at.
    if (parent !== undefined && depth < MAX_PARENT_DEPTH) await this.load(parent, depth + 1);
    return {
      devpath,
      sysname: name.replace(/!/g, '/'),
      subsystem,
      driver,
      devname,
      env: udevEnvironment(devpath, subsystem, uevent, db),
      tags: db?.tags ?? new Set(),
      links: db?.links ?? [],
      attrs,
      parent,
      initialized: !this.udevDb || db !== undefined || (devname === undefined && !uevent.has('IFINDEX')),
    };
  }
}

/**
 * Every device class/ and bus/ list (only `needs.subsystems` when given), with its ancestors,
 * read as udev sees it. Never throws: a missing tree is an empty scan.
 */
export async function scanUdevDevices(roots: UdevRoots, needs: ScanNeeds): Promise<UdevScan> {
  let root: string;
  try {
    root = await realpath(roots.sysfsRoot);
  } catch {
    return { candidates: [], index: new Map(), sysfs: false, udevDb: false, truncated: false };
  }
  const sysfs = (await isDirectory(join(root, 'class'))) || (await isDirectory(join(root, 'bus')));
  const udevDb = await isDirectory(roots.udevDataRoot);
  const { paths, truncated } = await entries(root, needs.subsystems);
  const devpaths = new Set<string>();
  await eachLimit(paths, CONCURRENCY, async (path) => {
    const real = await realpath(path).catch(() => undefined);
    if (real?.startsWith(`${root}/devices/`)) devpaths.add(real.slice(root.length));
  });
  const loader = new Loader(root, roots, udevDb, needs.attrs);
  const sorted = [...devpaths].sort();
  await eachLimit(sorted, CONCURRENCY, async (devpath) => {
    await loader.load(devpath);
  });
  const index = await loader.loaded();
  const candidates = sorted.map((p) => index.get(p)).filter((d): d is UdevDevice => d !== undefined);
  return { candidates, index, sysfs, udevDb, truncated };
}
