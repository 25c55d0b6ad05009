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
import { untilAborted, type DiscoveryHandler, type DiscoveredDevice, type HandlerContext } from '../contract.ts';
import { parseWithSchema } from '../details-parse.ts';
import DETAILS_SCHEMA from './details.schema.json' with { type: 'json' };
import type { DebugEchoDetails, DebugEchoDetailsSchema } from './schema.ts';

export type { DebugEchoDetails } from './schema.ts';

export const DEBUG_ECHO_PROPERTY = 'DEBUG_ECHO_DESCRIPTION';

/** Validates raw details; every error names the field path. */
export function parseDebugEchoDetails(raw: unknown): DebugEchoDetails {
  return parseWithSchema<typeof DebugEchoDetailsSchema>(DETAILS_SCHEMA, raw);
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
