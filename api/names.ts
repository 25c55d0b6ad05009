/**
 * Deterministic names for Tether objects and kubelet resources.
 *
 * Everything here is pure. The agent (which creates Devices and registers device plugins) and
 * the controller (which names brokers) both call these, so a name computed on one node equals
 * the name computed on any other node, across restarts, with no coordination.
 *
 * Length budget: a device resource name is `tether.dev/<discovery>-<16 hex>`. The kubelet
 * validates extended resource names as qualified names, whose name part is at most 63
 * characters. With `MAX_DISCOVERY_NAME_LENGTH` = 40 a device name is at most 57 characters,
 * which fits and leaves 6 characters for a short suffix (`-svc`, `-<5 hex>`) so that objects
 * the controller derives from a device name (Services, Jobs) are still DNS-1035 labels.
 */
import { createHash } from 'node:crypto';

/** API group, and the domain of every extended resource Tether registers. */
export const RESOURCE_DOMAIN = 'tether.dev';

/** Longest DeviceDiscovery name (enforced by the CRD and by `deviceName`). */
export const MAX_DISCOVERY_NAME_LENGTH = 40;

/** Hex digits of the device-name hash: 64 bits of SHA-256. */
export const DEVICE_HASH_HEX_LENGTH = 16;

/** Longest Device name: `<discovery>-<16 hex>`. */
export const MAX_DEVICE_NAME_LENGTH = MAX_DISCOVERY_NAME_LENGTH + 1 + DEVICE_HASH_HEX_LENGTH;

/** Longest raw device id a handler may report, in Unicode code points (as the CRD counts). */
export const MAX_DEVICE_ID_LENGTH = 1024;

/** Longest name part of an extended resource name (`<domain>/<name>`), per the kubelet. */
export const MAX_RESOURCE_NAME_PART_LENGTH = 63;

/**
 * DeviceDiscovery names are DNS-1035 labels (start with a letter) so every name derived from
 * them is a valid Service name too.
 */
export const DISCOVERY_NAME_PATTERN = '^[a-z]([-a-z0-9]*[a-z0-9])?$';

/**
 * A discovery name must not itself look like a device name (`…-<16 hex>`): otherwise
 * `tether.dev/<discovery>` could equal some other discovery's device resource name.
 */
export const DEVICE_NAME_SUFFIX_PATTERN = `-[0-9a-f]{${DEVICE_HASH_HEX_LENGTH}}$`;

/** Name of a Device object: `<discovery>-<16 hex>`. */
export type DeviceName = string & { readonly __brand: 'DeviceName' };

/** A kubelet device id inside a device resource: `<deviceName>-<slot index>`. */
export type SlotId = string & { readonly __brand: 'SlotId' };

/** An extended resource name: `tether.dev/<name>`. */
export type ResourceName = string & { readonly __brand: 'ResourceName' };

/** Identity of one device as discovered. */
export interface DeviceIdentity {
  /** Namespace of the DeviceDiscovery (and of the Device). */
  readonly namespace: string;
  /** Name of the DeviceDiscovery. */
  readonly discovery: string;
  /** Raw id reported by the discovery handler (e.g. a sysfs devpath or an ONVIF uuid). */
  readonly deviceId: string;
  /**
   * Set for node-local (unshared) devices only: the node that sees it. The same local device
   * id on two nodes is two devices; a shared device is one device however many nodes see it.
   */
  readonly node?: string;
}

/** A slot id taken apart. */
export interface SlotRef {
  readonly deviceName: DeviceName;
  readonly index: number;
}

const discoveryNameRe = new RegExp(DISCOVERY_NAME_PATTERN);
const deviceNameSuffixRe = new RegExp(DEVICE_NAME_SUFFIX_PATTERN);
const deviceNameRe = new RegExp(`^[a-z]([-a-z0-9]*[a-z0-9])?-[0-9a-f]{${DEVICE_HASH_HEX_LENGTH}}$`);
const slotIndexRe = /^(0|[1-9][0-9]{0,8})$/;

