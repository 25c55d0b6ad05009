/**
 * Sparkplug B 3.0: `spBv1.0/<group>/<NBIRTH|NDEATH|DBIRTH|DDEATH|NDATA|DDATA>/<edge node>[/<device>]`
 * with protobuf payloads (sparkplug-payload.ts).
 *
 * - NBIRTH: the edge node is online; its devices are offline until their DBIRTH (spec).
 * - NDEATH (the node's last will): node and all its devices offline at once — unless its
 *   `bdSeq` differs from the current NBIRTH's, i.e. a stale will from an earlier session.
 * - DBIRTH / DDEATH: one device online / offline.
 * - NDATA / DDATA: activity (for the optional silence timeout). From a node Tether has no
 *   birth for (it started after the NBIRTH: births are not retained) it can ask for a rebirth
 *   (NCMD `Node Control/Rebirth`), at most once per node per minute.
 *
 * Ids: `sparkplug/<group>/<node>` and `sparkplug/<group>/<node>/<device>`. Births are not
 * retained, so state is kept across reconnects (with `rebirth`, every known node is asked to
 * rebirth after a reconnect, as Sparkplug host applications do).
 */
import type { ConventionContext, Convention, ConventionDevice, MqttMessage } from './convention.ts';
import { scalarText } from './bounded.ts';
import { DataType, decodeSparkplugPayload, encodeSparkplugPayload, metricInteger, type Metric } from './sparkplug-payload.ts';
import { topicMatches } from './topic.ts';

export interface SparkplugOptions {
  /** Group ids to follow (default: all). */
  readonly groups?: readonly string[];
  /** Report edge nodes as devices too (default true). */
  readonly nodes: boolean;
  /** Ask unknown nodes (and all nodes after a reconnect) to rebirth (default false: Tether only listens). */
  readonly rebirth: boolean;
  /** Offline after this long without any message from a node/device (default: never). */
  readonly silenceMs?: number;
}

const NAMESPACE = 'spBv1.0';
const MAX_METRIC_NAMES = 128;
const REBIRTH_INTERVAL_MS = 60_000;

interface Endpoint {
  online: boolean;
  lastSeen: number;
  metrics: readonly string[];
  /** Metrics under `Properties/` with scalar values (e.g. `Properties/Hardware Make`). */
  properties: Readonly<Record<string, string>>;
}

interface EdgeNode extends Endpoint {
  readonly group: string;
  readonly node: string;
  bdSeq?: bigint;
  readonly devices: Map<string, Endpoint>;
}

interface ParsedTopic {
  readonly group: string;
  readonly type: 'NBIRTH' | 'NDEATH' | 'DBIRTH' | 'DDEATH' | 'NDATA' | 'DDATA';
  readonly node: string;
  readonly device?: string;
}

/** Splits a Sparkplug B topic; undefined for other topics (STATE, commands, malformed). */
export function parseSparkplugTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts[0] !== NAMESPACE || parts.some((p) => p.length === 0)) return undefined;
  const [, group, type, node, device] = parts;
  if (group === undefined || node === undefined) return undefined;
  if ((type === 'NBIRTH' || type === 'NDEATH' || type === 'NDATA') && parts.length === 4) return { group, type, node };
  if ((type === 'DBIRTH' || type === 'DDEATH' || type === 'DDATA') && parts.length === 5) return { group, type, node, device: device! };
  return undefined;
}

function describe(metrics: readonly Metric[]): Pick<Endpoint, 'metrics' | 'properties'> {
  const names: string[] = [];
  const properties: Record<string, string> = {};
  for (const m of metrics) {
    if (m.name === undefined || m.name.length === 0) continue;
    if (names.length < MAX_METRIC_NAMES) names.push(m.name);
    if (m.name.startsWith('Properties/')) {
      const value = scalarText(m.value);
      if (value !== undefined) properties[m.name.slice('Properties/'.length)] = value;
    }
  }
  return { metrics: names, properties };
}

/** The NCMD payload asking a node to publish its births again. */
export function rebirthRequest(now: number): Uint8Array {
  return encodeSparkplugPayload({
    timestamp: BigInt(now),
    metrics: [{ name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true }],
  });
}

export class SparkplugConvention implements Convention {
  readonly name = 'sparkplug';
  readonly filters: readonly string[];
  readonly #options: SparkplugOptions;
  readonly #context: ConventionContext;
  readonly #nodes = new Map<string, EdgeNode>();
  readonly #rebirthAsked = new Map<string, number>();
  #now = 0;

