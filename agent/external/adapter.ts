/**
 * An external handler name seen as an in-process DiscoveryHandler, so the agent runs
 * external and built-in handlers the same way.
 *
 * One `run` is one discovery session: it calls v0 `Discover` on every endpoint
 * registered under the name — those present at the start and those that register
 * later — and merges their streams. Every Discover message is that endpoint's complete
 * list; the session's list is the union by device id, and when two endpoints report the
 * same id the later-registered endpoint wins. The merged list goes to `sink.replaceAll`
 * whenever it changes.
 *
 * A stream that breaks (error or end) takes its endpoint's devices out of the merged set
 * at once — the agent's grace period keeps them known but offline — and is reported to
 * the registry, which drops the endpoint until it registers again (Akri semantics).
 * `InvalidArgument` from a handler means bad details: `run` rejects with DetailsError, and
 * `untilRetryable` resolves once the handler's registration changed since (a new endpoint
 * under the name, or the refusing endpoint registering again — perhaps a new version), so
 * the session does not retry blindly. Other endpoints re-registering do not count: an SDK
 * handler re-registers when the agent cancels its stream, which ending the run does.
 */
import { status, type ClientReadableStream, type StatusObject } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { DetailsError, type DiscoveredDevice, type DiscoveryHandler, type HandlerContext } from '../../discovery-handlers/contract.ts';
import type { DiscoverRequest, DiscoverResponse } from '../../proto/types.ts';
import { discoverRequest, parseExternalDetails, type ExternalDetails } from './details.ts';
import { mergeEndpointLists, readDiscoverResponse, type WireLimits } from './devices.ts';
import type { HandlerAddress } from './endpoint.ts';

/** A registered endpoint as the registry keeps it. */
export interface LiveEndpoint {
  readonly address: HandlerAddress;
  /** Bumped by every registration of this name+endpoint. */
  readonly generation: number;
  readonly closed: boolean;
  /** Opens a Discover stream (waits for the connection; the registry drops dead endpoints). */
  discover(request: DiscoverRequest): ClientReadableStream<DiscoverResponse>;
}

/** What a running session hears from the registry. */
export interface EndpointListener {
  /** An endpoint registered, or registered again. */
  readonly added: (endpoint: LiveEndpoint) => void;
  /** An endpoint was dropped (dead, or the registry stopped). */
  readonly removed: (endpoint: LiveEndpoint) => void;
  /** The registry stopped serving. */
  readonly stopped: () => void;
}

/** The registry, as the adapter needs it. */
export interface EndpointSource {
  endpoints(name: string): LiveEndpoint[];
  /** The `shared` flag of the latest registration under `name`. */
  shared(name: string): boolean;
  subscribe(listener: EndpointListener): () => void;
  /** A stream opened at `generation` broke; the registry decides whether the endpoint is dead. */
  reportBroken(endpoint: LiveEndpoint, generation: number): void;
  readonly limits: WireLimits;
  /** How long a new session waits for every endpoint's first list before reporting what it has. */
  readonly firstReportTimeoutMs: number;
}

interface StreamState {
  readonly call: ClientReadableStream<DiscoverResponse>;
  /** The endpoint's generation when the stream was opened. */
  readonly generation: number;
  /** Undefined until the endpoint's first list. */
  devices: DiscoveredDevice[] | undefined;
}

/**
 * The handler's InvalidArgument message as a DetailsError. Handlers built with Tether's
 * SDK send `details.<path>: <message>`, so the field path survives the trip; anything
 * else (e.g. Akri's "Configuration discovery details improperly configured …") points
 * at `details`.
 */
export function detailsErrorFrom(message: string, handler: string): DetailsError {
  const match = /^(details(?:[.[][^:\s]*)?): ([\s\S]+)$/.exec(message);
  if (match !== null) return new DetailsError(match[1]!, match[2]!);
  return new DetailsError('details', message.length > 0 ? message : `rejected by external handler ${handler}`);
}

/** What the registry held when an endpoint refused the details (InvalidArgument). */
interface Refusal {
  /** The endpoint that refused, and its generation then; undefined when unknown. */
  readonly endpoint: LiveEndpoint | undefined;
  readonly generation: number;
  /** Every endpoint of the name at the refusal. */
  readonly known: ReadonlySet<LiveEndpoint>;
}

/** Whether the name's registration changed since the refusal. Pure. */
function registeredSince(refusal: Refusal, endpoints: readonly LiveEndpoint[]): boolean {
  // A dropped endpoint that registers again is a new object, so it is not in `known`.
  return endpoints.some((e) => !refusal.known.has(e) || (e === refusal.endpoint && e.generation !== refusal.generation));
}

/** Resolves once `registeredSince(refusal, …)` holds for `name`, or `signal` aborts. */
function untilRegisteredSince(name: string, source: EndpointSource, refusal: Refusal, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || registeredSince(refusal, source.endpoints(name))) return resolve();
    const done = (): void => {
      unsubscribe();
      signal.removeEventListener('abort', done);
      resolve();
    };
    const unsubscribe = source.subscribe({
      added: () => {
        if (registeredSince(refusal, source.endpoints(name))) done();
      },
      removed: () => undefined,
      // The agent is stopping: the session's signal ends the wait.
      stopped: () => undefined,
    });
    signal.addEventListener('abort', done, { once: true });
  });
}

