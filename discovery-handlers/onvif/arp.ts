/**
 * MAC addresses of on-link neighbours from the kernel's ARP table (/proc/net/arp): the
 * fallback when a camera does not tell its MAC over ONVIF. Only works for cameras on a
 * directly attached link (routers hide MACs), and only after some traffic to them.
 */
import { readFile } from 'node:fs/promises';
import { normalizeMac } from './details.ts';

/** Parses /proc/net/arp text into IP → MAC (complete entries only). */
export function parseArpTable(text: string): Map<string, string> {
  const table = new Map<string, string>();
  for (const line of text.split('\n').slice(1)) {
    const [ip, , flags, mac] = line.trim().split(/\s+/);
    if (ip === undefined || mac === undefined || flags === undefined) continue;
    // Flag 0x2 = ATF_COM (complete); 00:00:00:00:00:00 = incomplete.
    const normalized = normalizeMac(mac);
    if ((Number.parseInt(flags, 16) & 0x2) === 0 || normalized === undefined || normalized === '00:00:00:00:00:00') continue;
    table.set(ip, normalized);
  }
  return table;
}

/** Looks `ip` up in `file` (default /proc/net/arp); undefined when unknown or unreadable. */
export async function lookupArp(ip: string, file = '/proc/net/arp'): Promise<string | undefined> {
  try {
    return parseArpTable(await readFile(file, 'utf8')).get(ip);
  } catch {
    return undefined;
  }
}
