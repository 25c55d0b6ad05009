/**
 * mqtt: devices that announce themselves on an MQTT broker (Home Assistant discovery, Homie 5,
 * Sparkplug B, generic rules). Event-driven: a device appears within a message of its
 * announcement and goes offline the moment its last will / availability / death arrives.
 *
 * Connection lifecycle (one `mqtt` client per attempt; the handler owns reconnection):
 *   connect (brokers round robin, capped exponential backoff with jitter)
 *   → subscribe every convention's filters (QoS 1, MQTT 5: retain-as-published)
 *   → wait until the retained messages have arrived (a marker message published to our own
 *     topic comes back after them; fallback: a quiet period) → one replaceAll
 *   → live upserts/removes; dynamic subscriptions (availability topics) follow the configs.
 * Connection lost: nothing changes for `brokerLossGraceSeconds`; after that every device is
 * reported offline (the agent keeps them for the discovery's offline grace period). The next
 * connection re-syncs from the retained state.
 *
 * WARNING: with MQTT 3.1.1 a broker may send packets of any size (up to 256 MiB) and the client
 * buffers a packet whole before Tether can refuse it; with MQTT 5 (the default) Tether
 * advertises a maximum packet size and the broker drops larger messages.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { IClientOptions, MqttClient, connect as mqttConnect } from 'mqtt';
import { abortableDelay, type DiscoveryHandler, type HandlerContext } from '../contract.ts';
import type { Convention, ConventionContext } from './convention.ts';
import { parseMqttDetails, type MqttDetails } from './details.ts';
import { MqttEngine } from './engine.ts';
import { GenericConvention } from './generic.ts';
import { HomeAssistantConvention } from './home-assistant.ts';
import { HomieConvention } from './homie.ts';
import { SparkplugConvention } from './sparkplug.ts';

/** Where the sync marker goes; the handler subscribes to its own topic only. */
export const SYNC_TOPIC_PREFIX = 'tether/sync';
/** Without a marker: the retained burst is over after this long without a message. */
const QUIET_MS = 500;
/** Upper bound on waiting for one sync step. */
const SYNC_STEP_TIMEOUT_MS = 15_000;
const SUBSCRIBE_BATCH = 500;
/** Most rounds of "subscribe availability topics named by configs, wait for their retained state". */
const MAX_SYNC_ROUNDS = 4;

/** Credentials and TLS material resolved from the discovery's properties. */
export function connectionOptions(details: MqttDetails, properties: ReadonlyMap<string, string>): IClientOptions {
  const options: Record<string, unknown> = {};
  for (const [field, spec] of Object.entries(details.credentials) as [string, { name: string; required: boolean }][]) {
    const value = properties.get(spec.name);
    if (value === undefined) {
      if (spec.required) throw new Error(`details.credentials.${field}: the discovery has no property "${spec.name}"`);
      continue;
    }
    options[field] = value;
  }
  return {
    ...options,
    rejectUnauthorized: !details.tls.insecureSkipVerify,
    ...(details.tls.servername === undefined ? {} : { servername: details.tls.servername }),
  };
}

/** Public form of a broker URL for device properties (no credentials, no query). */
function publicUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
}

export function createConventions(details: MqttDetails, context: ConventionContext): Convention[] {
  const conventions: Convention[] = [];
  if (details.homeAssistant !== undefined) conventions.push(new HomeAssistantConvention(details.homeAssistant, context));
  if (details.homie !== undefined) conventions.push(new HomieConvention(details.homie, context));
  if (details.sparkplug !== undefined) conventions.push(new SparkplugConvention(details.sparkplug, context));
  if (details.generic !== undefined) conventions.push(new GenericConvention(details.generic, context));
  return conventions;
}

