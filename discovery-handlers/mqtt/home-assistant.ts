/**
 * Home Assistant MQTT discovery, as spoken by ESPHome, Tasmota, zigbee2mqtt, OpenMQTTGateway.
 *
 * Config topics: `<prefix>/<component>/[<node_id>/]<object_id>/config`, retained JSON with
 * abbreviated keys and `~` as the base topic; component `device` is the device-based form
 * (one config, `cmps` listing the entities). An empty payload removes the config. Presence
 * comes from the availability topics the configs name (modes latest/all/any, simple
 * `{{ value_json.x }}` templates); a birth message (`online` on the status topic, sent when
 * Home Assistant starts) makes devices re-announce, and Tether re-syncs then.
 *
 * A Tether device is one Home Assistant device (grouped by its first identifier or
 * connection) or, with `groupBy: entity`, one entity (by unique_id). Its id is `ha/<key>`.
 */
import type { ConventionContext, Convention, ConventionDevice, MqttMessage } from './convention.ts';
import { isRecord, parseBoundedJson, PayloadError, payloadText, propertyNamePart, safeEntries, scalarText } from './bounded.ts';
import { topicMatches } from './topic.ts';

export interface HomeAssistantOptions {
  /** Discovery prefix (default `homeassistant`). */
  readonly prefix: string;
  /** Birth/last-will topic of Home Assistant (default `<prefix>/status`). */
  readonly statusTopic: string;
  /** One Tether device per Home Assistant device (default) or per entity. */
  readonly groupBy: 'device' | 'entity';
}

/** Abbreviations of config keys (from Home Assistant's mqtt/abbreviations.py), the ones Tether reads. */
const ABBREVIATIONS: Readonly<Record<string, string>> = {
  avty: 'availability',
  avty_mode: 'availability_mode',
  avty_t: 'availability_topic',
  avty_tpl: 'availability_template',
  cmd_t: 'command_topic',
  cmps: 'components',
  dev: 'device',
  dev_cla: 'device_class',
  json_attr_t: 'json_attributes_topic',
  o: 'origin',
  obj_id: 'object_id',
  p: 'platform',
  pl_avail: 'payload_available',
  pl_not_avail: 'payload_not_available',
  stat_t: 'state_topic',
  t: 'topic',
  uniq_id: 'unique_id',
  unit_of_meas: 'unit_of_measurement',
  val_tpl: 'value_template',
  ent_cat: 'entity_category',
  stat_cla: 'state_class',
};
const DEVICE_ABBREVIATIONS: Readonly<Record<string, string>> = {
  cns: 'connections',
  cu: 'configuration_url',
  ids: 'identifiers',
  mf: 'manufacturer',
  mdl: 'model',
  mdl_id: 'model_id',
  hw: 'hw_version',
  sw: 'sw_version',
  sa: 'suggested_area',
  sn: 'serial_number',
};
const ORIGIN_ABBREVIATIONS: Readonly<Record<string, string>> = { sw: 'sw_version', url: 'support_url' };

/** Options a device-based config's components inherit from its root. */
const SHARED_OPTIONS = [
  'availability',
  'availability_topic',
  'availability_mode',
  'availability_template',
  'payload_available',
  'payload_not_available',
  'state_topic',
  'command_topic',
] as const;

interface AvailabilityEntry {
  readonly topic: string;
  readonly available: string;
  readonly notAvailable: string;
  readonly template?: string;
}

type AvailabilityMode = 'latest' | 'all' | 'any';

interface DeviceInfo {
  readonly identifiers: readonly string[];
  readonly connections: readonly string[];
  readonly fields: Readonly<Record<string, string>>;
}

interface Entity {
  /** Config topic, plus `#<component id>` for the device-based form. */
  readonly key: string;
  readonly configTopic: string;
  readonly group: string;
  readonly component: string;
  readonly objectId: string;
  readonly uniqueId?: string;
  readonly name?: string;
  readonly stateTopic?: string;
  readonly commandTopic?: string;
  readonly deviceClass?: string;
  readonly unit?: string;
  readonly device?: DeviceInfo;
  readonly origin?: string;
  readonly availability: readonly AvailabilityEntry[];
  readonly mode: AvailabilityMode;
  readonly retained: boolean;
  confirmed: boolean;
}

/** Expands abbreviated keys (one level) and drops prototype-polluting keys. */
export function expandKeys(raw: Record<string, unknown>, table: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of safeEntries(raw)) out[table[key] ?? key] = value;
  return out;
}

