/**
 * A real Kubernetes node on this machine for the e2e tests: containerd (own
 * config, socket, root), CNI (bridge + host-local), locally built pause and
 * busybox images, and the real kubelet registered with a `system:node`
 * certificate — joined to a control plane from test/cluster's clusterUp().
 *
 * - `nodeUp` is idempotent: it reuses a healthy node started earlier against
 *   the same apiserver, and otherwise cleans up what is left and starts anew.
 * - `nodeDown` stops exactly what `nodeUp` started (PIDs + start times from
 *   state.json), removes every pod sandbox through CRI first (containers, CNI
 *   DEL, netns), unmounts leftovers, deletes the Node, the bridge, the kubelet
 *   root dir (if it created it) and the kubepods cgroups. The image store in
 *   the cache dir stays, so the next start skips the import.
 * - `restartKubelet` restarts only the kubelet process, same flags.
 *
 * Needs root, and: containerd, runc, containernetworking-plugins,
 * busybox-static (apt), gcc, GNU tar, openssl, iproute2.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ClusterInfo } from '../cluster/cluster.ts';
import { withLock } from '../cluster/lock.ts';
import { freePort, httpGet, isRunning, startComponent, stopComponent } from '../cluster/processes.ts';
import type { RunningComponent } from '../cluster/processes.ts';
import { isContainerdConfigCurrent, missingRuntime, startContainerd, waitContainerdReady } from './containerd.ts';
import { CriClient } from './cri.ts';
import { ensureImages } from './images.ts';
import { ensureIsolation, ensureMountNamespace, removeIsolation, removeMountNamespace } from './isolation.ts';
import { startKubelet, waitKubeletReady, writeNodeCredentials } from './kubelet.ts';
import type { KubeletEndpoints } from './kubelet.ts';
import { nodeLayout, type NodeLayout } from './layout.ts';
import { ensureBridge, removeBridge, writeCniConfig } from './network.ts';

/** state.json: what runs, and how to start it again. */
interface NodeState {
  nodeName: string;
  /** The apiserver the kubelet registered with. */
  server: string;
  kubeconfig: string;
  binDir: string;
  endpoints?: KubeletEndpoints;
  /** True when /var/lib/kubelet did not exist before: teardown removes it. */
  createdKubeletRoot: boolean;
  /** True when /run/containerd (shim and runc state) did not exist before: teardown removes it if empty. */
  createdRunContainerd?: boolean;
  containerd?: RunningComponent;
  kubelet?: RunningComponent;
}

/** What a running node offers the tests. */
export interface NodeInfo {
  name: string;
  layout: NodeLayout;
  /** True when a node started earlier was reused. */
  reused: boolean;
  /** Seconds per start-up phase (empty when reused). */
  timings: Record<string, number>;
  kubeletLog: string;
}

/** Options shared by the node operations. */
export interface NodeOptions {
  layout?: NodeLayout;
  log?: (message: string) => void;
}

/** containerd 1.6 keeps shim sockets (`s/`) and runc state (`runc/<ns>`) here, whatever its config says. */
const RUN_CONTAINERD = '/run/containerd';

const defaultLog = (message: string): void => {
  process.stderr.write(`[e2e-node] ${message}\n`);
};

function readState(layout: NodeLayout): NodeState | undefined {
  if (!existsSync(layout.stateFile)) return undefined;
  try {
    return JSON.parse(readFileSync(layout.stateFile, 'utf8')) as NodeState;
  } catch {
    return undefined;
  }
}

function writeState(layout: NodeLayout, state: NodeState): void {
  mkdirSync(layout.nodeDir, { recursive: true });
  writeFileSync(layout.stateFile, `${JSON.stringify(state, null, 2)}\n`);
}

