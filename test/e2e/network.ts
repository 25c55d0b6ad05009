/**
 * Pod networking for an e2e node: a Linux bridge we create ourselves (its
 * `.1` address is the pods' gateway; on node 1 also the node IP) and a CNI
 * config using the `bridge` and `host-local` plugins from
 * containernetworking-plugins (/usr/lib/cni). Node 2's bridge lives in its
 * own network namespace.
 *
 * Pods get a default route to their bridge and nothing else: no masquerading.
 * Node 1's pods reach the apiserver on the bridge itself; node 2's through
 * node 2 (isolation.ts), which forwards inside its own namespace. The host's
 * sysctls stay untouched.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeLayout } from './layout.ts';

/** `ip [-n netns] …`; throws with ip's stderr. */
export function ip(args: readonly string[], netns?: string): string {
  try {
    return execFileSync('ip', [...(netns === undefined ? [] : ['-n', netns]), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? '';
    throw new Error(`ip ${args.join(' ')} failed: ${stderr}`, { cause: error });
  }
}

interface IpAddress {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

interface IpRoute {
  dst: string;
  dev?: string;
}

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
}

/** True when two IPv4 CIDRs share addresses (the shorter prefix decides). */
function overlaps(a: string, b: string): boolean {
  const [aIp = '', aLen = '32'] = a.split('/');
  const [bIp = '', bLen = '32'] = b.split('/');
  const unit = 2 ** (32 - Math.min(Number(aLen), Number(bLen)));
  return Math.floor(ipv4ToNumber(aIp) / unit) === Math.floor(ipv4ToNumber(bIp) / unit);
}

/**
 * Creates the bridge with the node IP (or reuses it). Throws when another
 * interface already routes an overlapping subnet (choose another with
 * TETHER_E2E_POD_SUBNET).
 */
export function ensureBridge(layout: NodeLayout): void {
  const netns = layout.isolation?.netns;
  const routes = JSON.parse(ip(['-j', '-4', 'route', 'show', 'table', 'main'], netns)) as IpRoute[];
  const clash = routes.find(
    (route) =>
      route.dev !== layout.bridge &&
      route.dst !== 'default' &&
      overlaps(route.dst.includes('/') ? route.dst : `${route.dst}/32`, layout.podSubnet),
  );
  if (clash !== undefined) {
    throw new Error(
      `pod subnet ${layout.podSubnet} overlaps route ${clash.dst} on ${clash.dev ?? '?'}: set TETHER_E2E_POD_SUBNET to a free /24`,
    );
  }
  const links = JSON.parse(ip(['-j', '-4', 'addr', 'show'], netns)) as IpAddress[];
  const existing = links.find((link) => link.ifname === layout.bridge);
  if (existing === undefined) ip(['link', 'add', layout.bridge, 'type', 'bridge'], netns);
  const prefix = layout.podSubnet.split('/')[1] ?? '24';
  if (!(existing?.addr_info ?? []).some((a) => a.local === layout.podGateway)) {
    // Exactly the address the bridge plugin would give a gateway, so it accepts the bridge as is.
    ip(['addr', 'add', `${layout.podGateway}/${prefix}`, 'dev', layout.bridge], netns);
  }
  ip(['link', 'set', layout.bridge, 'up'], netns);
}

/** Removes the bridge (its veths are gone with the pod sandboxes); absent is fine. */
export function removeBridge(layout: NodeLayout): void {
  const netns = layout.isolation?.netns;
  if (netns !== undefined && !existsSync(`/run/netns/${netns}`)) return;
  const links = JSON.parse(ip(['-j', 'link', 'show'], netns)) as { ifname: string }[];
  if (links.some((link) => link.ifname === layout.bridge)) ip(['link', 'del', layout.bridge], netns);
}

/** The CNI network config list: bridge + host-local, pods from `.10` up. */
export function cniConfig(layout: NodeLayout): object {
  const base = layout.podSubnet.replace(/\.0\/24$/, '');
  return {
    cniVersion: '1.0.0',
    name: 'tether-e2e',
    plugins: [
      {
        type: 'bridge',
        bridge: layout.bridge,
        // Default route via the bridge: node 2's pods reach the apiserver through node 2.
        isGateway: true,
        ipMasq: false,
        hairpinMode: false,
        ipam: {
          type: 'host-local',
          dataDir: layout.cniIpamDir,
          ranges: [[{ subnet: layout.podSubnet, rangeStart: `${base}.10`, rangeEnd: `${base}.250`, gateway: layout.podGateway }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
    ],
  };
}

/** Writes the CNI config where containerd's CRI plugin looks for it. */
export function writeCniConfig(layout: NodeLayout): void {
  mkdirSync(layout.cniConfDir, { recursive: true });
  mkdirSync(layout.cniIpamDir, { recursive: true });
  writeFileSync(join(layout.cniConfDir, '10-tether-e2e.conflist'), `${JSON.stringify(cniConfig(layout), null, 2)}\n`);
}
