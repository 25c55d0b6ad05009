/**
 * `details` of an `mdns` DeviceDiscovery, validated once into MdnsDetails; every error names
 * the offending field.
 */
import { isIPv4 } from 'node:net';
import { DetailsError } from '../contract.ts';
import { compileRegex, Fields, isPlainObject } from '../fields.ts';

export interface ServiceType {
  /** What is queried: `_ipp._tcp.local` or a subtype `_universal._sub._ipp._tcp.local`. */
  readonly browseName: string;
  /** The service type itself: `_ipp._tcp`. */
  readonly type: string;
}

export interface TxtFilter {
  readonly key: string;
  /** Undefined: the key must be present (any value). */
  readonly value?: RegExp;
}

export interface MdnsFilters {
  readonly instanceName?: RegExp;
  readonly host?: RegExp;
  readonly txt: readonly TxtFilter[];
}

export interface MdnsDetails {
  readonly serviceTypes: readonly ServiceType[];
  /** Interface names or IPv4 addresses; undefined = every non-internal IPv4 interface. */
  readonly interfaces?: readonly string[];
  readonly filters: MdnsFilters;
  /** How long the first browse collects answers before the first full report. */
  readonly discoveryTimeoutMs: number;
  /** Browse queries go out after 0 s, 1 s, 2 s, 4 s … up to this interval (RFC 6762 §5.2). */
  readonly maxQueryIntervalMs: number;
  readonly maxDevices: number;
  readonly shared: boolean;
}

export const MDNS_DEFAULTS = {
  discoveryTimeoutSeconds: 1.5,
  maxQueryIntervalSeconds: 3600,
  maxDevices: 1024,
} as const;

const SERVICE_TYPE = /^(?:(_?[^.]{1,63})\._sub\.)?(_[A-Za-z0-9](?:[A-Za-z0-9-]{0,13}[A-Za-z0-9])?\._(?:tcp|udp))(?:\.local)?\.?$/;
const INTERFACE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

/** Parses `_ipp._tcp`, `_ipp._tcp.local`, `_universal._sub._ipp._tcp`; undefined when invalid. */
export function parseServiceType(text: string): ServiceType | undefined {
  const match = SERVICE_TYPE.exec(text);
  if (match === null) return undefined;
  const type = match[2]!;
  return { type, browseName: match[1] === undefined ? `${type}.local` : `${match[1]}._sub.${type}.local` };
}

function parseTxtFilters(raw: unknown, path: string): TxtFilter[] {
  if (raw === undefined || raw === null) return [];
  if (!isPlainObject(raw)) throw new DetailsError(path, 'must be a map of TXT key to a regular expression (or true: key present)');
  const entries = Object.entries(raw);
  if (entries.length > 32) throw new DetailsError(path, 'at most 32 TXT filters');
  return entries.map(([key, value]) => {
    const at = `${path}.${key}`;
    if (key.length === 0 || key.includes('=') || /[^\x20-\x7e]/.test(key)) throw new DetailsError(at, 'TXT keys are printable ASCII without =');
    if (value === true) return { key };
    return { key, value: compileRegex(value, at) };
  });
}

const KNOWN = ['serviceTypes', 'interfaces', 'filters', 'discoveryTimeoutSeconds', 'maxQueryIntervalSeconds', 'maxDevices', 'shared'] as const;

/** Validates raw details; every error names the field path. */
export function parseMdnsDetails(raw: unknown): MdnsDetails {
  const f = new Fields(raw, 'details', KNOWN);
  const types = f.stringList('serviceTypes', { min: 1, max: 32, maxLength: 128 });
  const serviceTypes = types.map((text, i) => {
    const parsed = parseServiceType(text);
    if (parsed === undefined) throw new DetailsError(`details.serviceTypes[${i}]`, 'must be a DNS-SD service type like _ipp._tcp (or a subtype: _printer._sub._http._tcp)');
    return parsed;
  });
  let interfaces: string[] | undefined;
  if (f.has('interfaces')) {
    interfaces = f.stringList('interfaces', { min: 1, max: 16, maxLength: 64 });
    interfaces.forEach((name, i) => {
      if (!isIPv4(name) && !INTERFACE_NAME.test(name)) throw new DetailsError(`details.interfaces[${i}]`, 'must be an interface name or an IPv4 address');
    });
  }
  const filters = new Fields(f.raw['filters'] ?? {}, f.at('filters'), ['instanceName', 'host', 'txt']);
  const instanceName = filters.has('instanceName') ? compileRegex(filters.raw['instanceName'], filters.at('instanceName')) : undefined;
  const host = filters.has('host') ? compileRegex(filters.raw['host'], filters.at('host')) : undefined;
  return {
    serviceTypes,
    ...(interfaces === undefined ? {} : { interfaces }),
    filters: {
      ...(instanceName === undefined ? {} : { instanceName }),
      ...(host === undefined ? {} : { host }),
      txt: parseTxtFilters(filters.raw['txt'], filters.at('txt')),
    },
    discoveryTimeoutMs: f.number('discoveryTimeoutSeconds', { default: MDNS_DEFAULTS.discoveryTimeoutSeconds, min: 0.1, max: 60, integer: false }) * 1000,
    maxQueryIntervalMs: f.number('maxQueryIntervalSeconds', { default: MDNS_DEFAULTS.maxQueryIntervalSeconds, min: 1, max: 86_400 }) * 1000,
    maxDevices: f.number('maxDevices', { default: MDNS_DEFAULTS.maxDevices, min: 1, max: 100_000 }),
    shared: f.boolean('shared', true),
  };
}
