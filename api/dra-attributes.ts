/**
 * The vocabulary of Tether's DRA API objects that the agent (ResourceSlices) and the controller
 * (DeviceClasses, broker ResourceClaimTemplates) must agree on: attribute and capacity names,
 * how a device property becomes a typed attribute, the offline taint, and the names of the
 * objects the controller derives from a DeviceDiscovery or a Device. Pure; docs/dra.md explains
 * the choices.
 */
import type { DraAttributeType } from './schema.ts';
import { createHash } from 'node:crypto';
import { DRA_DRIVER_NAME } from './dra-names.ts';

/** Domain of the standard attributes (`device.attributes["tether.dev"].discovery`). */
export const STANDARD_ATTRIBUTE_DOMAIN = DRA_DRIVER_NAME;
/**
 * Domain of attributes made from device properties. A domain of their own, so a property named
 * `discovery` or `node` can never shadow a standard attribute.
 */
export const PROPERTY_ATTRIBUTE_DOMAIN = `property.${DRA_DRIVER_NAME}`;

/** Standard attributes every Tether device carries (ID part; domain `tether.dev`). */
export const STANDARD_ATTRIBUTES = {
  /** Namespace of the DeviceDiscovery. */
  namespace: 'namespace',
  /** Name of the DeviceDiscovery (the namespace is its own attribute: `<ns>/<name>` may pass 64 characters). */
  discovery: 'discovery',
  /** The Tether Device's name (= the slice device's name, which CEL cannot read). */
  device: 'device',
  /** The handler's raw device id, when at most 64 characters. */
  deviceId: 'deviceId',
  /** The node whose slice lists the device, when at most 64 characters. */
  node: 'node',
} as const;

/** Consumable capacity: one slot per claim, `capacity` slots per device. */
export const SLOTS_CAPACITY = `${DRA_DRIVER_NAME}/slots`;
/** Taint key of a device its node no longer sees (within the offline grace period). */
export const OFFLINE_TAINT_KEY = `${DRA_DRIVER_NAME}/offline`;

/** The API allows 32 attributes plus capacities per device. */
export const MAX_ATTRIBUTES_AND_CAPACITIES = 32;
/** Room left for property attributes: 32 − 5 standard attributes − 1 capacity. */
export const MAX_PROPERTY_ATTRIBUTES = MAX_ATTRIBUTES_AND_CAPACITIES - Object.keys(STANDARD_ATTRIBUTES).length - 1;
/** Longest string or version attribute value the API accepts. */
export const MAX_ATTRIBUTE_VALUE_LENGTH = 64;
/** Longest ID part of an attribute name (a C identifier). */
export const MAX_ATTRIBUTE_ID_LENGTH = 32;

/** One attribute value as `resource.k8s.io/v1` has it: exactly one field set. */
export type DraAttributeValue = { string: string } | { int: number } | { bool: boolean } | { version: string };

const C_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INT = /^-?(0|[1-9][0-9]*)$/;
// Semantic Versioning 2.0.0, as the API validates versions.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/**
 * The ID part of the attribute a property becomes: a C identifier of at most 32 characters.
 * Characters other than letters, digits and `_` become `_`; a leading digit gets a `_` prefix;
 * a name that had to change or is too long ends in `_<8 hex>` of the original name, so two
 * properties that sanitise alike (`a.b`, `a-b`) still get different attributes.
 */
export function propertyAttributeId(property: string): string {
  if (C_IDENTIFIER.test(property) && property.length <= MAX_ATTRIBUTE_ID_LENGTH) return property;
  let id = property.replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z_]/.test(id)) id = `_${id}`;
  const hex = createHash('sha256').update(property).digest('hex').slice(0, 8);
  return `${id.slice(0, MAX_ATTRIBUTE_ID_LENGTH - 9)}_${hex}`;
}

/**
 * A property value as an attribute of `type`, or undefined when it does not parse as that type
 * or is too long: left out rather than published as another type, because a CEL selector that
 * meets two types under one name fails the whole allocation, not just that device.
 */
export function attributeValue(type: DraAttributeType, raw: string): DraAttributeValue | undefined {
  switch (type) {
    case 'int': {
      if (!INT.test(raw)) return undefined;
      const n = Number(raw);
      return Number.isSafeInteger(n) ? { int: n } : undefined;
    }
    case 'bool': {
      const lower = raw.toLowerCase();
      return lower === 'true' ? { bool: true } : lower === 'false' ? { bool: false } : undefined;
    }
    case 'version':
      return raw.length <= MAX_ATTRIBUTE_VALUE_LENGTH && SEMVER.test(raw) ? { version: raw } : undefined;
    case 'string':
      return raw.length <= MAX_ATTRIBUTE_VALUE_LENGTH ? { string: raw } : undefined;
  }
}

/** Name of the DeviceClass of a DRA DeviceDiscovery: `<namespace>.<discovery>.tether.dev`. */
export function deviceClassName(namespace: string, discovery: string): string {
  return `${namespace}.${discovery}.${DRA_DRIVER_NAME}`;
}

/** CEL selecting the devices of one DeviceDiscovery (used by its DeviceClass). */
export function discoverySelector(namespace: string, discovery: string): string {
  const attrs = `device.attributes[${JSON.stringify(STANDARD_ATTRIBUTE_DOMAIN)}]`;
  return (
    `device.driver == ${JSON.stringify(DRA_DRIVER_NAME)} && ` +
    `${attrs}.${STANDARD_ATTRIBUTES.namespace} == ${JSON.stringify(namespace)} && ` +
    `${attrs}.${STANDARD_ATTRIBUTES.discovery} == ${JSON.stringify(discovery)}`
  );
}

/** CEL selecting exactly one Device (used by broker claim templates). */
export function deviceSelector(device: string): string {
  return `device.attributes[${JSON.stringify(STANDARD_ATTRIBUTE_DOMAIN)}].${STANDARD_ATTRIBUTES.device} == ${JSON.stringify(device)}`;
}

/** ResourceClaimTemplate of a device's brokers: `<device>-claim` (≤ 63 characters). */
export function brokerClaimTemplateName(device: string): string {
  return `${device}-claim`;
}
