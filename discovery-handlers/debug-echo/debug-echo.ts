/**
 * debug-echo: a handler with no hardware, for demos and tests.
 *
 * Akri-compatible semantics: one device per entry of `descriptions`, id = the
 * description, property DEBUG_ECHO_DESCRIPTION. While `availabilityFile` contains
 * the word OFFLINE it reports no devices; it follows the file through fs.watch,
 * so switching is immediate.
 */
import { readFile } from 'node:fs/promises';
import { watch } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { DetailsError, untilAborted, type DiscoveryHandler, type DiscoveredDevice, type HandlerContext } from '../contract.ts';

export interface DebugEchoDetails {
  readonly descriptions: readonly string[];
  readonly shared: boolean;
  /** Absent: always online. */
  readonly availabilityFile?: string;
}

export const DEBUG_ECHO_PROPERTY = 'DEBUG_ECHO_DESCRIPTION';
const MAX_DESCRIPTIONS = 10_000;
const MAX_DESCRIPTION_LENGTH = 256;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates raw details; every error names the field path. */
export function parseDebugEchoDetails(raw: unknown): DebugEchoDetails {
  if (!isRecord(raw)) throw new DetailsError('details', 'must be an object');
  const known = new Set(['descriptions', 'shared', 'availabilityFile']);
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) throw new DetailsError(`details.${key}`, `unknown field; expected one of ${[...known].join(', ')}`);
  }
  const { descriptions, shared = false, availabilityFile } = raw;
  if (!Array.isArray(descriptions) || descriptions.length === 0) {
    throw new DetailsError('details.descriptions', 'must be a non-empty list of strings');
  }
  if (descriptions.length > MAX_DESCRIPTIONS) {
    throw new DetailsError('details.descriptions', `at most ${MAX_DESCRIPTIONS} entries`);
  }
  const seen = new Set<string>();
  descriptions.forEach((d: unknown, i) => {
    const path = `details.descriptions[${i}]`;
    if (typeof d !== 'string' || d.length === 0) throw new DetailsError(path, 'must be a non-empty string');
    if (d.length > MAX_DESCRIPTION_LENGTH) throw new DetailsError(path, `longer than ${MAX_DESCRIPTION_LENGTH} characters`);
    if (seen.has(d)) throw new DetailsError(path, `duplicate description "${d}"`);
    seen.add(d);
  });
  if (typeof shared !== 'boolean') throw new DetailsError('details.shared', 'must be a boolean');
  if (availabilityFile !== undefined && (typeof availabilityFile !== 'string' || !availabilityFile.startsWith('/'))) {
    throw new DetailsError('details.availabilityFile', 'must be an absolute path');
  }
  return { descriptions: descriptions as string[], shared, ...(availabilityFile === undefined ? {} : { availabilityFile }) };
}

/** The devices debug-echo reports when online. */
export function debugEchoDevices(details: DebugEchoDetails): DiscoveredDevice[] {
  return details.descriptions.map((description) => ({ id: description, properties: { [DEBUG_ECHO_PROPERTY]: description } }));
}

async function isOnline(file: string | undefined): Promise<boolean> {
  if (file === undefined) return true;
  try {
    return !/\bOFFLINE\b/i.test(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw new Error(`reading availability file ${file}`, { cause: error });
  }
}

async function run(details: DebugEchoDetails, { sink, signal }: HandlerContext): Promise<void> {
  const online = debugEchoDevices(details);
  const report = async (): Promise<void> => sink.replaceAll((await isOnline(details.availabilityFile)) ? online : []);
  const file = details.availabilityFile;
  if (file === undefined) {
    await report();
    await untilAborted(signal);
    return;
  }
  // Watch the directory, not the file: the file may not exist yet or be replaced.
  const watcher = watch(dirname(file), { signal });
  await report();
  try {
    for await (const event of watcher) {
      if (event.filename === basename(file)) await report();
    }
  } catch (error) {
    if ((error as Error).name !== 'AbortError') throw error;
  }
}

export function createDebugEchoHandler(): DiscoveryHandler<DebugEchoDetails> {
  return {
    name: 'debug-echo',
    parseDetails: parseDebugEchoDetails,
    isShared: (details) => details.shared,
    run,
  };
}
