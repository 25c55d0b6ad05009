/**
 * The schedule of handlers that rescan a tree (usb, udev): a full scan at start, again when a
 * watched directory changes (debounced) and every poll interval regardless — so a missed event,
 * or a directory that appears only later, costs at most one interval. One scan runs at a time;
 * a trigger during a scan queues exactly one more. Pure scheduling: what a scan reads and
 * reports is the handler's.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { HandlerContext } from './contract.ts';

export interface WatchedScansOptions {
  /** One full scan that reports what it found; a rejection ends the run with that error. */
  readonly scan: () => Promise<void>;
  /** Directories whose changes trigger a rescan; missing ones are watched once they appear. */
  readonly watchPaths: readonly string[];
  readonly pollIntervalMs: number;
  /** A burst of changes (a record written in steps) becomes one rescan after this long. */
  readonly debounceMs: number;
  /** What the handler scans, for messages ("USB", "udev"). */
  readonly what: string;
  /** Extra fields of the start-up debug line. */
  readonly logFields?: Record<string, unknown>;
}

/** Runs scans on that schedule until `context.signal` aborts; rejects when a scan fails. */
export async function runWatchedScans(options: WatchedScansOptions, context: HandlerContext): Promise<void> {
  const { signal, log, count } = context;
  let scanning: Promise<void> | undefined;
  let again = false;
  const rescan = (): Promise<void> => {
    if (scanning !== undefined) {
      again = true;
      return scanning;
    }
    scanning = (async () => {
      do {
        again = false;
        await options.scan();
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
  const watchers = new Map<string, FSWatcher>();
  // Called at start and on every poll, so a directory that appears later (udevd started after
  // the agent) or was re-created is picked up.
  const ensureWatches = (): void => {
    for (const path of options.watchPaths) {
      if (watchers.has(path) || signal.aborted) continue;
      try {
        const watcher = watch(path, { signal }, () => {
          count('watch_event');
          clearTimeout(debounce);
          debounce = setTimeout(trigger, options.debounceMs);
        });
        watcher.on('error', (error) => {
          log.debug({ err: error, path }, `Lost the watch for ${options.what} changes`);
          watcher.close();
          watchers.delete(path);
        });
        watchers.set(path, watcher);
      } catch {
        // Missing: polling covers it until it appears.
      }
    }
  };
  ensureWatches();
  log.debug(
    { ...options.logFields, watching: [...watchers.keys()], pollIntervalMs: options.pollIntervalMs },
    `Started ${options.what} discovery`,
  );

  await rescan();
  const timer = setInterval(() => {
    ensureWatches();
    trigger();
  }, options.pollIntervalMs);
  try {
    // The signal may already be aborted (e.g. `tether discover` stops after the first report).
    const aborted = signal.aborted
      ? Promise.resolve()
      : new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await Promise.race([aborted, failed]);
  } finally {
    clearInterval(timer);
    clearTimeout(debounce);
    for (const w of watchers.values()) w.close();
    await scanning?.catch(() => undefined);
  }
  if (failure !== undefined && !signal.aborted) throw new Error(`${options.what} scan failed`, { cause: failure });
}
