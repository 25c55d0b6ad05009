/**
 * Node 2's own "machine": a network namespace joined to node 1's bridge by a
 * veth (its node IP), IP forwarding inside it (its pods reach the apiserver on
 * node 1's address through it), a route on the host back to its pod subnet,
 * and a persistent mount namespace where `/var/lib/kubelet` and
 * `/var/lib/tether` are its own directories. Its containerd and kubelet run
 * inside both namespaces (`nodeCommand`), so the pods it starts — hostNetwork
 * ones included — see node 2's network and node 2's kubelet directories.
 *
 * The mount namespace is slave to the host's (host mounts such as `/dev`
 * propagate in, which HostToContainer volume propagation requires; nothing
 * propagates out) and kept alive by a bind mount of its nsfs file, the way
 * `ip netns` keeps network namespaces.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeIsolation, NodeLayout } from './layout.ts';

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? (error as Error).message;
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr}`, { cause: error });
  }
}

/** `command args` as it must be started to run on `layout`'s node. */
export function nodeCommand(layout: NodeLayout, command: string, args: string[]): { command: string; args: string[] } {
  const isolation = layout.isolation;
  if (isolation === undefined) return { command, args };
  return { command: 'nsenter', args: [`--mount=${isolation.mountNsFile}`, `--net=/run/netns/${isolation.netns}`, '--', command, ...args] };
}

function netnsExists(netns: string): boolean {
  return existsSync(`/run/netns/${netns}`);
}

function linkExists(name: string, netns?: string): boolean {
  try {
    execFileSync('ip', [...(netns === undefined ? [] : ['-n', netns]), 'link', 'show', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function isMountPoint(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}

/** The network namespace, the uplink veth, forwarding and the host's return route. Idempotent. */
function ensureNetwork(layout: NodeLayout, isolation: NodeIsolation): void {
  if (!netnsExists(isolation.netns)) run('ip', ['netns', 'add', isolation.netns]);
  run('ip', ['-n', isolation.netns, 'link', 'set', 'lo', 'up']);
  if (!linkExists(isolation.hostIf)) {
    run('ip', ['link', 'add', isolation.hostIf, 'type', 'veth', 'peer', 'name', isolation.nodeIf, 'netns', isolation.netns]);
  }
  run('ip', ['link', 'set', isolation.hostIf, 'master', isolation.hostBridge, 'up']);
  const addresses = run('ip', ['-n', isolation.netns, '-4', '-o', 'addr', 'show', 'dev', isolation.nodeIf]);
  if (!addresses.includes(` ${layout.nodeIp}/`)) run('ip', ['-n', isolation.netns, 'addr', 'add', `${layout.nodeIp}/24`, 'dev', isolation.nodeIf]);
  run('ip', ['-n', isolation.netns, 'link', 'set', isolation.nodeIf, 'up']);
  // The node routes its pods' traffic to the apiserver; sysctls are per network namespace.
  run('ip', ['netns', 'exec', isolation.netns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
  run('ip', ['route', 'replace', layout.podSubnet, 'via', layout.nodeIp, 'dev', isolation.hostBridge]);
}

/** The persistent mount namespace with the node's own kubelet and tether directories. Idempotent. */
function ensureMounts(isolation: NodeIsolation): void {
  for (const { source, target } of isolation.binds) {
    mkdirSync(source, { recursive: true });
    // The mount point must exist on the host too (node 1 uses the same paths).
    mkdirSync(target, { recursive: true });
  }
  mkdirSync(isolation.mountNsDir, { recursive: true });
  if (!isMountPoint(isolation.mountNsDir)) {
    run('mount', ['--bind', isolation.mountNsDir, isolation.mountNsDir]);
    run('mount', ['--make-private', isolation.mountNsDir]);
  }
  if (isMountPoint(isolation.mountNsFile)) return;
  writeFileSync(isolation.mountNsFile, '');
  run('unshare', [`--mount=${isolation.mountNsFile}`, '--propagation', 'slave', 'true']);
  for (const { source, target } of isolation.binds) run('nsenter', [`--mount=${isolation.mountNsFile}`, 'mount', '--bind', source, target]);
}

/** cgroup v1 hierarchies (and the v2 root, if mounted) where the node's pod cgroups live. */
function cgroupDirs(isolation: NodeIsolation): string[] {
  const base = '/sys/fs/cgroup';
  const roots = readdirSync(base, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== 'unified')
    .map((entry) => join(base, entry.name));
  // cgroup v2 only: the hierarchy is the base itself.
  if (existsSync(join(base, 'cgroup.controllers'))) roots.push(base);
  return roots.map((root) => join(root, isolation.cgroupRoot));
}

/** The kubelet refuses a cgroupRoot that does not exist in every hierarchy. */
function ensureCgroupRoot(isolation: NodeIsolation): void {
  for (const dir of cgroupDirs(isolation)) mkdirSync(dir, { recursive: true });
}

/** Creates node 2's namespaces, mounts and cgroup parent. Node 1's bridge must exist. */
export function ensureIsolation(layout: NodeLayout): void {
  const isolation = layout.isolation;
  if (isolation === undefined) return;
  ensureNetwork(layout, isolation);
  ensureMounts(isolation);
  ensureCgroupRoot(isolation);
}

function removeTree(dir: string): number {
  let left = 0;
  if (!existsSync(dir)) return 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) left += removeTree(join(dir, entry.name));
  try {
    rmdirSync(dir);
  } catch {
    left++;
  }
  return left;
}

/**
 * Removes what ensureIsolation created. Every process of the node must be
 * gone: the mount namespace (and every mount in it) ends with its last user.
 */
export function removeIsolation(layout: NodeLayout, log: (message: string) => void): void {
  const isolation = layout.isolation;
  if (isolation === undefined) return;
  if (isMountPoint(isolation.mountNsFile)) run('umount', [isolation.mountNsFile]);
  if (isMountPoint(isolation.mountNsDir)) run('umount', [isolation.mountNsDir]);
  try {
    execFileSync('ip', ['route', 'del', layout.podSubnet, 'via', layout.nodeIp], { stdio: 'ignore' });
  } catch {
    // Gone with the bridge already.
  }
  // The uplink's host end goes first (deleting the namespace removes it only asynchronously).
  if (linkExists(isolation.hostIf)) {
    try {
      execFileSync('ip', ['link', 'del', isolation.hostIf], { stdio: 'ignore' });
    } catch {
      // Gone meanwhile.
    }
  }
  if (netnsExists(isolation.netns)) run('ip', ['netns', 'del', isolation.netns]);
  let cgroupsLeft = 0;
  for (const dir of cgroupDirs(isolation)) cgroupsLeft += removeTree(dir);
  if (cgroupsLeft > 0) log(`${cgroupsLeft} cgroups under ${isolation.cgroupRoot} still in use; left in place`);
  rmSync(isolation.hostRoot, { recursive: true, force: true });
}

/**
 * Cuts (false) or restores (true) node 2's link to node 1 and the apiserver:
 * a network partition, as when a node's machine drops off the network. The
 * device LAN (a separate link) stays up.
 */
export function setUplink(layout: NodeLayout, up: boolean): void {
  const isolation = layout.isolation;
  if (isolation === undefined) throw new Error(`node ${layout.nodeName} shares the host's network: it has no uplink to cut`);
  run('ip', ['link', 'set', isolation.hostIf, up ? 'up' : 'down']);
}
