/**
 * `details` of an `onvif` DeviceDiscovery: validated once into OnvifDetails. Every error
 * names the offending field. Filter lists accept Tether's `{include: [], exclude: []}`
 * and Akri's `{action: Include|Exclude, items: []}`; `discoveryTimeoutSeconds` keeps its
 * Akri meaning (how long the first probe waits for answers).
 */
import { DetailsError } from '../contract.ts';
import { hostCount, parseCidr, type Cidr } from './ipv4.ts';
import { parsePattern, type TextPattern } from '../pattern.ts';
import { WS_DISCOVERY_PORT } from './ws-discovery.ts';

export interface IncludeExclude<T> {
  readonly include: readonly T[];
  readonly exclude: readonly T[];
}

export type UnicastTarget =
  | { readonly kind: 'block'; readonly cidr: Cidr; readonly port: number }
  | { readonly kind: 'host'; readonly host: string; readonly port: number };

export interface OnvifFilters {
  readonly ipAddresses: IncludeExclude<Cidr>;
  /** Normalised `aa:bb:cc:dd:ee:ff`. */
  readonly macAddresses: IncludeExclude<string>;
  /** Scope URIs; a filter item matches a scope equal to it or below it (`…/location/` prefix). */
  readonly scopes: IncludeExclude<string>;
  /** Bare lower-case uuids. */
  readonly uuids: IncludeExclude<string>;
  readonly manufacturers: IncludeExclude<TextPattern>;
  readonly models: IncludeExclude<TextPattern>;
}

export interface OnvifDetails {
  /** Interface names or IPv4 addresses for multicast; undefined = every non-internal IPv4 interface. */
  readonly interfaces: readonly string[] | undefined;
  readonly multicast: boolean;
  readonly unicastTargets: readonly UnicastTarget[];
  readonly probeIntervalMs: number;
  /** How long the first probe waits for answers before the first full report. */
  readonly discoveryTimeoutMs: number;
  /** A camera is reported gone after it has not answered this many consecutive probes. */
  readonly offlineAfterMissedProbes: number;
  /** How often a known camera's SOAP information is re-read. */
  readonly refreshIntervalMs: number;
  readonly soapTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly maxCameras: number;
  readonly maxConcurrentRequests: number;
  /** Read profiles and RTSP stream URIs (GetProfiles/GetStreamUri). */
  readonly streamUris: boolean;
  /** Accept self-signed certificates on https device services. */
  readonly tlsInsecureSkipVerify: boolean;
  readonly shared: boolean;
  readonly filters: OnvifFilters;
  /**
   * Where service URLs (device service, media service, stream URIs) may point besides the
   * address the camera answered from: for cameras behind NAT or with a separate media host.
   * Loopback, link-local, multicast, unspecified and broadcast addresses stay refused.
   */
  readonly allowedServiceCidrs: readonly Cidr[];
}

export const ONVIF_DEFAULTS = {
  probeIntervalSeconds: 5,
  discoveryTimeoutSeconds: 1,
  offlineAfterMissedProbes: 3,
  refreshIntervalSeconds: 300,
  soapTimeoutSeconds: 5,
  /** Real answers are 1–20 KiB (16 profiles ≈ 16 KiB); 64 KiB parses in ~10 ms. */
  maxResponseBytes: 64 * 1024,
  maxCameras: 1024,
  maxConcurrentRequests: 32,
} as const;

/** The largest `maxResponseBytes` accepted: parsing is synchronous, ~50 ms per 256 KiB. */
export const MAX_RESPONSE_BYTES_LIMIT = 256 * 1024;

/** Unicast probing expands CIDR blocks; this caps the datagrams per probe round. */
export const MAX_UNICAST_HOSTS = 4096;

const FILTER_FIELDS = ['ipAddresses', 'macAddresses', 'scopes', 'uuids', 'manufacturers', 'models'] as const;
const KNOWN = new Set<string>([
  'interfaces',
  'multicast',
  'unicastTargets',
  'probeIntervalSeconds',
  'discoveryTimeoutSeconds',
  'offlineAfterMissedProbes',
  'refreshIntervalSeconds',
  'soapTimeoutSeconds',
  'maxResponseBytes',
  'maxCameras',
  'maxConcurrentRequests',
  'streamUris',
  'tlsInsecureSkipVerify',
  'shared',
  'allowedServiceCidrs',
  ...FILTER_FIELDS,
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function number(raw: Record<string, unknown>, key: string, fallback: number, min: number, max: number, integer = false): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new DetailsError(`details.${key}`, `must be ${integer ? 'an integer' : 'a number'}`);
  }
  if (value < min || value > max) throw new DetailsError(`details.${key}`, `must be between ${min} and ${max}`);
  return value;
}

