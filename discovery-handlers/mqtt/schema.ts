/**
 * The `details` of an `mqtt` DeviceDiscovery: field types, bounds, defaults and descriptions.
 * This schema is the one description: details.ts validates with it, and the docs table
 * (docs/handlers/mqtt.md) and `tether discover mqtt --help` are generated from it
 * (`npm run docs:handlers`). Imports nothing but TypeBox and constants.ts: the CLI's help stays cheap.
 */
import { Type, type Static } from 'typebox';
import { closedObject, stringEnum, switchable } from '../details-schema.ts';
import { CONVENTIONAL_CREDENTIAL_PROPERTIES } from './constants.ts';

const BROKER_URL = '^(mqtt|mqtts|tcp|ssl|ws|wss)://[^\\s/?#]+(:\\d{1,5})?(/\\S*)?$';
const PROPERTY_NAME = '^[A-Za-z_][A-Za-z0-9_.-]*$';
const TOPIC_LEVELS = '^[^+#/]+(/[^+#/]+)*$';

const brokerUrl = (description: string): ReturnType<typeof Type.String> =>
  Type.String({
    description,
    minLength: 1,
    maxLength: 2048,
    pattern: BROKER_URL,
    errorMessage: 'must be a URL like mqtt://host:1883, mqtts://host:8883 or wss://host/mqtt',
  });

const propertyName = (
  what: keyof typeof CONVENTIONAL_CREDENTIAL_PROPERTIES,
  text: string,
): ReturnType<typeof Type.Optional<ReturnType<typeof Type.String>>> =>
  Type.Optional(
    Type.String({
      description: `Discovery property holding ${text}. Default: ${CONVENTIONAL_CREDENTIAL_PROPERTIES[what]}, used when the discovery has it; a name given here must exist.`,
      minLength: 1,
      maxLength: 128,
      pattern: PROPERTY_NAME,
      errorMessage: 'must be a property name',
    }),
  );

const template = (description: string, options: Record<string, unknown> = {}): ReturnType<typeof Type.String> =>
  Type.String({ description, minLength: 1, maxLength: 512, ...options });

const seconds = (description: string, minimum: number, maximum: number, defaultValue?: number): ReturnType<typeof Type.Integer> =>
  Type.Integer({ description, minimum, maximum, ...(defaultValue === undefined ? {} : { default: defaultValue }) });

export const HomeAssistantOptionsSchema = closedObject({
  prefix: Type.String({
    description: 'Discovery prefix: configs are read from <prefix>/<component>/…/config.',
    default: 'homeassistant',
    minLength: 1,
    maxLength: 256,
    pattern: TOPIC_LEVELS,
    errorMessage: 'must be a topic without wildcards',
  }),
  statusTopic: Type.Optional(
    Type.String({ description: 'Birth topic that makes devices re-announce. Default: <prefix>/status.', minLength: 1, maxLength: 256 }),
  ),
  groupBy: stringEnum(['device', 'entity'] as const, {
    description: 'One Tether device per Home Assistant device, or per entity.',
    default: 'device',
  }),
});

export const HomieOptionsSchema = closedObject({
  domain: Type.String({
    description: 'Root topic; devices live under <domain>/5/.',
    default: 'homie',
    minLength: 1,
    maxLength: 128,
    pattern: '^[^+#/$]+$',
    errorMessage: 'must be one topic level',
  }),
});

export const SparkplugOptionsSchema = closedObject({
  groups: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^+#/]+$', errorMessage: 'must be a group id without /, + or #' }), {
      description: 'Group ids to follow. Default: all groups.',
      minItems: 1,
      maxItems: 64,
    }),
  ),
  nodes: Type.Boolean({ description: 'Report edge nodes as devices too.', default: true }),
  rebirth: Type.Boolean({ description: 'Ask unknown nodes (and all after a reconnect) to rebirth; false: only listen.', default: false }),
  silenceSeconds: Type.Optional(seconds('Offline after this long without a message from a node or device. Default: never.', 1, 86_400)),
});

export const GenericRuleSchema = closedObject({
  topic: Type.String({ description: 'Topic filter (+ and # allowed).', minLength: 1, maxLength: 1024 }),
  deviceId: template('Template of the device id, e.g. {topic[1]} or {json.serial}.'),
  properties: Type.Optional(
    Type.Record(Type.String(), template('Template of the property value.'), {
      description: 'Device properties: NAME → template.',
      maxProperties: 64,
      propertyNames: { maxLength: 128, pattern: PROPERTY_NAME, errorMessage: 'property names must match [A-Za-z_][A-Za-z0-9_.-]*' },
    }),
  ),
  presence: Type.Optional(
    closedObject(
      {
        value: template('Template of the presence value.', { default: '{payload}' }),
        online: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
          description: 'Values meaning online.',
          maxItems: 16,
          default: [],
        }),
        offline: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
          description: 'Values meaning offline.',
          maxItems: 16,
          default: [],
        }),
      },
      { description: 'Online/offline from the message (at least one of online, offline).' },
    ),
  ),
  silenceSeconds: Type.Optional(seconds('Offline after this long without a matching message. Default: never.', 1, 86_400)),
});

