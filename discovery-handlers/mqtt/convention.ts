/**
 * What each MQTT discovery convention (Home Assistant, Homie, Sparkplug B, generic rules)
 * implements. A convention is a pure state machine: messages in, device views out; the
 * engine (engine.ts) owns the sink, the subscriptions and the timing.
 */
import type { Logger } from 'pino';
import type { PayloadLimits } from './bounded.ts';

/** One received MQTT message. */
export interface MqttMessage {
  readonly topic: string;
  readonly payload: Uint8Array;
  /**
   * Set when the broker delivered it from its retained store (on subscribe), or — with MQTT 5
   * retain-as-published — when it was published retained.
   */
  readonly retain: boolean;
}

/** A device as a convention sees it, before the engine adds broker information and bounds. */
export interface ConventionDevice {
  readonly id: string;
  /** In order of importance: when the property limit bites, the last ones are dropped. */
  readonly properties: Readonly<Record<string, string>>;
}

/** What a convention may ask of the engine. */
export interface ConventionContext {
  readonly log: Logger;
  readonly limits: PayloadLimits & { readonly maxDevices: number; readonly maxPropertyLength: number };
  /** Publishes a message (e.g. a Sparkplug rebirth request). Fire and forget. */
  readonly publish: (topic: string, payload: Uint8Array) => void;
  /** Counts a notable event (bounded names). */
  readonly count: (event: string) => void;
  /** Asks the engine to re-sync this convention from the broker's retained messages. */
  readonly requestResync: () => void;
}

export interface Convention {
  readonly name: string;
  /** Topic filters subscribed on every connection. */
  readonly filters: readonly string[];
  /** Exact topics that must be subscribed too, as of now (e.g. Home Assistant availability topics). */
  dynamicTopics(): ReadonlySet<string>;
  /** Whether this message is for this convention (its filters, or one of its dynamic topics). */
  accepts(topic: string): boolean;
  /**
   * Handles one message. Returns the ids of devices whose view may have changed.
   * Throws PayloadError for a payload it cannot use; its state is then unchanged.
   */
  handle(message: MqttMessage, now: number): readonly string[];
  /** The device's current view, or undefined when it is not present (unknown, offline, removed). */
  view(id: string): ConventionDevice | undefined;
  /** Every present device. */
  views(): ConventionDevice[];
  /** Devices that went silent by `now`; returns the ids whose view changed. */
  expire(now: number): readonly string[];
  /**
   * A re-sync begins (new connection, or a birth message): the broker is about to re-deliver
   * its retained messages. Conventions built on retained state mark what they know as unconfirmed.
   */
  beginResync(): void;
  /**
   * The retained messages have arrived (`final` false), or the re-sync window for devices that
   * re-announce on their own has passed (`final` true): forget what was not confirmed.
   * Returns the ids whose view changed.
   */
  settleResync(final: boolean): readonly string[];
  /** Called after each connection is subscribed (e.g. to request Sparkplug rebirths). */
  connected?(): void;
}
