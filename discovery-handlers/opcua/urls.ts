/**
 * Where Tether may connect for an OPC UA server, and which URLs it may publish. Pure.
 *
 * The same rule as the onvif handler's service URLs: a device must never steer Tether (or the
 * brokers that get the URL) to an address that did not answer. An LDS hands out other
 * servers' discovery URLs and a server hands out its endpoint URLs; anything on the LAN can
 * run an LDS, so taken at its word one answering from 10.0.0.66 with
 * `opc.tcp://127.0.0.1:9999` makes Tether probe the node's own loopback and publish it. So:
 *
 * - a URL whose host is the address that answered (the LDS for its servers, the server for its
 *   endpoints) or inside the operator's `allowedEndpointCidrs` is kept;
 * - a host name, `localhost` or the unspecified address 0.0.0.0 means "this host" (asyncua's
 *   default endpoint is `opc.tcp://0.0.0.0:4840/…`, and servers usually advertise their host
 *   name): it is rewritten to the address that answered, keeping port and path (Akri does this
 *   for names it cannot resolve; a name resolves wherever its owner wants, so Tether never
 *   resolves one that a device sent);
 * - any other IP literal, and loopback, link-local, multicast or broadcast addresses, are
 *   refused (counted as `unsafe_endpoint_url`).
 *
 * WARNING: loopback is accepted only when the address that answered is loopback itself (the
 * operator pointed Tether at 127.0.0.1: `tether discover` on a laptop, tests).
 */
import { cidrContains, intToIpv4, ipv4ToInt, type Cidr } from '../ipv4.ts';

/** Why a URL was refused (a log field). */
export type UrlRefusal = 'not-a-url' | 'not-opc-tcp' | 'not-ipv4' | 'reserved-address' | 'not-the-server';

export interface EndpointPolicy {
  readonly allowedCidrs: readonly Cidr[];
}

const LIMIT = 1024;
const RESERVED: readonly (readonly [network: number, prefix: number])[] = [
  [0xa9fe0000, 16], // 169.254.0.0/16: link-local
  [0xe0000000, 4], // 224.0.0.0/4: multicast
  [0xf0000000, 4], // 240.0.0.0/4: reserved, and 255.255.255.255 broadcast
];
const LOOPBACK: readonly [number, number] = [0x7f000000, 8];

function inBlock(value: number, [network, prefix]: readonly [number, number]): boolean {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return (value & mask) >>> 0 === network;
}

/** Whether `ip` (dotted quad) is a loopback address. */
export function isLoopback(ip: string): boolean {
  const value = ipv4ToInt(ip);
  return value !== undefined && inBlock(value, LOOPBACK);
}

/** Whether Tether may talk to `ip` at all: a canonical, unicast, non-link-local IPv4 address. */
export function isUsableAddress(ip: string): boolean {
  const value = ipv4ToInt(ip);
  if (value === undefined || intToIpv4(value) !== ip || value === 0) return false;
  return !RESERVED.some((block) => inBlock(value, block));
}

/** `host` means "the host that answered" (a name, localhost, 0.0.0.0). */
function meansAnsweringHost(host: string): boolean {
  if (host === '' || host.startsWith('[')) return false;
  const value = ipv4ToInt(host);
  if (value === undefined) return !/^[\d.]+$/.test(host); // a name (not a malformed or numeric quad)
  return value === 0;
}

/** The host to connect to for a URL host handed out by `answeredFrom` (before the address checks). */
function targetHost(host: string, answeredFrom: string): { host: string } | { refused: UrlRefusal } {
  if (meansAnsweringHost(host) || (isLoopback(host) && !isLoopback(answeredFrom))) return { host: answeredFrom };
  const value = ipv4ToInt(host);
  // Canonical dotted quads only: `010.0.0.1` is 10.0.0.1 here and 8.0.0.1 to some clients.
  return value === undefined || intToIpv4(value) !== host ? { refused: 'not-ipv4' } : { host };
}

/**
 * Checks `url` that a server or LDS answering from `answeredFrom` handed out. Returns the URL
 * to use (normalised, host rewritten where it means the answering host, userinfo, query and
 * fragment dropped) or why it was refused.
 */
export function checkEndpointUrl(url: string, answeredFrom: string, policy: EndpointPolicy): { url: string } | { refused: UrlRefusal } {
  if (url.length > LIMIT) return { refused: 'not-a-url' };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { refused: 'not-a-url' };
  }
  if (parsed.protocol !== 'opc.tcp:') return { refused: 'not-opc-tcp' };
  if (!isUsableAddress(answeredFrom)) return { refused: 'reserved-address' };
  const target = targetHost(parsed.hostname.toLowerCase(), answeredFrom);
  if ('refused' in target) return target;
  const host = target.host;
  if (!isUsableAddress(host) || (isLoopback(host) && !isLoopback(answeredFrom))) return { refused: 'reserved-address' };
  if (host !== answeredFrom && !policy.allowedCidrs.some((cidr) => cidrContains(cidr, host))) return { refused: 'not-the-server' };
  // WHATWG URL does not parse the authority of unknown schemes: build the URL by hand.
  const port = parsed.port === '' ? '4840' : parsed.port;
  const path = parsed.pathname === '' ? '' : parsed.pathname;
  return { url: `opc.tcp://${host}:${port}${path}` };
}

/** The host (IPv4) and port of an operator-given or accepted `opc.tcp://` URL. */
export function hostPort(url: string): { host: string; port: number } | undefined {
  const match = /^opc\.tcp:\/\/(?:[^@/]*@)?([^/:?#]+)(?::(\d{1,5}))?/i.exec(url);
  if (match === null) return undefined;
  const port = match[2] === undefined ? 4840 : Number(match[2]);
  return port > 0 && port < 65536 ? { host: match[1]!.toLowerCase(), port } : undefined;
}

/** `url` with its host replaced by `address` (an operator URL resolved once). */
export function withHost(url: string, address: string): string {
  return url.replace(/^(opc\.tcp:\/\/)(?:[^@/]*@)?[^/:?#]+/i, `$1${address}`);
}