  constructor(options: SparkplugOptions, context: ConventionContext) {
    this.#options = options;
    this.#context = context;
    const groups = options.groups ?? ['+'];
    const types = ['NBIRTH/+', 'NDEATH/+', 'DBIRTH/+/+', 'DDEATH/+/+'];
    if (options.silenceMs !== undefined || options.rebirth) types.push('NDATA/+', 'DDATA/+/+');
    this.filters = groups.flatMap((g) => types.map((t) => `${NAMESPACE}/${g}/${t}`));
  }

  dynamicTopics(): ReadonlySet<string> {
    return new Set();
  }

  accepts(topic: string): boolean {
    return this.filters.some((f) => topicMatches(f, topic));
  }

  handle(message: MqttMessage, now: number): readonly string[] {
    this.#now = now;
    const topic = parseSparkplugTopic(message.topic);
    if (topic === undefined) return [];
    const payload = decodeSparkplugPayload(message.payload);
    const key = `${topic.group}/${topic.node}`;
    const node = this.#nodes.get(key);
    switch (topic.type) {
      case 'NBIRTH':
        return this.#nodeBirth(topic, key, node, payload.metrics, now);
      case 'NDEATH':
        return this.#nodeDeath(key, node, payload.metrics);
      case 'DBIRTH':
        return this.#deviceBirth(topic, key, node, payload.metrics, now);
      case 'DDEATH': {
        const device = node?.devices.get(topic.device!);
        if (device === undefined || !device.online) return [];
        device.online = false;
        return [`sparkplug/${key}/${topic.device!}`];
      }
      default:
        return this.#data(topic, key, node, now);
    }
  }