export const MqttLimitsSchema = closedObject(
  {
    maxPayloadBytes: Type.Integer({
      description: 'Larger messages are dropped.',
      minimum: 1024,
      maximum: 16 * 1024 * 1024,
      default: 128 * 1024,
    }),
    maxJsonDepth: Type.Integer({ description: 'Deeper JSON payloads are dropped.', minimum: 2, maximum: 256, default: 32 }),
    maxProperties: Type.Integer({ description: 'Properties per device.', minimum: 4, maximum: 128, default: 64 }),
    maxPropertyLength: Type.Integer({ description: 'Characters per property value.', minimum: 64, maximum: 4096, default: 4096 }),
    maxDevices: Type.Integer({ description: 'Devices tracked per discovery.', minimum: 1, maximum: 1_000_000, default: 100_000 }),
  },
  { description: 'Bounds on what brokers and devices can make the agent hold.', default: {} },
);

export const MqttDetailsSchema = closedObject(
  {
    broker: Type.Optional(brokerUrl('Broker URL (mqtt, mqtts, tcp, ssl, ws, wss), without credentials. Give broker or brokers.')),
    brokers: Type.Optional(
      Type.Array(brokerUrl('Broker URL.'), {
        description: 'Broker URLs, tried in order, round robin on reconnect.',
        minItems: 1,
        maxItems: 16,
      }),
    ),
    protocolVersion: Type.Enum([5, '5', '5.0', 4, '4', '3.1.1'], {
      description: 'MQTT 5, or 3.1.1 (also written 4).',
      default: 5,
      errorMessage: 'must be 5 or "3.1.1"',
    }),
    clientIdPrefix: Type.String({
      description: 'Client id = <prefix>-<hostname>-<random>.',
      default: 'tether',
      minLength: 1,
      maxLength: 32,
      pattern: '^[A-Za-z0-9_-]+$',
      errorMessage: 'letters, digits, - and _ only',
    }),
    keepaliveSeconds: seconds('MQTT keepalive.', 5, 3600, 30),
    connectTimeoutSeconds: seconds('Longest wait for a connection to a broker.', 1, 300, 10),
    reconnect: closedObject(
      {
        initialDelayMs: Type.Integer({ description: 'First reconnect delay.', minimum: 10, maximum: 60_000, default: 500 }),
        maxDelayMs: Type.Integer({
          description: 'Longest reconnect delay (≥ initialDelayMs).',
          minimum: 10,
          maximum: 600_000,
          default: 30_000,
        }),
      },
      { description: 'Capped exponential reconnect backoff.', default: {} },
    ),
    brokerLossGraceSeconds: seconds('While the broker is unreachable for less than this, devices stay as they are.', 0, 86_400, 30),
    resyncWindowSeconds: seconds('After a re-sync, how long devices with non-retained configs get to re-announce.', 0, 3600, 10),
    syncMarker: Type.Boolean({
      description: 'Publish a marker to tether/sync/<client id> to learn that the retained messages have all arrived.',
      default: true,
    }),
    credentials: closedObject(
      {
        username: propertyName('username', 'the user name'),
        password: propertyName('password', 'the password'),
        ca: propertyName('ca', 'the CA certificate (PEM)'),
        cert: propertyName('cert', 'the client certificate (PEM)'),
        key: propertyName('key', 'the client key (PEM)'),
      },
      { description: 'Names of discovery properties (from Secrets) holding credentials; never the credentials themselves.', default: {} },
    ),
    tls: closedObject(
      {
        servername: Type.Optional(Type.String({ description: 'SNI and certificate name.', minLength: 1, maxLength: 253 })),
        insecureSkipVerify: Type.Boolean({ description: 'Skip certificate verification (testing only).', default: false }),
      },
      { description: 'TLS for mqtts:// and wss://.', default: {} },
    ),
    shared: Type.Boolean({ description: 'The devices are the same from every node that reaches the broker.', default: true }),
    limits: MqttLimitsSchema,
    homeAssistant: Type.Optional(
      switchable(HomeAssistantOptionsSchema, 'Home Assistant MQTT discovery (ESPHome, Tasmota, zigbee2mqtt…): true or options.'),
    ),
    homie: Type.Optional(switchable(HomieOptionsSchema, 'Homie 5 devices: true or options.')),
    sparkplug: Type.Optional(switchable(SparkplugOptionsSchema, 'Sparkplug B edge nodes and devices: true or options.')),
    generic: Type.Optional(
      Type.Array(GenericRuleSchema, { description: 'Rules for devices that follow no convention.', minItems: 1, maxItems: 64 }),
    ),
  },
  {
    description:
      'Devices announced over MQTT: Home Assistant discovery, Homie 5, Sparkplug B, or generic topic rules. At least one convention must be enabled.',
    examples: [{ broker: 'mqtt://broker.local:1883', homeAssistant: true }],
  },
);

/** Details as validated, with defaults applied (before convention shorthands are expanded). */
export type MqttDetailsInput = Static<typeof MqttDetailsSchema>;
