/**
 * `details` of an `mqtt` DeviceDiscovery, validated once into MqttDetails; every error names
 * the offending field. Credentials are never in details: details name the discovery
 * properties (from Secrets) that hold them.
 */
import { DetailsError } from '../contract.ts';
import { Fields, isPlainObject } from '../fields.ts';
import { compileTemplate, type GenericRule, type Template } from './generic.ts';
import type { HomeAssistantOptions } from './home-assistant.ts';
import type { HomieOptions } from './homie.ts';
import type { SparkplugOptions } from './sparkplug.ts';
import { filterProblem, topicProblem } from './topic.ts';

export interface MqttLimits {
  readonly maxPayloadBytes: number;
  readonly maxJsonDepth: number;
  readonly maxProperties: number;
  readonly maxPropertyLength: number;
  readonly maxDevices: number;
}

/** Names of discovery properties holding credentials; `required` ones must exist. */
export interface CredentialProperties {
  readonly username: { readonly name: string; readonly required: boolean };
  readonly password: { readonly name: string; readonly required: boolean };
  readonly ca: { readonly name: string; readonly required: boolean };
  readonly cert: { readonly name: string; readonly required: boolean };
  readonly key: { readonly name: string; readonly required: boolean };
}

export interface MqttDetails {
  /** Tried in order, round robin on reconnect. */
  readonly brokers: readonly string[];
  readonly protocolVersion: 4 | 5;
  readonly clientIdPrefix: string;
  readonly keepaliveSeconds: number;
  readonly connectTimeoutMs: number;
  readonly reconnect: { readonly initialDelayMs: number; readonly maxDelayMs: number };
  /** While the broker is unreachable for less than this, devices stay as they are. */
  readonly brokerLossGraceMs: number;
  /** After a re-sync, how long devices with non-retained configs get to re-announce. */
  readonly resyncWindowMs: number;
  /** Publish a marker to `tether/sync/<client id>` to learn that the retained messages have all arrived. */
  readonly syncMarker: boolean;
  readonly credentials: CredentialProperties;
  readonly tls: { readonly servername?: string; readonly insecureSkipVerify: boolean };
  readonly shared: boolean;
  readonly limits: MqttLimits;
  readonly homeAssistant?: HomeAssistantOptions;
  readonly homie?: HomieOptions;
  readonly sparkplug?: SparkplugOptions;
  readonly generic?: readonly GenericRule[];
}

export const MQTT_DEFAULTS = {
  keepaliveSeconds: 30,
  connectTimeoutSeconds: 10,
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  brokerLossGraceSeconds: 30,
  resyncWindowSeconds: 10,
  limits: { maxPayloadBytes: 128 * 1024, maxJsonDepth: 32, maxProperties: 64, maxPropertyLength: 4096, maxDevices: 100_000 },
} as const;

