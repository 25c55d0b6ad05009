/**
 * Desired ResourceSlices of one node (pure): the devices this node serves for its DRA
 * discoveries, grouped in pools and cut into slices, and the plan that makes the cluster's
 * slices equal them. resource-slice-publisher.ts does the I/O.
 *
 * - Pools (api/dra-names.ts): a node-local device is in `<namespace>.<discovery>/<node>`, a
 *   shared device in `<namespace>.<discovery>`. Every node that sees a shared device lists it,
 *   under the same name in that same pool, in a slice of its own with `nodeName` = itself: the
 *   scheduler gathers a pool from the slices of the node it evaluates and counts allocations and
 *   consumed capacity by (driver, pool, device), so the device's slots are shared across every
 *   node that can serve it, with one writer per slice and no coordination between agents.
 * - Slices hold at most 64 devices: the API allows 128, but only 64 once any device carries a
 *   taint, and an offline device must be taintable without moving devices between slices.
 * - Generation: bumped when the partition of a pool changes (a device added or removed, a slice
 *   added or removed); a change inside one slice (a taint, an attribute) rewrites that slice at
 *   the same generation, one request, so the offline taint lands at once.
 */
import {
  attributeValue,
  OFFLINE_TAINT_KEY,
  propertyAttributeId,
  MAX_PROPERTY_ATTRIBUTES,
  PROPERTY_ATTRIBUTE_DOMAIN,
  SLOTS_CAPACITY,
  STANDARD_ATTRIBUTE_DOMAIN,
  STANDARD_ATTRIBUTES,
  type DraAttributeValue,
} from '../../api/dra-attributes.ts';
import { draDeviceName, draDevicePool, DRA_DRIVER_NAME } from '../../api/dra-names.ts';
import type { DraAttributeType } from '../../api/schema.ts';
import { canonicalJson } from '../../api/labels.ts';
import type { ServedDevice } from '../device.ts';
import { createHash } from 'node:crypto';

/** Devices per slice (see the module comment for why not 128). */
export const MAX_DEVICES_PER_SLICE = 64;
/** Labels on every slice an agent writes. */
export const SLICE_MANAGED_BY = { 'app.kubernetes.io/managed-by': 'tether-agent' } as const;

/** What the builder needs to know of a DRA DeviceDiscovery. */
export interface DraDiscoverySettings {
  readonly evictOnOffline: boolean;
  readonly attributeTypes: Readonly<Record<string, DraAttributeType>>;
}

/** The fields of a served device a slice shows. */
export type SliceDevice = Pick<
  ServedDevice,
  'name' | 'namespace' | 'discovery' | 'deviceId' | 'shared' | 'capacity' | 'online' | 'properties'
>;

/** `resource.k8s.io/v1` DeviceTaint. */
export interface DeviceTaint {
  readonly key: string;
  readonly value?: string;
  readonly effect: 'NoSchedule' | 'NoExecute';
  readonly timeAdded?: string;
}

/** `resource.k8s.io/v1` Device, as Tether fills it. */
export interface SliceDeviceEntry {
  readonly name: string;
  readonly attributes: Record<string, DraAttributeValue>;
  readonly capacity: Record<string, { value: string; requestPolicy: { default: string; validValues: string[] } }>;
  readonly allowMultipleAllocations: true;
  readonly taints?: DeviceTaint[];
}

/** `resource.k8s.io/v1` ResourceSlice, as Tether writes and reads it. */
export interface ResourceSlice {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[];
  };
  spec: {
    driver: string;
    pool: { name: string; generation: number; resourceSliceCount: number };
    nodeName?: string;
    devices?: SliceDeviceEntry[];
  };
}

/** One pool as this node wants it: slices in order, without the generation (the plan picks it). */
export interface DesiredPool {
  readonly pool: string;
  readonly slices: readonly { readonly name: string; readonly devices: readonly SliceDeviceEntry[] }[];
}

/**
 * What one publisher remembers between passes so a pass over 10 000 unchanged devices costs
 * little: the entry built for a (device object, settings) pair — served devices are immutable,
 * a change is a new object — and the comparison key of every entry and observed device.
 */
export interface SliceMemo {
  readonly entries: WeakMap<SliceDevice, { readonly settings: string; readonly entry: SliceDeviceEntry }>;
  readonly keys: WeakMap<object, string>;
}

export function newSliceMemo(): SliceMemo {
  return { entries: new WeakMap(), keys: new WeakMap() };
}

