/**
 * Homie 5 (https://homieiot.github.io/specification/): retained `<domain>/5/<device>/$state`
 * (`init | ready | disconnected | sleeping | lost`, `lost` being the device's last will) and a
 * retained `$description` JSON document. A device is present while `ready` or `sleeping`;
 * `disconnected` and `lost` take it offline at once; clearing `$state` (empty retained
 * payload) removes it. Device id `homie/<device>`.
 *
 * Device data is untrusted: a `$description` that is not a Homie 5 description (IDs outside
 * `[a-z0-9-]`, nodes or properties that are not objects, unknown datatypes, non-text names)
 * is counted as bad input (`bad_payload`) and the device is not listed until it publishes a
 * valid one (or clears it). A device whose `$description` has not arrived yet is listed from
 * its `$state` alone: retained messages on different topics arrive in any order.
 */
import type { ConventionContext, Convention, ConventionDevice, MqttMessage } from './convention.ts';
import { isRecord, parseBoundedJson, PayloadError, payloadText, safeEntries, scalarText } from './bounded.ts';
import { topicMatches } from './topic.ts';

export interface HomieOptions {
  /** Root topic (default `homie`); devices live under `<domain>/5/`. */
  readonly domain: string;
}

const STATES = new Set(['init', 'ready', 'disconnected', 'sleeping', 'lost']);
const PRESENT = new Set(['ready', 'sleeping']);
const MAX_NODES = 64;
const MAX_PROPERTIES = 256;
const MAX_TEXT_LENGTH = 256;
/** Homie IDs: lower-case letters, digits and hyphens, not starting or ending with a hyphen. */
const HOMIE_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
const DATATYPES = new Set(['integer', 'float', 'boolean', 'string', 'enum', 'color', 'datetime', 'duration', 'json']);

/** Whether `id` is a valid Homie ID (device, node or property). */
export function isHomieId(id: string): boolean {
  return HOMIE_ID.test(id);
}

function bad(reason: string): PayloadError {
  return new PayloadError('bad_shape', reason);
}

/** A human-readable text field: absent, or a string of printable characters. */
function optionalText(raw: Record<string, unknown>, key: string): string | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value.length > MAX_TEXT_LENGTH || /[\u0000-\u001f\u007f]/.test(value))
    throw bad(`$description.${key} is not a short text`);
  return value;
}

function optionalId(raw: Record<string, unknown>, key: string): string | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !isHomieId(value)) throw bad(`$description.${key} is not a Homie ID`);
  return value;
}

/** The parts of a `$description` Tether reports. */
export interface HomieDescription {
  readonly version?: string;
  readonly name?: string;
  readonly type?: string;
  readonly root?: string;
  readonly parent?: string;
  readonly nodes: readonly string[];
  /** `node/property`, settable ones marked with a trailing `!`. */
  readonly properties: readonly string[];
}

/** Node IDs and `node/property[!]` entries; throws for anything that is not a Homie node. */
function parseNodes(rawNodes: Record<string, unknown>): { nodes: string[]; properties: string[] } {
  const nodes: string[] = [];
  const properties: string[] = [];
  for (const [nodeId, node] of safeEntries(rawNodes).slice(0, MAX_NODES)) {
    if (!isHomieId(nodeId)) throw bad('a node ID is not a Homie ID');
    if (!isRecord(node)) throw bad(`node ${nodeId} is not an object`);
    const rawProperties = node['properties'];
    if (rawProperties !== undefined && !isRecord(rawProperties)) throw bad(`node ${nodeId}: properties is not an object`);
    nodes.push(nodeId);
    for (const [propertyId, property] of safeEntries(rawProperties ?? {})) {
      if (!isHomieId(propertyId)) throw bad(`node ${nodeId}: a property ID is not a Homie ID`);
      if (!isRecord(property) || typeof property['datatype'] !== 'string' || !DATATYPES.has(property['datatype'])) {
        throw bad(`property ${nodeId}/${propertyId} has no known datatype`);
      }
      if (properties.length < MAX_PROPERTIES) properties.push(`${nodeId}/${propertyId}${property['settable'] === true ? '!' : ''}`);
    }
  }
  return { nodes, properties };
}

/**
 * Validates and reduces a Homie 5 `$description` document; throws PayloadError (`bad_shape`)
 * for anything that is not one. Node and property lists are cut to 64 and 256 entries.
 */
export function parseHomieDescription(raw: unknown): HomieDescription {
  if (!isRecord(raw)) throw bad('$description is not a JSON object');
  const homie = raw['homie'];
  if (typeof homie !== 'string' || !/^5\.\d{1,4}$/.test(homie)) throw bad('$description.homie is not "5.x"');
  const version = raw['version'];
  if (version !== undefined && !(typeof version === 'number' && Number.isSafeInteger(version) && version >= 0))
    throw bad('$description.version is not a non-negative integer');
  const rawNodes = raw['nodes'];
  if (rawNodes !== undefined && !isRecord(rawNodes)) throw bad('$description.nodes is not an object');
  const { nodes, properties } = parseNodes(rawNodes ?? {});
  const optional = {
    version: scalarText(version),
    name: optionalText(raw, 'name'),
    type: optionalText(raw, 'type'),
    root: optionalId(raw, 'root'),
    parent: optionalId(raw, 'parent'),
  };
  return {
    ...(Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) as Partial<HomieDescription>),
    nodes,
    properties,
  };
}

