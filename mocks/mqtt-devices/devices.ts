/**
 * Simulated MQTT devices speaking the real protocol to a real broker, for tests, benchmarks
 * and demos: each is its own MQTT client with a last will, like the firmware it imitates.
 *
 * - `HomeAssistantDevice`: ESPHome-style (retained discovery configs, retained `online` on
 *   `<node>/status`, will `offline`), or any config/availability you give it.
 * - `HomieDevice`: Homie 5 (`$state` init → `$description` → ready; will `lost`).
 * - `SparkplugEdgeNode`: NBIRTH/DBIRTH with bdSeq, will NDEATH, answers rebirth requests.
 *
 * `crash()` drops the TCP connection without DISCONNECT, so the broker publishes the will;
 * `stop()` disconnects cleanly after publishing what a well-behaved device publishes.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { DataType, decodeSparkplugPayload, encodeSparkplugPayload, type Metric } from '../../discovery-handlers/mqtt/sparkplug-payload.ts';

export interface MockConnection {
  readonly url: string;
  readonly protocolVersion?: 4 | 5;
  /** Extra client options (TLS, credentials). */
  readonly options?: IClientOptions;
}

abstract class MockDevice {
  protected client: MqttClient | undefined;
  readonly #connection: MockConnection;

  constructor(connection: MockConnection) {
    this.#connection = connection;
  }

  protected async connect(clientId: string, will: { topic: string; payload: Uint8Array | string; retain: boolean }): Promise<MqttClient> {
    this.client = await mqtt.connectAsync(this.#connection.url, {
      ...this.#connection.options,
      clientId,
      protocolVersion: this.#connection.protocolVersion ?? 4,
      reconnectPeriod: 0,
      will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: will.retain },
    });
    return this.client;
  }

  protected async publish(topic: string, payload: Uint8Array | string, retain: boolean): Promise<void> {
    await this.client!.publishAsync(topic, Buffer.from(payload), { qos: 1, retain });
  }

  /** Drops the connection without DISCONNECT: the broker publishes the will. */
  async crash(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    client.stream.destroy();
    await client.endAsync(true);
  }

  /** Disconnects cleanly (no will). */
  async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.endAsync();
  }
}

export interface HomeAssistantComponent {
  readonly component: string;
  readonly objectId: string;
  readonly config: Readonly<Record<string, unknown>>;
}

/** An ESPHome-like node: `<prefix>/<component>/<node>/<object>/config` + `<node>/status`. */
export class HomeAssistantDevice extends MockDevice {
  readonly node: string;
  readonly prefix: string;
  readonly components: readonly HomeAssistantComponent[];

  constructor(connection: MockConnection, node: string, options: { prefix?: string; components?: readonly HomeAssistantComponent[] } = {}) {
    super(connection);
    this.node = node;
    this.prefix = options.prefix ?? 'homeassistant';
    this.components = options.components ?? [
      {
        component: 'sensor',
        objectId: `${node}_temperature`,
        config: {
          name: 'Temperature',
          dev_cla: 'temperature',
          unit_of_meas: '°C',
          stat_t: `${node}/sensor/temperature/state`,
          avty_t: `${node}/status`,
          uniq_id: `${node}-temperature`,
          dev: { ids: node, name: node, mf: 'espressif', mdl: 'esp32dev', sw: 'esphome v2024.6.0' },
        },
      },
      {
        component: 'switch',
        objectId: `${node}_relay`,
        config: {
          name: 'Relay',
          stat_t: `${node}/switch/relay/state`,
          cmd_t: `${node}/switch/relay/command`,
          avty_t: `${node}/status`,
          uniq_id: `${node}-relay`,
          dev: { ids: node, name: node, mf: 'espressif', mdl: 'esp32dev', sw: 'esphome v2024.6.0' },
        },
      },
    ];
  }

  get statusTopic(): string {
    return `${this.node}/status`;
  }

  configTopic(c: HomeAssistantComponent): string {
    return `${this.prefix}/${c.component}/${this.node}/${c.objectId}/config`;
  }

  /** Connects, publishes the retained configs and `online`. */
  async start(): Promise<void> {
    await this.connect(`esphome-${this.node}`, { topic: this.statusTopic, payload: 'offline', retain: true });
    for (const c of this.components) await this.publish(this.configTopic(c), JSON.stringify(c.config), true);
    await this.publish(this.statusTopic, 'online', true);
  }

  /** Re-announces after a Home Assistant birth message (what ESPHome does). */
  async announce(): Promise<void> {
    for (const c of this.components) await this.publish(this.configTopic(c), JSON.stringify(c.config), true);
  }

  async setAvailable(available: boolean): Promise<void> {
    await this.publish(this.statusTopic, available ? 'online' : 'offline', true);
  }

  /** Removes the device from discovery: empty retained configs. */
  async remove(): Promise<void> {
    for (const c of this.components) await this.publish(this.configTopic(c), '', true);
  }

  /** A clean shutdown: `offline`, then DISCONNECT. */
  async stop(): Promise<void> {
    if (this.client === undefined) return;
    await this.publish(this.statusTopic, 'offline', true);
    await this.disconnect();
  }
}

