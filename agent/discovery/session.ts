/**
 * One discovery session: a handler running for one discovery on this node.
 *
 * The handler reports into a DeviceSet (grace periods applied there); the session turns
 * tracked devices into ServedDevices with their collision-safe names. A handler that
 * fails is restarted with capped exponential backoff; `stop()` aborts it.
 */
import type { Logger } from 'pino';
import { deviceName } from '../../deploy/crds/names.ts';
import type { AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import type { ServedDevice } from '../device-plugin/resources.ts';
import { DeviceSet } from '../inventory/device-set.ts';

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
}

export interface SessionOptions {
  readonly node: string;
  readonly log: Logger;
  /** Receives the session's full device list after every change. */
  readonly onDevices: (devices: ServedDevice[]) => void;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Receives handler event counts (see HandlerContext.count). */
  readonly count?: (event: string) => void;
}

export class DiscoverySession {
  readonly spec: SessionSpec;
  readonly #options: SessionOptions;
  readonly #abort = new AbortController();
  readonly #devices: DeviceSet;
  readonly #shared: boolean;
  #running: Promise<void> | undefined;
  /** Consecutive handler failures (reset by a report). */
  failures = 0;
  lastError: Error | undefined;

  constructor(spec: SessionSpec, options: SessionOptions) {
    this.spec = spec;
    this.#options = options;
    this.#shared = spec.handler.isShared(spec.details);
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

  start(): void {
    this.#running ??= this.#loop();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#devices.close();
    await this.#running;
  }

  servedDevices(): ServedDevice[] {
    return this.#devices.snapshot().map(({ device, online }) => ({
      name: deviceName({
        namespace: this.spec.namespace,
        discovery: this.spec.name,
        deviceId: device.id,
        ...(this.#shared ? {} : { node: this.#options.node }),
      }),
      discovery: this.spec.name,
      capacity: this.spec.capacity,
      online,
      properties: device.properties,
      mounts: device.mounts ?? [],
      deviceNodes: device.deviceNodes ?? [],
    }));
  }

  #publish(): void {
    this.failures = 0;
    this.#options.onDevices(this.servedDevices());
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
        this.lastError = error instanceof Error ? error : new Error(String(error));
        const delay = Math.min(initialMs * 2 ** (this.failures - 1), maxMs);
        log.warn({ err: error, failures: this.failures, retryInMs: delay }, 'Discovery handler failed');
        await abortableDelay(delay, signal);
      }
    }
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