function kubeConfigOf(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

function which(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Throws one message listing everything this machine lacks. */
function preflight(layout: NodeLayout): void {
  const missing: string[] = missingRuntime(layout);
  if (process.getuid?.() !== 0) missing.push('root (the kubelet, containerd and CNI need it)');
  for (const [command, pkg] of [
    ['containerd', 'containerd'],
    ['ctr', 'containerd'],
    ['runc', 'runc'],
    ['gcc', 'gcc'],
    ['tar', 'tar'],
    ['openssl', 'openssl'],
    ['ip', 'iproute2'],
    ['nsenter', 'util-linux'],
    ['unshare', 'util-linux'],
  ]) {
    if (!which(command!)) missing.push(`${command} (apt: ${pkg})`);
  }
  for (const plugin of ['bridge', 'host-local', 'loopback']) {
    if (!existsSync(`/usr/lib/cni/${plugin}`)) missing.push(`/usr/lib/cni/${plugin} (apt: containernetworking-plugins)`);
  }
  if (!existsSync('/bin/busybox')) missing.push('/bin/busybox (apt: busybox-static)');
  if (missing.length > 0) throw new Error(`the e2e node cannot start here; missing: ${missing.join(', ')}`);
}

/** True when something accepts connections on the Unix socket. */
function socketAnswers(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function isNodeHealthy(layout: NodeLayout, state: NodeState, cluster: ClusterInfo): Promise<boolean> {
  if (state.server !== cluster.server || state.containerd === undefined || state.kubelet === undefined || state.endpoints === undefined)
    return false;
  if (!isRunning(state.containerd) || !isRunning(state.kubelet)) return false;
  // A node started before a runtime was added (e.g. the wasm shim got built) is restarted.
  if (!isContainerdConfigCurrent(layout)) return false;
  try {
    const health = await httpGet(`http://${layout.healthzAddress}:${state.endpoints.healthzPort}/healthz`);
    if (health.status !== 200) return false;
    const node = await kubeConfigOf(cluster.kubeconfig).makeApiClient(CoreV1Api).readNode({ name: layout.nodeName });
    return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  } catch {
    return false;
  }
}

/**
 * Brings the node up against `cluster`, or reuses a healthy one. Throws with
 * the failing component's log tail; a failed start is cleaned up.
 */
export async function nodeUp(cluster: ClusterInfo, options: NodeOptions = {}): Promise<NodeInfo> {
  const layout = options.layout ?? nodeLayout();
  const log = options.log ?? defaultLog;
  preflight(layout);
  mkdirSync(layout.e2eDir, { recursive: true });
  return withLock(layout.lockFile, log, async () => {
    const previous = readState(layout);
    const kubeletLog = join(layout.logDir, 'kubelet.log');
    if (previous !== undefined && (await isNodeHealthy(layout, previous, cluster))) {
      log(`reusing node ${layout.nodeName} (kubelet pid ${previous.kubelet?.pid})`);
      return { name: layout.nodeName, layout, reused: true, timings: {}, kubeletLog };
    }
    if (previous !== undefined) await teardown(layout, previous, log);
    try {
      const timings = await start(layout, cluster, log);
      return { name: layout.nodeName, layout, reused: false, timings, kubeletLog };
    } catch (error) {
      const state = readState(layout);
      if (state !== undefined)
        await teardown(layout, state, log).catch((cleanupError: unknown) =>
          log(`cleanup after failed start failed: ${String(cleanupError)}`),
        );
      throw error;
    }
  });
}

async function start(layout: NodeLayout, cluster: ClusterInfo, log: (message: string) => void): Promise<Record<string, number>> {
  const timings: Record<string, number> = {};
  let mark = Date.now();
  const phase = (name: string): void => {
    const now = Date.now();
    timings[name] = (now - mark) / 1_000;
    mark = now;
  };
  if (await socketAnswers(join(layout.devicePluginDir, 'kubelet.sock'))) {
    throw new Error(`another kubelet serves ${layout.devicePluginDir}/kubelet.sock: only one kubelet can run per machine`);
  }
  const state: NodeState = {
    nodeName: layout.nodeName,
    server: cluster.server,
    kubeconfig: cluster.kubeconfig,
    binDir: cluster.binDir,
    // Node 2's kubelet root is its own directory (removed with its isolation), never the host's.
    createdKubeletRoot: layout.isolation === undefined && !existsSync(layout.kubeletRootDir),
    createdRunContainerd: !existsSync(RUN_CONTAINERD),
  };
  writeState(layout, state);
  // Logs describe the latest start only (components append to them).
  rmSync(layout.logDir, { recursive: true, force: true });
  mkdirSync(layout.logDir, { recursive: true });

  ensureIsolation(layout);
  ensureMountNamespace(layout.mountNs);
  ensureBridge(layout);
  writeCniConfig(layout);
  state.containerd = startContainerd(layout);
  writeState(layout, state);
  const version = await waitContainerdReady(layout, state.containerd);
  phase('containerd');
  log(`${version.runtime_name} ${version.runtime_version} ready (CRI ${version.runtime_api_version})`);

  const images = await ensureImages(layout);
  phase('images');
  log(`images ready${images.imported.length > 0 ? `; imported ${images.imported.join(', ')}` : ' (already imported)'}`);

  const certs = join(cluster.stateDir, 'certs');
  // The address nodes use (node 2 cannot reach this machine's loopback).
  writeNodeCredentials(layout, cluster.nodeServer, join(certs, 'ca.crt'), join(certs, 'ca.key'));
  const ports = new Set<number>();
  while (ports.size < 2) ports.add(await freePort());
  const [port, healthzPort] = [...ports] as [number, number];
  state.endpoints = { address: layout.nodeIp, port, healthzPort };
  const started = Date.now();
  state.kubelet = startKubelet(layout, cluster.binDir, state.endpoints, join(certs, 'ca.crt'));
  writeState(layout, state);
  await waitKubeletReady(kubeConfigOf(cluster.kubeconfig), layout, state.kubelet, healthzPort, started);
  phase('kubelet');
  log(
    `node ${layout.nodeName} Ready (containerd ${timings['containerd']} s, images ${timings['images']} s, kubelet ${timings['kubelet']} s)`,
  );
  return timings;
}

/**
 * Stops exactly what `nodeUp` started and removes what it created (see the
 * module comment). Safe to call when nothing runs.
 */
export async function nodeDown(options: NodeOptions = {}): Promise<void> {
  const layout = options.layout ?? nodeLayout();
  const log = options.log ?? defaultLog;
  mkdirSync(layout.e2eDir, { recursive: true });
  await withLock(layout.lockFile, log, async () => {
    const state = readState(layout);
    if (state === undefined) {
      log('no node state: nothing to stop');
      return;
    }
    await teardown(layout, state, log);
  });
}

/** What {@link restartKubelet} measured. */
export interface KubeletRestart {
  /** When the new kubelet process was started (epoch ms). */
  startedAt: number;
  /** How long the old process took to exit. */
  stoppedMs: number;
  /** From start to a Ready Node status posted by the new process. */
  readyMs: number;
}

/** Stops the kubelet process and starts it again with the same flags; waits for Ready. */
export async function restartKubelet(options: NodeOptions & { timeoutMs?: number } = {}): Promise<KubeletRestart> {
  const layout = options.layout ?? nodeLayout();
  const log = options.log ?? defaultLog;
  return withLock(layout.lockFile, log, async () => {
    const state = readState(layout);
    if (state?.kubelet === undefined || state.endpoints === undefined) throw new Error('no kubelet in the node state: run nodeUp first');
    const stopStarted = Date.now();
    await stopComponent(state.kubelet);
    const started = Date.now();
    state.kubelet = startComponent(state.kubelet);
    writeState(layout, state);
    await waitKubeletReady(kubeConfigOf(state.kubeconfig), layout, state.kubelet, state.endpoints.healthzPort, started, options.timeoutMs);
    return { startedAt: started, stoppedMs: started - stopStarted, readyMs: Date.now() - started };
  });
}

/** Mount points under any of `roots`, deepest first. */
function mountsUnder(roots: string[]): string[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((path) => path.replace(/\\040/g, ' '))
    .filter((path) => roots.some((root) => path === root || path.startsWith(`${root}/`)));
  return [...new Set(mounts)].sort((a, b) => b.length - a.length);
}

/** Removes empty `kubepods` cgroup trees the kubelet created (cgroup v1 and v2). */
function removeKubepodsCgroups(log: (message: string) => void): void {
  const roots = ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((name) => join('/sys/fs/cgroup', name))];
  let left = 0;
  const removeTree = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeTree(join(dir, entry.name));
    try {
      rmdirSync(dir);
    } catch {
      left++;
    }
  };
  for (const root of roots) {
    const dir = join(root, 'kubepods');
    if (existsSync(dir) && statSync(dir).isDirectory()) removeTree(dir);
  }
  if (left > 0) log(`${left} kubepods cgroups still in use; left in place`);
}

/** Removes `dir` and its subdirectories bottom-up where empty; leaves anything with files. */
function removeEmptyDirs(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeEmptyDirs(join(dir, entry.name));
  try {
    rmdirSync(dir);
  } catch {
    // Not empty: someone else's state.
  }
}

/** Processes whose command line names our containerd socket (shims of our containerd). */
function ourShims(layout: NodeLayout): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.includes('containerd-shim') && argv.includes(layout.containerdSocket)) pids.push(Number(entry));
    } catch {
      // Exited meanwhile.
    }
  }
  return pids;
}

