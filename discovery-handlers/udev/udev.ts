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
import type { DiscoveryHandler, HandlerContext } from '../contract.ts';
import { runWatchedScans } from '../watched-scans.ts';
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
  const roots = { sysfsRoot: options.sysfsRoot ?? '/sys', udevDataRoot: options.udevDataRoot ?? '/run/udev/data' };
  const devRoot = options.devRoot ?? '/dev';
  const needs = scanNeeds(details.udevRules);
  const report = troubleReporter(context);
  const scan = async (): Promise<void> => {
    const found = await scanUdevDevices(roots, needs);
    const { devices, dropped } = udevDevices(found.candidates, found.index, details, devRoot);
    report(found, dropped);
    if (!context.signal.aborted) context.sink.replaceAll(devices);
  };
  await runWatchedScans(
    {
      scan,
      watchPaths: [roots.udevDataRoot],
      pollIntervalMs: details.pollIntervalMs,
      debounceMs: DEBOUNCE_MS,
      what: 'udev',
      logFields: { ...roots, needs },
    },
    context,
  );
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