/** Applies the `~` base topic to a topic value (at its start or end). */
export function withBase(value: string, base: string | undefined): string {
  if (base === undefined) return value;
  if (value.startsWith('~')) return base + value.slice(1);
  if (value.endsWith('~')) return value.slice(0, -1) + base;
  return value;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : typeof value === 'number' ? String(value) : undefined;
}

function topicValue(config: Record<string, unknown>, key: string, base: string | undefined): string | undefined {
  const value = str(config[key]);
  return value === undefined ? undefined : withBase(value, base);
}

const TEMPLATE = /^\s*\{\{\s*(value_json((?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*|\s*\[\s*(?:'[^']*'|"[^"]*"|\d+)\s*\])+)|value)\s*\}\}\s*$/;

/**
 * Evaluates the small subset of Home Assistant value templates devices use for availability
 * (`{{ value }}`, `{{ value_json.a.b }}`, `{{ value_json['a'] }}`); undefined when the template
 * is not understood or the field is missing.
 */
export function evaluateTemplate(template: string, payload: string): string | undefined {
  const match = TEMPLATE.exec(template);
  if (match === null) return undefined;
  if (match[2] === undefined) return payload;
  let value: unknown;
  try {
    value = JSON.parse(payload) as unknown;
  } catch {
    return undefined;
  }
  const path = [...match[2].matchAll(/\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^']*)'|"([^"]*)"|(\d+))\s*\]/g)];
  for (const step of path) {
    const key = step[1] ?? step[2] ?? step[3] ?? step[4]!;
    if (Array.isArray(value) && /^\d+$/.test(key)) value = value[Number(key)];
    else if (isRecord(value) && Object.hasOwn(value, key)) value = value[key];
    else return undefined;
  }
  return scalarText(value);
}

function availabilityOf(config: Record<string, unknown>, base: string | undefined): AvailabilityEntry[] {
  const entries: AvailabilityEntry[] = [];
  const defaults = {
    available: str(config['payload_available']) ?? 'online',
    notAvailable: str(config['payload_not_available']) ?? 'offline',
  };
  const legacy = topicValue(config, 'availability_topic', base);
  if (legacy !== undefined) {
    const template = str(config['availability_template']);
    entries.push({ topic: legacy, ...defaults, ...(template === undefined ? {} : { template }) });
  }
  const list = config['availability'];
  if (Array.isArray(list)) {
    for (const item of list.slice(0, 16)) {
      if (!isRecord(item)) continue;
      const entry = expandKeys(item, ABBREVIATIONS);
      const topic = topicValue(entry, 'topic', base);
      if (topic === undefined) continue;
      const template = str(entry['value_template']);
      entries.push({
        topic,
        available: str(entry['payload_available']) ?? 'online',
        notAvailable: str(entry['payload_not_available']) ?? 'offline',
        ...(template === undefined ? {} : { template }),
      });
    }
  }
  return entries;
}

function deviceInfoOf(raw: unknown): DeviceInfo | undefined {
  if (!isRecord(raw)) return undefined;
  const device = expandKeys(raw, DEVICE_ABBREVIATIONS);
  const ids = device['identifiers'];
  const identifiers = (Array.isArray(ids) ? ids : [ids])
    .map(str)
    .filter((s): s is string => s !== undefined)
    .slice(0, 16);
  const cns = device['connections'];
  const connections = (Array.isArray(cns) ? cns : [])
    .filter((c): c is unknown[] => Array.isArray(c) && c.length === 2)
    .map(([type, value]) => `${str(type) ?? ''}:${str(value) ?? ''}`)
    .slice(0, 16);
  const fields: Record<string, string> = {};
  for (const key of [
    'name',
    'manufacturer',
    'model',
    'model_id',
    'sw_version',
    'hw_version',
    'serial_number',
    'suggested_area',
    'configuration_url',
  ]) {
    const value = str(device[key]);
    if (value !== undefined) fields[key] = value;
  }
  const via = str(device['via_device']);
  if (via !== undefined) fields['via_device'] = via;
  return { identifiers, connections, fields };
}

function originOf(raw: unknown): string | undefined {
  if (!isRecord(raw)) return undefined;
  const origin = expandKeys(raw, ORIGIN_ABBREVIATIONS);
  const name = str(origin['name']);
  const version = str(origin['sw_version']);
  return name === undefined ? undefined : version === undefined ? name : `${name} ${version}`;
}

function modeOf(config: Record<string, unknown>): AvailabilityMode {
  const mode = config['availability_mode'];
  return mode === 'all' || mode === 'any' ? mode : 'latest';
}

interface ParsedTopic {
  readonly component: string;
  readonly nodeId?: string;
  readonly objectId: string;
}

/** Splits `<prefix>/<component>/[<node_id>/]<object_id>/config`; undefined for other topics. */
export function parseConfigTopic(prefix: string, topic: string): ParsedTopic | undefined {
  if (!topic.startsWith(`${prefix}/`) || !topic.endsWith('/config')) return undefined;
  const parts = topic.slice(prefix.length + 1, -'/config'.length).split('/');
  if (parts.length === 2 && parts.every((p) => p.length > 0)) return { component: parts[0]!, objectId: parts[1]! };
  if (parts.length === 3 && parts.every((p) => p.length > 0)) return { component: parts[0]!, nodeId: parts[1]!, objectId: parts[2]! };
  return undefined;
}

/** Builds the entities one config message describes (empty list: a removal). */
export function entitiesFromConfig(
  options: HomeAssistantOptions,
  topic: ParsedTopic,
  configTopic: string,
  raw: unknown,
  retained: boolean,
): Entity[] {
  if (!isRecord(raw)) throw new PayloadError('bad_shape', 'config is not a JSON object');
  const root = expandKeys(raw, ABBREVIATIONS);
  const base = str(root['~']);
  const device = deviceInfoOf(root['device']);
  const origin = originOf(root['origin']);
  const make = (key: string, component: string, objectId: string, config: Record<string, unknown>): Entity => {
    const uniqueId = str(config['unique_id']);
    const group = groupOf(options, device, uniqueId, key);
    const optional = {
      uniqueId,
      name: str(config['name']),
      stateTopic: topicValue(config, 'state_topic', base),
      commandTopic: topicValue(config, 'command_topic', base),
      deviceClass: str(config['device_class']),
      unit: str(config['unit_of_measurement']),
      device,
      origin,
    };
    const defined = Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) as Partial<Entity>;
    return {
      key,
      configTopic,
      group,
      component,
      objectId,
      ...defined,
      availability: availabilityOf(config, base),
      mode: modeOf(config),
      retained,
      confirmed: true,
    };
  };
  if (topic.component !== 'device') return [make(configTopic, topic.component, topic.objectId, root)];

  // Device-based form: one config, entities under `components`, shared options at the root.
  if (device === undefined) throw new PayloadError('bad_shape', 'device-based config without a device');
  const components = root['components'];
  if (!isRecord(components)) throw new PayloadError('bad_shape', 'device-based config without components');
  const entities: Entity[] = [];
  for (const [id, value] of safeEntries(components).slice(0, 256)) {
    if (!isRecord(value)) continue;
    const config = expandKeys(value, ABBREVIATIONS);
    const platform = str(config['platform']);
    // A component reduced to its platform is being removed.
    if (platform === undefined || Object.keys(config).length === 1) continue;
    for (const option of SHARED_OPTIONS) if (!(option in config) && option in root) config[option] = root[option];
    entities.push(make(`${configTopic}#${id}`, platform, str(config['object_id']) ?? id, config));
  }
  return entities;
}

function groupOf(options: HomeAssistantOptions, device: DeviceInfo | undefined, uniqueId: string | undefined, key: string): string {
  if (options.groupBy === 'device' && device !== undefined) {
    const identity = device.identifiers[0] ?? device.connections[0];
    if (identity !== undefined) return identity;
  }
  return uniqueId ?? key;
}

interface AvailabilityMessage {
  readonly payload: string;
  readonly seq: number;
}

export class HomeAssistantConvention implements Convention {
  readonly name = 'home-assistant';
  readonly filters: readonly string[];
  readonly #options: HomeAssistantOptions;
  readonly #context: ConventionContext;
  readonly #entities = new Map<string, Entity>();
  readonly #byConfigTopic = new Map<string, string[]>();
  readonly #groups = new Map<string, Set<string>>();
  /** availability topic → entity keys that name it */
  readonly #byAvailabilityTopic = new Map<string, Set<string>>();
  readonly #availability = new Map<string, AvailabilityMessage>();
  #seq = 0;
  #resyncing = false;

  constructor(options: HomeAssistantOptions, context: ConventionContext) {
    this.#options = options;
    this.#context = context;
    this.filters = [`${options.prefix}/+/+/config`, `${options.prefix}/+/+/+/config`, options.statusTopic];
  }

  dynamicTopics(): ReadonlySet<string> {
    return new Set(this.#byAvailabilityTopic.keys());
  }

  accepts(topic: string): boolean {
    return this.#byAvailabilityTopic.has(topic) || this.filters.some((f) => topicMatches(f, topic));
  }

  handle(message: MqttMessage): readonly string[] {
    const changed = new Set<string>();
    // Home Assistant (re)started: devices re-announce; re-sync to drop what does not. A retained
    // birth is old news (and would loop: every re-sync re-delivers it).
    if (message.topic === this.#options.statusTopic && !message.retain) {
      if (payloadText(message.payload, this.#context.limits).trim() === 'online') this.#context.requestResync();
    }
    if (this.#byAvailabilityTopic.has(message.topic)) this.#onAvailability(message, changed);
    const parsed = parseConfigTopic(this.#options.prefix, message.topic);
    if (parsed !== undefined) this.#onConfig(parsed, message, changed);
    return [...changed].map((group) => `ha/${group}`);
  }

  #onAvailability(message: MqttMessage, changed: Set<string>): void {
    const payload = payloadText(message.payload, this.#context.limits);
    this.#availability.set(message.topic, { payload, seq: ++this.#seq });
    for (const key of this.#byAvailabilityTopic.get(message.topic) ?? []) {
      const entity = this.#entities.get(key);
      if (entity !== undefined) changed.add(entity.group);
    }
  }

  #onConfig(parsed: ParsedTopic, message: MqttMessage, changed: Set<string>): void {
    const entities =
      message.payload.byteLength === 0
        ? []
        : entitiesFromConfig(this.#options, parsed, message.topic, parseBoundedJson(message.payload, this.#context.limits), message.retain);
    const previous = this.#byConfigTopic.get(message.topic) ?? [];
    const limit = this.#context.limits.maxDevices * 8;
    if (entities.length > 0 && previous.length === 0 && this.#entities.size + entities.length > limit) {
      this.#context.count('device_limit');
      return;
    }
    const orphaned = new Set<string>();
    for (const key of previous) this.#removeEntity(key, changed, orphaned);
    for (const entity of entities) this.#addEntity(entity, changed);
    // Keep the last availability message of topics the new config still names: the
    // subscription stays, so the broker will not deliver it again.
    for (const topic of orphaned) if (!this.#byAvailabilityTopic.has(topic)) this.#availability.delete(topic);
    if (entities.length === 0) this.#byConfigTopic.delete(message.topic);
    else
      this.#byConfigTopic.set(
        message.topic,
        entities.map((e) => e.key),
      );
  }

  #addEntity(entity: Entity, changed: Set<string>): void {
    this.#entities.set(entity.key, entity);
    let members = this.#groups.get(entity.group);
    if (members === undefined) this.#groups.set(entity.group, (members = new Set()));
    members.add(entity.key);
    for (const { topic } of entity.availability) {
      let keys = this.#byAvailabilityTopic.get(topic);
      if (keys === undefined) this.#byAvailabilityTopic.set(topic, (keys = new Set()));
      keys.add(entity.key);
    }
    changed.add(entity.group);
  }

  #removeEntity(key: string, changed: Set<string>, orphaned?: Set<string>): void {
    const entity = this.#entities.get(key);
    if (entity === undefined) return;
    this.#entities.delete(key);
    const members = this.#groups.get(entity.group);
    members?.delete(key);
    if (members?.size === 0) this.#groups.delete(entity.group);
    for (const { topic } of entity.availability) {
      const keys = this.#byAvailabilityTopic.get(topic);
      keys?.delete(key);
      if (keys?.size === 0) {
        this.#byAvailabilityTopic.delete(topic);
        if (orphaned === undefined) this.#availability.delete(topic);
        else orphaned.add(topic);
      }
    }
    changed.add(entity.group);
  }

  /** Whether the group's availability topics say it is online. */
  #isAvailable(entities: readonly Entity[]): boolean {
    const entries = new Map<string, AvailabilityEntry>();
    for (const entity of entities)
      for (const e of entity.availability) entries.set(`${e.topic}\u0000${e.available}\u0000${e.notAvailable}\u0000${e.template ?? ''}`, e);
    if (entries.size === 0) return true;
    const mode = entities.find((e) => e.availability.length > 0)?.mode ?? 'latest';
    const states = [...entries.values()].map((entry) => {
      const last = this.#availability.get(entry.topic);
      if (last === undefined) return { state: undefined, seq: -1 };
      const value = entry.template === undefined ? last.payload : evaluateTemplate(entry.template, last.payload);
      const state = value === entry.available ? true : value === entry.notAvailable ? false : undefined;
      return { state, seq: last.seq };
    });
    if (mode === 'all') return states.every((s) => s.state === true);
    if (mode === 'any') return states.some((s) => s.state === true);
    // latest: the most recent message that means something decides; none yet = unavailable (as in HA).
    const decided = states.filter((s) => s.state !== undefined).sort((a, b) => b.seq - a.seq);
    return decided[0]?.state === true;
  }

  view(id: string): ConventionDevice | undefined {
    if (!id.startsWith('ha/')) return undefined;
    const group = id.slice(3);
    const keys = this.#groups.get(group);
    if (keys === undefined || keys.size === 0) return undefined;
    const entities = [...keys].sort().map((k) => this.#entities.get(k)!);
    if (!this.#isAvailable(entities)) return undefined;
    return { id, properties: haProperties(group, entities, this.#context.limits.maxPropertyLength) };
  }

  views(): ConventionDevice[] {
    return [...this.#groups.keys()].map((group) => this.view(`ha/${group}`)).filter((d): d is ConventionDevice => d !== undefined);
  }

  expire(): readonly string[] {
    return [];
  }

  beginResync(): void {
    this.#resyncing = true;
    for (const entity of this.#entities.values()) entity.confirmed = false;
  }

  settleResync(final: boolean): readonly string[] {
    if (!this.#resyncing) return [];
    const changed = new Set<string>();
    for (const [topic, keys] of [...this.#byConfigTopic]) {
      const entities = keys.map((k) => this.#entities.get(k)!);
      // Retained configs are re-delivered on subscribe: unconfirmed ones are gone. Others get until the window ends.
      if (entities.some((e) => !e.confirmed && (final || e.retained))) {
        for (const key of keys) this.#removeEntity(key, changed);
        this.#byConfigTopic.delete(topic);
      }
    }
    if (final) this.#resyncing = false;
    return [...changed].map((group) => `ha/${group}`);
  }
}

function entitySummary(e: Entity): Record<string, string> {
  const summary: Record<string, string | undefined> = {
    component: e.component,
    object_id: e.objectId,
    unique_id: e.uniqueId,
    name: e.name,
    state_topic: e.stateTopic,
    command_topic: e.commandTopic,
    device_class: e.deviceClass,
    unit: e.unit,
  };
  return Object.fromEntries(Object.entries(summary).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

/** The entity list as JSON within `maxLength`: trailing entities are dropped rather than the text cut. */
function entitiesJson(entities: readonly Entity[], maxLength: number): string {
  const summaries = entities.map(entitySummary);
  let shown = summaries.length;
  let json = JSON.stringify(summaries);
  while (json.length > maxLength && shown > 0) json = JSON.stringify(summaries.slice(0, --shown));
  return json;
}

/** Device properties of one Home Assistant device (or entity) group. */
export function haProperties(group: string, entities: readonly Entity[], maxLength: number): Record<string, string> {
  const props: Record<string, string> = { HA_DEVICE_ID: group };
  const info = entities.find((e) => e.device !== undefined)?.device;
  if (info !== undefined) {
    for (const [field, value] of Object.entries(info.fields)) props[`HA_${field.toUpperCase()}`] = value;
    if (info.identifiers.length > 0) props['HA_IDENTIFIERS'] = info.identifiers.join(',');
    if (info.connections.length > 0) props['HA_CONNECTIONS'] = info.connections.join(',');
  } else if (entities.length === 1 && entities[0]!.name !== undefined) {
    props['HA_NAME'] = entities[0]!.name;
  }
  const origin = entities.find((e) => e.origin !== undefined)?.origin;
  if (origin !== undefined) props['HA_ORIGIN'] = origin;
  const availability = [...new Set(entities.flatMap((e) => e.availability.map((a) => a.topic)))];
  if (availability.length > 0) props['HA_AVAILABILITY_TOPICS'] = availability.join(',');
  props['HA_ENTITIES'] = entitiesJson(entities, maxLength);
  // Flat per-entity topics, for brokers that read plain env vars (may be cut by the property limit).
  for (const e of entities) {
    const name = `HA_${propertyNamePart(e.component)}_${propertyNamePart(e.objectId)}`;
    if (e.stateTopic !== undefined) props[`${name}_STATE_TOPIC`] = e.stateTopic;
    if (e.commandTopic !== undefined) props[`${name}_COMMAND_TOPIC`] = e.commandTopic;
  }
  return props;
}