function backoffMs(details: MqttDetails, failures: number): number {
  const base = Math.min(details.reconnect.initialDelayMs * 2 ** Math.min(failures, 20), details.reconnect.maxDelayMs);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

interface Shared {
  readonly details: MqttDetails;
  readonly context: HandlerContext;
  readonly engine: MqttEngine;
  readonly clientOptions: IClientOptions;
  readonly clientId: string;
  /**
   * The mqtt package's connect, imported when a discovery first runs: the package costs ~17 MiB
   * of RSS, which an agent with no MQTT discovery never needs (issue 15).
   */
  readonly connect: typeof mqttConnect;
  /** Set by a session once it has re-synced; cancels the broker-loss timer. */
  synced: () => void;
  publish: (topic: string, payload: Uint8Array) => void;
  requestResync: () => void;
}

/**
 * One connection to one broker URL. `run()` resolves when the connection has closed (or the
 * handler is stopping) and tells whether it got as far as CONNACK.
 */
class BrokerSession {
  readonly #shared: Shared;
  readonly #url: string;
  readonly #client: MqttClient;
  readonly #subscribed = new Set<string>();
  readonly #syncTopic: string;
  #lastMessageAt = 0;
  #marker: { nonce: string; resolve: () => void } | undefined;
  #subscriptionSync: Promise<void> | undefined;
  #subscriptionsDirty = false;
  #resyncing: Promise<void> | undefined;
  #resyncAgain = false;
  #finalTimer: NodeJS.Timeout | undefined;
  #closed = false;
  connected = false;
  lastError: Error | undefined;

  constructor(shared: Shared, url: string) {
    this.#shared = shared;
    this.#url = url;
    this.#syncTopic = `${SYNC_TOPIC_PREFIX}/${shared.clientId}`;
    const { details } = shared;
    this.#client = shared.connect(url, {
      ...shared.clientOptions,
      clientId: shared.clientId,
      protocolVersion: details.protocolVersion,
      clean: true,
      keepalive: details.keepaliveSeconds,
      connectTimeout: details.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      ...(details.protocolVersion === 5 ? { properties: { maximumPacketSize: details.limits.maxPayloadBytes + 65_536 + 16 } } : {}),
    });
  }

  run(signal: AbortSignal): Promise<void> {
    const client = this.#client;
    return new Promise((resolve) => {
      const onAbort = (): void => {
        client.end(true);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      client.on('error', (error) => {
        this.lastError = error;
      });
      client.on('connect', () => {
        this.connected = true;
        this.#shared.publish = (topic, payload) => {
          if (!this.#closed) client.publish(topic, Buffer.from(payload), { qos: 0 });
        };
        this.#shared.requestResync = () => this.#resync();
        this.#resync();
      });
      client.on('message', (topic, payload, packet) => this.#onMessage(topic, payload, packet.retain));
      client.on('close', () => {
        this.#closed = true;
        clearTimeout(this.#finalTimer);
        this.#marker?.resolve();
        this.#shared.publish = () => undefined;
        this.#shared.requestResync = () => undefined;
        signal.removeEventListener('abort', onAbort);
        client.removeAllListeners('message');
        client.end(true);
        resolve();
      });
    });
  }

  get url(): string {
    return this.#url;
  }

  #onMessage(topic: string, payload: Buffer, retain: boolean): void {
    this.#lastMessageAt = performance.now();
    if (topic === this.#syncTopic) {
      if (this.#marker !== undefined && payload.toString() === this.#marker.nonce) this.#marker.resolve();
      return;
    }
    this.#shared.engine.handle({ topic, payload, retain }, Date.now());
    this.#scheduleSubscriptionSync();
  }

  /** Re-sync from the retained state; serialised (a request during a re-sync runs once more after it). */
  #resync(): void {
    if (this.#resyncing !== undefined) {
      this.#resyncAgain = true;
      return;
    }
    this.#resyncing = (async () => {
      do {
        this.#resyncAgain = false;
        await this.#resyncOnce();
      } while (this.#resyncAgain && !this.#closed);
    })()
      .catch((error: unknown) => {
        if (!this.#closed)
          this.#shared.context.log.warn({ err: error, broker: this.#url }, 'Failed to re-sync from the MQTT broker; reconnecting');
        this.#client.end(true);
      })
      .finally(() => (this.#resyncing = undefined));
  }

  async #resyncOnce(): Promise<void> {
    const { engine, details } = this.#shared;
    engine.beginResync();
    // Subscribing again makes the broker re-send its retained messages (rh = 0).
    const wanted = [...engine.subscriptions()];
    if (details.syncMarker) wanted.push(this.#syncTopic);
    this.#subscribed.clear();
    await this.#subscribe(wanted);
    engine.connected();
    for (let round = 0; round < MAX_SYNC_ROUNDS && !this.#closed; round++) {
      await this.#retainedDelivered();
      const missing = [...engine.subscriptions()].filter((t) => !this.#subscribed.has(t));
      if (missing.length === 0) break;
      await this.#subscribe(missing);
    }
    if (this.#closed) return;
    engine.endResync();
    this.#shared.synced();
    clearTimeout(this.#finalTimer);
    this.#finalTimer = setTimeout(() => engine.settleFinal(), details.resyncWindowMs);
    this.#finalTimer.unref();
    this.#scheduleSubscriptionSync();
  }

  /** Resolves once everything the broker queued for us before now has arrived. */
  async #retainedDelivered(): Promise<void> {
    const started = performance.now();
    if (this.#shared.details.syncMarker) {
      const nonce = randomBytes(8).toString('hex');
      const arrived = new Promise<void>((resolve) => (this.#marker = { nonce, resolve }));
      // QoS 1 like the subscriptions: the broker queues it behind every message queued for us.
      this.#client.publish(this.#syncTopic, nonce, { qos: 1 });
      // The marker may be refused by the broker's ACL: fall back to a quiet period.
      await Promise.race([arrived, this.#quiet(started)]);
      this.#marker = undefined;
      return;
    }
    await this.#quiet(started);
  }

  async #quiet(started: number): Promise<void> {
    this.#lastMessageAt = Math.max(this.#lastMessageAt, started);
    while (!this.#closed) {
      const now = performance.now();
      if (now - this.#lastMessageAt >= QUIET_MS || now - started >= SYNC_STEP_TIMEOUT_MS) return;
      await new Promise((resolve) => setTimeout(resolve, Math.max(10, QUIET_MS - (now - this.#lastMessageAt))));
    }
  }

  async #subscribe(topics: readonly string[]): Promise<void> {
    const v5 = this.#shared.details.protocolVersion === 5;
    for (let i = 0; i < topics.length && !this.#closed; i += SUBSCRIBE_BATCH) {
      const batch = topics.slice(i, i + SUBSCRIBE_BATCH);
      // QoS 1: presence messages (wills, availability) must not be dropped by a busy broker.
      const map = Object.fromEntries(batch.map((t) => [t, v5 ? { qos: 1 as const, rap: true, rh: 0 } : { qos: 1 as const }]));
      const granted = await this.#client.subscribeAsync(map);
      for (const grant of granted) {
        if (grant.qos === 128) {
          this.#shared.context.count('subscribe_refused');
          this.#shared.context.log.warn({ topic: grant.topic, broker: this.#url }, 'Broker refused a subscription');
        }
      }
      for (const t of batch) this.#subscribed.add(t);
    }
  }

  /** Follows the conventions' dynamic topics (coalesced: at most one SUBSCRIBE/UNSUBSCRIBE pair in flight). */
  #scheduleSubscriptionSync(): void {
    if (this.#resyncing !== undefined || this.#closed) return;
    this.#subscriptionsDirty = true;
    if (this.#subscriptionSync !== undefined) return;
    this.#subscriptionSync = (async () => {
      await new Promise((resolve) => setImmediate(resolve));
      while (this.#subscriptionsDirty && !this.#closed) {
        this.#subscriptionsDirty = false;
        const wanted = this.#shared.engine.subscriptions();
        if (this.#shared.details.syncMarker) wanted.add(this.#syncTopic);
        const add = [...wanted].filter((t) => !this.#subscribed.has(t));
        const drop = [...this.#subscribed].filter((t) => !wanted.has(t));
        if (add.length > 0) await this.#subscribe(add);
        for (let i = 0; i < drop.length && !this.#closed; i += SUBSCRIBE_BATCH) {
          const batch = drop.slice(i, i + SUBSCRIBE_BATCH);
          await this.#client.unsubscribeAsync(batch);
          for (const t of batch) this.#subscribed.delete(t);
        }
      }
    })()
      .catch((error: unknown) => {
        if (!this.#closed) this.#shared.context.log.warn({ err: error, broker: this.#url }, 'Failed to update MQTT subscriptions');
      })
      .finally(() => (this.#subscriptionSync = undefined));
  }
}

async function run(details: MqttDetails, context: HandlerContext): Promise<void> {
  const { signal, log, count } = context;
  const clientOptions = connectionOptions(details, context.properties);
  const host = hostname()
    .replace(/[^A-Za-z0-9_-]/g, '')
    .slice(0, 24);
  const clientId = `${details.clientIdPrefix}-${host}-${randomBytes(3).toString('hex')}`;
  const common: Record<string, string> = { MQTT_BROKER_URL: publicUrl(details.brokers[0]!) };
  if (details.brokers.length > 1) common['MQTT_BROKER_URLS'] = details.brokers.map(publicUrl).join(',');
  const conventionContext: ConventionContext = {
    log,
    limits: { ...details.limits },
    count,
    // `shared` exists before any message can arrive.
    publish: (topic, payload) => shared.publish(topic, payload),
    requestResync: () => shared.requestResync(),
  };
  const conventions = createConventions(details, conventionContext);
  const engine = new MqttEngine({ conventions, sink: context.sink, log, count, limits: details.limits, common });
  let lossTimer: NodeJS.Timeout | undefined;
  const shared: Shared = {
    details,
    context,
    engine,
    clientOptions,
    clientId,
    connect: (await import('mqtt')).default.connect,
    synced: () => {
      clearTimeout(lossTimer);
      lossTimer = undefined;
    },
    publish: () => undefined,
    requestResync: () => undefined,
  };

  const silences = [details.sparkplug?.silenceMs, ...(details.generic ?? []).map((r) => r.silenceMs)].filter(
    (s): s is number => s !== undefined,
  );
  const sweep =
    silences.length === 0
      ? undefined
      : setInterval(() => engine.expire(Date.now()), Math.min(5_000, Math.max(100, Math.min(...silences) / 10)));
  sweep?.unref();

  let failures = 0;
  let lastProblem = '';
  try {
    for (let attempt = 0; !signal.aborted; attempt++) {
      const url = details.brokers[attempt % details.brokers.length]!;
      const session = new BrokerSession(shared, url);
      await session.run(signal);
      if (signal.aborted) break;
      if (session.connected) {
        failures = 0;
        lastProblem = '';
        log.warn({ broker: url, err: session.lastError }, 'Lost the connection to the MQTT broker');
        lossTimer ??= setTimeout(() => {
          log.warn(
            { broker: url, graceMs: details.brokerLossGraceMs },
            'MQTT broker unreachable for longer than the grace; reporting devices offline',
          );
          count('broker_lost');
          engine.brokerLost();
        }, details.brokerLossGraceMs);
      } else {
        failures++;
        count('connect_error');
        const problem = session.lastError?.message ?? 'connection closed';
        // Once per distinct problem, not once per retry.
        if (problem !== lastProblem)
          log.warn({ broker: url, err: session.lastError, failures }, 'Failed to connect to the MQTT broker; retrying with backoff');
        lastProblem = problem;
      }
      count('reconnect');
      await abortableDelay(backoffMs(details, session.connected ? 0 : failures), signal);
    }
  } finally {
    engine.close();
    clearTimeout(lossTimer);
    clearInterval(sweep);
  }
}

export function createMqttHandler(): DiscoveryHandler<MqttDetails> {
  return {
    name: 'mqtt',
    parseDetails: parseMqttDetails,
    isShared: (details) => details.shared,
    run,
  };
}
