/**
 * What an external handler sends, made safe for the agent. Pure: no I/O.
 *
 * An external handler is another process, possibly written by someone else, possibly
 * buggy. Everything it reports is bounded here before it reaches the device set:
 * a response with too many devices is refused as a whole (the endpoint's previous list
 * stays in force), a single malformed device is skipped, and the rest go through.
 */
import type { DeviceMount, DeviceNode, DiscoveredDevice } from '../../discovery-handlers/contract.ts';
import type { AkriDevice, DeviceSpec, DiscoverResponse, Mount } from '../../proto/types.ts';

/** Bounds on one Discover response. */
export interface WireLimits {
  /** Devices in one response; more and the whole response is refused. */
  readonly maxDevices: number;
  readonly maxIdLength: number;
  readonly maxProperties: number;
  readonly maxPropertyNameLength: number;
  readonly maxPropertyValueLength: number;
  /** Mounts and device specs, each. */
  readonly maxMounts: number;
  readonly maxPathLength: number;
}

export const DEFAULT_WIRE_LIMITS: WireLimits = {
  maxDevices: 10_000,
  maxIdLength: 512,
  maxProperties: 128,
  maxPropertyNameLength: 256,
  maxPropertyValueLength: 16_384,
  maxMounts: 64,
  maxPathLength: 4_096,
};

/** A device that was skipped, and why (for logs; never a metric label). */
export interface SkippedDevice {
  readonly id: string;
  readonly reason: string;
}

export type ReadResponse =
  | { readonly ok: true; readonly devices: DiscoveredDevice[]; readonly skipped: SkippedDevice[] }
  | { readonly ok: false; readonly reason: string };

function checkPath(path: unknown, what: string, limits: WireLimits): string | undefined {
  if (typeof path !== 'string' || !path.startsWith('/')) return `${what} must be an absolute path`;
  if (path.length > limits.maxPathLength) return `${what} longer than ${limits.maxPathLength} characters`;
  if (path.includes('\0')) return `${what} contains NUL`;
  return undefined;
}

function checkProperties(properties: Record<string, string>, limits: WireLimits): string | undefined {
  const entries = Object.entries(properties);
  if (entries.length > limits.maxProperties) return `more than ${limits.maxProperties} properties`;
  for (const [name, value] of entries) {
    if (name.length === 0) return 'empty property name';
    if (name.length > limits.maxPropertyNameLength) return `property name longer than ${limits.maxPropertyNameLength} characters`;
    if (typeof value !== 'string') return `property ${name} is not a string`;
    if (value.length > limits.maxPropertyValueLength) {
      return `property ${name} longer than ${limits.maxPropertyValueLength} characters`;
    }
  }
  return undefined;
}

function toMount(m: Mount, limits: WireLimits): DeviceMount | string {
  const bad = checkPath(m.container_path, 'mount container_path', limits) ?? checkPath(m.host_path, 'mount host_path', limits);
  return bad ?? { containerPath: m.container_path, hostPath: m.host_path, readOnly: m.read_only === true };
}

function toDeviceNode(s: DeviceSpec, limits: WireLimits): DeviceNode | string {
  const bad = checkPath(s.container_path, 'device spec container_path', limits) ?? checkPath(s.host_path, 'device spec host_path', limits);
  if (bad !== undefined) return bad;
  const permissions = s.permissions ?? '';
  if (!/^[rwm]{0,3}$/.test(permissions)) return `device spec permissions "${permissions.slice(0, 16)}" is not a subset of rwm`;
  return { containerPath: s.container_path, hostPath: s.host_path, permissions };
}

function mapAll<T, U>(items: readonly T[], limit: number, what: string, map: (item: T) => U | string): U[] | string {
  if (items.length > limit) return `more than ${limit} ${what}`;
  const out: U[] = [];
  for (const item of items) {
    const mapped = map(item);
    if (typeof mapped === 'string') return mapped;
    out.push(mapped);
  }
  return out;
}

/** One Akri Device → a DiscoveredDevice, or the reason it is refused. */
export function fromAkriDevice(device: AkriDevice, limits: WireLimits = DEFAULT_WIRE_LIMITS): DiscoveredDevice | string {
  const id = device.id;
  if (typeof id !== 'string' || id.length === 0) return 'empty id';
  if (id.length > limits.maxIdLength) return `id longer than ${limits.maxIdLength} characters`;
  const properties = device.properties ?? {};
  const badProperties = checkProperties(properties, limits);
  if (badProperties !== undefined) return badProperties;
  const mounts = mapAll(device.mounts ?? [], limits.maxMounts, 'mounts', (m) => toMount(m, limits));
  if (typeof mounts === 'string') return mounts;
  const deviceNodes = mapAll(device.device_specs ?? [], limits.maxMounts, 'device specs', (s) => toDeviceNode(s, limits));
  if (typeof deviceNodes === 'string') return deviceNodes;
  return {
    id,
    properties: { ...properties },
    ...(mounts.length > 0 ? { mounts } : {}),
    ...(deviceNodes.length > 0 ? { deviceNodes } : {}),
  };
}

/**
 * Reads one Discover response: the endpoint's complete current list. Duplicate ids in
 * one response: the last one wins.
 */
export function readDiscoverResponse(response: DiscoverResponse, limits: WireLimits = DEFAULT_WIRE_LIMITS): ReadResponse {
  const devices = response.devices ?? [];
  if (devices.length > limits.maxDevices) {
    return { ok: false, reason: `${devices.length} devices in one response; at most ${limits.maxDevices}` };
  }
  const byId = new Map<string, DiscoveredDevice>();
  const skipped: SkippedDevice[] = [];
  for (const raw of devices) {
    const device = fromAkriDevice(raw, limits);
    if (typeof device === 'string') skipped.push({ id: String(raw.id ?? '').slice(0, 64), reason: device });
    else byId.set(device.id, device);
  }
  return { ok: true, devices: [...byId.values()], skipped };
}

/**
 * Merges the lists of several endpoints of one handler: the union by device id. When two
 * endpoints report the same id, the one later in `lists` (the later-registered endpoint)
 * wins. The result is sorted by id so equal sets compare equal.
 */
export function mergeEndpointLists(lists: Iterable<readonly DiscoveredDevice[]>): DiscoveredDevice[] {
  const byId = new Map<string, DiscoveredDevice>();
  for (const list of lists) for (const device of list) byId.set(device.id, device);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
