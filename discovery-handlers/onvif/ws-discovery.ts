/**
 * WS-Discovery (2005/04) messages as ONVIF cameras speak them: the Probe Tether sends and
 * the ProbeMatches / Hello / Bye it reads. Pure: text in, typed values out.
 */
import { randomUUID } from 'node:crypto';
import { child, children, parseXml, path, textValue, type XmlNode } from './xml.ts';

export const WS_DISCOVERY_GROUP = '239.255.255.250';
export const WS_DISCOVERY_PORT = 3702;
/**
 * Largest datagram Tether parses; real ProbeMatches and Hellos are 1–3 KiB (64 scopes of 60
 * characters would be ~5 KiB). Anything on the LAN can send these, so the bound is tight:
 * 8 KiB parses in ~1 ms.
 */
export const MAX_DATAGRAM_BYTES = 8 * 1024;

const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  addressing: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  discovery: 'http://schemas.xmlsoap.org/ws/2005/04/discovery',
  network: 'http://www.onvif.org/ver10/network/wsdl',
};
const ACTION_PROBE = `${NS.discovery}/Probe`;

const MAX_ADDRESS_LENGTH = 256;
const MAX_XADDRS = 16;
const MAX_XADDR_LENGTH = 1024;
const MAX_SCOPES = 64;
const MAX_SCOPE_LENGTH = 512;

/**
 * A Probe for ONVIF NetworkVideoTransmitters. The `dn` prefix used in Types is declared
 * on the envelope: some cameras ignore a Probe whose QName prefix is undeclared (Akri #486).
 */
export function buildProbe(messageId: string = `urn:uuid:${randomUUID()}`): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<s:Envelope xmlns:s="${NS.soap}" xmlns:a="${NS.addressing}" xmlns:d="${NS.discovery}" xmlns:dn="${NS.network}">` +
    '<s:Header>' +
    `<a:Action s:mustUnderstand="1">${ACTION_PROBE}</a:Action>` +
    `<a:MessageID>${messageId}</a:MessageID>` +
    `<a:ReplyTo><a:Address>${NS.addressing}/role/anonymous</a:Address></a:ReplyTo>` +
    '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>' +
    '</s:Header>' +
    '<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>' +
    '</s:Envelope>'
  );
}

/** What a ProbeMatch or Hello says about one device. */
export interface Endpoint {
  /** EndpointReference/Address as sent (usually `urn:uuid:…`). */
  readonly address: string;
  /** Stable device id derived from the address (bare lower-case uuid when it is one). */
  readonly id: string;
  readonly types: readonly string[];
  readonly scopes: readonly string[];
  /** Device service URLs (http/https only). */
  readonly xaddrs: readonly string[];
  readonly metadataVersion: number | undefined;
}

export type WsDiscoveryMessage =
  | {
      readonly kind: 'probe-matches';
      readonly relatesTo: string | undefined;
      readonly matches: readonly Endpoint[];
      readonly malformed: number;
    }
  | { readonly kind: 'hello'; readonly endpoint: Endpoint }
  | { readonly kind: 'bye'; readonly id: string }
  /** A Hello or Bye Tether cannot use (no address, bad XAddrs…). */
  | { readonly kind: 'malformed' }
  /** Any other WS-Discovery traffic on the group (Probes, Resolves…). */
  | { readonly kind: 'other' };

const UUID_PREFIX = /^(?:urn:)?uuid:/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
/** An absolute URI of printable ASCII URI characters (RFC 3986), well-formed percent escapes. */
const URI = /^[a-z][a-z0-9+.-]*:(?:[a-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9a-f]{2})+$/i;

/**
 * The device id for an endpoint address, or undefined when the address is not one Tether
 * accepts as an identity:
 * - `urn:uuid:…` / `uuid:…` must hold a real UUID (8-4-4-4-12 hex digits, not the nil
 *   UUID): the id is the bare lower-case UUID. `urn:uuid:not-a-uuid` is refused.
 * - Any other address must be an absolute URI (`urn:example:camera-7`, `http://…`) of at
 *   most 256 printable ASCII URI characters; it is kept as sent.
 */