/** The attributes of one device (standard first, then up to 26 typed properties by name). */
export function deviceAttributes(
  device: SliceDevice,
  node: string,
  types: Readonly<Record<string, DraAttributeType>>,
): Record<string, DraAttributeValue> {
  const std = (id: string): string => `${STANDARD_ATTRIBUTE_DOMAIN}/${id}`;
  const attributes: Record<string, DraAttributeValue> = {
    [std(STANDARD_ATTRIBUTES.namespace)]: { string: device.namespace },
    [std(STANDARD_ATTRIBUTES.discovery)]: { string: device.discovery },
    [std(STANDARD_ATTRIBUTES.device)]: { string: device.name },
  };
  // Values over 64 characters cannot be attributes; they stay on the Device object.
  for (const [id, value] of [
    [STANDARD_ATTRIBUTES.deviceId, device.deviceId],
    [STANDARD_ATTRIBUTES.node, node],
  ] as const) {
    const attribute = attributeValue('string', value);
    if (attribute !== undefined) attributes[std(id)] = attribute;
  }
  let added = 0;
  for (const property of Object.keys(device.properties).sort()) {
    if (added >= MAX_PROPERTY_ATTRIBUTES) break;
    const value = attributeValue(types[property] ?? 'string', device.properties[property] ?? '');
    if (value === undefined) continue;
    attributes[`${PROPERTY_ATTRIBUTE_DOMAIN}/${propertyAttributeId(property)}`] = value;
    added++;
  }
  return attributes;
}

/**
 * The taint an offline device carries: NoExecute when its discovery opts into eviction and the
 * device is node-local, else NoSchedule. A shared device gone from one node may still be
 * served by another, whose pods must not be evicted for it.
 */
export function offlineTaint(device: Pick<SliceDevice, 'online' | 'shared'>, evictOnOffline: boolean): DeviceTaint | undefined {
  if (device.online) return undefined;
  return { key: OFFLINE_TAINT_KEY, value: 'true', effect: evictOnOffline && !device.shared ? 'NoExecute' : 'NoSchedule' };
}

/** One device as a slice lists it. */
export function sliceDevice(device: SliceDevice, node: string, settings: DraDiscoverySettings): SliceDeviceEntry {
  const taint = offlineTaint(device, settings.evictOnOffline);
  return {
    name: draDeviceName(device.name),
    attributes: deviceAttributes(device, node, settings.attributeTypes),
    capacity: { [SLOTS_CAPACITY]: { value: String(device.capacity), requestPolicy: { default: '1', validValues: ['1'] } } },
    allowMultipleAllocations: true,
    ...(taint === undefined ? {} : { taints: [taint] }),
  };
}

/** Deterministic slice name: `tether-<16 hex of node and pool>-<index>`. */
export function sliceName(node: string, pool: string, index: number): string {
  const hex = createHash('sha256').update(`${node}\n${pool}`).digest('hex').slice(0, 16);
  return `tether-${hex}-${index}`;
}

/**
 * The pools this node should publish: one per (DRA discovery, local|shared) with devices, the
 * devices sorted by name and cut into slices of at most 64. Devices of discoveries that are not
 * DRA (`settingsOf` undefined) are not published.
 */
export function desiredPools(
  node: string,
  devices: readonly SliceDevice[],
  settingsOf: (namespace: string, discovery: string) => DraDiscoverySettings | undefined,
  memo: SliceMemo = newSliceMemo(),
): DesiredPool[] {
  const byPool = new Map<string, SliceDeviceEntry[]>();
  const discoveries = new Map<string, { settings: DraDiscoverySettings; key: string } | undefined>();
  for (const device of [...devices].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const discoveryKey = `${device.namespace}/${device.discovery}`;
    if (!discoveries.has(discoveryKey)) {
      const settings = settingsOf(device.namespace, device.discovery);
      discoveries.set(discoveryKey, settings === undefined ? undefined : { settings, key: JSON.stringify(settings) });
    }
    const found = discoveries.get(discoveryKey);
    if (found === undefined) continue;
    const pool = draDevicePool(device, node);
    let entries = byPool.get(pool);
    if (entries === undefined) byPool.set(pool, (entries = []));
    const cached = memo.entries.get(device);
    let entry = cached?.settings === found.key ? cached.entry : undefined;
    if (entry === undefined) {
      entry = sliceDevice(device, node, found.settings);
      memo.entries.set(device, { settings: found.key, entry });
    }
    entries.push(entry);
  }
  return [...byPool.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([pool, entries]) => {
      const slices = [];
      for (let i = 0; i * MAX_DEVICES_PER_SLICE < entries.length; i++) {
        slices.push({ name: sliceName(node, pool, i), devices: entries.slice(i * MAX_DEVICES_PER_SLICE, (i + 1) * MAX_DEVICES_PER_SLICE) });
      }
      return { pool, slices };
    });
}

