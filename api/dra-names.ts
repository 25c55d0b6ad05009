/**
 * Names shared by both halves of Tether's Dynamic Resource Allocation backend: the controller
 * and agent code that publishes ResourceSlices, and the agent's kubelet plugin that prepares the
 * claims allocated from them. The scheduler copies a slice's `driver`, `pool.name` and
 * `devices[].name` into a claim's `status.allocation.devices.results`, so the kubelet plugin can
 * only find the device a result means if both sides compute these names with these functions.
 *
 * Everything here is pure.
 */
import { createHash } from 'node:crypto';
import { isDeviceName, RESOURCE_DOMAIN, type DeviceName } from './names.ts';

/** DRA driver name of Tether (ResourceSlice `spec.driver`, DeviceClass selectors, results). */
export const DRA_DRIVER_NAME = RESOURCE_DOMAIN;

/** Longest ResourceSlice pool name (the API validates it). */
export const MAX_DRA_POOL_NAME_LENGTH = 253;

/** A DRA pool name as `draPoolName` builds it. */
export type DraPoolName = string & { readonly __brand: 'DraPoolName' };

/** What a pool name says. */
export interface DraPoolRef {
  /** Namespace of the DeviceDiscovery. */
  readonly namespace: string;
  /** Name of the DeviceDiscovery. */
  readonly discovery: string;
  /** Set when the pool holds the devices one node serves (node-local slices). */
  readonly node?: string;
}

/**
 * Device name inside a ResourceSlice: exactly the Tether Device's name (`<discovery>-<16 hex>`).
 * That is a DNS label (≤ 57 characters), which a slice's device name must be, and it is unique
 * across namespaces and discoveries (the hash covers both), so a claim result's `device` alone
 * identifies the Device.
 */
export function draDeviceName(device: DeviceName): string {
  return device;
}

/**
 * Inverse of `draDeviceName`: the Device name a claim result names, or undefined when the name
 * cannot be one of Tether's (another driver's device, or a hand-written slice).
 */
export function parseDraDeviceName(name: string): DeviceName | undefined {
  return isDeviceName(name) ? name : undefined;
}

/**
 * Pool of a DeviceDiscovery's devices: `<namespace>.<discovery>`, with `/<node>` appended for
 * the pool of the devices one node serves. Namespaces and discovery names are DNS labels (no
 * dots), so the dot is unambiguous and the first segment is a DNS subdomain; node names are DNS
 * subdomains, so the whole is a valid pool name ("DNS subdomains separated by slashes").
 *
 * A node name long enough to push the pool name past 253 characters is replaced by
 * `node-<16 hex>` of its SHA-256, which keeps the name deterministic and within bounds (for
 * such a pool parseDraPoolName returns that stand-in as the node).
 */
export function draPoolName(ref: DraPoolRef): DraPoolName {
  const { namespace, discovery, node } = ref;
  if (namespace === '' || discovery === '' || node === '') {
    throw new RangeError('namespace, discovery and node (when given) must not be empty');
  }
  const base = `${namespace}.${discovery}`;
  if (node === undefined) return base as DraPoolName;
  const full = `${base}/${node}`;
  if (full.length <= MAX_DRA_POOL_NAME_LENGTH) return full as DraPoolName;
  const hex = createHash('sha256').update(node).digest('hex').slice(0, 16);
  return `${base}/node-${hex}` as DraPoolName;
}

/** Inverse of `draPoolName` (undefined for pools Tether does not name this way). */
export function parseDraPoolName(pool: string): DraPoolRef | undefined {
  const slash = pool.indexOf('/');
  const base = slash === -1 ? pool : pool.slice(0, slash);
  const node = slash === -1 ? undefined : pool.slice(slash + 1);
  const dot = base.indexOf('.');
  if (dot <= 0 || dot === base.length - 1 || base.indexOf('.', dot + 1) !== -1) return undefined;
  if (node === '' || node?.includes('/') === true) return undefined;
  const ref = { namespace: base.slice(0, dot), discovery: base.slice(dot + 1) };
  return node === undefined ? ref : { ...ref, node };
}

/**
 * The pool a served device is published in: a node-local device in its node's pool
 * (`<namespace>.<discovery>/<node>`), a shared device in the discovery's shared pool
 * (`<namespace>.<discovery>`, one slice per serving node, the same device name in each).
 */
export function draDevicePool(
  device: { readonly namespace: string; readonly discovery: string; readonly shared: boolean },
  node: string,
): DraPoolName {
  const { namespace, discovery } = device;
  return draPoolName(device.shared ? { namespace, discovery } : { namespace, discovery, node });
}