/** True if `name` is acceptable as a DeviceDiscovery name (same rules as the CRD's CEL). */
export function isValidDiscoveryName(name: string): boolean {
  return name.length <= MAX_DISCOVERY_NAME_LENGTH && discoveryNameRe.test(name) && !deviceNameSuffixRe.test(name);
}

/** True if `name` has the shape `deviceName` produces. */
export function isDeviceName(name: string): name is DeviceName {
  if (name.length > MAX_DEVICE_NAME_LENGTH || !deviceNameRe.test(name)) return false;
  return isValidDiscoveryName(name.slice(0, -(DEVICE_HASH_HEX_LENGTH + 1)));
}

/**
 * Deterministic Device name: `<discovery>-<16 hex>`, the hex being the first 64 bits of SHA-256
 * over a length-prefixed encoding of namespace, discovery, deviceId and (local devices only)
 * node. 64 bits make a collision among a million devices of one discovery about 3e-8 likely
 * (Akri's 24 bits collide at a few thousand).
 *
 * @throws RangeError if the discovery name is invalid, the device id is empty or longer than
 *   `MAX_DEVICE_ID_LENGTH`, or namespace/node is empty. These are programming or handler errors.
 */
export function deviceName(identity: DeviceIdentity): DeviceName {
  const { namespace, discovery, deviceId, node } = identity;
  if (!isValidDiscoveryName(discovery)) {
    throw new RangeError(`invalid DeviceDiscovery name ${JSON.stringify(discovery)}`);
  }
  if (namespace === '') throw new RangeError('namespace must not be empty');
  const idLength = [...deviceId].length;
  if (idLength === 0 || idLength > MAX_DEVICE_ID_LENGTH) {
    throw new RangeError(`device id must have 1..${MAX_DEVICE_ID_LENGTH} characters, got ${idLength}`);
  }
  if (node === '') throw new RangeError('node must not be empty when given');

  const hash = createHash('sha256');
  hash.update('tether.dev/device-name/v1');
  for (const field of [namespace, discovery, deviceId]) writeField(hash, field);
  if (node === undefined) {
    hash.update(Uint8Array.of(0));
  } else {
    hash.update(Uint8Array.of(1));
    writeField(hash, node);
  }
  const hex = hash.digest('hex').slice(0, DEVICE_HASH_HEX_LENGTH);
  return `${discovery}-${hex}` as DeviceName;
}

/** Length-prefixed (uint32 big-endian byte count) UTF-8: no two field lists encode alike. */
function writeField(hash: ReturnType<typeof createHash>, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  hash.update(length);
  hash.update(bytes);
}

/** Kubelet device id of slot `index` of a device: `<deviceName>-<index>`. */
export function slotId(device: string, index: number): SlotId {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new RangeError(`slot index must be a non-negative integer, got ${index}`);
  }
  return `${device}-${index}` as SlotId;
}

/**
 * Inverse of `slotId`. Returns undefined for anything `slotId` would not produce from a valid
 * device name (unknown ids from the kubelet, ids of other plugins, leading zeros, …).
 */
export function parseSlotId(id: string): SlotRef | undefined {
  const dash = id.lastIndexOf('-');
  if (dash <= 0) return undefined;
  const device = id.slice(0, dash);
  const index = id.slice(dash + 1);
  if (!slotIndexRe.test(index) || !isDeviceName(device)) return undefined;
  return { deviceName: device, index: Number(index) };
}

/** Extended resource for one device: `tether.dev/<deviceName>`. */
export function deviceResourceName(device: string): ResourceName {
  return `${RESOURCE_DOMAIN}/${device}` as ResourceName;
}

/**
 * Extended resource for "any device of this discovery": `tether.dev/<discovery>`.
 *
 * WARNING: resource names are per node, not per namespace. Two DeviceDiscoveries with the same
 * name in different namespaces map to the same resource name; the agent must detect that and
 * refuse the second (device resource names do not have this problem: the hash covers the
 * namespace).
 */
export function discoveryResourceName(discovery: string): ResourceName {
  return `${RESOURCE_DOMAIN}/${discovery}` as ResourceName;
}