/** One run of the adapter: the streams of one discovery session. */
class ExternalRun {
  readonly #name: string;
  readonly #source: EndpointSource;
  readonly #context: HandlerContext;
  readonly #request: DiscoverRequest;
  readonly #log: Logger;
  /** Insertion order is join order: later entries win id conflicts. */
  readonly #streams = new Map<LiveEndpoint, StreamState>();
  readonly #awaitingFirst = new Set<LiveEndpoint>();
  /**
   * Streams that broke in a row before sending a list, per name+endpoint. Reopening such
   * an endpoint waits min(100 ms · 2^(n-1), 30 s), so a handler that fails every Discover
   * and registers again at once cannot make the agent spin.
   */
  readonly #failures = new Map<string, number>();
  readonly #delayed = new Map<string, NodeJS.Timeout>();
  #firstTimer: NodeJS.Timeout | undefined;
  #lastPublished: string | undefined;
  #unsubscribe: (() => void) | undefined;
  #detach: (() => void) | undefined;
  #done = false;
  #settle: ((error?: Error) => void) | undefined;
  readonly #onRefused: (error: DetailsError, refusal: Refusal) => void;

  constructor(
    name: string,
    source: EndpointSource,
    details: ExternalDetails,
    context: HandlerContext,
    onRefused: (error: DetailsError, refusal: Refusal) => void,
  ) {
    this.#name = name;
    this.#source = source;
    this.#context = context;
    this.#onRefused = onRefused;
    this.#request = discoverRequest(details, context.properties);
    this.#log = context.log.child({ handler: name });
  }

