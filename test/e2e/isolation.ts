/**
 * A node's own "machine" on this one. Every node: a persistent mount
 * namespace (kept alive by a bind mount of its nsfs file, the way `ip netns`
 * keeps network namespaces) with `/` shared inside, as on a real node. Node 2
 * also: `/var/lib/kubelet` and `/var/lib/tether` bind-mounted from its own
 * directories, a network namespace joined to node 1's bridge by a veth (its
 * node IP), IP forwarding inside it (its pods reach the apiserver on node 1's
 * address through it), a route on the host back to its pod subnet, and its
 * own cgroup parent. containerd and the kubelet run inside (`nodeCommand`), so
 * the pods they start — hostNetwork ones included — see the node's network
 * and the node's kubelet directories.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeIsolation, NodeLayout, NodeMountNamespace } from './layout.ts';
import { runCommand } from '../../deploy/image/exec.ts';

/** `command args` as it must be started to run on `layout`'s node. */
export function nodeCommand(layout: NodeLayout, command: string, args: string[]): { command: string; args: string[] } {
  const net = layout.isolation === undefined ? [] : [`--net=/run/netns/${layout.isolation.netns}`];
  return { command: 'nsenter', args: [`--mount=${layout.mountNs.file}`, ...net, '--', command, ...args] };
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
  if (!netnsExists(isolation.netns)) runCommand('ip', ['netns', 'add', isolation.netns]);
  runCommand('ip', ['-n', isolation.netns, 'link', 'set', 'lo', 'up']);
  if (!linkExists(isolation.hostIf)) {
    runCommand('ip', ['link', 'add', isolation.hostIf, 'type', 'veth', 'peer', 'name', isolation.nodeIf, 'netns', isolation.netns]);
  }
  runCommand('ip', ['link', 'set', isolation.hostIf, 'master', isolation.hostBridge, 'up']);
  const addresses = runCommand('ip', ['-n', isolation.netns, '-4', '-o', 'addr', 'show', 'dev', isolation.nodeIf]);
  if (!addresses.includes(` ${layout.nodeIp}/`))
    runCommand('ip', ['-n', isolation.netns, 'addr', 'add', `${layout.nodeIp}/24`, 'dev', isolation.nodeIf]);
  runCommand('ip', ['-n', isolation.netns, 'link', 'set', isolation.nodeIf, 'up']);
  // The node routes its pods' traffic to the apiserver; sysctls are per network namespace.
  runCommand('ip', ['netns', 'exec', isolation.netns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
  runCommand('ip', ['route', 'replace', layout.podSubnet, 'via', layout.nodeIp, 'dev', isolation.hostBridge]);
}

/**
 * The node's persistent mount namespace: `/` recursively shared inside it (as
 * on a systemd node; HostToContainer propagation needs it, and the host's
 * own mounts stay as they are) and the node's own bind mounts. Idempotent.
 */
export function ensureMountNamespace(mountNs: NodeMountNamespace): void {
  for (const { source, target } of mountNs.binds) {
    mkdirSync(source, { recursive: true });
    // The mount point must exist on the host too (node 1 uses the same paths).
    mkdirSync(target, { recursive: true });
  }
  mkdirSync(mountNs.dir, { recursive: true });
  if (!isMountPoint(mountNs.dir)) {
    runCommand('mount', ['--bind', mountNs.dir, mountNs.dir]);
    runCommand('mount', ['--make-private', mountNs.dir]);
  }
  if (isMountPoint(mountNs.file)) return;
  writeFileSync(mountNs.file, '');
  // Private: nothing the node mounts (pod volumes, container root filesystems) leaks to the host.
  runCommand('unshare', [`--mount=${mountNs.file}`, '--propagation', 'private', 'true']);
  const inNs = (args: string[]): string => runCommand('nsenter', [`--mount=${mountNs.file}`, ...args]);
  for (const { source, target } of mountNs.binds) inNs(['mount', '--bind', source, target]);
  inNs(['mount', '--make-rshared', '/']);
}

/** Unmounts the namespace file: the namespace ends with its last process. */
export function removeMountNamespace(mountNs: NodeMountNamespace): void {
  if (isMountPoint(mountNs.file)) runCommand('umount', [mountNs.file]);
  if (isMountPoint(mountNs.dir)) runCommand('umount', [mountNs.dir]);
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

/** Creates node 2's network namespace and cgroup parent. Node 1's bridge must exist. */
export function ensureIsolation(layout: NodeLayout): void {
  const isolation = layout.isolation;
  if (isolation === undefined) return;
  ensureNetwork(layout, isolation);
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
  if (netnsExists(isolation.netns)) runCommand('ip', ['netns', 'del', isolation.netns]);
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
  runCommand('ip', ['link', 'set', isolation.hostIf, up ? 'up' : 'down']);
}