  #nodeBirth(topic: ParsedTopic, key: string, existing: EdgeNode | undefined, metrics: readonly Metric[], now: number): readonly string[] {
    const bdSeq = metricInteger(metrics.find((m) => m.name === 'bdSeq'));
    if (existing === undefined && this.#nodes.size >= this.#context.limits.maxDevices) {
      this.#context.count('device_limit');
      return [];
    }
    const node: EdgeNode = existing ?? {
      group: topic.group,
      node: topic.node,
      online: true,
      lastSeen: now,
      metrics: [],
      properties: {},
      devices: new Map(),
    };
    Object.assign(node, { online: true, lastSeen: now, ...describe(metrics) });
    if (bdSeq === undefined) delete node.bdSeq;
    else node.bdSeq = bdSeq;
    this.#nodes.set(key, node);
    const changed = [`sparkplug/${key}`];
    // A new node session: its devices must announce themselves again.
    for (const [id, device] of node.devices) {
      if (device.online) changed.push(`sparkplug/${key}/${id}`);
      device.online = false;
    }
    return changed;
  }

  #nodeDeath(key: string, node: EdgeNode | undefined, metrics: readonly Metric[]): readonly string[] {
    if (node === undefined || !node.online) return [];
    const bdSeq = metricInteger(metrics.find((m) => m.name === 'bdSeq'));
    if (bdSeq !== undefined && node.bdSeq !== undefined && bdSeq !== node.bdSeq) {
      this.#context.count('stale_death');
      return [];
    }
    node.online = false;
    const changed = [`sparkplug/${key}`];
    for (const [id, device] of node.devices) {
      if (device.online) changed.push(`sparkplug/${key}/${id}`);
      device.online = false;
    }
    return changed;
  }

  #deviceBirth(
    topic: ParsedTopic,
    key: string,
    existing: EdgeNode | undefined,
    metrics: readonly Metric[],
    now: number,
  ): readonly string[] {
    let node = existing;
    const changed: string[] = [];
    if (node === undefined) {
      // The NBIRTH came before Tether subscribed: a DBIRTH proves the node is up.
      if (this.#nodes.size >= this.#context.limits.maxDevices) {
        this.#context.count('device_limit');
        return [];
      }
      node = { group: topic.group, node: topic.node, online: true, lastSeen: now, metrics: [], properties: {}, devices: new Map() };
      this.#nodes.set(key, node);
      changed.push(`sparkplug/${key}`);
    } else if (!node.online) {
      node.online = true;
      changed.push(`sparkplug/${key}`);
    }
    node.lastSeen = now;
    if (!node.devices.has(topic.device!) && node.devices.size >= 4096) {
      this.#context.count('device_limit');
      return changed;
    }
    node.devices.set(topic.device!, { online: true, lastSeen: now, ...describe(metrics) });
    changed.push(`sparkplug/${key}/${topic.device!}`);
    return changed;
  }

  #data(topic: ParsedTopic, key: string, node: EdgeNode | undefined, now: number): readonly string[] {
    if (node === undefined || !node.online) {
      this.#maybeRequestRebirth(topic.group, topic.node, now);
      return [];
    }
    node.lastSeen = now;
    if (topic.device !== undefined) {
      const device = node.devices.get(topic.device);
      if (device === undefined) this.#maybeRequestRebirth(topic.group, topic.node, now);
      else device.lastSeen = now;
    }
    return [];
  }

  #maybeRequestRebirth(group: string, node: string, now: number): void {
    if (!this.#options.rebirth) return;
    const key = `${group}/${node}`;
    const last = this.#rebirthAsked.get(key);
    if (last !== undefined && now - last < REBIRTH_INTERVAL_MS) return;
    if (this.#rebirthAsked.size >= this.#context.limits.maxDevices) this.#rebirthAsked.clear();
    this.#rebirthAsked.set(key, now);
    this.#context.count('rebirth_requested');
    this.#context.publish(`${NAMESPACE}/${group}/NCMD/${node}`, rebirthRequest(now));
  }

  connected(): void {
    if (!this.#options.rebirth) return;
    this.#rebirthAsked.clear();
    for (const node of this.#nodes.values()) this.#maybeRequestRebirth(node.group, node.node, this.#now);
  }

  view(id: string): ConventionDevice | undefined {
    const parts = id.split('/');
    if (parts[0] !== 'sparkplug' || parts.length < 3 || parts.length > 4) return undefined;
    const [, group, nodeId, deviceId] = parts as [string, string, string, string | undefined];
    const node = this.#nodes.get(`${group}/${nodeId}`);
    if (node === undefined || !node.online) return undefined;
    const base = { SPARKPLUG_GROUP_ID: group, SPARKPLUG_EDGE_NODE_ID: nodeId };
    if (deviceId === undefined) {
      if (!this.#options.nodes) return undefined;
      return { id, properties: { ...base, SPARKPLUG_COMMAND_TOPIC: `${NAMESPACE}/${group}/NCMD/${nodeId}`, ...endpointProperties(node) } };
    }
    const device = node.devices.get(deviceId);
    if (device === undefined || !device.online) return undefined;
    return {
      id,
      properties: {
        ...base,
        SPARKPLUG_DEVICE_ID: deviceId,
        SPARKPLUG_COMMAND_TOPIC: `${NAMESPACE}/${group}/DCMD/${nodeId}/${deviceId}`,
        ...endpointProperties(device),
      },
    };
  }

  views(): ConventionDevice[] {
    const ids: string[] = [];
    for (const [key, node] of this.#nodes) {
      ids.push(`sparkplug/${key}`);
      for (const device of node.devices.keys()) ids.push(`sparkplug/${key}/${device}`);
    }
    return ids.map((id) => this.view(id)).filter((v): v is ConventionDevice => v !== undefined);
  }

  expire(now: number): readonly string[] {
    const silence = this.#options.silenceMs;
    if (silence === undefined) return [];
    const changed: string[] = [];
    for (const [key, node] of this.#nodes) {
      for (const [id, device] of node.devices) {
        if (device.online && now - Math.max(device.lastSeen, node.lastSeen) > silence) {
          device.online = false;
          changed.push(`sparkplug/${key}/${id}`);
        }
      }
      if (node.online && now - node.lastSeen > silence) {
        node.online = false;
        changed.push(`sparkplug/${key}`);
        for (const [id, device] of node.devices) {
          if (device.online) changed.push(`sparkplug/${key}/${id}`);
          device.online = false;
        }
      }
    }
    return changed;
  }

  beginResync(): void {}

  settleResync(): readonly string[] {
    return [];
  }
}

function endpointProperties(endpoint: Endpoint): Record<string, string> {
  const props: Record<string, string> = {};
  if (endpoint.metrics.length > 0) props['SPARKPLUG_METRICS'] = endpoint.metrics.join(',');
  for (const [name, value] of Object.entries(endpoint.properties)) {
    props[`SPARKPLUG_PROPERTY_${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`] = value;
  }
  return props;
}
