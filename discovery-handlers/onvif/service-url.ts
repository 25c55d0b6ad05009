/**
 * Where Tether may send a camera's SOAP calls (and its credentials) and which URLs it may
 * publish as properties. Pure.
 *
 * A camera tells where its services are (XAddrs, GetServices, GetStreamUri), and anything on
 * the LAN can claim to be a camera: taken at its word, a "camera" answering from 10.0.0.66
 * with `XAddrs http://127.0.0.1:9999/…` makes Tether post WS-UsernameToken digests to the
 * node's own loopback, and publish that URL to every broker. So a URL is used only when its
 * host is the address the camera answered from (the UDP source of its ProbeMatch or Hello),
 * or inside the operator's `allowedServiceCidrs` — and never when it is a loopback,
 * link-local, multicast, unspecified or broadcast address. Host names are refused too: a name
 * resolves wherever its owner wants (and to something else on the next lookup).
 *
 * WARNING: loopback is the one exception, and only when the operator probes on loopback
 * (`interfaces: [lo]` or a 127.x unicast target — the simulator, tests, `tether discover` on a
 * laptop). A datagram with a loopback source can only come from the node itself, and even
 * then the URL must name the exact address that answered.
 */
import { cidrContains, intToIpv4, ipv4ToInt, type Cidr } from '../ipv4.ts';

export interface ServiceUrlPolicy {
  /** Operator-configured blocks service URLs may point into besides the answering address. */
  readonly allowedCidrs: readonly Cidr[];
  /** Whether the discovery probes on loopback (see the module WARNING). */
  readonly loopback: boolean;
}

/** Why a URL was refused (a log field; the handler counts every refusal as `unsafe_service_url`). */
export type UrlRefusal = 'not-a-url' | 'not-an-ip' | 'reserved-address' | 'not-the-camera';

const BLOCKS: readonly (readonly [network: number, prefix: number])[] = [
  [0x00000000, 8], // 0.0.0.0/8: unspecified, "this network"
  [0xa9fe0000, 16], // 169.254.0.0/16: link-local
  [0xe0000000, 4], // 224.0.0.0/4: multicast
  [0xf0000000, 4], // 240.0.0.0/4: reserved, and 255.255.255.255 broadcast
];
const LOOPBACK: readonly [number, number] = [0x7f000000, 8];

function inBlock(value: number, [network, prefix]: readonly [number, number]): boolean {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return (value & mask) >>> 0 === network;
}

/** Whether `ip` is an IPv4 address Tether never sends to for a camera (loopback unless `loopback`). */
export function isReservedAddress(ip: string, loopback: boolean): boolean {
  const value = ipv4ToInt(ip);
  if (value === undefined) return true;
  if (!loopback && inBlock(value, LOOPBACK)) return true;
  return BLOCKS.some((block) => inBlock(value, block));
}

/** Whether `ip` is in 127.0.0.0/8. */
export function isLoopbackAddress(ip: string): boolean {
  const value = ipv4ToInt(ip);
  return value !== undefined && inBlock(value, LOOPBACK);
}

/**
 * Checks `url` for a camera that answered from `source`. Returns the URL as the WHATWG parser
 * normalises it (`http://2130706433/` is `http://127.0.0.1/`) or why it was refused.
 */
export function checkServiceUrl(url: string, source: string, policy: ServiceUrlPolicy): { url: string } | { refused: UrlRefusal } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { refused: 'not-a-url' };
  }
  const host = parsed.hostname;
  const value = ipv4ToInt(host);
  // Canonical dotted quads only: `010.0.0.1` is 10.0.0.1 here and 8.0.0.1 to an RTSP client.
  if (value === undefined || intToIpv4(value) !== host) return { refused: 'not-an-ip' };
  if (isReservedAddress(host, policy.loopback) || isReservedAddress(source, policy.loopback)) return { refused: 'reserved-address' };
  if (host !== source && !policy.allowedCidrs.some((cidr) => cidrContains(cidr, host))) return { refused: 'not-the-camera' };
  // Userinfo would be sent as Basic credentials and published with the URL.
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString() };
}

/** `url` when it passes {@link checkServiceUrl}, else undefined. */
export function allowedServiceUrl(url: string | undefined, source: string, policy: ServiceUrlPolicy): string | undefined {
  if (url === undefined) return undefined;
  const checked = checkServiceUrl(url, source, policy);
  return 'url' in checked ? checked.url : undefined;
}

/**
 * The device service URL for a camera that answered from `source`: the first XAddr on the
 * source itself, else the first inside the allowed blocks; undefined when none is acceptable
 * (the camera is then ignored and counted — never a fallback to an arbitrary XAddr).
 */
export function chooseServiceUrl(xaddrs: readonly string[], source: string, policy: ServiceUrlPolicy): string | undefined {
  const allowed = xaddrs.flatMap((x) => {
    const checked = checkServiceUrl(x, source, policy);
    return 'url' in checked ? [checked.url] : [];
  });
  return allowed.find((x) => new URL(x).hostname === source) ?? allowed[0];
}