export interface HomieNode {
  readonly name: string;
  readonly properties: Readonly<Record<string, { datatype: string; settable?: boolean; unit?: string }>>;
}

/** A Homie 5 device: retained `$state` and `$description`, will `lost`. */
export class HomieDevice extends MockDevice {
  readonly id: string;
  readonly domain: string;
  readonly description: Readonly<Record<string, unknown>>;

  constructor(
    connection: MockConnection,
    id: string,
    options: { domain?: string; name?: string; nodes?: Readonly<Record<string, HomieNode>> } = {},
  ) {
    super(connection);
    this.id = id;
    this.domain = options.domain ?? 'homie';
    this.description = {
      homie: '5.0',
      version: 1,
      name: options.name ?? id,
      nodes: options.nodes ?? {
        sensor: {
          name: 'Sensor',
          properties: { temperature: { datatype: 'float', unit: '°C' }, led: { datatype: 'boolean', settable: true } },
        },
      },
    };
  }

  topic(attribute: string): string {
    return `${this.domain}/5/${this.id}/${attribute}`;
  }

  async start(): Promise<void> {
    await this.connect(`homie-${this.id}`, { topic: this.topic('$state'), payload: 'lost', retain: true });
    await this.setState('init');
    await this.publish(this.topic('$description'), JSON.stringify(this.description), true);
    await this.setState('ready');
  }

  async setState(state: 'init' | 'ready' | 'disconnected' | 'sleeping' | 'lost'): Promise<void> {
    await this.publish(this.topic('$state'), state, true);
  }

  /** Removes the device (Homie 5: clear the retained `$state` first, then the rest). */
  async remove(): Promise<void> {
    await this.publish(this.topic('$state'), '', true);
    await this.publish(this.topic('$description'), '', true);
  }

  async stop(): Promise<void> {
    if (this.client === undefined) return;
    await this.setState('disconnected');
    await this.disconnect();
  }
}

/** A Sparkplug B edge node with devices; births are not retained, the will is NDEATH. */
export class SparkplugEdgeNode extends MockDevice {
  readonly group: string;
  readonly node: string;
  readonly devices: string[];
  #bdSeq: bigint;
  /** Rebirth requests received (NCMD Node Control/Rebirth). */
  rebirthRequests = 0;

  constructor(connection: MockConnection, group: string, node: string, devices: readonly string[], bdSeq = 0n) {
    super(connection);
    this.group = group;
    this.node = node;
    this.devices = [...devices];
    this.#bdSeq = bdSeq;
  }

  #topic(type: string, device?: string): string {
    return `spBv1.0/${this.group}/${type}/${this.node}${device === undefined ? '' : `/${device}`}`;
  }

  get bdSeq(): bigint {
    return this.#bdSeq;
  }

  async start(): Promise<void> {
    const death = encodeSparkplugPayload({ metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: this.#bdSeq }] });
    const client = await this.connect(`sparkplug-${this.group}-${this.node}`, {
      topic: this.#topic('NDEATH'),
      payload: death,
      retain: false,
    });
    await client.subscribeAsync(this.#topic('NCMD'), { qos: 0 });
    client.on('message', (topic, payload) => {
      if (topic !== this.#topic('NCMD')) return;
      const rebirth = decodeSparkplugPayload(payload).metrics.some((m) => m.name === 'Node Control/Rebirth' && m.value === true);
      if (!rebirth) return;
      this.rebirthRequests++;
      void this.birth().catch(() => undefined);
    });
    await this.birth();
  }

  /** NBIRTH then one DBIRTH per device. */
  async birth(): Promise<void> {
    const metrics: Metric[] = [
      { name: 'bdSeq', datatype: DataType.Int64, value: this.#bdSeq },
      { name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: false },
      { name: 'Properties/Hardware Make', datatype: DataType.String, value: 'Tether Mocks' },
    ];
    await this.publish(this.#topic('NBIRTH'), encodeSparkplugPayload({ timestamp: BigInt(Date.now()), seq: 0n, metrics }), false);
    let seq = 1n;
    for (const device of this.devices) {
      const payload = encodeSparkplugPayload({
        timestamp: BigInt(Date.now()),
        seq: seq++,
        metrics: [{ name: 'Temperature', datatype: DataType.Double, value: 20.5 }],
      });
      await this.publish(this.#topic('DBIRTH', device), payload, false);
    }
  }

  async deviceDeath(device: string): Promise<void> {
    await this.publish(this.#topic('DDEATH', device), encodeSparkplugPayload({ timestamp: BigInt(Date.now()), metrics: [] }), false);
  }

  async data(device?: string): Promise<void> {
    const payload = encodeSparkplugPayload({
      timestamp: BigInt(Date.now()),
      metrics: [{ name: 'Temperature', datatype: DataType.Double, value: 21 }],
    });
    await this.publish(device === undefined ? this.#topic('NDATA') : this.#topic('DDATA', device), payload, false);
  }

  /** A clean shutdown publishes NDEATH itself (the will is not sent on DISCONNECT). */
  async stop(): Promise<void> {
    if (this.client === undefined) return;
    await this.publish(
      this.#topic('NDEATH'),
      encodeSparkplugPayload({ metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: this.#bdSeq }] }),
      false,
    );
    await this.disconnect();
  }
}
