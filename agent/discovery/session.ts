/**
 * One discovery session: a handler running for one discovery on this node.
 *
 * The handler reports into a DeviceSet (grace periods applied there); the session turns
 * tracked devices into ServedDevices with their collision-safe names. A handler that
 * fails is restarted with capped exponential backoff; `stop()` aborts it.
 *
 * A DetailsError from `run` is not retried blindly: the same details would be refused
 * again. It is reported like any failure (counted, `onError`, logged) and the handler runs
 * again only when `handler.untilRetryable` says something changed (an external handler
 * registered again), after the usual backoff; a spec change replaces the whole session (the
 * node runtime restarts sessions whose fingerprint — handler, details, properties — changes).
 */
import type { Logger } from 'pino';
import { deviceName } from '../../api/names.ts';
import {
  abortableDelay,
  DetailsError,
  untilAborted,
  type AnyDiscoveryHandler,
  type DiscoveredDevice,
} from '../../discovery-handlers/contract.ts';
import type { ServedDevice } from '../device.ts';
import { DeviceSet } from '../inventory/device-set.ts';
import { sanitizeForApi } from '../publish/device-object.ts';

export interface SessionSpec {
  readonly namespace: string;
  /** DeviceDiscovery name. */
  readonly name: string;
  readonly handler: AnyDiscoveryHandler;
  /** Already validated by `handler.parseDetails`. */
  readonly details: unknown;
  readonly capacity: number;
  readonly offlineGraceMs: number;
  readonly properties: ReadonlyMap<string, string>;
  /** uid of the DeviceDiscovery (cluster only); its devices carry it as their owner. */
  readonly uid?: string;
}

export interface SessionOptions {
  readonly node: string;
  readonly log: Logger;
  /** Receives the session's full device list after every change. */
  readonly onDevices: (devices: ServedDevice[]) => void;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Receives handler event counts (see HandlerContext.count). */
  readonly count?: (event: string) => void;
  /** Told about every handler failure (after it is counted), e.g. to record an Event. */
  readonly onError?: (error: Error) => void;
}

export class DiscoverySession {
  readonly spec: SessionSpec;
  readonly #options: SessionOptions;
  readonly #abort = new AbortController();
  readonly #devices: DeviceSet;
  readonly #shared: boolean;
  #capacity: number;
  #running: Promise<void> | undefined;
  /** Consecutive handler failures (reset by a report). */
  failures = 0;
  lastError: Error | undefined;

  constructor(spec: SessionSpec, options: SessionOptions) {
    this.spec = spec;
    this.#options = options;
    this.#shared = spec.handler.isShared(spec.details);
    this.#capacity = spec.capacity;
    this.#devices = new DeviceSet({ graceMs: spec.offlineGraceMs, onChange: () => this.#publish() });
  }

  get key(): string {
    return `${this.spec.namespace}/${this.spec.name}`;
  }

  get shared(): boolean {
    return this.#shared;
  }

  /** Whether the handler has reported at least once. */
  get reported(): boolean {
    return this.#devices.reported;
  }

