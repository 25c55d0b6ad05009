/**
 * udev: devices of any subsystem matched by udev rules — Akri's udev handler, its details and
 * its broker properties (`UDEV_DEVPATH`, `UDEV_DEVNODE`), without libudev.
 *
 * Source of truth is sysfs plus udevd's database (sysfs.ts), rescanned
 * - when `/run/udev/data` changes — udevd writes a record for every device it has processed
 *   (add, change) and deletes it on remove: an inotify-able stand-in for the uevent netlink
 *   socket, which Node cannot open without native code, and the moment a device is ready
 *   (permissions, links, ID_* properties set) rather than the moment the kernel announced it;
 * - every `pollIntervalSeconds` (default 5 s) regardless, so a missed event or a node without
 *   udevd costs at most one interval (Akri polls every 10 s, with no monitor).
 * Every scan reports the full set (`replaceAll`); the agent diffs it.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { DiscoveryHandler, HandlerContext } from '../contract.ts';
import { parseUdevDetails, type UdevDetails } from './details.ts';
import { udevDevices } from './devices.ts';
import { scanNeeds } from './match.ts';
import { scanUdevDevices, type UdevScan } from './sysfs.ts';

export type { UdevDetails } from './details.ts';

export interface UdevHandlerOptions {
  /** Where sysfs is mounted (default /sys). */
  readonly sysfsRoot?: string;
  /** udevd's database directory, read for ENV/TAG and watched for changes (default /run/udev/data). */
  readonly udevDataRoot?: string;
  /** Where device nodes live on the host, as containers must be given them (default /dev). */
  readonly devRoot?: string;
}

/** udevd writes a record in several steps (temp file, rename): one rescan for the burst. */
const DEBOUNCE_MS = 10;

/** Logs each kind of trouble once until it clears, so a bad tree does not flood the log. */
function troubleReporter(context: HandlerContext): (scan: UdevScan, dropped: number) => void {
  const { log, count } = context;
  const seen = new Set<string>();
  const once = (key: string, active: boolean, report: () => void): void => {
    if (active && !seen.has(key)) report();
    if (active) seen.add(key);
    else seen.delete(key);
  };
  return (scan, dropped) => {
    once('sysfs', !scan.sysfs, () => log.warn('Found no sysfs (no class/ or bus/); reporting no devices'));
    once('db', scan.sysfs && !scan.udevDb, () =>
      log.info('Found no udev database; matching on sysfs alone (ENV holds the uevent keys only, TAG never matches)'),
    );
    once('truncated', scan.truncated, () => log.warn('Listed more sysfs entries than a scan reads; some devices are not seen'));
    once('dropped', dropped > 0, () => log.warn({ dropped }, 'Found more devices than maxDevices; reporting the first by devpath'));
    if (dropped > 0) count('device_limit');
  };
}

async function run(details: UdevDetails, context: HandlerContext, options: UdevHandlerOptions): Promise<void> {
  const { sink, signal, log, count } = context;
  const roots = { sysfsRoot: options.sysfsRoot ?? '/sys', udevDataRoot: options.udevDataRoot ?? '/run/udev/data' };
  const devRoot = options.devRoot ?? '/dev';
  const needs = scanNeeds(details.udevRules);
  const report = troubleReporter(context);
  let scanning: Promise<void> | undefined;
  let again = false;

  const scanOnce = async (): Promise<void> => {
    const scan = await scanUdevDevices(roots, needs);
    const { devices, dropped } = udevDevices(scan.candidates, scan.index, details, devRoot);
    report(scan, dropped);
    if (!signal.aborted) sink.replaceAll(devices);
  };
  // One scan at a time; a trigger during a scan queues exactly one more.
  const rescan = (): Promise<void> => {
    if (scanning !== undefined) {
      again = true;
      return scanning;
    }
    scanning = (async () => {
      do {
        again = false;
        await scanOnce();
      } while (again && !signal.aborted);
    })().finally(() => (scanning = undefined));
    return scanning;
  };

  let failure: unknown;
  let fail: () => void = () => undefined;
  const failed = new Promise<void>((resolve) => (fail = resolve));
  const trigger = (): void => {
    rescan().catch((error: unknown) => {
      failure = error;
      fail();
    });
  };

  let debounce: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  // (Re)starts the watch when the directory exists; called at start and on every poll, so a
  // database that appears later (udevd started after the agent) or is re-created is picked up.
  const ensureWatch = (): void => {
    if (watcher !== undefined || signal.aborted) return;
    try {
      const w = watch(roots.udevDataRoot, { signal }, () => {
        count('watch_event');
        clearTimeout(debounce);
        debounce = setTimeout(trigger, DEBOUNCE_MS);
      });
      w.on('error', (error) => {
        log.debug({ err: error, path: roots.udevDataRoot }, 'Lost the watch of the udev database');
        w.close();
        if (watcher === w) watcher = undefined;
      });
      watcher = w;
    } catch {
      // Missing: polling covers it until it appears.
    }
  };
  ensureWatch();
  log.debug({ ...roots, watching: watcher !== undefined, pollIntervalMs: details.pollIntervalMs, needs }, 'Started udev discovery');

  await rescan();
  const timer = setInterval(() => {
    ensureWatch();
    trigger();
  }, details.pollIntervalMs);
  try {
    // The signal may already be aborted (e.g. `tether discover` stops after the first report).
    const aborted = signal.aborted
      ? Promise.resolve()
      : new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await Promise.race([aborted, failed]);
  } finally {
    clearInterval(timer);
    clearTimeout(debounce);
    watcher?.close();
    await scanning?.catch(() => undefined);
  }
  if (failure !== undefined && !signal.aborted) throw new Error('udev scan failed', { cause: failure });
}

/** The `udev` handler; `options` point it at other roots (tests use fixture trees). */
export function createUdevHandler(options: UdevHandlerOptions = {}): DiscoveryHandler<UdevDetails> {
  return {
    name: 'udev',
    parseDetails: parseUdevDetails,
    isShared: () => false,
    run: (details, context) => run(details, context, options),
  };
}
