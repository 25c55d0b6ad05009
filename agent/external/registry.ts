/**
 * The agent's side of Akri's v0 discovery-handler protocol: serves
 * `Registration.RegisterDiscoveryHandler` on a Unix socket and keeps the registered
 * endpoints of external handlers, by name. `handler(name)` gives a DiscoveryHandler that
 * the agent runs like a built-in one (see ./adapter.ts).
 *
 * Liveness: an endpoint is dropped when
 *   - a Discover stream to it breaks (error or end) and it has not registered again since
 *     that stream opened — the Akri rule: a handler whose stream breaks re-registers;
 *   - it cannot be reached within `connectTimeoutMs` after registering, or after its
 *     connection drops (each endpoint's gRPC channel is watched, so a dead handler leaves
 *     `names()` even when no session is using it).
 * Registering again with the same name+endpoint refreshes the endpoint in place: live
 * streams are kept (no rediscovery churn), sessions without a stream to it open one.
 *
 * Persistence (optional `stateFile`, see ./endpoint-store.ts): every accepted registration
 * is remembered; on start each remembered endpoint is dialled as if it had just
 * registered, so handlers that only register when a stream breaks (Akri's) survive an
 * agent restart. Dropped endpoints leave the file; stopping the registry keeps it.
 *
 * Events: 'registered' (name) when a name gets its first live endpoint, 'unregistered'
 * (name) when its last one is dropped; for observability also 'endpoint-ready' (name,
 * endpoint) when the connection to an endpoint is up and 'endpoint-dropped' (name,
 * endpoint, reason). Listeners run synchronously.
 */
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import {
  connectivityState,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ChannelOptions,
  type Client,
  type ClientReadableStream,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { loadDiscoveryProtos, type DiscoveryProtos } from '../../proto/load.ts';
import type { DiscoverRequest, DiscoverResponse, Empty, RegisterDiscoveryHandlerRequest } from '../../proto/types.ts';
import { createExternalHandler, type EndpointListener, type EndpointSource, type LiveEndpoint } from './adapter.ts';
import { DEFAULT_WIRE_LIMITS, type WireLimits } from './devices.ts';
import { MAX_SOCKET_PATH_BYTES, parseRegistration, type HandlerAddress } from './endpoint.ts';
import { EndpointStore } from './endpoint-store.ts';

/** Where Tether's agent serves registrations by default (Akri: /var/lib/akri/agent-registration.sock). */
export const DEFAULT_REGISTRATION_SOCKET = '/var/lib/tether/agent-registration.sock';

export interface ExternalHandlerRegistryOptions {
  /** The registration socket to serve, e.g. DEFAULT_REGISTRATION_SOCKET. */
  readonly socketPath: string;
  readonly log: Logger;
  /** How long an endpoint may be unreachable before it is dropped (default 5 s). */
  readonly connectTimeoutMs?: number;
  /** How long a new session waits for every endpoint's first list (default 3 s). */
  readonly firstReportTimeoutMs?: number;
  /** Bounds on what handlers send (default DEFAULT_WIRE_LIMITS). */
  readonly limits?: Partial<WireLimits>;
  /** Most endpoints kept at once; further registrations are refused (default 1 024). */
  readonly maxEndpoints?: number;
  /**
   * The file remembering accepted registrations across restarts (see ./endpoint-store.ts),
   * e.g. endpointsFile('/var/lib/tether'); nothing is remembered when absent.
   */
  readonly stateFile?: string;
  readonly protos?: DiscoveryProtos;
}

type DiscoverClient = Client & {
  Discover(request: DiscoverRequest, metadata: Metadata): ClientReadableStream<DiscoverResponse>;
};

class Endpoint implements LiveEndpoint {
  readonly address: HandlerAddress;
  readonly client: DiscoverClient;
  shared: boolean;
  generation = 1;
  closed = false;
  /** Whether the connection to the handler is up. */
  ready = false;

  constructor(address: HandlerAddress, client: DiscoverClient) {
    this.address = address;
    this.client = client;
    this.shared = address.shared;
  }

  discover(request: DiscoverRequest): ClientReadableStream<DiscoverResponse> {
    // Wait for the connection instead of failing fast: a handler that registers just before
    // its server is up is normal; a dead one is dropped by the connection watch.
    return this.client.Discover(request, new Metadata({ waitForReady: true }));
  }
}

function channelOptions(address: HandlerAddress, limits: WireLimits): ChannelOptions {
  // Enough for maxDevices devices with full properties; gRPC's default is 4 MiB.
  const maxMessage = Math.min(256 << 20, Math.max(4 << 20, limits.maxDevices * 4096));
  return {
    'grpc.max_receive_message_length': maxMessage,
    // A handler that restarts should be found again within about a second.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1_000,
    // Over the network a peer can vanish without a FIN; keepalive notices.
    ...(address.type === 'NETWORK' ? { 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 } : {}),
  };
}

export class ExternalHandlerRegistry extends EventEmitter {
  readonly #options: ExternalHandlerRegistryOptions;
  readonly #log: Logger;
  readonly #protos: DiscoveryProtos;
  readonly #limits: WireLimits;
  readonly #connectTimeoutMs: number;
  /** By name+endpoint; insertion order is registration order. */
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #listeners = new Set<EndpointListener>();
  readonly #handlers = new Map<string, DiscoveryHandler<unknown>>();
  /** Last `shared` flag registered per name (kept when the name has no live endpoint). */
  readonly #shared = new Map<string, boolean>();
  readonly #source: EndpointSource;
  readonly #maxEndpoints: number;
  readonly #store: EndpointStore | undefined;
  #server: Server | undefined;
  /** Set while the remembered endpoints are added: one write for all of them, not one each. */
  #restoring = false;

  constructor(options: ExternalHandlerRegistryOptions) {
    super();
    this.#options = options;
    this.#log = options.log.child({ component: 'external-handlers' });
    this.#protos = options.protos ?? loadDiscoveryProtos();
    this.#limits = { ...DEFAULT_WIRE_LIMITS, ...options.limits };
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.#maxEndpoints = options.maxEndpoints ?? 1_024;
    this.#store =
      options.stateFile === undefined
        ? undefined
        : new EndpointStore({ path: options.stateFile, log: this.#log, maxEntries: this.#maxEndpoints });
    this.#source = {
      endpoints: (name) => [...this.#endpoints.values()].filter((e) => e.address.name === name),
      shared: (name) => this.#shared.get(name) ?? false,
      subscribe: (listener) => {
        this.#listeners.add(listener);
        return () => this.#listeners.delete(listener);
      },
      reportBroken: (endpoint, generation) => this.#reportBroken(endpoint as Endpoint, generation),
      limits: this.#limits,
      firstReportTimeoutMs: options.firstReportTimeoutMs ?? 3_000,
    };
  }

  get socketPath(): string {
    return this.#options.socketPath;
  }

  /**
   * Serves Registration on the socket, removing a stale socket file first, then dials the
   * remembered endpoints (they are live at once, and dropped if unreachable within
   * connectTimeoutMs, like fresh registrations).
   */
  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    const path = this.#options.socketPath;
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES)
      throw new Error(`registration socket path longer than ${MAX_SOCKET_PATH_BYTES} bytes: ${path}`);
    const remembered = (await this.#store?.load()) ?? [];
    await rm(path, { force: true });
    const server = new Server();
    server.addService(this.#protos.Registration.service, {
      RegisterDiscoveryHandler: (call: ServerUnaryCall<RegisterDiscoveryHandlerRequest, Empty>, done: sendUnaryData<Empty>) =>
        this.#onRegister(call.request, done),
    });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${path}`, ServerCredentials.createInsecure(), (error) =>
        error ? reject(new Error(`binding ${path}`, { cause: error })) : resolve(),
      );
    });
    this.#server = server;
    this.#log.info({ socket: path }, 'Serving external handler registration');
    this.#restore(remembered);
  }

  /** Stops serving, ends every session's streams, closes handler connections, removes the socket. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    // #drop does not persist while #server is unset: the file keeps what the next start dials.
    for (const endpoint of [...this.#endpoints.values()]) this.#drop(endpoint, 'registry stopped');
    for (const listener of [...this.#listeners]) listener.stopped();
    await this.#store?.flush();
    this.#listeners.clear();
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 1_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
    await rm(this.#options.socketPath, { force: true });
  }

  /** Handler names with at least one live endpoint, sorted. */
  names(): string[] {
    return [...new Set([...this.#endpoints.values()].map((e) => e.address.name))].sort();
  }

  /** The live endpoints of a name, in registration order (for status and tests). */
  endpoints(name: string): { endpoint: string; type: string; shared: boolean; ready: boolean }[] {
    return [...this.#endpoints.values()]
      .filter((e) => e.address.name === name)
      .map((e) => ({ endpoint: e.address.endpoint, type: e.address.type, shared: e.shared, ready: e.ready }));
  }

  /**
   * The DiscoveryHandler for `name`, or undefined while nothing is registered under it.
   * The same object is returned every time; a session keeps running (reporting no
   * devices) while all endpoints are gone, and picks them up when they register again.
   */
  handler(name: string): DiscoveryHandler<unknown> | undefined {
    if (!this.names().includes(name)) return undefined;
    let handler = this.#handlers.get(name);
    if (handler === undefined) {
      handler = createExternalHandler(name, this.#source);
      this.#handlers.set(name, handler);
    }
    return handler;
  }

  #onRegister(request: RegisterDiscoveryHandlerRequest, done: sendUnaryData<Empty>): void {
    const address = parseRegistration(request);
    if (typeof address === 'string') {
      this.#log.warn({ reason: address }, 'Refused external handler registration');
      done({ code: status.INVALID_ARGUMENT, details: address });
      return;
    }
    if (this.#server === undefined) {
      done({ code: status.UNAVAILABLE, details: 'registry is stopping' });
      return;
    }
    const existing = this.#endpoints.get(address.key);
    if (existing === undefined && this.#endpoints.size >= this.#maxEndpoints) {
      this.#log.warn({ handler: address.name, endpoint: address.endpoint }, 'Refused external handler registration: too many endpoints');
      done({ code: status.RESOURCE_EXHAUSTED, details: 'too many external handler endpoints registered' });
      return;
    }
    done(null, {});
    this.#shared.set(address.name, address.shared);
    if (existing !== undefined) this.#refresh(existing, address);
    else this.#add(address);
  }

  #refresh(endpoint: Endpoint, address: HandlerAddress): void {
    endpoint.generation++;
    endpoint.shared = address.shared;
    this.#log.debug({ handler: address.name, endpoint: address.endpoint }, 'Refreshed external handler registration');
    this.#persist(); // writes only when `shared` changed
    for (const listener of [...this.#listeners]) listener.added(endpoint);
  }

  /** Dials remembered endpoints as if they had just registered (skipping any that already did). */
  #restore(remembered: readonly HandlerAddress[]): void {
    this.#restoring = true;
    for (const address of remembered) {
      if (this.#endpoints.has(address.key) || this.#endpoints.size >= this.#maxEndpoints) continue;
      this.#shared.set(address.name, address.shared);
      this.#add(address, 'Restored external discovery handler endpoint');
    }
    this.#restoring = false;
    this.#persist(); // writes nothing unless the file held invalid entries
  }

  /** Remembers the live endpoints (coalesced; an unchanged list writes nothing). */
  #persist(): void {
    if (this.#server === undefined || this.#restoring) return;
    this.#store?.save([...this.#endpoints.values()].map((e) => ({ ...e.address, shared: e.shared })));
  }

  #add(address: HandlerAddress, message = 'Registered external discovery handler'): void {
    const client = new this.#protos.DiscoveryHandler(
      address.target,
      credentials.createInsecure(),
      channelOptions(address, this.#limits),
    ) as unknown as DiscoverClient;
    const endpoint = new Endpoint(address, client);
    const first = !this.names().includes(address.name);
    this.#endpoints.set(address.key, endpoint);
    this.#log.info({ handler: address.name, endpoint: address.endpoint, type: address.type, shared: address.shared }, message);
    this.#persist();
    this.#watch(endpoint);
    for (const listener of [...this.#listeners]) listener.added(endpoint);
    if (first) this.emit('registered', address.name);
  }

  /** Drops the endpoint unless it registered again after the broken stream was opened. */
  #reportBroken(endpoint: Endpoint, generation: number): void {
    if (endpoint.closed) return;
    if (endpoint.generation === generation) {
      this.#drop(endpoint, 'stream broken');
      return;
    }
    // It registered again while the stream was open: it may have restarted in between.
    // Offer it to the sessions again; if it is really gone, the connection watch drops it.
    for (const listener of [...this.#listeners]) listener.added(endpoint);
  }

  /**
   * Keeps watching the endpoint's connection: reachable within connectTimeoutMs after
   * registering or after any disconnect, or dropped.
   */
  #watch(endpoint: Endpoint): void {
    const channel = endpoint.client.getChannel();
    const probe = (): void => {
      if (endpoint.closed) return;
      endpoint.ready = false;
      const generation = endpoint.generation;
      endpoint.client.waitForReady(Date.now() + this.#connectTimeoutMs, (error) => {
        if (endpoint.closed) return;
        if (error === undefined) return watchReady();
        if (endpoint.generation !== generation) return probe();
        this.#drop(endpoint, 'unreachable');
      });
    };
    const watchReady = (): void => {
      const state = channel.getConnectivityState(false);
      if (state !== connectivityState.READY) return probe();
      if (!endpoint.ready) {
        endpoint.ready = true;
        this.emit('endpoint-ready', endpoint.address.name, endpoint.address.endpoint);
      }
      channel.watchConnectivityState(state, Infinity, () => probe());
    };
    probe();
  }

  #drop(endpoint: Endpoint, reason: string): void {
    if (endpoint.closed) return;
    endpoint.closed = true;
    const { name, endpoint: where, key } = endpoint.address;
    this.#endpoints.delete(key);
    this.#persist();
    for (const listener of [...this.#listeners]) listener.removed(endpoint);
    endpoint.client.close();
    const level = reason === 'registry stopped' ? 'debug' : 'warn';
    this.#log[level]({ handler: name, endpoint: where, reason }, 'Dropped external discovery handler endpoint');
    this.emit('endpoint-dropped', name, where, reason);
    if (!this.names().includes(name)) this.emit('unregistered', name);
  }
}