  /** Resizes every device of the session without restarting the handler. */
  setCapacity(capacity: number): void {
    if (capacity === this.#capacity) return;
    this.#capacity = capacity;
    this.#options.onDevices(this.servedDevices());
  }

  /** The raw devices currently online, to seed a replacement session (spec change). */
  onlineDevices(): DiscoveredDevice[] {
    return this.#devices
      .snapshot()
      .filter((d) => d.online)
      .map((d) => d.device);
  }

  /** Devices this node served before a restart; see DeviceSet.seed. Call before start(). */
  seed(devices: Parameters<DeviceSet['seed']>[0]): void {
    this.#devices.seed(devices);
  }

  /** Seeded devices the handler has not confirmed by now go offline (grace applies). */
  expireProvisional(): void {
    this.#devices.expireProvisional();
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#devices.close();
    await this.#running;
  }

  /**
   * The session's devices as this node serves them: named, and sanitised so that what a
   * container sees equals what the Device resource says. A device whose id cannot be named
   * (empty or over-long) is skipped and counted.
   */
  servedDevices(): ServedDevice[] {
    // Called on every change: reuse the previous result for devices whose report, state and
    // capacity are unchanged (the DeviceSet keeps their objects), so a burst over n devices
    // costs O(n) cheap lookups instead of n hashes and sanitising passes.
    const previous = this.#served;
    const next = new Map<string, { device: DiscoveredDevice; online: boolean; capacity: number; served: ServedDevice | undefined }>();
    const result = this.#devices.snapshot().flatMap(({ device, online }) => {
      const cached = previous.get(device.id);
      const served =
        cached !== undefined && cached.device === device && cached.online === online && cached.capacity === this.#capacity
          ? cached.served
          : this.#serve(device, online);
      next.set(device.id, { device, online, capacity: this.#capacity, served });
      return served === undefined ? [] : [served];
    });
    this.#served = next;
    return result;
  }

  #served = new Map<string, { device: DiscoveredDevice; online: boolean; capacity: number; served: ServedDevice | undefined }>();

  #serve(device: DiscoveredDevice, online: boolean): ServedDevice | undefined {
    let name: ServedDevice['name'];
    try {
      name = deviceName({
        namespace: this.spec.namespace,
        discovery: this.spec.name,
        deviceId: device.id,
        ...(this.#shared ? {} : { node: this.#options.node }),
      });
    } catch {
      this.#options.count?.('invalid_device_id');
      return undefined;
    }
    const clean = sanitizeForApi(device.properties, device.mounts ?? [], device.deviceNodes ?? []);
    if (clean.problems.length > 0) this.#options.count?.('sanitised_device');
    return {
      name,
      namespace: this.spec.namespace,
      discovery: this.spec.name,
      ...(this.spec.uid === undefined ? {} : { discoveryUid: this.spec.uid }),
      deviceId: device.id,
      shared: this.#shared,
      capacity: this.#capacity,
      online,
      properties: clean.properties,
      mounts: clean.mounts,
      deviceNodes: clean.deviceNodes,
    };
  }

  #publish(): void {
    this.failures = 0;
    this.#options.onDevices(this.servedDevices());
  }

  /** Resolves when the handler may accept the details again, or when the session stops. */
  async #untilRetryable(error: DetailsError, signal: AbortSignal): Promise<void> {
    const { handler } = this.spec;
    if (handler.untilRetryable === undefined) return untilAborted(signal);
    // It resolves when `signal` aborts too (the contract); a broken one waits for the spec.
    await handler.untilRetryable(error, signal).catch(() => untilAborted(signal));
  }

  async #loop(): Promise<void> {
    const { initialMs, maxMs } = this.#options.backoff ?? { initialMs: 200, maxMs: 30_000 };
    const signal = this.#abort.signal;
    const log = this.#options.log.child({ discovery: this.key, handler: this.spec.handler.name });
    while (!signal.aborted) {
      try {
        await this.spec.handler.run(this.spec.details, {
          sink: this.#devices,
          signal,
          properties: this.spec.properties,
          log,
          count: this.#options.count ?? (() => undefined),
        });
        if (!signal.aborted) throw new Error('handler returned before the session was stopped');
      } catch (error) {
        if (signal.aborted) break;
        this.failures++;
        this.#options.count?.('handler_error');
        this.lastError = error instanceof Error ? error : new Error(String(error));
        this.#options.onError?.(this.lastError);
        const delay = Math.min(initialMs * 2 ** (this.failures - 1), maxMs);
        if (error instanceof DetailsError) {
          log.warn({ err: error, failures: this.failures }, 'Discovery handler refused the details; not retrying until they change');
          await this.#untilRetryable(error, signal);
          if (!signal.aborted)
            log.info({ failures: this.failures, retryInMs: delay }, 'Retrying discovery handler: it may accept the details now');
        } else {
          log.warn({ err: error, failures: this.failures, retryInMs: delay }, 'Discovery handler failed');
        }
        // Also after a change: a handler that registers again after every refusal must not spin.
        await abortableDelay(delay, signal);
      }
    }
  }
}
