/**
 * Remembers the registry's accepted registrations across agent restarts, in one JSON file
 * under the agent's state directory (`/var/lib/tether/external-handlers.json` by default).
 *
 * Why: Akri's handlers register once and again only when one of their Discover streams
 * breaks, so an idle handler never notices that the agent restarted. With this file the new
 * agent dials every remembered endpoint as if it had just registered (the registry drops
 * the ones that do not answer, as for any registration).
 *
 * The file is `{"version": 1, "endpoints": [{name, endpoint, endpoint_type, shared}, …]}`
 * in registration order (later entries win id conflicts, see ./adapter.ts).
 *
 * WARNING: handler pods mount the same host directory read-write (their sockets live
 * there), so the file is untrusted input. Every entry passes the same `parseRegistration`
 * rules as a registration (so it can only name what a registration could), the file's size
 * is capped, anything but a regular file is refused without blocking (a FIFO would hang a
 * plain read), and the temp file is created exclusively (a planted symlink is not followed).
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomically } from '../state-file.ts';
import { parseRegistration, type HandlerAddress } from './endpoint.ts';

/** The file's name inside the agent's state directory. */
export const ENDPOINTS_FILE = 'external-handlers.json';

/** The registration fields kept for one endpoint. */
export type StoredEndpoint = Pick<HandlerAddress, 'name' | 'endpoint' | 'type' | 'shared'>;

/** Generous per entry: a name (≤ 253) and an endpoint (≤ 260) plus JSON punctuation. */
const BYTES_PER_ENTRY = 1_024;
const VERSION = 1;

/** The path of the endpoints file in `stateDir`. */
export function endpointsFile(stateDir: string): string {
  return join(stateDir, ENDPOINTS_FILE);
}

/** The file's text for these endpoints. Pure. */
export function serializeEndpoints(endpoints: readonly StoredEndpoint[]): string {
  const entries = endpoints.map((e) => ({ name: e.name, endpoint: e.endpoint, endpoint_type: e.type, shared: e.shared }));
  return `${JSON.stringify({ version: VERSION, endpoints: entries }, null, 2)}\n`;
}

/** What a file held: the valid endpoints (deduplicated, at most maxEntries), and what was wrong. */
export interface ParsedEndpoints {
  readonly endpoints: HandlerAddress[];
  readonly problems: string[];
}

/**
 * Reads the file's text. Pure. Entries are validated like registrations; a duplicate
 * name+endpoint keeps its later position (as a re-registration would), and of more than
 * `maxEntries` the latest are kept.
 */
export function parseStoredEndpoints(text: string, maxEntries: number): ParsedEndpoints {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { endpoints: [], problems: ['not JSON'] };
  }
  const file = data as { version?: unknown; endpoints?: unknown } | null;
  if (typeof file !== 'object' || file === null || file.version !== VERSION || !Array.isArray(file.endpoints)) {
    return { endpoints: [], problems: [`not a version ${VERSION} endpoints file`] };
  }
  const problems: string[] = [];
  const byKey = new Map<string, HandlerAddress>();
  for (const [i, entry] of (file.endpoints as unknown[]).entries()) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`endpoints[${i}]: not an object`);
      continue;
    }
    const { name, endpoint, endpoint_type, shared } = entry as Record<string, unknown>;
    if (shared !== undefined && typeof shared !== 'boolean') {
      problems.push(`endpoints[${i}]: shared is not a boolean`);
      continue;
    }
    // The registration rules check every field's type; the casts only satisfy the compiler.
    const address = parseRegistration({
      name: name as string,
      endpoint: endpoint as string,
      endpoint_type: endpoint_type as HandlerAddress['type'],
      shared: shared === true,
    });
    if (typeof address === 'string') {
      problems.push(`endpoints[${i}]: ${address}`);
      continue;
    }
    byKey.delete(address.key);
    byKey.set(address.key, address);
  }
  const endpoints = [...byKey.values()];
  if (endpoints.length > maxEntries) problems.push(`${endpoints.length} endpoints, more than ${maxEntries}: kept the latest`);
  return { endpoints: endpoints.slice(Math.max(0, endpoints.length - maxEntries)), problems };
}

export interface EndpointStoreOptions {
  /** The file, e.g. endpointsFile('/var/lib/tether'). */
  readonly path: string;
  readonly log: Logger;
  /** The registry's maxEndpoints: more are never loaded, and the file is capped accordingly. */
  readonly maxEntries: number;
}

/**
 * The endpoints file. `load()` once at start; `save()` after every change (cheap: an
 * unchanged list writes nothing, and saves during a write are coalesced into one more
 * write of the latest list); `flush()` waits for pending writes. Never throws: a file that
 * cannot be read or written is logged (once per failure streak) and the agent carries on
 * without it.
 */
export class EndpointStore {
  readonly #options: EndpointStoreOptions;
  /** The text the file should hold, and the text last written (or found) there. */
  #wanted: string | undefined;
  #written: string | undefined;
  #writing = false;
  #drained: Promise<void> = Promise.resolve();
  #failing = false;

  constructor(options: EndpointStoreOptions) {
    this.#options = options;
  }

  get path(): string {
    return this.#options.path;
  }

  /** The remembered endpoints, valid ones only; [] when there is no usable file. */
  async load(): Promise<HandlerAddress[]> {
    const { path, log, maxEntries } = this.#options;
    const text = await this.#read().catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // first start
      log.warn({ err: error, file: path }, 'Ignored unreadable external handler endpoints file');
      return undefined;
    });
    if (text === undefined) return [];
    const parsed = parseStoredEndpoints(text, maxEntries);
    if (parsed.problems.length > 0) {
      log.warn(
        { file: path, kept: parsed.endpoints.length, problems: parsed.problems.length, first: parsed.problems.slice(0, 3) },
        'Ignored invalid entries of the external handler endpoints file',
      );
    }
    // What the file should say now; a file with ignored entries is rewritten on the next change.
    this.#written = text;
    this.#wanted = serializeEndpoints(parsed.endpoints);
    return parsed.endpoints;
  }

  /** Records the current endpoints (in registration order); written in the background. */
  save(endpoints: readonly StoredEndpoint[]): void {
    const text = serializeEndpoints(endpoints);
    if (text === this.#wanted && text === this.#written) return;
    this.#wanted = text;
    if (this.#writing) return;
    this.#writing = true;
    this.#drained = this.#drain();
  }

  /** Resolves once every save so far is written (or has failed). */
  flush(): Promise<void> {
    return this.#drained;
  }

  async #drain(): Promise<void> {
    while (this.#wanted !== undefined && this.#wanted !== this.#written) {
      const text = this.#wanted;
      try {
        await writeFileAtomically(this.#options.path, text);
        if (this.#failing) this.#options.log.info({ file: this.#options.path }, 'Saved external handler endpoints again');
        this.#failing = false;
      } catch (error) {
        // E.g. a read-only state directory: the registry works on, it only forgets on restart.
        if (!this.#failing) this.#options.log.warn({ err: error, file: this.#options.path }, 'Failed to save external handler endpoints');
        this.#failing = true;
      }
      // Also after a failure: the next change tries again, not a hot loop.
      this.#written = text;
    }
    // No await between the loop's last check and here: a save() now starts a new drain.
    this.#writing = false;
  }

  async #read(): Promise<string> {
    const { path, maxEntries } = this.#options;
    // O_NONBLOCK: opening a FIFO planted at the path must not hang the agent's start.
    const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new Error('not a regular file');
      const limit = 4_096 + maxEntries * BYTES_PER_ENTRY;
      if (stat.size > limit) throw new Error(`larger than ${limit} bytes`);
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  }
}