function boolean(raw: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'boolean') throw new DetailsError(`details.${key}`, 'must be a boolean');
  return value;
}

function stringList(value: unknown, path: string, max: number): string[] {
  if (!Array.isArray(value)) throw new DetailsError(path, 'must be a list of strings');
  if (value.length > max) throw new DetailsError(path, `at most ${max} entries`);
  return value.map((item: unknown, i) => {
    if (typeof item !== 'string' || item.trim() === '') throw new DetailsError(`${path}[${i}]`, 'must be a non-empty string');
    return item.trim();
  });
}

type Items = { value: string; path: string }[];

function withPaths(list: string[], at: string): Items {
  return list.map((value, i) => ({ value, path: `${at}[${i}]` }));
}

function akriFilter(raw: Record<string, unknown>, path: string): { include: Items; exclude: Items } {
  for (const key of Object.keys(raw)) if (key !== 'action' && key !== 'items') throw new DetailsError(`${path}.${key}`, 'unknown field');
  const action = raw['action'] ?? 'Include';
  if (action !== 'Include' && action !== 'Exclude') throw new DetailsError(`${path}.action`, 'must be Include or Exclude');
  const items = withPaths(stringList(raw['items'] ?? [], `${path}.items`, 1024), `${path}.items`);
  return action === 'Include' ? { include: items, exclude: [] } : { include: [], exclude: items };
}

/** `{include, exclude}` or Akri's `{action, items}` → lists of raw strings with their paths. */
function includeExclude(raw: unknown, path: string): { include: Items; exclude: Items } {
  if (raw === undefined) return { include: [], exclude: [] };
  if (!isRecord(raw)) throw new DetailsError(path, 'must be {include: [...], exclude: [...]} or {action: Include|Exclude, items: [...]}');
  if ('action' in raw || 'items' in raw) return akriFilter(raw, path);
  for (const key of Object.keys(raw)) if (key !== 'include' && key !== 'exclude') throw new DetailsError(`${path}.${key}`, 'unknown field; expected include, exclude');
  return {
    include: withPaths(stringList(raw['include'] ?? [], `${path}.include`, 1024), `${path}.include`),
    exclude: withPaths(stringList(raw['exclude'] ?? [], `${path}.exclude`, 1024), `${path}.exclude`),
  };
}

function mapFilter<T>(raw: unknown, path: string, parse: (value: string, path: string) => T): IncludeExclude<T> {
  const { include, exclude } = includeExclude(raw, path);
  return { include: include.map((i) => parse(i.value, i.path)), exclude: exclude.map((i) => parse(i.value, i.path)) };
}

