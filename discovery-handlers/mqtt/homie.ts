/**
 * Homie 5 (https://homieiot.github.io/specification/): retained `<domain>/5/<device>/$state`
 * (`init | ready | disconnected | sleeping | lost`, `lost` being the device's last will) and a
 * retained `$description` JSON document. A device is present while `ready` or `sleeping`;
 * `disconnected` and `lost` take it offline at once; clearing `$state` (empty retained
 * payload) removes it. Device id `homie/<device>`.
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

/** Validates and reduces a Homie 5 `$description` document. */
export function parseHomieDescription(raw: unknown): HomieDescription {
  if (!isRecord(raw)) throw new PayloadError('bad_shape', '$description is not a JSON object');
  const homie = raw['homie'];
  if (typeof homie !== 'string' || !/^5\.\d+$/.test(homie)) throw new PayloadError('bad_shape', '$description.homie is not "5.x"');
  const nodes: string[] = [];
  const properties: string[] = [];
  const rawNodes = raw['nodes'];
  if (rawNodes !== undefined && !isRecord(rawNodes)) throw new PayloadError('bad_shape', '$description.nodes is not an object');
  for (const [nodeId, node] of safeEntries(rawNodes ?? {}).slice(0, MAX_NODES)) {
    nodes.push(nodeId);
    if (!isRecord(node) || !isRecord(node['properties'])) continue;
    for (const [propertyId, property] of safeEntries(node['properties'])) {
      if (properties.length >= MAX_PROPERTIES) break;
      const settable = isRecord(property) && property['settable'] === true;
      properties.push(`${nodeId}/${propertyId}${settable ? '!' : ''}`);
    }
  }
  const text = (key: string): string | undefined => (typeof raw[key] === 'string' ? raw[key] : undefined);
  const optional = { version: scalarText(raw['version']), name: text('name'), type: text('type'), root: text('root'), parent: text('parent') };
  return { ...(Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) as Partial<HomieDescription>), nodes, properties };
}

interface HomieDevice {
  state?: string;
  description?: HomieDescription;
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
    let device = this.#devices.get(deviceId);
    if (message.payload.byteLength === 0) {
      if (device === undefined) return [];
      if (attribute === '$state') this.#devices.delete(deviceId);
      else delete device.description;
      return [id];
    }
    if (attribute === '$state') {
      const state = payloadText(message.payload, this.#context.limits).trim();
      if (!STATES.has(state)) throw new PayloadError('bad_shape', `unknown $state "${state.slice(0, 32)}"`);
      device = this.#track(deviceId, device);
      if (device === undefined) return [];
      device.state = state;
    } else {
      const description = parseHomieDescription(parseBoundedJson(message.payload, this.#context.limits));
      device = this.#track(deviceId, device);
      if (device === undefined) return [];
      device.description = description;
    }
    device.confirmed = true;
    return [id];
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
    if (device?.state === undefined || !PRESENT.has(device.state)) return undefined;
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