const BROKER_URL = /^(mqtt|mqtts|tcp|ssl|ws|wss):\/\/[^\s/?#]+(:\d{1,5})?(\/[^\s]*)?$/;
const PROPERTY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const TOPIC_LEVEL = /^[^+#/]+(\/[^+#/]+)*$/;

function parseBrokers(f: Fields): string[] {
  if (f.has('broker') && f.has('brokers')) throw new DetailsError(f.at('brokers'), 'give broker or brokers, not both');
  if (!f.has('broker') && !f.has('brokers')) throw new DetailsError(f.at('broker'), 'is required: one URL like mqtt://host:1883 (or brokers: a list of them)');
  const urls = f.has('broker') ? [f.string('broker', { max: 2048 })] : f.stringList('brokers', { min: 1, max: 16, maxLength: 2048 });
  urls.forEach((url, i) => {
    const path = f.has('broker') ? f.at('broker') : `${f.at('brokers')}[${i}]`;
    if (!BROKER_URL.test(url)) throw new DetailsError(path, 'must be a URL like mqtt://host:1883, mqtts://host:8883 or wss://host/mqtt');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      throw new DetailsError(path, 'is not a valid URL', { cause: error });
    }
    if (parsed.username !== '' || parsed.password !== '') {
      throw new DetailsError(path, 'must not contain credentials; name Secret-backed properties in details.credentials');
    }
  });
  return urls;
}

function parseProtocolVersion(f: Fields): 4 | 5 {
  const raw = f.raw['protocolVersion'] ?? 5;
  if (raw === 5 || raw === '5' || raw === '5.0') return 5;
  if (raw === 4 || raw === '4' || raw === '3.1.1') return 4;
  throw new DetailsError(f.at('protocolVersion'), 'must be 5 or "3.1.1"');
}

function parseCredentials(raw: unknown, path: string): CredentialProperties {
  const f = new Fields(raw ?? {}, path, ['username', 'password', 'ca', 'cert', 'key']);
  const one = (key: string, fallback: string): { name: string; required: boolean } => ({
    name: f.string(key, { default: fallback, max: 128, pattern: PROPERTY_NAME, hint: 'must be a property name' }),
    required: f.has(key),
  });
  return {
    username: one('username', 'MQTT_USERNAME'),
    password: one('password', 'MQTT_PASSWORD'),
    ca: one('ca', 'MQTT_CA'),
    cert: one('cert', 'MQTT_CERT'),
    key: one('key', 'MQTT_KEY'),
  };
}

function parseLimits(raw: unknown, path: string): MqttLimits {
  const d = MQTT_DEFAULTS.limits;
  const f = new Fields(raw ?? {}, path, Object.keys(d));
  return {
    maxPayloadBytes: f.number('maxPayloadBytes', { default: d.maxPayloadBytes, min: 1024, max: 16 * 1024 * 1024 }),
    maxJsonDepth: f.number('maxJsonDepth', { default: d.maxJsonDepth, min: 2, max: 256 }),
    maxProperties: f.number('maxProperties', { default: d.maxProperties, min: 4, max: 128 }),
    maxPropertyLength: f.number('maxPropertyLength', { default: d.maxPropertyLength, min: 64, max: 4096 }),
    maxDevices: f.number('maxDevices', { default: d.maxDevices, min: 1, max: 1_000_000 }),
  };
}

/** `true` and `{}` both enable a convention with its defaults. */
function conventionFields(raw: unknown, path: string, known: readonly string[]): Fields | undefined {
  if (raw === undefined || raw === null || raw === false) return undefined;
  return new Fields(raw === true ? {} : raw, path, known);
}

function parseHomeAssistant(raw: unknown, path: string): HomeAssistantOptions | undefined {
  const f = conventionFields(raw, path, ['prefix', 'statusTopic', 'groupBy']);
  if (f === undefined) return undefined;
  const prefix = f.string('prefix', { default: 'homeassistant', max: 256, pattern: TOPIC_LEVEL, hint: 'must be a topic without wildcards' });
  const statusTopic = f.string('statusTopic', { default: `${prefix}/status`, max: 256 });
  const problem = topicProblem(statusTopic);
  if (problem !== undefined) throw new DetailsError(f.at('statusTopic'), problem);
  return { prefix, statusTopic, groupBy: f.oneOf('groupBy', ['device', 'entity'], 'device') };
}

function parseHomie(raw: unknown, path: string): HomieOptions | undefined {
  const f = conventionFields(raw, path, ['domain']);
  if (f === undefined) return undefined;
  return { domain: f.string('domain', { default: 'homie', max: 128, pattern: /^[^+#/$]+$/, hint: 'must be one topic level' }) };
}

function parseSparkplug(raw: unknown, path: string): SparkplugOptions | undefined {
  const f = conventionFields(raw, path, ['groups', 'nodes', 'rebirth', 'silenceSeconds']);
  if (f === undefined) return undefined;
  const groups = f.has('groups') ? f.stringList('groups', { min: 1, max: 64, maxLength: 128 }) : undefined;
  groups?.forEach((g, i) => {
    if (/[+#/]/.test(g)) throw new DetailsError(`${f.at('groups')}[${i}]`, 'must be a group id without /, + or #');
  });
  const silence = f.optionalNumber('silenceSeconds', { min: 1, max: 86_400 });
  return {
    ...(groups === undefined ? {} : { groups }),
    nodes: f.boolean('nodes', true),
    rebirth: f.boolean('rebirth', false),
    ...(silence === undefined ? {} : { silenceMs: silence * 1000 }),
  };
}

function template(value: unknown, path: string): Template {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) throw new DetailsError(path, 'must be a template string (1–512 characters)');
  const compiled = compileTemplate(value);
  if (typeof compiled === 'string') throw new DetailsError(path, compiled);
  return compiled;
}

function parseRuleProperties(raw: unknown, path: string): [string, Template][] {
  if (!isPlainObject(raw)) throw new DetailsError(path, 'must be a map of property name to template');
  const entries = Object.entries(raw);
  if (entries.length > 64) throw new DetailsError(path, 'at most 64 properties');
  return entries.map(([name, value]) => {
    const at = `${path}.${name}`;
    if (!PROPERTY_NAME.test(name) || name.length > 128) throw new DetailsError(at, 'property names must match [A-Za-z_][A-Za-z0-9_.-]*');
    return [name, template(value, at)];
  });
}

function parsePresence(raw: unknown, path: string): NonNullable<GenericRule['presence']> {
  const p = new Fields(raw, path, ['value', 'online', 'offline']);
  const presence = {
    value: template(p.raw['value'] ?? '{payload}', p.at('value')),
    online: p.has('online') ? p.stringList('online', { max: 16, maxLength: 256 }) : [],
    offline: p.has('offline') ? p.stringList('offline', { max: 16, maxLength: 256 }) : [],
  };
  if (presence.online.length === 0 && presence.offline.length === 0) throw new DetailsError(path, 'needs online and/or offline values');
  return presence;
}

function parseGenericRule(raw: unknown, path: string): GenericRule {
  const f = new Fields(raw, path, ['topic', 'deviceId', 'properties', 'presence', 'silenceSeconds']);
  const topic = f.string('topic', { max: 1024 });
  const problem = filterProblem(topic);
  if (problem !== undefined) throw new DetailsError(f.at('topic'), problem);
  const deviceId = template(f.raw['deviceId'], f.at('deviceId'));
  const properties = f.has('properties') ? parseRuleProperties(f.raw['properties'], f.at('properties')) : [];
  const presence = f.has('presence') ? parsePresence(f.raw['presence'], f.at('presence')) : undefined;
  const silence = f.optionalNumber('silenceSeconds', { min: 1, max: 86_400 });
  return { topic, deviceId, properties, ...(presence === undefined ? {} : { presence }), ...(silence === undefined ? {} : { silenceMs: silence * 1000 }) };
}

const KNOWN = [
  'broker',
  'brokers',
  'protocolVersion',
  'clientIdPrefix',
  'keepaliveSeconds',
  'connectTimeoutSeconds',
  'reconnect',
  'brokerLossGraceSeconds',
  'resyncWindowSeconds',
  'syncMarker',
  'credentials',
  'tls',
  'shared',
  'limits',
  'homeAssistant',
  'homie',
  'sparkplug',
  'generic',
] as const;

/** Validates raw details; every error names the field path. */
export function parseMqttDetails(raw: unknown): MqttDetails {
  const f = new Fields(raw, 'details', KNOWN);
  const reconnect = new Fields(f.raw['reconnect'] ?? {}, f.at('reconnect'), ['initialDelayMs', 'maxDelayMs']);
  const initialDelayMs = reconnect.number('initialDelayMs', { default: MQTT_DEFAULTS.initialDelayMs, min: 10, max: 60_000 });
  const maxDelayMs = reconnect.number('maxDelayMs', { default: MQTT_DEFAULTS.maxDelayMs, min: initialDelayMs, max: 600_000 });
  const tls = new Fields(f.raw['tls'] ?? {}, f.at('tls'), ['servername', 'insecureSkipVerify']);
  const servername = tls.optionalString('servername', { max: 253 });
  const generic = f.has('generic')
    ? f.list('generic', { min: 1, max: 64 }).map((rule, i) => parseGenericRule(rule, `${f.at('generic')}[${i}]`))
    : undefined;
  const details: MqttDetails = {
    brokers: parseBrokers(f),
    protocolVersion: parseProtocolVersion(f),
    clientIdPrefix: f.string('clientIdPrefix', { default: 'tether', max: 32, pattern: /^[A-Za-z0-9_-]+$/, hint: 'letters, digits, - and _ only' }),
    keepaliveSeconds: f.number('keepaliveSeconds', { default: MQTT_DEFAULTS.keepaliveSeconds, min: 5, max: 3600 }),
    connectTimeoutMs: f.number('connectTimeoutSeconds', { default: MQTT_DEFAULTS.connectTimeoutSeconds, min: 1, max: 300 }) * 1000,
    reconnect: { initialDelayMs, maxDelayMs },
    brokerLossGraceMs: f.number('brokerLossGraceSeconds', { default: MQTT_DEFAULTS.brokerLossGraceSeconds, min: 0, max: 86_400 }) * 1000,
    resyncWindowMs: f.number('resyncWindowSeconds', { default: MQTT_DEFAULTS.resyncWindowSeconds, min: 0, max: 3600 }) * 1000,
    syncMarker: f.boolean('syncMarker', true),
    credentials: parseCredentials(f.raw['credentials'], f.at('credentials')),
    tls: { ...(servername === undefined ? {} : { servername }), insecureSkipVerify: tls.boolean('insecureSkipVerify', false) },
    shared: f.boolean('shared', true),
    limits: parseLimits(f.raw['limits'], f.at('limits')),
  };
  const homeAssistant = parseHomeAssistant(f.raw['homeAssistant'], f.at('homeAssistant'));
  const homie = parseHomie(f.raw['homie'], f.at('homie'));
  const sparkplug = parseSparkplug(f.raw['sparkplug'], f.at('sparkplug'));
  if (homeAssistant === undefined && homie === undefined && sparkplug === undefined && generic === undefined) {
    throw new DetailsError('details', 'enable at least one convention: homeAssistant, homie, sparkplug or generic');
  }
  return {
    ...details,
    ...(homeAssistant === undefined ? {} : { homeAssistant }),
    ...(homie === undefined ? {} : { homie }),
    ...(sparkplug === undefined ? {} : { sparkplug }),
    ...(generic === undefined ? {} : { generic }),
  };
}