/** Writes that make the observed slices of this node equal the desired pools. */
export interface SlicePlan {
  /** Full slices to apply (server-side apply; creates or replaces this manager's fields). */
  readonly apply: ResourceSlice[];
  /** Names of slices to delete. */
  readonly delete: string[];
}

/** A slice's devices compared without what the apiserver adds (`timeAdded`); keys memoised per object. */
function devicesKey(devices: readonly SliceDeviceEntry[] | undefined, keys: WeakMap<object, string>): string {
  return (devices ?? [])
    .map((d) => {
      let key = keys.get(d);
      if (key === undefined) {
        const taints = d.taints?.map(({ timeAdded: _t, ...rest }) => rest);
        key = canonicalJson(taints === undefined ? d : { ...d, taints });
        keys.set(d, key);
      }
      return key;
    })
    .join('\n');
}

/**
 * The generation to write a pool at, and whether its partition is unchanged (same slice names,
 * each holding the same device names, all at one generation): then the observed generation,
 * else one above the highest observed or last written (`written`) — a pool whose slices were
 * all deleted must not start again at a generation a lagging reader may still hold.
 */
function poolGeneration(
  pool: string,
  slices: DesiredPool['slices'],
  current: readonly ResourceSlice[],
  written: ReadonlyMap<string, number>,
): { samePartition: boolean; generation: number } {
  const byName = new Map(current.map((s) => [s.metadata.name, s]));
  const generations = new Set(current.map((s) => s.spec.pool.generation));
  const names = (devices: readonly { name: string }[] | undefined): string => (devices ?? []).map((d) => d.name).join(',');
  const samePartition =
    current.length === slices.length &&
    generations.size === 1 &&
    current.every((s) => s.spec.pool.resourceSliceCount === slices.length) &&
    slices.every((s) => names(byName.get(s.name)?.spec.devices) === names(s.devices) && byName.has(s.name));
  if (samePartition) return { samePartition, generation: [...generations][0]! };
  return { samePartition, generation: Math.max(0, written.get(pool) ?? 0, ...generations) + 1 };
}

/**
 * Plans the writes (pure). Per pool: when the partition is unchanged (same slice names, each
 * holding the same device names at one generation) only slices whose devices changed are
 * applied, at that generation; otherwise every slice is applied at the highest observed
 * generation (or the last one written) + 1, so the scheduler never mixes old and new slices.
 * Observed slices of pools no longer desired, or beyond a pool's new slice count, are deleted (after the applies).
 */
export function planSlices(
  node: string,
  desired: readonly DesiredPool[],
  observed: readonly ResourceSlice[],
  labels: Readonly<Record<string, string>> = {},
  written: ReadonlyMap<string, number> = new Map(),
  keys: WeakMap<object, string> = new WeakMap(),
): SlicePlan {
  const observedByPool = new Map<string, ResourceSlice[]>();
  for (const slice of observed) {
    const list = observedByPool.get(slice.spec.pool.name) ?? [];
    list.push(slice);
    observedByPool.set(slice.spec.pool.name, list);
  }
  const apply: ResourceSlice[] = [];
  const keep = new Set<string>();
  for (const { pool, slices } of desired) {
    const current = observedByPool.get(pool) ?? [];
    const byName = new Map(current.map((s) => [s.metadata.name, s]));
    const { samePartition, generation } = poolGeneration(pool, slices, current, written);
    for (const slice of slices) {
      keep.add(slice.name);
      const seen = byName.get(slice.name);
      if (samePartition && seen !== undefined && devicesKey(seen.spec.devices, keys) === devicesKey(slice.devices, keys)) continue;
      apply.push({
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceSlice',
        metadata: { name: slice.name, labels: { ...SLICE_MANAGED_BY, ...labels } },
        spec: {
          driver: DRA_DRIVER_NAME,
          pool: { name: pool, generation, resourceSliceCount: slices.length },
          nodeName: node,
          devices: [...slice.devices],
        },
      });
    }
  }
  const deletes = observed
    .map((s) => s.metadata.name)
    .filter((name) => !keep.has(name))
    .sort();
  return { apply, delete: deletes };
}
