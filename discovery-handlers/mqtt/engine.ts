/**
 * The MQTT handler's core, free of network I/O: routes messages to the conventions, turns
 * their device views into sink calls (bounded, deduplicated), and runs the re-sync protocol:
 *
 *   beginResync()  – a connection (or a birth message) is about to bring the retained state again;
 *                    reporting pauses, conventions mark what they know as unconfirmed;
 *   endResync()    – the retained messages have arrived: conventions drop what was not
 *                    confirmed, and the complete set goes to the sink with one replaceAll;
 *   settleFinal()  – the re-sync window is over: devices with non-retained configs that did not
 *                    re-announce are dropped.
 *
 * Live changes are batched: changes go out at the end of their event-loop turn; during a burst
 * (at least BUSY_CHANGES changes sent in the last 100 ms) they are collected for BUSY_MS first,
 * so sparse events are never delayed. A few
 * go out as upsert/remove, a burst (at least BATCH_AS_SNAPSHOT changes, e.g. thousands of
 * devices announced at once) as one replaceAll of the complete set, so the agent does
 * O(devices) work per batch, not per message.
 *
 * Bad payloads never escape: they are counted (`bad_payload`) and logged once per topic.
 * Called from one event loop turn at a time; not re-entrant.
 */
import type { Logger } from 'pino';
import type { DeviceSink, DiscoveredDevice } from '../contract.ts';
import { boundProperties, PayloadError, type PropertyLimits } from './bounded.ts';
import type { Convention, MqttMessage } from './convention.ts';

export interface EngineOptions {
  readonly conventions: readonly Convention[];
  readonly sink: DeviceSink;
  readonly log: Logger;
  readonly count: (event: string) => void;
  readonly limits: PropertyLimits;
  /** Properties every device gets first (broker URL…). */
  readonly common: Readonly<Record<string, string>>;
  /** Runs the flush of batched changes after `delayMs` (default: setImmediate for 0, else setTimeout). */
  readonly schedule?: (flush: () => void, delayMs: number) => void;
}

/** From this many changes in one batch on, the complete set is sent instead. */
export const BATCH_AS_SNAPSHOT = 64;
/** While busy, changes are collected this long. */
export const BUSY_MS = 10;
/** This many changes sent within 100 ms mean a burst is under way. */
export const BUSY_CHANGES = 16;
const BUSY_WINDOW_MS = 100;

function defaultSchedule(flush: () => void, delayMs: number): void {
  if (delayMs <= 0) setImmediate(flush);
  else setTimeout(flush, delayMs);
}

/** How many distinct topics get a bad-payload log line; later ones are only counted. */
const MAX_LOGGED_TOPICS = 1000;
const MAX_DEVICE_ID_LENGTH = 1024;

export class MqttEngine {
  readonly #options: EngineOptions;
  /** id → device last reported, and its serialised form (present devices only). */
  readonly #reported = new Map<string, { device: DiscoveredDevice; serialised: string }>();
  /** Changes already in #reported but not yet sent to the sink. */
  readonly #pending = new Set<string>();
  #flushScheduled = false;
  /** Recent flushes (time, changes), for burst detection. */
  #recent: { at: number; size: number }[] = [];
  #closed = false;
  readonly #loggedTopics = new Set<string>();
  #syncing = true;
  #limited = false;

  constructor(options: EngineOptions) {
    this.#options = options;
  }

  /** Whether reporting is paused for a re-sync. */
  get syncing(): boolean {
    return this.#syncing;
  }

  /** Number of devices currently reported present. */
  get reportedCount(): number {
    return this.#reported.size;
  }

  /** Topic filters and exact topics the conventions need subscribed now. */
  subscriptions(): Set<string> {
    const topics = new Set<string>();
    for (const c of this.#options.conventions) {
      for (const f of c.filters) topics.add(f);
      for (const t of c.dynamicTopics()) topics.add(t);
    }
    return topics;
  }

  handle(message: MqttMessage, now: number): void {
    for (const convention of this.#options.conventions) {
      if (!convention.accepts(message.topic)) continue;
      let changed: readonly string[];
      try {
        changed = convention.handle(message, now);
      } catch (error) {
        this.#badPayload(message.topic, convention.name, error);
        continue;
      }
      this.#emit(convention, changed);
    }
  }