export function endpointId(address: string): string | undefined {
  const trimmed = address.trim();
  if (trimmed.length === 0 || trimmed.length > MAX_ADDRESS_LENGTH) return undefined;
  if (UUID_PREFIX.test(trimmed)) {
    const uuid = trimmed.replace(UUID_PREFIX, '').toLowerCase();
    return UUID.test(uuid) && uuid !== NIL_UUID ? uuid : undefined;
  }
  return URI.test(trimmed) ? trimmed : undefined;
}

function isPrintable(value: string): boolean {
  // Control characters have no business in an address, scope or URL.
  // eslint-disable-next-line no-control-regex
  return !/[\u0000-\u001f\u007f]/.test(value);
}

function splitList(value: string | undefined, max: number, maxLength: number): string[] | undefined {
  if (value === undefined || value === '') return [];
  const items = value.split(/\s+/).filter((s) => s !== '');
  if (items.length > max || items.some((s) => s.length > maxLength || !isPrintable(s))) return undefined;
  return items;
}

function isServiceUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Reads one ProbeMatch / Hello body; undefined when it is malformed. */
function readEndpoint(node: unknown, requireXAddrs: boolean): Endpoint | undefined {
  const address = textValue(path(node, 'EndpointReference', 'Address'));
  const id = address === undefined ? undefined : endpointId(address);
  if (address === undefined || id === undefined) return undefined;
  const types = splitList(textValue(child(node, 'Types')), MAX_SCOPES, MAX_SCOPE_LENGTH);
  const scopes = splitList(textValue(child(node, 'Scopes')), MAX_SCOPES, MAX_SCOPE_LENGTH);
  const xaddrs = splitList(textValue(child(node, 'XAddrs')), MAX_XADDRS, MAX_XADDR_LENGTH);
  if (types === undefined || scopes === undefined || xaddrs === undefined) return undefined;
  const services = xaddrs.filter(isServiceUrl);
  if (services.length !== xaddrs.length || (requireXAddrs && services.length === 0)) return undefined;
  const versionText = textValue(child(node, 'MetadataVersion'));
  const version = versionText === undefined || !/^\d{1,10}$/.test(versionText) ? undefined : Number(versionText);
  return { address, id, types, scopes, xaddrs: services, metadataVersion: version };
}

/** Whether the endpoint's Types name an ONVIF NetworkVideoTransmitter (any prefix). */
export function isVideoTransmitter(endpoint: Endpoint): boolean {
  return endpoint.types.some((t) => t === 'NetworkVideoTransmitter' || t.endsWith(':NetworkVideoTransmitter'));
}

/**
 * Parses one datagram. Throws XmlError when it is not acceptable XML at all; a
 * ProbeMatches whose individual matches are malformed keeps the good ones and counts
 * the rest in `malformed`.
 */
export function parseWsDiscovery(datagram: string): WsDiscoveryMessage {
  const doc: XmlNode = parseXml(datagram, MAX_DATAGRAM_BYTES);
  const envelope = child(doc, 'Envelope');
  const body = child(envelope, 'Body');
  const header = child(envelope, 'Header');
  const probeMatches = child(body, 'ProbeMatches');
  if (probeMatches !== undefined) {
    const raw = children(probeMatches, 'ProbeMatch');
    const matches = raw.map((m) => readEndpoint(m, true)).filter((m): m is Endpoint => m !== undefined);
    return {
      kind: 'probe-matches',
      relatesTo: textValue(child(header, 'RelatesTo')),
      matches,
      malformed: raw.length === 0 ? 1 : raw.length - matches.length,
    };
  }
  const hello = child(body, 'Hello');
  if (hello !== undefined) {
    const endpoint = readEndpoint(hello, false);
    return endpoint === undefined ? { kind: 'malformed' } : { kind: 'hello', endpoint };
  }
  const bye = child(body, 'Bye');
  if (bye !== undefined) {
    const address = textValue(path(bye, 'EndpointReference', 'Address'));
    const id = address === undefined ? undefined : endpointId(address);
    return id === undefined ? { kind: 'malformed' } : { kind: 'bye', id };
  }
  return { kind: 'other' };
}
