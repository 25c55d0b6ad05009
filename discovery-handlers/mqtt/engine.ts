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
}

/** How many distinct topics get a bad-payload log line; later ones are only counted. */
const MAX_LOGGED_TOPICS = 1000;
const MAX_DEVICE_ID_LENGTH = 1024;

export class MqttEngine {
  readonly #options: EngineOptions;
  /** id → serialised device last reported (present devices only). */
  readonly #reported = new Map<string, string>();
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
    for (const convention of this.#options.conventions) {
      for (const view of convention.views()) {
        const device = this.#bounded(view.id, view.properties);
        if (device === undefined || this.#reported.has(device.id)) continue;
        this.#reported.set(device.id, JSON.stringify(device));
        devices.push(device);
      }
    }
    this.#options.sink.replaceAll(devices);
  }

  settleFinal(): void {
    for (const convention of this.#options.conventions) this.#emit(convention, convention.settleResync(true));
  }

  /**
   * The broker has been unreachable for longer than the grace: every device turns offline
   * (the agent forgets them after the discovery's offline grace period unless they return).
   */
  brokerLost(): void {
    for (const id of this.#reported.keys()) this.#options.sink.remove(id);
    this.#reported.clear();
  }

  #emit(convention: Convention, ids: readonly string[]): void {
    if (this.#syncing) return;
    for (const id of ids) {
      const view = convention.view(id);
      const device = view === undefined ? undefined : this.#bounded(id, view.properties);
      if (device === undefined) {
        if (this.#reported.delete(id)) this.#options.sink.remove(id);
        continue;
      }
      const serialised = JSON.stringify(device);
      if (this.#reported.get(id) === serialised) continue;
      this.#reported.set(id, serialised);
      this.#options.sink.upsert(device);
    }
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
    if (error instanceof PayloadError) this.#options.log.warn({ topic, convention, problem, reason: message }, 'Ignored a bad MQTT payload (logged once per topic)');
    else this.#options.log.error({ topic, convention, err: error }, 'Failed to handle an MQTT message (logged once per topic)');
  }
}
