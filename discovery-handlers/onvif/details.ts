/**
 * `details` of an `onvif` DeviceDiscovery: validated once into OnvifDetails. Every error
 * names the offending field. Types, bounds and defaults are in schema.ts; this file checks
 * the cross-field rules and parses addresses and patterns. Filter lists accept Tether's
 * `{include: [], exclude: []}` and Akri's `{action: Include|Exclude, items: []}`;
 * `discoveryTimeoutSeconds` keeps its Akri meaning (how long the first probe waits).
 */
import { DetailsError } from '../contract.ts';
import { parseWithSchema } from '../details-parse.ts';
import { parsePattern, type TextPattern } from '../pattern.ts';
import { hostCount, parseCidr, type Cidr } from '../ipv4.ts';
import { filterLists, type FilterInput } from '../filter-lists.ts';
import { DEFAULT_DISCOVERY_TIMEOUT_SECONDS } from './constants.ts';
import DETAILS_SCHEMA from './details.schema.json' with { type: 'json' };
import type { OnvifDetailsInput, OnvifDetailsSchema } from './schema.ts';
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

/** Details as the handler uses them: the schema's fields, with times in ms and addresses parsed. */
export interface OnvifDetails extends Readonly<
  Pick<
    OnvifDetailsInput,
    | 'multicast'
    | 'offlineAfterMissedProbes'
    | 'maxResponseBytes'
    | 'maxCameras'
    | 'maxConcurrentRequests'
    | 'streamUris'
    | 'tlsInsecureSkipVerify'
    | 'shared'
  >
> {
  /** Interface names or IPv4 addresses for multicast; undefined = every non-internal IPv4 interface. */
  readonly interfaces: readonly string[] | undefined;
  readonly unicastTargets: readonly UnicastTarget[];
  readonly probeIntervalMs: number;
  /** How long the first probe waits for answers before the first full report. */
  readonly discoveryTimeoutMs: number;
  /** How often a known camera's SOAP information is re-read. */
  readonly refreshIntervalMs: number;
  readonly soapTimeoutMs: number;
  readonly filters: OnvifFilters;
  /**
   * Where service URLs (device service, media service, stream URIs) may point besides the
   * address the camera answered from: for cameras behind NAT or with a separate media host.
   * Loopback, link-local, multicast, unspecified and broadcast addresses stay refused.
   */
  readonly allowedServiceCidrs: readonly Cidr[];
}

/** Unicast probing expands CIDR blocks; this caps the datagrams per probe round. */
export const MAX_UNICAST_HOSTS = 4096;

function mapFilter<T>(raw: FilterInput | undefined, path: string, parse: (value: string, path: string) => T): IncludeExclude<T> {
  const { include, exclude } = filterLists(raw, path);
  return { include: include.map((i) => parse(i.value, i.path)), exclude: exclude.map((i) => parse(i.value, i.path)) };
}

/** `aa:bb:cc:dd:ee:ff` from any of `AA-BB-…`, `aabb.ccdd.eeff`, `aabbccddeeff`; undefined if not a MAC. */
export function normalizeMac(text: string): string | undefined {
  const hex = text.toLowerCase().replace(/[-:.]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

const UUID_TEXT = /^(?:urn:)?(?:uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

function parseFilters(raw: OnvifDetailsInput): OnvifFilters {
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

function parseTargets(raw: readonly string[]): UnicastTarget[] {
  const targets = raw.map((v, i) => parseTarget(v.trim(), `details.unicastTargets[${i}]`));
  const total = targets.reduce((n, t) => n + (t.kind === 'block' ? hostCount(t.cidr) : 1), 0);
  if (total > MAX_UNICAST_HOSTS)
    throw new DetailsError('details.unicastTargets', `expands to ${total} hosts; at most ${MAX_UNICAST_HOSTS}`);
  return targets;
}

/** Validates raw details; every error names the field path. */
export function parseOnvifDetails(raw: unknown): OnvifDetails {
  const input = parseWithSchema<typeof OnvifDetailsSchema>(DETAILS_SCHEMA, raw);
  const unicastTargets = parseTargets(input.unicastTargets);
  if (!input.multicast && unicastTargets.length === 0) {
    throw new DetailsError('details.unicastTargets', 'must name at least one target when multicast is false');
  }
  const discoveryTimeoutSeconds = input.discoveryTimeoutSeconds ?? Math.min(DEFAULT_DISCOVERY_TIMEOUT_SECONDS, input.probeIntervalSeconds);
  if (discoveryTimeoutSeconds > input.probeIntervalSeconds) {
    throw new DetailsError('details.discoveryTimeoutSeconds', 'must not exceed probeIntervalSeconds');
  }
  return {
    interfaces: input.interfaces?.map((name) => name.trim()),
    multicast: input.multicast,
    unicastTargets,
    probeIntervalMs: Math.round(input.probeIntervalSeconds * 1000),
    discoveryTimeoutMs: Math.round(discoveryTimeoutSeconds * 1000),
    offlineAfterMissedProbes: input.offlineAfterMissedProbes,
    refreshIntervalMs: Math.round(input.refreshIntervalSeconds * 1000),
    soapTimeoutMs: Math.round(input.soapTimeoutSeconds * 1000),
    maxResponseBytes: input.maxResponseBytes,
    maxCameras: input.maxCameras,
    maxConcurrentRequests: input.maxConcurrentRequests,
    streamUris: input.streamUris,
    tlsInsecureSkipVerify: input.tlsInsecureSkipVerify,
    shared: input.shared,
    filters: parseFilters(input),
    allowedServiceCidrs: input.allowedServiceCidrs.map((value, i) => {
      const cidr = parseCidr(value.trim());
      if (cidr === undefined)
        throw new DetailsError(`details.allowedServiceCidrs[${i}]`, 'must be an IPv4 address or CIDR block (a.b.c.d/n)');
      return cidr;
    }),
  };
}