  run(): Promise<void> {
    const endpoints = this.#source.endpoints(this.#name);
    if (endpoints.length === 0) {
      return Promise.reject(new Error(`no external discovery handler is registered as "${this.#name}"`));
    }
    return new Promise<void>((resolve, reject) => {
      this.#settle = (error) => (error === undefined ? resolve() : reject(error));
      const { signal } = this.#context;
      if (signal.aborted) return this.#finish();
      const onAbort = (): void => this.#finish();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#detach = () => signal.removeEventListener('abort', onAbort);
      this.#unsubscribe = this.#source.subscribe({
        added: (endpoint) => this.#join(endpoint),
        removed: (endpoint) => this.#forget(endpoint),
        stopped: () => this.#finish(new Error('the external handler registry stopped')),
      });
      for (const endpoint of endpoints) if (this.#open(endpoint)) this.#awaitingFirst.add(endpoint);
      this.#firstTimer = setTimeout(() => {
        this.#firstTimer = undefined;
        this.#publish();
      }, this.#source.firstReportTimeoutMs);
    });
  }

  /** An endpoint registered (again): open a stream now, or after the failure backoff. */
  #join(endpoint: LiveEndpoint): void {
    const key = endpoint.address.key;
    const failures = this.#failures.get(key) ?? 0;
    if (failures === 0) {
      this.#open(endpoint);
      return;
    }
    if (this.#delayed.has(key)) return;
    const delay = Math.min(100 * 2 ** (failures - 1), 30_000);
    this.#delayed.set(
      key,
      setTimeout(() => {
        this.#delayed.delete(key);
        // The endpoint may have been dropped and registered anew meanwhile: open the current one.
        const current = this.#source.endpoints(this.#name).find((e) => e.address.key === key);
        if (current !== undefined) this.#open(current);
      }, delay),
    );
  }

  #open(endpoint: LiveEndpoint): boolean {
    if (this.#done || endpoint.closed || endpoint.address.name !== this.#name || this.#streams.has(endpoint)) return false;
    const call = endpoint.discover(this.#request);
    const state: StreamState = { call, generation: endpoint.generation, devices: undefined };
    this.#streams.set(endpoint, state);
    call.on('data', (response: DiscoverResponse) => this.#onList(endpoint, state, response));
    // Every failure also arrives as 'status'; this listener only keeps 'error' from throwing.
    call.on('error', () => undefined);
    call.on('status', (s: StatusObject) => this.#onStatus(endpoint, state, s));
    this.#log.debug({ endpoint: endpoint.address.endpoint }, 'Opened external discovery stream');
    return true;
  }

  #current(endpoint: LiveEndpoint, state: StreamState): boolean {
    return !this.#done && this.#streams.get(endpoint) === state;
  }

  #onList(endpoint: LiveEndpoint, state: StreamState, response: DiscoverResponse): void {
    if (!this.#current(endpoint, state)) return;
    const read = readDiscoverResponse(response, this.#source.limits);
    if (!read.ok) {
      this.#context.count('bad_payload');
      this.#log.warn({ endpoint: endpoint.address.endpoint, reason: read.reason }, 'Ignored external discovery response');
      return;
    }
    if (read.skipped.length > 0) {
      this.#context.count('bad_device');
      this.#log.warn(
        { endpoint: endpoint.address.endpoint, skipped: read.skipped.length, first: read.skipped.slice(0, 3) },
        'Skipped malformed devices from external handler',
      );
    }
    state.devices = read.devices;
    this.#failures.delete(endpoint.address.key);
    this.#awaitingFirst.delete(endpoint);
    this.#publish();
  }

  #onStatus(endpoint: LiveEndpoint, state: StreamState, s: StatusObject): void {
    if (!this.#current(endpoint, state)) return;
    this.#streams.delete(endpoint);
    this.#awaitingFirst.delete(endpoint);
    if (s.code === status.INVALID_ARGUMENT) {
      const error = detailsErrorFrom(s.details, this.#name);
      const known = new Set(this.#source.endpoints(this.#name));
      this.#onRefused(error, { endpoint, generation: endpoint.generation, known });
      this.#finish(error);
      return;
    }
    if (state.devices === undefined) this.#failures.set(endpoint.address.key, (this.#failures.get(endpoint.address.key) ?? 0) + 1);
    this.#context.count('stream_broken');
    this.#log.warn(
      { endpoint: endpoint.address.endpoint, code: status[s.code], reason: s.details },
      s.code === status.OK ? 'External discovery stream ended' : 'External discovery stream broke',
    );
    this.#publish();
    this.#source.reportBroken(endpoint, state.generation);
  }

  /** The registry dropped the endpoint: stop listening to it. */
  #forget(endpoint: LiveEndpoint): void {
    const state = this.#streams.get(endpoint);
    if (state === undefined) return;
    this.#streams.delete(endpoint);
    this.#awaitingFirst.delete(endpoint);
    state.call.cancel();
    this.#publish();
  }

  #publish(): void {
    if (this.#done) return;
    // Right after start, wait (briefly) until every endpoint has reported once, so that a
    // restart does not flap the devices of the endpoints that answer last.
    if (this.#awaitingFirst.size > 0 && this.#firstTimer !== undefined) return;
    clearTimeout(this.#firstTimer);
    this.#firstTimer = undefined;
    const merged = mergeEndpointLists([...this.#streams.values()].flatMap((s) => (s.devices === undefined ? [] : [s.devices])));
    const key = JSON.stringify(merged);
    if (key === this.#lastPublished) return;
    this.#lastPublished = key;
    this.#context.sink.replaceAll(merged);
  }

  #finish(error?: Error): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#firstTimer);
    for (const timer of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    this.#unsubscribe?.();
    this.#detach?.();
    for (const state of this.#streams.values()) state.call.cancel();
    this.#streams.clear();
    this.#settle?.(error);
  }
}

/**
 * The DiscoveryHandler for an external handler name. Details are any JSON-serialisable
 * object (sent as YAML) or a YAML string; the external handler validates them.
 */
export function createExternalHandler(name: string, source: EndpointSource): DiscoveryHandler<ExternalDetails> {
  const refusals = new WeakMap<DetailsError, Refusal>();
  const remember = (error: DetailsError, refusal: Refusal): void => void refusals.set(error, refusal);
  return {
    name,
    parseDetails: parseExternalDetails,
    isShared: () => source.shared(name),
    run: (details, context) => new ExternalRun(name, source, details, context, remember).run(),
    untilRetryable: (error, signal) => {
      // Not one of ours (cannot happen through a session): any registration from now on counts.
      const refusal = refusals.get(error) ?? { endpoint: undefined, generation: 0, known: new Set(source.endpoints(name)) };
      return untilRegisteredSince(name, source, refusal, signal);
    },
  };
}
