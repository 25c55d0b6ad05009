/**
 * A second "host" for peer tests: a network namespace joined to this one by a veth pair, so
 * multicast (mDNS, WS-Discovery) crosses a real link instead of loopback.
 *
 *   this namespace                          peer namespace <ns>
 *   <hostIf> hostAddress/24  ═══ veth ═══   <peerIf> peerAddress/24
 *                                            route 224.0.0.0/4 dev <peerIf>
 *
 * Only the peer namespace gets a multicast route; this side must choose the interface
 * explicitly (e.g. bonjour-service `{interface: hostAddress, bind: '0.0.0.0'}`), so no
 * test traffic leaves through the machine's real interfaces. Needs root (CAP_NET_ADMIN).
 * Names and the /24 are random per link, so concurrent test runs do not collide.
 */
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import type { SpawnOptions } from 'node:child_process';
import { run, startPeer, type PeerGroup, type PeerProcess } from './process.ts';

export interface NetnsLink {
  /** Network namespace name (for `ip netns exec`). */
  readonly ns: string;
  /** veth end in this namespace. */
  readonly hostIf: string;
  readonly hostAddress: string;
  /** veth end inside `ns`. */
  readonly peerIf: string;
  readonly peerAddress: string;
  /** Starts a command inside the namespace (own process group; stopped by the group's cleanup). */
  spawn(name: string, command: string, args: readonly string[], options?: SpawnOptions): PeerProcess;
  /** Runs a command inside the namespace to completion. */
  exec(command: string, args: readonly string[]): Promise<string>;
}

function usedIpv4Prefixes(): Set<string> {
  const used = new Set<string>();
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4') used.add(a.address.split('.').slice(0, 3).join('.'));
  }
  return used;
}

/** Creates the namespace and the link; `group.close()` deletes both and kills what runs inside. */
export async function createNetnsLink(group: PeerGroup, tag = 'peer'): Promise<NetnsLink> {
  const id = randomBytes(3).toString('hex');
  const ns = `tether-${tag}-${id}`;
  const hostIf = `th${id}`;
  const peerIf = `tp${id}`;
  const used = usedIpv4Prefixes();
  let prefix = '';
  for (let attempt = 0; attempt < 50 && (prefix === '' || used.has(prefix)); attempt++) {
    const bytes = randomBytes(2);
    prefix = `10.${200 + (bytes[0]! % 50)}.${bytes[1]!}`;
  }
  if (used.has(prefix)) throw new Error('no free 10.x.y.0/24 for a test link');
  const hostAddress = `${prefix}.1`;
  const peerAddress = `${prefix}.2`;

  await run('ip', ['netns', 'add', ns]);
  group.defer(`netns ${ns}`, async () => {
    // Processes left inside (ours: only tests start anything there) would keep it alive.
    const pids = (await run('ip', ['netns', 'pids', ns]).catch(() => '')).split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await run('ip', ['netns', 'del', ns]);
    await run('ip', ['link', 'del', hostIf]).catch(() => undefined); // normally gone with the namespace
  });
  await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf]);
  await run('ip', ['link', 'set', peerIf, 'netns', ns]);
  await run('ip', ['addr', 'add', `${hostAddress}/24`, 'dev', hostIf]);
  await run('ip', ['link', 'set', hostIf, 'up']);
  const inNs = (args: string[]): Promise<string> => run('ip', ['netns', 'exec', ns, ...args]);
  await inNs(['ip', 'link', 'set', 'lo', 'up']);
  await inNs(['ip', 'addr', 'add', `${peerAddress}/24`, 'dev', peerIf]);
  await inNs(['ip', 'link', 'set', peerIf, 'up']);
  await inNs(['ip', 'route', 'add', '224.0.0.0/4', 'dev', peerIf]);

  return {
    ns,
    hostIf,
    hostAddress,
    peerIf,
    peerAddress,
    spawn: (name, command, args, options) => startPeer(group, name, 'ip', ['netns', 'exec', ns, command, ...args], options),
    exec: (command, args) => inNs([command, ...args]),
  };
}
