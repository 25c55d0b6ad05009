/**
 * The Tether SDK for external discovery handlers: write `parseDetails` and `discover`,
 * and `serveDiscoveryHandler` does the rest — it serves Akri's v0 `DiscoveryHandler`
 * service (on a Unix socket or TCP), registers with the agent and keeps registered
 * (./registrar.ts), turns every `emit` into a full-list Discover message, and maps
 * DetailsError to InvalidArgument. The result speaks the wire protocol of Akri's own
 * handlers, so it works with Tether's agent and with Akri's.
 */
import { EventEmitter } from 'node:events';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Server, ServerCredentials, status, type ServerWritableStream } from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { loadDiscoveryProtos, type DiscoveryProtos } from '../../proto/load.ts';
import type { DiscoverRequest, DiscoverResponse, RegisterDiscoveryHandlerRequest } from '../../proto/types.ts';
import { DetailsError, type DiscoveredDevice } from '../contract.ts';
import { Registrar } from './registrar.ts';
import { decodeProperties, parseDetailsYaml, toAkriDevice } from './wire.ts';

/** Reports the complete current device list (devices not listed are gone). Cheap; call on every change. */
export type EmitDevices = (devices: readonly DiscoveredDevice[]) => void;

/** What a handler author writes. */
export interface DiscoveryHandlerDefinition<Details> {
  /** The protocol name DeviceDiscovery objects refer to (Akri: `debugEcho`, `onvif`, …). */
  readonly name: string;
  /** Whether the devices it finds can be seen by several nodes. */
  readonly shared: boolean;
  /**
   * Validates the details (the YAML the agent sent, already parsed: an object, or null
   * when empty). Throw DetailsError for bad input: the agent shows it on the discovery.
   */
  parseDetails(raw: unknown): Details;
  /**
   * Runs one discovery (one Discover stream) until `signal` aborts: call `emit` with the
   * full list whenever it changes. `properties` are the discovery's resolved properties
   * (UTF-8). Rejecting with DetailsError answers InvalidArgument; any other rejection
   * breaks the stream (the agent marks the devices offline; the SDK re-registers after a
   * backoff). Resolving early is fine: the last list stays in force.
   */
  discover(details: Details, properties: ReadonlyMap<string, string>, emit: EmitDevices, signal: AbortSignal): Promise<void> | void;
}

/** Where to serve: a Unix socket (Akri: `<DISCOVERY_HANDLERS_DIRECTORY>/<name>.sock`) or TCP. */
export type HandlerListen =
  | { readonly socket: string }
  /** `advertise` is the host the agent dials (required when `host` is a wildcard; Akri: POD_IP). */
  | { readonly host: string; readonly port: number; readonly advertise?: string };

export interface ServeDiscoveryHandlerOptions<Details> extends DiscoveryHandlerDefinition<Details> {
  /** The agent's registration socket (Tether: /var/lib/tether/agent-registration.sock). */
  readonly agentSocket: string;
  readonly listen: HandlerListen;
  readonly log?: Logger;
  readonly registration?: {
    readonly initialRetryMs?: number;
    readonly maxRetryMs?: number;
    /** Periodic re-registration (default 30 s). */
    readonly refreshMs?: number;
  };
  readonly protos?: DiscoveryProtos;
}

type DiscoverCall = ServerWritableStream<DiscoverRequest, DiscoverResponse>;

interface OpenStream {
  readonly abort: AbortController;
  readonly call: DiscoverCall;
}

function bind(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(new Error(`binding ${address}`, { cause: error })) : resolve(port),
    );
  });
}

