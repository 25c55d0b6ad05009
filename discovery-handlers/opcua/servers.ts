/**
 * OPC UA servers as the handler sees them, pure: what FindServers / FindServersOnNetwork /
 * DNS-SD / the operator says about a server, what GetEndpoints adds, the filters, and the
 * device a server becomes (properties for Akri's brokers and Tether's richer set).
 *
 * Device id: the application URI — the server's own, stable name (Akri uses the discovery URL,
 * which changes with the address). Certificates are never properties: only their SHA-1
 * thumbprint (the form OPC UA itself uses to name a certificate).
 */
import { createHash } from 'node:crypto';
import type { DiscoveredDevice } from '../contract.ts';
import { POLICY_URI_PREFIX, type ApplicationType, type OpcuaDetails, type SecurityMode, type ValueFilter } from './details.ts';
import { checkEndpointUrl, type UrlRefusal } from './urls.ts';

/** How a server was found. */
export type Source = 'lds' | 'lds-me' | 'dns-sd' | 'endpoint';

/** A server as a discovery source describes it, before GetEndpoints. */
export interface ServerCandidate {
  readonly source: Source;
  /** The discovery URL Tether will ask, already checked against the address that named it. */
  readonly discoveryUrl: string;
  /** The LDS that listed it (lds, lds-me). */
  readonly ldsUrl?: string;
  /** Known from FindServers; DNS-SD and listed endpoints learn it from GetEndpoints. */
  readonly applicationUri?: string;
  readonly applicationName?: string;
  readonly applicationType?: ApplicationType;
  readonly productUri?: string;
}

/** One endpoint from GetEndpoints (strings already bounded by the client). */
export interface EndpointInfo {
  readonly endpointUrl: string;
  readonly securityMode: SecurityMode | 'Invalid';
  readonly securityPolicyUri: string;
  readonly userTokenTypes: readonly string[];
  readonly serverCertificate?: Uint8Array;
  readonly applicationUri: string;
  readonly applicationName: string;
  readonly applicationType: ApplicationType;
  readonly productUri: string;
}

export type Rejection =
  | { readonly kind: 'filtered' }
  | { readonly kind: 'no-endpoints' }
  | { readonly kind: 'unsafe-url'; readonly url: string; readonly reason: UrlRefusal }
  | { readonly kind: 'uri-mismatch'; readonly listed: string; readonly answered: string };

/** The device, or why there is none; `refusedUrls` were dropped (and are counted) either way. */
export interface Described {
  readonly device?: DiscoveredDevice;
  readonly rejection?: Rejection;
  readonly refusedUrls: readonly { url: string; reason: UrlRefusal }[];
  /** The server certificate is not in `trustedCertificateThumbprints` (only when that list is set). */
  readonly untrusted: boolean;
  /** With a device: the endpoints kept (URLs checked), and the server certificate as sent. */
  readonly endpoints?: readonly CheckedEndpoint[];
  readonly certificate?: Uint8Array;
}

/** An endpoint whose URL passed the checks; `url` is the one to connect to. */
export type CheckedEndpoint = EndpointInfo & { readonly url: string };

const MAX_ENDPOINTS = 64;

/** Whether `value` passes an include/exclude filter (unknown values fail an include list). */
export function passesFilter(filter: ValueFilter, value: string | undefined): boolean {
  if (filter.include.length > 0 && (value === undefined || !filter.include.includes(value))) return false;
  return value === undefined || !filter.exclude.includes(value);
}

/** Filters decidable from FindServers alone (name, URI, type): a rejected server is never asked. */
export function passesListingFilters(candidate: ServerCandidate, details: OpcuaDetails): boolean {
  if (candidate.applicationType !== undefined && !details.applicationTypes.includes(candidate.applicationType)) return false;
  if (candidate.applicationName !== undefined && !passesFilter(details.applicationNames, candidate.applicationName)) return false;
  return candidate.applicationUri === undefined || passesFilter(details.applicationUris, candidate.applicationUri);
}

/** SHA-1 thumbprint, lower-case hex. */
export function thumbprint(der: Uint8Array): string {
  return createHash('sha1').update(der).digest('hex');
}

function policyName(uri: string): string {
  return uri.startsWith(POLICY_URI_PREFIX) ? uri.slice(POLICY_URI_PREFIX.length) : uri;
}

const sortedUnique = (values: readonly string[]): string[] => [...new Set(values)].sort();

/** Filters on what GetEndpoints told. */
function passesEndpointFilters(
  type: ApplicationType,
  first: EndpointInfo,
  endpoints: readonly EndpointInfo[],
  details: OpcuaDetails,
): boolean {
  const uri = first.applicationUri;
  if (!details.applicationTypes.includes(type)) return false;
  if (!passesFilter(details.applicationNames, first.applicationName) || !passesFilter(details.applicationUris, uri)) return false;
  if (details.securityModes !== undefined && !endpoints.some((e) => details.securityModes!.includes(e.securityMode as SecurityMode)))
    return false;
  return details.securityPolicies === undefined || endpoints.some((e) => details.securityPolicies!.includes(e.securityPolicyUri));
}

