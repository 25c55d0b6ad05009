/** IPv4 addresses and CIDR blocks as 32-bit integers, for the network handlers (onvif, opcua). Pure. */

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  readonly network: number;
  readonly prefix: number;
  readonly source: string;
}

const OCTETS = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The address as an unsigned integer, or undefined when `text` is not dotted-quad IPv4. */
export function ipv4ToInt(text: string): number | undefined {
  const m = OCTETS.exec(text);
  if (m === null) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
}

export function intToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `a.b.c.d` or `a.b.c.d/n`; undefined when invalid. Host bits are cleared. */
export function parseCidr(text: string): Cidr | undefined {
  const [address, prefixText, extra] = text.split('/');
  if (address === undefined || extra !== undefined) return undefined;
  const ip = ipv4ToInt(address);
  if (ip === undefined) return undefined;
  let prefix = 32;
  if (prefixText !== undefined) {
    if (!/^\d{1,2}$/.test(prefixText) || Number(prefixText) > 32) return undefined;
    prefix = Number(prefixText);
  }
  return { network: (ip & mask(prefix)) >>> 0, prefix, source: text };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const value = ipv4ToInt(ip);
  return value !== undefined && (value & mask(cidr.prefix)) >>> 0 === cidr.network;
}

/** Host count of a block as probed: network and broadcast addresses are skipped below /31. */
export function hostCount(cidr: Cidr): number {
  const size = 2 ** (32 - cidr.prefix);
  return cidr.prefix >= 31 ? size : size - 2;
}

/** Every probeable host address of a block, in order. */
export function* hosts(cidr: Cidr): Generator<string> {
  const size = 2 ** (32 - cidr.prefix);
  const [first, last] = cidr.prefix >= 31 ? [0, size - 1] : [1, size - 2];
  for (let i = first; i <= last; i++) yield intToIpv4((cidr.network + i) >>> 0);
}
