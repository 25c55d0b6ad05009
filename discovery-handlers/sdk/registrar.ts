/**
 * Keeps an external handler registered with an agent (Tether's or Akri's).
 *
 * Akri's handlers register once, and again only after the agent drops one of their
 * Discover streams, retrying every 10 s. This registrar does better:
 *   - retries with capped exponential backoff that starts fast (100 ms → 5 s, jittered);
 *   - keeps its connection to the registration socket and watches it, so an agent
 *     restart is noticed at once even when no Discover stream is open;
 *   - re-registers when asked (the serving side asks when the agent cancels a stream);
 *   - refreshes the registration periodically as a safety net (idempotent on the agent).
 *
 * Events: 'registered' () after every successful registration; 'registration_failed'
 * (error, retryInMs) after every failed attempt.
 */
import { EventEmitter } from 'node:events';
import { connectivityState, credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { DiscoveryProtos } from '../../proto/load.ts';
import type { RegisterDiscoveryHandlerRequest } from '../../proto/types.ts';

export interface RegistrarOptions {
  /** The agent's registration socket. */
  readonly agentSocket: string;
  readonly request: RegisterDiscoveryHandlerRequest;
  readonly protos: DiscoveryProtos;
  readonly log: Logger;
  /** First retry delay (default 100 ms); doubles per failure up to maxRetryMs. */
  readonly initialRetryMs?: number;
  /** Longest retry delay (default 5 s). */
  readonly maxRetryMs?: number;
  /** Periodic re-registration while registered (default 30 s; 0 = never). */
  readonly refreshMs?: number;
  /** Deadline of one attempt (default 5 s). */
  readonly attemptTimeoutMs?: number;
}

type RegistrationClient = Client & {
  RegisterDiscoveryHandler(
    request: RegisterDiscoveryHandlerRequest,
    options: { deadline: number },
    callback: (error: ServiceError | null) => void,
  ): void;
};

export class Registrar extends EventEmitter {
  readonly #options: RegistrarOptions;
  #inFlight = false;
  #again = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #refresh: NodeJS.Timeout | undefined;
  /** The client of the last successful registration, kept to watch the agent connection. */
  #watched: RegistrationClient | undefined;
  #stopped = false;
  /** Successful registrations so far. */
  registrations = 0;

  constructor(options: RegistrarOptions) {
    super();
    this.#options = options;
  }

  start(): void {
    this.#attempt();
    const every = this.#options.refreshMs ?? 30_000;
    if (every > 0) {
      this.#refresh = setInterval(() => this.request('refresh'), every);
      this.#refresh.unref();
    }
  }

  /** Registers again as soon as possible (coalesced with an attempt in flight). */
  request(reason: string): void {
    if (this.#stopped) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#options.log.debug({ reason }, 'Re-registering with the agent');
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#failures = 0;
    this.#attempt();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearInterval(this.#refresh);
    this.#watched?.close();
    this.#watched = undefined;
  }

  #attempt(): void {
    if (this.#stopped) return;
    this.#inFlight = true;
    this.#again = false;
    const { protos, agentSocket, request } = this.#options;
    // A fresh channel per attempt: a long-lived one would add its own reconnect backoff.
    const client = new protos.Registration(`unix://${agentSocket}`, credentials.createInsecure()) as unknown as RegistrationClient;
    const deadline = Date.now() + (this.#options.attemptTimeoutMs ?? 5_000);
    client.RegisterDiscoveryHandler(request, { deadline }, (error) => {
      this.#inFlight = false;
      if (this.#stopped) {
        client.close();
        return;
      }
      if (error !== null) {
        client.close();
        this.#options.log.warn({ err: error, agentSocket, failures: this.#failures + 1 }, 'Failed to register with the agent');
        this.emit('registration_failed', error, this.#retryLater());
        return;
      }
      this.registrations++;
      this.#options.log.info({ endpoint: request.endpoint, agentSocket }, 'Registered with the agent');
      this.emit('registered');
      if (this.#again) {
        client.close();
        this.#attempt();
      } else {
        this.#watch(client);
      }
    });
  }

  /** Schedules the next attempt after a capped, jittered exponential backoff; returns the delay. */
  #retryLater(): number {
    const { initialRetryMs = 100, maxRetryMs = 5_000 } = this.#options;
    const base = Math.min(initialRetryMs * 2 ** this.#failures, maxRetryMs);
    this.#failures++;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#attempt();
    }, delay);
    return delay;
  }

  /** Re-registers when the connection to the agent is lost (the agent stopped or restarted). */
  #watch(client: RegistrationClient): void {
    // Swap before closing: closing the previous channel fires its watch callback, which must
    // see that it is no longer the watched one (else a refresh re-registers in a tight loop).
    const previous = this.#watched;
    this.#watched = client;
    previous?.close();
    const channel = client.getChannel();
    const state = channel.getConnectivityState(false);
    if (state !== connectivityState.READY) {
      // The agent went away between answering and now (e.g. it is shutting down).
      this.#watched = undefined;
      client.close();
      this.#retryLater();
      return;
    }
    this.#failures = 0;
    channel.watchConnectivityState(state, Infinity, () => {
      if (this.#watched !== client || this.#stopped) return;
      this.#watched = undefined;
      client.close();
      this.request('agent connection lost');
    });
  }
}