interface HomieDevice {
  state?: string;
  description?: HomieDescription;
  /** The latest `$description` was not a Homie description: not listed until a valid one. */
  rejected?: boolean;
  confirmed: boolean;
}

export class HomieConvention implements Convention {
  readonly name = 'homie';
  readonly filters: readonly string[];
  readonly #options: HomieOptions;
  readonly #context: ConventionContext;
  readonly #devices = new Map<string, HomieDevice>();
  #resyncing = false;

  constructor(options: HomieOptions, context: ConventionContext) {
    this.#options = options;
    this.#context = context;
    this.filters = [`${options.domain}/5/+/$state`, `${options.domain}/5/+/$description`];
  }

  dynamicTopics(): ReadonlySet<string> {
    return new Set();
  }

  accepts(topic: string): boolean {
    return this.filters.some((f) => topicMatches(f, topic));
  }

  handle(message: MqttMessage): readonly string[] {
    const parts = message.topic.split('/');
    const deviceId = parts.at(-2)!;
    const attribute = parts.at(-1)!;
    const id = `homie/${deviceId}`;
    if (!isHomieId(deviceId)) throw bad('the device ID is not a Homie ID');
    let device = this.#devices.get(deviceId);
    if (message.payload.byteLength === 0) {
      if (device === undefined) return [];
      if (attribute === '$state') this.#devices.delete(deviceId);
      else {
        delete device.description;
        delete device.rejected;
      }
      return [id];
    }
    if (attribute === '$state') {
      const state = payloadText(message.payload, this.#context.limits).trim();
      if (!STATES.has(state)) throw new PayloadError('bad_shape', `unknown $state "${state.slice(0, 32)}"`);
      device = this.#track(deviceId, device);
      if (device === undefined) return [];
      device.state = state;
    } else {
      let description: HomieDescription;
      try {
        description = parseHomieDescription(parseBoundedJson(message.payload, this.#context.limits));
      } catch (error) {
        if (!(error instanceof PayloadError)) throw error;
        return this.#reject(deviceId, device, message.topic, error);
      }
      device = this.#track(deviceId, device);
      if (device === undefined) return [];
      device.description = description;
      delete device.rejected;
    }
    device.confirmed = true;
    return [id];
  }

  /**
   * A `$description` that is not one: the device is remembered as rejected (its retained
   * `$state` may come before or after) and not listed. A device not listed now is unchanged
   * to the engine, which counts and logs the thrown error; a listed one must disappear, so it
   * is counted and logged here and its id returned.
   */
  #reject(deviceId: string, existing: HomieDevice | undefined, topic: string, error: PayloadError): readonly string[] {
    const wasListed = this.view(`homie/${deviceId}`) !== undefined;
    const device = this.#track(deviceId, existing);
    if (device === undefined) throw error;
    delete device.description;
    device.rejected = true;
    device.confirmed = true;
    if (!wasListed) throw error;
    this.#context.count('bad_payload');
    this.#context.log.warn(
      { topic, problem: error.problem, reason: error.message },
      'Stopped listing a Homie device with an invalid $description',
    );
    return [`homie/${deviceId}`];
  }

  #track(deviceId: string, existing: HomieDevice | undefined): HomieDevice | undefined {
    if (existing !== undefined) return existing;
    if (this.#devices.size >= this.#context.limits.maxDevices) {
      this.#context.count('device_limit');
      return undefined;
    }
    const device: HomieDevice = { confirmed: true };
    this.#devices.set(deviceId, device);
    return device;
  }

  view(id: string): ConventionDevice | undefined {
    if (!id.startsWith('homie/')) return undefined;
    const deviceId = id.slice('homie/'.length);
    const device = this.#devices.get(deviceId);
    if (device?.state === undefined || !PRESENT.has(device.state) || device.rejected === true) return undefined;
    const props: Record<string, string> = {
      HOMIE_DEVICE_ID: deviceId,
      HOMIE_TOPIC: `${this.#options.domain}/5/${deviceId}`,
      HOMIE_STATE: device.state,
    };
    const d = device.description;
    if (d !== undefined) {
      if (d.name !== undefined) props['HOMIE_NAME'] = d.name;
      if (d.type !== undefined) props['HOMIE_TYPE'] = d.type;
      if (d.version !== undefined) props['HOMIE_DESCRIPTION_VERSION'] = d.version;
      if (d.root !== undefined) props['HOMIE_ROOT'] = d.root;
      if (d.parent !== undefined) props['HOMIE_PARENT'] = d.parent;
      props['HOMIE_NODES'] = d.nodes.join(',');
      props['HOMIE_PROPERTIES'] = d.properties.join(',');
    }
    return { id, properties: props };
  }

  views(): ConventionDevice[] {
    return [...this.#devices.keys()].map((d) => this.view(`homie/${d}`)).filter((v): v is ConventionDevice => v !== undefined);
  }

  expire(): readonly string[] {
    return [];
  }

  beginResync(): void {
    this.#resyncing = true;
    for (const device of this.#devices.values()) device.confirmed = false;
  }

  settleResync(final: boolean): readonly string[] {
    if (!this.#resyncing) return [];
    // Homie state is retained by specification: what the broker did not re-deliver is gone.
    const gone = [...this.#devices].filter(([, d]) => !d.confirmed).map(([id]) => id);
    for (const id of gone) this.#devices.delete(id);
    if (final) this.#resyncing = false;
    return gone.map((id) => `homie/${id}`);
  }
}
