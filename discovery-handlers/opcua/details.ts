/**
 * `details` of an `opcua` DeviceDiscovery, validated once into OpcuaDetails; every error names
 * the offending field. Types, bounds and defaults are in schema.ts; this file merges Akri's
 * shape with Tether's fields and resolves the result for the handler (seconds → ms, CIDRs and
 * policy names parsed).
 */
import { DetailsError } from '../contract.ts';
import { parseWithSchema } from '../details-parse.ts';
import { parseCidr, type Cidr } from '../ipv4.ts';
import { filterLists, type FilterInput } from '../filter-lists.ts';
import { DEFAULT_DISCOVERY_URL } from './constants.ts';
import DETAILS_SCHEMA from './details.schema.json' with { type: 'json' };
import type { OpcuaDetailsInput, OpcuaDetailsSchema } from './schema.ts';

export type ApplicationType = 'Server' | 'Client' | 'ClientAndServer' | 'DiscoveryServer';
export type SecurityMode = 'None' | 'Sign' | 'SignAndEncrypt';

/** A filter on one value: include (empty = everything) and exclude lists, exact match. */
export interface ValueFilter {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

/** Details as the handler uses them. */
export interface OpcuaDetails {
  /** Local Discovery Servers (or servers) asked with FindServers. */
  readonly discoveryUrls: readonly string[];
  /** Servers asked directly with GetEndpoints. */
  readonly endpointUrls: readonly string[];
  readonly findServersOnNetwork: boolean;
  readonly dnsSd: boolean;
  readonly dnsSdInterfaces?: readonly string[];
  readonly applicationNames: ValueFilter;
  readonly applicationUris: ValueFilter;
  readonly applicationTypes: readonly ApplicationType[];
  /** Undefined: any. */
  readonly securityModes?: readonly SecurityMode[];
  /** Policy URIs; undefined: any. */
  readonly securityPolicies?: readonly string[];
  /** Lower-case hex SHA-1 thumbprints. */
  readonly trustedThumbprints: ReadonlySet<string>;
  readonly allowedCidrs: readonly Cidr[];
  readonly queryIntervalMs: number;
  readonly maxBackoffMs: number;
  readonly offlineAfterFailedQueries: number;
  readonly requestTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly maxServers: number;
  readonly maxConcurrentRequests: number;
  readonly shared: boolean;
  /** Certificate checks and secure sessions; undefined = neither (discovery only). */
  readonly security?: SecurityDetails;
}

export interface SecurityDetails {
  readonly verify: 'Off' | 'Report' | 'Require';
  readonly sessions: 'Off' | 'WhenRequired' | 'Always';
  readonly sessionTimeoutMs: number;
  readonly sessionIntervalMs: number;
  readonly maxConcurrentSessions: number;
}

export const POLICY_URI_PREFIX = 'http://opcfoundation.org/UA/SecurityPolicy#';

function valueFilter(raw: FilterInput | undefined): ValueFilter {
  const { include, exclude } = filterLists(raw, '');
  return { include: include.map((i) => i.value), exclude: exclude.map((i) => i.value) };
}

/** `Basic256Sha256` or its URI → the URI. */
export function policyUri(nameOrUri: string): string {
  return nameOrUri.includes('#') || nameOrUri.includes('/') ? nameOrUri : `${POLICY_URI_PREFIX}${nameOrUri}`;
}

/**
 * Akri's default (the node's own LDS) applies to an Akri-shaped configuration, or when nothing
 * else says where to look.
 */
function discoveryUrlsOf(input: OpcuaDetailsInput): readonly string[] {
  const explicit = input.opcuaDiscoveryMethod?.standard?.discoveryUrls;
  if (explicit !== undefined) return explicit;
  const elsewhere = input.opcuaDiscoveryMethod === undefined && (input.endpointUrls.length > 0 || input.dnsSd);
  return elsewhere ? [] : [DEFAULT_DISCOVERY_URL];
}

function securityDetails(input: NonNullable<OpcuaDetailsInput['security']>): SecurityDetails {
  return {
    verify: input.verify,
    sessions: input.sessions,
    sessionTimeoutMs: Math.round(input.sessionTimeoutSeconds * 1000),
    sessionIntervalMs: Math.round(input.sessionIntervalSeconds * 1000),
    maxConcurrentSessions: input.maxConcurrentSessions,
  };
}

/** Validates raw details (an object, or Akri's YAML text); every error names the field path. */
export function parseOpcuaDetails(raw: unknown): OpcuaDetails {
  const input = parseWithSchema<typeof OpcuaDetailsSchema>(DETAILS_SCHEMA, raw ?? {});
  const standard = input.opcuaDiscoveryMethod?.standard;
  if (standard?.applicationNames !== undefined && input.applicationNames !== undefined)
    throw new DetailsError('details.applicationNames', "set in two places; keep the top-level one (Akri's)");
  const discoveryUrls = discoveryUrlsOf(input);
  return {
    discoveryUrls: [...new Set(discoveryUrls)],
    endpointUrls: [...new Set(input.endpointUrls)],
    findServersOnNetwork: input.findServersOnNetwork,
    dnsSd: input.dnsSd,
    ...(input.dnsSdInterfaces === undefined ? {} : { dnsSdInterfaces: input.dnsSdInterfaces }),
    applicationNames: valueFilter(input.applicationNames ?? standard?.applicationNames),
    applicationUris: valueFilter(input.applicationUris),
    applicationTypes: input.applicationTypes,
    ...(input.securityModes === undefined ? {} : { securityModes: input.securityModes }),
    ...(input.securityPolicies === undefined ? {} : { securityPolicies: input.securityPolicies.map(policyUri) }),
    trustedThumbprints: new Set(input.trustedCertificateThumbprints.map((t) => t.replace(/[:\s]/g, '').toLowerCase())),
    allowedCidrs: input.allowedEndpointCidrs.map((text, i) => {
      const cidr = parseCidr(text);
      if (cidr === undefined)
        throw new DetailsError(`details.allowedEndpointCidrs[${i}]`, 'must be an IPv4 address or CIDR block (a.b.c.d/n)');
      return cidr;
    }),
    queryIntervalMs: Math.round(input.queryIntervalSeconds * 1000),
    maxBackoffMs: Math.round(Math.max(input.maxBackoffSeconds, input.queryIntervalSeconds) * 1000),
    offlineAfterFailedQueries: input.offlineAfterFailedQueries,
    requestTimeoutMs: Math.round(input.requestTimeoutSeconds * 1000),
    maxResponseBytes: input.maxResponseBytes,
    maxServers: input.maxServers,
    maxConcurrentRequests: input.maxConcurrentRequests,
    shared: input.shared,
    ...(input.security === undefined ? {} : { security: securityDetails(input.security) }),
  };
}
