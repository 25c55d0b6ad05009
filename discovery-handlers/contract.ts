/**
 * The one interface every in-process discovery handler implements.
 *
 * A handler finds devices and reports what it currently sees; it never touches
 * gRPC, sockets or Kubernetes. The agent owns the reported set: it diffs it,
 * applies grace periods, writes Device resources and serves device plugins.
 */
import type { Logger } from 'pino';

/** A host path mounted into a container that gets the device. */
export interface DeviceMount {
  readonly containerPath: string;
  readonly hostPath: string;
  readonly readOnly: boolean;
}

/** A device node (e.g. /dev/ttyUSB0) made available to the container. */
export interface DeviceNode {
  readonly containerPath: string;
  readonly hostPath: string;
  /** Any of r, w, m. */
  readonly permissions: string;
}

/** One device as a handler sees it at this moment. */
export interface DiscoveredDevice {
  /** Stable identity of the device (serial, uuid, description…), never a transient path. */
  readonly id: string;
  /** Connection information; becomes container env vars (see agent/allocation/env.ts). */
  readonly properties: Readonly<Record<string, string>>;
  readonly mounts?: readonly DeviceMount[];
  readonly deviceNodes?: readonly DeviceNode[];
}

/**
 * Where a handler reports. Level-based: every call states what is true now.
 * Calls are synchronous and cheap; the agent coalesces them.
 */
export interface DeviceSink {
  /** The complete current set; devices not listed are gone. */
  replaceAll(devices: readonly DiscoveredDevice[]): void;
  /** One device appeared or changed. */
  upsert(device: DiscoveredDevice): void;
  /** One device is gone (e.g. a goodbye/last-will message). */
  remove(id: string): void;
}

/** What a running handler gets from the agent. */
export interface HandlerContext {
  readonly sink: DeviceSink;
  /** Aborted when the session must stop (discovery deleted or changed, agent shutdown). */
  readonly signal: AbortSignal;
  /** The discovery's resolved properties (Secret/ConfigMap values already read). */
  readonly properties: ReadonlyMap<string, string>;
  readonly log: Logger;
  /**
   * Counts a notable event (e.g. `bad_payload`, `reconnect`); the agent exports it as
   * `tether_handler_events_total{handler, discovery, event}`. Use a small fixed set of
   * event names — never device data — so the metric stays bounded.
   */
  readonly count: (event: string) => void;
}

/**
 * A discovery handler. `parseDetails` is called once per discovery spec change and must
 * throw DetailsError for bad input. `run` is called once per session and resolves when
 * `signal` aborts; a rejection is a transient failure that the agent retries with backoff,
 * except a DetailsError: the details are wrong, so the same run would fail again. The agent
 * reports it once and runs the handler again only when the spec changes (a new session) or
 * when `untilRetryable` resolves.
 */
export interface DiscoveryHandler<Details> {
  readonly name: string;
  parseDetails(raw: unknown): Details;
  /** Whether devices found with these details can be seen by several nodes. */
  isShared(details: Details): boolean;
  run(details: Details, context: HandlerContext): Promise<void>;
  /**
   * Optional, for handlers whose verdict on the details can change without a spec change
   * (an external handler that registers again may be a new version). Called by the session
   * right after `run` rejected with `error`, a DetailsError; resolves when something
   * changed since that rejection that may make the details acceptable (at once if it
   * already has), and then the session calls `run` again. It must also resolve when
   * `signal` aborts (the session stops). Without it only a spec change runs the handler again.
   */
  untilRetryable?(error: DetailsError, signal: AbortSignal): Promise<void>;
}

/** Invalid handler details: `path` points at the offending field (e.g. `details.descriptions[2]`). */
export class DetailsError extends Error {
  readonly path: string;
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(`${path}: ${message}`, options);
    this.name = 'DetailsError';
    this.path = path;
  }
}

/**
 * Resolves when `signal` aborts — at once if it already has. Use this rather than a bare
 * `addEventListener('abort', …)`: a session stopped before the handler reaches its wait
 * would otherwise never end.
 */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Waits `ms`, or less if `signal` aborts (at once if it already has). For backoffs. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** A handler whose Details type has been erased, as kept in the registry. */
export type AnyDiscoveryHandler = DiscoveryHandler<unknown>;