  /** Applies silence timeouts. */
  expire(now: number): void {
    for (const convention of this.#options.conventions) this.#emit(convention, convention.expire(now));
  }

  connected(): void {
    for (const convention of this.#options.conventions) convention.connected?.();
  }

  beginResync(): void {
    this.#syncing = true;
    for (const convention of this.#options.conventions) convention.beginResync();
  }

  endResync(): void {
    for (const convention of this.#options.conventions) convention.settleResync(false);
    this.#syncing = false;
    const devices: DiscoveredDevice[] = [];
    this.#reported.clear();
    this.#pending.clear(); // the snapshot below supersedes them
    for (const convention of this.#options.conventions) {
      for (const view of convention.views()) {
        const device = this.#bounded(view.id, view.properties);
        if (device === undefined || this.#reported.has(device.id)) continue;
        this.#reported.set(device.id, { device, serialised: JSON.stringify(device) });
        devices.push(device);
      }
    }
    if (!this.#closed) this.#options.sink.replaceAll(devices);
  }

  settleFinal(): void {
    for (const convention of this.#options.conventions) this.#emit(convention, convention.settleResync(true));
  }

  /**
   * The broker has been unreachable for longer than the grace: every device turns offline
   * (the agent forgets them after the discovery's offline grace period unless they return).
   */
  brokerLost(): void {
    this.flush();
    for (const id of this.#reported.keys()) if (!this.#closed) this.#options.sink.remove(id);
    this.#reported.clear();
  }

  /** Stops reporting (the handler is stopping): pending changes are dropped. */
  close(): void {
    this.#closed = true;
    this.#pending.clear();
  }

  /** Sends the batched changes now. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#pending.size === 0 || this.#closed) return;
    this.#recent.push({ at: performance.now(), size: this.#pending.size });
    const { sink } = this.#options;
    if (this.#pending.size >= BATCH_AS_SNAPSHOT) {
      this.#pending.clear();
      sink.replaceAll([...this.#reported.values()].map((r) => r.device));
      return;
    }
    const ids = [...this.#pending];
    this.#pending.clear();
    for (const id of ids) {
      const reported = this.#reported.get(id);
      if (reported === undefined) sink.remove(id);
      else sink.upsert(reported.device);
    }
  }

  #emit(convention: Convention, ids: readonly string[]): void {
    if (this.#syncing || ids.length === 0) return;
    for (const id of ids) {
      const view = convention.view(id);
      const device = view === undefined ? undefined : this.#bounded(id, view.properties);
      if (device === undefined) {
        if (this.#reported.delete(id)) this.#pending.add(id);
        continue;
      }
      const serialised = JSON.stringify(device);
      if (this.#reported.get(id)?.serialised === serialised) continue;
      this.#reported.set(id, { device, serialised });
      this.#pending.add(id);
    }
    if (this.#pending.size === 0 || this.#flushScheduled) return;
    this.#flushScheduled = true;
    const now = performance.now();
    this.#recent = this.#recent.filter((f) => now - f.at < BUSY_WINDOW_MS);
    const busy = this.#recent.reduce((sum, f) => sum + f.size, 0) >= BUSY_CHANGES;
    (this.#options.schedule ?? defaultSchedule)(() => this.flush(), busy ? BUSY_MS : 0);
  }

  #bounded(id: string, properties: Readonly<Record<string, string>>): DiscoveredDevice | undefined {
    if (id.length === 0 || id.length > MAX_DEVICE_ID_LENGTH) return undefined;
    const bounded = boundProperties(properties, this.#options.limits, this.#options.common);
    if (bounded.limited) {
      this.#options.count('properties_limited');
      if (!this.#limited) {
        this.#limited = true;
        this.#options.log.warn({ device: id, limits: this.#options.limits }, 'Cut device properties to the configured limits');
      }
    }
    return { id, properties: bounded.properties };
  }

  #badPayload(topic: string, convention: string, error: unknown): void {
    this.#options.count('bad_payload');
    if (this.#loggedTopics.has(topic) || this.#loggedTopics.size >= MAX_LOGGED_TOPICS) return;
    this.#loggedTopics.add(topic);
    const problem = error instanceof PayloadError ? error.problem : 'handler_error';
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof PayloadError)
      this.#options.log.warn({ topic, convention, problem, reason: message }, 'Ignored a bad MQTT payload (logged once per topic)');
    else this.#options.log.error({ topic, convention, err: error }, 'Failed to handle an MQTT message (logged once per topic)');
  }
}