async function removeSandboxes(layout: NodeLayout, log: (message: string) => void): Promise<void> {
  const cri = new CriClient(layout.containerdSocket);
  try {
    const sandboxes = await cri.sandboxes();
    for (const sandbox of sandboxes) {
      await cri
        .removeSandbox(sandbox.id)
        .catch((error: unknown) => log(`could not remove sandbox ${sandbox.id}: ${(error as Error).message}`));
    }
    if (sandboxes.length > 0) log(`removed ${sandboxes.length} pod sandboxes`);
  } finally {
    cri.close();
  }
}

async function deleteNode(state: NodeState, log: (message: string) => void): Promise<void> {
  if (!existsSync(state.kubeconfig)) return;
  try {
    await kubeConfigOf(state.kubeconfig).makeApiClient(CoreV1Api).deleteNode({ name: state.nodeName });
  } catch (error) {
    const code = (error as { code?: number }).code;
    if (code !== 404) log(`could not delete Node ${state.nodeName}: ${(error as Error).message}`);
  }
}

async function teardown(layout: NodeLayout, state: NodeState, log: (message: string) => void): Promise<void> {
  if (state.kubelet !== undefined) await stopComponent(state.kubelet);
  // Pod sandboxes outlive the kubelet: remove them through CRI, with a
  // containerd of ours (restarted for the purpose if it died).
  let containerd = state.containerd;
  const shims = ourShims(layout);
  if (containerd !== undefined && !isRunning(containerd) && shims.length > 0 && existsSync(layout.containerdConfig)) {
    containerd = startContainerd(layout);
    state.containerd = containerd;
    writeState(layout, state);
    await waitContainerdReady(layout, containerd);
  }
  if (containerd !== undefined && isRunning(containerd)) {
    await removeSandboxes(layout, log);
    await stopComponent(containerd);
  }
  for (const pid of ourShims(layout)) {
    log(`killing leftover shim ${pid}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  // The node's own mounts live in its mount namespace (gone with its last process); this
  // catches only what an older layout left on the host. Node 2's kubelet root is not the host's.
  const ownMounts =
    layout.isolation === undefined ? [layout.runDir, layout.containerdRoot, layout.kubeletRootDir] : [layout.runDir, layout.containerdRoot];
  for (const mount of mountsUnder(ownMounts).filter((m) => m !== layout.mountNs.dir && m !== layout.mountNs.file)) {
    try {
      execFileSync('umount', ['-l', mount], { stdio: 'ignore' });
    } catch {
      log(`could not unmount ${mount}`);
    }
  }
  await deleteNode(state, log);
  removeBridge(layout);
  removeMountNamespace(layout.mountNs);
  removeIsolation(layout, log);
  if (state.createdKubeletRoot && mountsUnder([layout.kubeletRootDir]).length === 0) {
    rmSync(layout.kubeletRootDir, { recursive: true, force: true });
  }
  if (layout.isolation === undefined) removeKubepodsCgroups(log);
  rmSync(layout.runDir, { recursive: true, force: true });
  if (state.createdRunContainerd === true) removeEmptyDirs(RUN_CONTAINERD);
  rmSync(layout.stateFile, { force: true });
  log(`node ${state.nodeName} stopped and cleaned up`);
}

/** Stops only the kubelet (containerd and the pods keep running), as a crashed or stopped kubelet would. */
export async function stopKubelet(options: NodeOptions = {}): Promise<void> {
  const layout = options.layout ?? nodeLayout();
  const log = options.log ?? defaultLog;
  await withLock(layout.lockFile, log, async () => {
    const state = readState(layout);
    if (state?.kubelet === undefined) throw new Error('no kubelet in the node state: run nodeUp first');
    await stopComponent(state.kubelet);
  });
}

/** Starts the kubelet stopped by {@link stopKubelet} again, same flags; waits for Ready. */
export async function startKubeletAgain(options: NodeOptions & { timeoutMs?: number } = {}): Promise<void> {
  const layout = options.layout ?? nodeLayout();
  const log = options.log ?? defaultLog;
  await withLock(layout.lockFile, log, async () => {
    const state = readState(layout);
    if (state?.kubelet === undefined || state.endpoints === undefined) throw new Error('no kubelet in the node state: run nodeUp first');
    if (isRunning(state.kubelet)) return;
    const started = Date.now();
    state.kubelet = startComponent(state.kubelet);
    writeState(layout, state);
    await waitKubeletReady(kubeConfigOf(state.kubeconfig), layout, state.kubelet, state.endpoints.healthzPort, started, options.timeoutMs);
  });
}