/** The properties of a described server (certificate ones added by the caller); empty values left out. */
function serverProperties(
  candidate: ServerCandidate,
  type: ApplicationType,
  kept: readonly (EndpointInfo & { readonly url: string })[],
): Record<string, string> {
  const first = kept[0]!;
  const properties: Record<string, string> = {
    // Akri's brokers connect to this.
    OPCUA_DISCOVERY_URL: candidate.discoveryUrl,
    OPCUA_APPLICATION_URI: first.applicationUri,
    OPCUA_APPLICATION_NAME: first.applicationName,
    OPCUA_APPLICATION_TYPE: type,
    OPCUA_PRODUCT_URI: first.productUri,
    OPCUA_ENDPOINT_URL: first.url,
    OPCUA_ENDPOINT_URLS: sortedUnique(kept.map((e) => e.url)).join(','),
    OPCUA_SECURITY_MODES: sortedUnique(kept.map((e) => e.securityMode)).join(','),
    OPCUA_SECURITY_POLICIES: sortedUnique(kept.map((e) => policyName(e.securityPolicyUri))).join(','),
    OPCUA_USER_TOKEN_TYPES: sortedUnique(kept.flatMap((e) => e.userTokenTypes)).join(','),
    OPCUA_DISCOVERED_VIA: candidate.source,
  };
  if (candidate.ldsUrl !== undefined) properties['OPCUA_LDS_URL'] = candidate.ldsUrl;
  for (const key of Object.keys(properties)) if (properties[key] === '') delete properties[key];
  return properties;
}

/**
 * The device for `candidate`, whose GetEndpoints (asked at `candidate.discoveryUrl`, answered
 * from `answeredFrom`) returned `endpoints`.
 */
export function describeServer(
  candidate: ServerCandidate,
  endpoints: readonly EndpointInfo[],
  answeredFrom: string,
  details: OpcuaDetails,
): Described {
  const refusedUrls: { url: string; reason: UrlRefusal }[] = [];
  const kept: CheckedEndpoint[] = [];
  for (const endpoint of endpoints.slice(0, MAX_ENDPOINTS)) {
    const checked = checkEndpointUrl(endpoint.endpointUrl, answeredFrom, { allowedCidrs: details.allowedCidrs });
    if ('url' in checked) kept.push({ ...endpoint, url: checked.url });
    else refusedUrls.push({ url: endpoint.endpointUrl, reason: checked.refused });
  }
  const first = kept[0];
  if (first === undefined) {
    const refused = refusedUrls[0];
    return {
      rejection: refused === undefined ? { kind: 'no-endpoints' } : { kind: 'unsafe-url', url: refused.url, reason: refused.reason },
      refusedUrls,
      untrusted: false,
    };
  }
  // An LDS entry whose server answers with another URI is stale or lying: trust neither.
  if (candidate.applicationUri !== undefined && candidate.applicationUri !== first.applicationUri)
    return {
      rejection: { kind: 'uri-mismatch', listed: candidate.applicationUri, answered: first.applicationUri },
      refusedUrls,
      untrusted: false,
    };
  // The LDS's word on the type wins: servers often describe themselves as ClientAndServer
  // in GetEndpoints while registering as Server.
  const type = candidate.applicationType ?? first.applicationType;
  if (!passesEndpointFilters(type, first, kept, details)) return { rejection: { kind: 'filtered' }, refusedUrls, untrusted: false };
  return { ...withCertificate(first.applicationUri, serverProperties(candidate, type, kept), kept, details), refusedUrls };
}

/** The device with its certificate's thumbprint (and pinning verdict) among its properties. */
function withCertificate(
  id: string,
  properties: Record<string, string>,
  kept: readonly CheckedEndpoint[],
  details: OpcuaDetails,
): Omit<Described, 'refusedUrls'> {
  const certificate = kept.find((e) => e.serverCertificate !== undefined && e.serverCertificate.length > 0)?.serverCertificate;
  const print = certificate === undefined ? undefined : thumbprint(certificate);
  const untrusted = print !== undefined && details.trustedThumbprints.size > 0 && !details.trustedThumbprints.has(print);
  if (print !== undefined) {
    properties['OPCUA_SERVER_CERT_THUMBPRINT'] = print;
    if (details.trustedThumbprints.size > 0) properties['OPCUA_SERVER_CERT_TRUSTED'] = String(!untrusted);
  }
  return { device: { id, properties }, untrusted, endpoints: kept, ...(certificate === undefined ? {} : { certificate }) };
}