/** `[v6]` for an IPv6 literal, the host unchanged otherwise. */
function bracketed(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Sends the latest list only, whatever the reader's pace; skips repeats. */
function listWriter(call: DiscoverCall): EmitDevices {
  let last: string | undefined;
  let pending: DiscoverResponse | undefined;
  let waiting = false;
  const flush = (): void => {
    waiting = false;
    const message = pending;
    pending = undefined;
    if (message === undefined || call.writableEnded || call.cancelled) return;
    if (!call.write(message)) {
      waiting = true;
      call.once('drain', flush);
    }
  };
  return (devices) => {
    const message: DiscoverResponse = { devices: devices.map(toAkriDevice) };
    const key = JSON.stringify(message.devices);
    if (key === last) return;
    last = key;
    pending = message;
    if (!waiting) flush();
  };
}

function toStatus(error: unknown): { code: status; details: string } {
  const details = error instanceof Error ? error.message : String(error);
  return { code: error instanceof DetailsError ? status.INVALID_ARGUMENT : status.INTERNAL, details };
}

/**
 * A served handler. Events: 'registered' () after every successful registration,
 * 'registration_failed' (error, retryInMs), 'discover' () when a Discover stream opens.
 */
export class ServedDiscoveryHandler<Details = unknown> extends EventEmitter {
  readonly #options: ServeDiscoveryHandlerOptions<Details>;
  readonly #log: Logger;
  readonly #protos: DiscoveryProtos;
  readonly #streams = new Set<OpenStream>();
  #server: Server | undefined;
  #registrar: Registrar | undefined;
  #endpoint: string | undefined;
  #discoverFailures = 0;
  #stopped = false;

  constructor(options: ServeDiscoveryHandlerOptions<Details>) {
    super();
    this.#options = options;
    this.#log = (options.log ?? pino({ level: 'info' })).child({ handler: options.name });
    this.#protos = options.protos ?? loadDiscoveryProtos();
  }

  /** The endpoint as registered: the socket path, or http://host:port. */
  get endpoint(): string {
    if (this.#endpoint === undefined) throw new Error('not started');
    return this.#endpoint;
  }

  /** Successful registrations so far. */
  get registrations(): number {
    return this.#registrar?.registrations ?? 0;
  }

  /** Discover streams currently open. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Starts serving, then registers in the background (retried until `stop()`). */
  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    const server = new Server();
    server.addService(this.#protos.DiscoveryHandler.service, { Discover: (call: DiscoverCall) => this.#onDiscover(call) });
    const listen = this.#options.listen;
    let type: RegisterDiscoveryHandlerRequest['endpoint_type'];
    if ('socket' in listen) {
      await mkdir(dirname(listen.socket), { recursive: true });
      await rm(listen.socket, { force: true });
      await bind(server, `unix://${listen.socket}`);
      this.#endpoint = listen.socket;
      type = 'UDS';
    } else {
      const wildcard = ['0.0.0.0', '::', '[::]'].includes(listen.host);
      if (listen.advertise === undefined && wildcard) {
        throw new Error(`listening on ${listen.host} needs an advertise address the agent can dial (e.g. the pod IP)`);
      }
      const port = await bind(server, `${bracketed(listen.host)}:${listen.port}`);
      // Akri's agents want a URI here; Tether's accepts both forms.
      this.#endpoint = `http://${bracketed(listen.advertise ?? listen.host)}:${port}`;
      type = 'NETWORK';
    }
    this.#server = server;
    const { name, shared, agentSocket } = this.#options;
    const registrar = new Registrar({
      agentSocket,
      request: { name, endpoint: this.#endpoint, endpoint_type: type, shared },
      protos: this.#protos,
      log: this.#log,
      ...this.#options.registration,
    });
    registrar.on('registered', () => this.emit('registered'));
    registrar.on('registration_failed', (error: unknown, delay: number) => this.emit('registration_failed', error, delay));
    this.#registrar = registrar;
    this.#log.info({ endpoint: this.#endpoint, type }, 'Serving discovery handler');
    registrar.start();
  }

  /** Stops registering, ends every stream, stops serving and removes the socket. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#registrar?.stop();
    for (const { abort, call } of this.#streams) {
      abort.abort();
      call.end();
    }
    this.#streams.clear();
    const server = this.#server;
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 1_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
    if ('socket' in this.#options.listen) await rm(this.#options.listen.socket, { force: true });
  }

  #onDiscover(call: DiscoverCall): void {
    let details: Details;
    try {
      details = this.#options.parseDetails(parseDetailsYaml(call.request.discovery_details));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#log.warn({ reason: message }, 'Refused discovery details');
      call.emit('error', { code: status.INVALID_ARGUMENT, details: message });
      return;
    }
    const stream: OpenStream = { abort: new AbortController(), call };
    this.#streams.add(stream);
    call.on('cancelled', () => {
      // Already finished here (discover failed, or stop()): nothing the agent did.
      if (stream.abort.signal.aborted) return;
      this.#streams.delete(stream);
      stream.abort.abort();
      // Akri's rule: the agent dropped the stream, so register again (harmless when it
      // only stopped this discovery; essential when it restarted).
      if (!this.#stopped) this.#registrar?.request('stream cancelled by the agent');
    });
    const write = listWriter(call);
    const emit: EmitDevices = (devices) => {
      if (stream.abort.signal.aborted) return;
      this.#discoverFailures = 0;
      write(devices);
    };
    this.emit('discover');
    const properties = decodeProperties(call.request.discovery_properties);
    Promise.resolve()
      .then(() => this.#options.discover(details, properties, emit, stream.abort.signal))
      .catch((error: unknown) => this.#onDiscoverFailed(stream, error));
  }

  #onDiscoverFailed(stream: OpenStream, error: unknown): void {
    if (stream.abort.signal.aborted) return;
    this.#streams.delete(stream);
    stream.abort.abort();
    const failed = toStatus(error);
    this.#log.warn({ err: error }, 'Discovery failed');
    stream.call.emit('error', failed);
    if (failed.code === status.INVALID_ARGUMENT) return;
    // The agent drops an endpoint whose stream broke; come back after a growing delay so a
    // discovery that keeps failing does not spin.
    const delay = Math.min(100 * 2 ** this.#discoverFailures++, 30_000);
    setTimeout(() => this.#registrar?.request('discovery failed'), delay).unref();
  }
}

/**
 * Serves a discovery handler and registers it with the agent. Resolves once the server is
 * listening; registration proceeds in the background and is retried until `stop()`.
 */
export async function serveDiscoveryHandler<Details>(
  options: ServeDiscoveryHandlerOptions<Details>,
): Promise<ServedDiscoveryHandler<Details>> {
  const served = new ServedDiscoveryHandler(options);
  await served.start();
  return served;
}
