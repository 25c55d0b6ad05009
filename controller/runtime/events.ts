/**
 * Kubernetes Events (events.k8s.io/v1) for what the controller does: broker created, deleted,
 * failed; device online, offline; node lost; eviction. Fire-and-forget: `record` never blocks
 * a reconcile and never throws; at most `maxInFlight` (4) creates run at once — Events yield
 * to the writes that matter — and a bounded backlog waits, the rest is dropped (and counted).
 * The same (object, reason, note) within the
 * de-duplication window is recorded once, so a broker that stays failed is one event.
 * Only the leader records (`enabled`).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { RESOURCES, type Api } from '../../kube/resources.ts';
import { microTime } from './time.ts';

export interface ObjectReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
}

export interface EventInput {
  readonly regarding: ObjectReference;
  readonly related?: ObjectReference;
  readonly type: 'Normal' | 'Warning';
  /** CamelCase: BrokerCreated, BrokerDeleted, BrokerFailed, DeviceOnline, DeviceOffline, NodeLost, … */
  readonly reason: string;
  /** CamelCase verb: Create, Delete, Recreate, Evict, Release, Observe. */
  readonly action: string;
  readonly note: string;
}

export interface EventRecorderOptions {
  readonly api: Api;
  readonly log: Logger;
  /** Identifies this replica (`reportingInstance`). */
  readonly instance: string;
  readonly enabled: () => boolean;
  readonly dedupeWindowMs?: number;
  readonly maxInFlight?: number;
  readonly maxBacklog?: number;
}

export const REPORTING_CONTROLLER = 'tether.dev/controller';

export class EventRecorder {
  readonly #options: EventRecorderOptions;
  readonly #seen = new Map<string, number>();
  readonly #backlog: EventInput[] = [];
  #inFlight = 0;
  #idle: (() => void)[] = [];
  /** Events created, dropped (backlog full) and failed, for metrics and tests. */
  readonly stats = { recorded: 0, dropped: 0, failed: 0, deduplicated: 0 };

  constructor(options: EventRecorderOptions) {
    this.#options = options;
  }

  record(event: EventInput): void {
    if (!this.#options.enabled()) return;
    const now = Date.now();
    const key = `${event.regarding.uid ?? `${event.regarding.kind}/${event.regarding.namespace}/${event.regarding.name}`}|${event.reason}|${event.note}`;
    const window = this.#options.dedupeWindowMs ?? 600_000;
    const last = this.#seen.get(key);
    if (last !== undefined && now - last < window) {
      this.stats.deduplicated++;
      return;
    }
    this.#seen.set(key, now);
    if (this.#seen.size > 10_000) this.#prune(now, window);
    if (this.#inFlight >= (this.#options.maxInFlight ?? 4)) {
      if (this.#backlog.length >= (this.#options.maxBacklog ?? 5_000)) {
        this.stats.dropped++;
        return;
      }
      this.#backlog.push(event);
      return;
    }
    this.#send(event);
  }

  /** Resolves when nothing is in flight (tests, shutdown). */
  async flush(): Promise<void> {
    if (this.#inFlight === 0 && this.#backlog.length === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #send(event: EventInput): void {
    this.#inFlight++;
    const namespace = event.regarding.namespace ?? 'default';
    const now = Date.now();
    const body = {
      metadata: { name: `${event.regarding.name}.${randomBytes(8).toString('hex')}`, namespace },
      eventTime: microTime(now),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.#options.instance.slice(0, 128),
      action: event.action,
      reason: event.reason,
      type: event.type,
      note: event.note.slice(0, 1024),
      regarding: event.regarding,
      ...(event.related === undefined ? {} : { related: event.related }),
    };
    this.#options.api
      .create(RESOURCES.events, namespace, body)
      .then(() => {
        this.stats.recorded++;
      })
      .catch((error: unknown) => {
        this.stats.failed++;
        this.#options.log.debug({ err: error, reason: event.reason, regarding: event.regarding.name }, 'Event not recorded');
      })
      .finally(() => {
        this.#inFlight--;
        const next = this.#backlog.shift();
        if (next !== undefined) this.#send(next);
        else if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
      });
  }

  #prune(now: number, window: number): void {
    for (const [key, at] of this.#seen) if (now - at >= window) this.#seen.delete(key);
  }
}