/** `aa:bb:cc:dd:ee:ff` from any of `AA-BB-…`, `aabb.ccdd.eeff`, `aabbccddeeff`; undefined if not a MAC. */
export function normalizeMac(text: string): string | undefined {
  const hex = text.toLowerCase().replace(/[-:.]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

const UUID_TEXT = /^(?:urn:)?(?:uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

function parseFilters(raw: Record<string, unknown>): OnvifFilters {
  return {
    ipAddresses: mapFilter(raw['ipAddresses'], 'details.ipAddresses', (value, path) => {
      const cidr = parseCidr(value);
      if (cidr === undefined) throw new DetailsError(path, 'must be an IPv4 address or CIDR block (a.b.c.d/n)');
      return cidr;
    }),
    macAddresses: mapFilter(raw['macAddresses'], 'details.macAddresses', (value, path) => {
      const mac = normalizeMac(value);
      if (mac === undefined) throw new DetailsError(path, 'must be a MAC address (aa:bb:cc:dd:ee:ff)');
      return mac;
    }),
    scopes: mapFilter(raw['scopes'], 'details.scopes', (value) => value),
    uuids: mapFilter(raw['uuids'], 'details.uuids', (value, path) => {
      const match = UUID_TEXT.exec(value);
      if (match === null) throw new DetailsError(path, 'must be a uuid (urn:uuid: prefix optional)');
      return match[1]!.toLowerCase();
    }),
    manufacturers: mapFilter(raw['manufacturers'], 'details.manufacturers', parsePattern),
    models: mapFilter(raw['models'], 'details.models', parsePattern),
  };
}

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

function parseTarget(value: string, path: string): UnicastTarget {
  const match = /^(.*?)(?::(\d{1,5}))?$/.exec(value)!;
  const hostPart = match[1]!;
  const port = match[2] === undefined ? WS_DISCOVERY_PORT : Number(match[2]);
  if (port < 1 || port > 65535) throw new DetailsError(path, 'port must be 1..65535');
  if (hostPart.includes('/') || /^\d+\.\d+\.\d+\.\d+$/.test(hostPart)) {
    const cidr = parseCidr(hostPart);
    if (cidr === undefined) throw new DetailsError(path, 'must be an IPv4 address, a CIDR block or a host name, optionally with :port');
    if (cidr.prefix < 20) throw new DetailsError(path, 'CIDR blocks larger than /20 are not probed');
    return { kind: 'block', cidr, port };
  }
  if (!HOSTNAME.test(hostPart)) throw new DetailsError(path, 'must be an IPv4 address, a CIDR block or a host name, optionally with :port');
  return { kind: 'host', host: hostPart, port };
}

function parseTargets(raw: unknown): UnicastTarget[] {
  if (raw === undefined) return [];
  const targets = stringList(raw, 'details.unicastTargets', 256).map((v, i) => parseTarget(v, `details.unicastTargets[${i}]`));
  const total = targets.reduce((n, t) => n + (t.kind === 'block' ? hostCount(t.cidr) : 1), 0);
  if (total > MAX_UNICAST_HOSTS) throw new DetailsError('details.unicastTargets', `expands to ${total} hosts; at most ${MAX_UNICAST_HOSTS}`);
  return targets;
}

/** Validates raw details; every error names the field path. */
export function parseOnvifDetails(raw: unknown): OnvifDetails {
  const input = raw ?? {};
  if (!isRecord(input)) throw new DetailsError('details', 'must be an object');
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new DetailsError(`details.${key}`, `unknown field; expected one of ${[...KNOWN].join(', ')}`);
  }
  const interfaces = input['interfaces'] === undefined ? undefined : stringList(input['interfaces'], 'details.interfaces', 64);
  const multicast = boolean(input, 'multicast', true);
  const unicastTargets = parseTargets(input['unicastTargets']);
  if (!multicast && unicastTargets.length === 0) {
    throw new DetailsError('details.unicastTargets', 'must name at least one target when multicast is false');
  }
  const probeIntervalSeconds = number(input, 'probeIntervalSeconds', ONVIF_DEFAULTS.probeIntervalSeconds, 0.05, 3600);
  const discoveryTimeoutSeconds = number(input, 'discoveryTimeoutSeconds', Math.min(ONVIF_DEFAULTS.discoveryTimeoutSeconds, probeIntervalSeconds), 0.01, 60);
  if (discoveryTimeoutSeconds > probeIntervalSeconds) {
    throw new DetailsError('details.discoveryTimeoutSeconds', 'must not exceed probeIntervalSeconds');
  }
  return {
    interfaces,
    multicast,
    unicastTargets,
    probeIntervalMs: Math.round(probeIntervalSeconds * 1000),
    discoveryTimeoutMs: Math.round(discoveryTimeoutSeconds * 1000),
    offlineAfterMissedProbes: number(input, 'offlineAfterMissedProbes', ONVIF_DEFAULTS.offlineAfterMissedProbes, 1, 1000, true),
    refreshIntervalMs: Math.round(number(input, 'refreshIntervalSeconds', ONVIF_DEFAULTS.refreshIntervalSeconds, 1, 86_400) * 1000),
    soapTimeoutMs: Math.round(number(input, 'soapTimeoutSeconds', ONVIF_DEFAULTS.soapTimeoutSeconds, 0.05, 120) * 1000),
    maxResponseBytes: number(input, 'maxResponseBytes', ONVIF_DEFAULTS.maxResponseBytes, 4096, MAX_RESPONSE_BYTES_LIMIT, true),
    maxCameras: number(input, 'maxCameras', ONVIF_DEFAULTS.maxCameras, 1, 100_000, true),
    maxConcurrentRequests: number(input, 'maxConcurrentRequests', ONVIF_DEFAULTS.maxConcurrentRequests, 1, 256, true),
    streamUris: boolean(input, 'streamUris', true),
    tlsInsecureSkipVerify: boolean(input, 'tlsInsecureSkipVerify', false),
    shared: boolean(input, 'shared', true),
    filters: parseFilters(input),
    allowedServiceCidrs: parseAllowedServiceCidrs(input['allowedServiceCidrs']),
  };
}

function parseAllowedServiceCidrs(raw: unknown): Cidr[] {
  if (raw === undefined) return [];
  return stringList(raw, 'details.allowedServiceCidrs', 256).map((value, i) => {
    const cidr = parseCidr(value);
    if (cidr === undefined) throw new DetailsError(`details.allowedServiceCidrs[${i}]`, 'must be an IPv4 address or CIDR block (a.b.c.d/n)');
    return cidr;
  });
}
