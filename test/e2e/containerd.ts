/**
 * containerd for the e2e node: its own config file, socket, root and state,
 * so it never touches a system containerd (if one runs) and can be removed
 * without a trace. Per node (`layout.runtime`): Debian's containerd 1.6
 * (config version 2, no CDI) or containerd 2 built by test/cluster/build.sh
 * (config version 3, CDI specs from `/etc/cdi` and the node's `/var/run/cdi`).
 *
 * WARNING: containerd 1.6 puts shim sockets in /run/containerd/s whatever the
 * config says; their names hash our socket address, so they do not collide
 * with a system containerd's.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { isRunning, logTail, startComponent } from '../cluster/processes.ts';
import type { RunningComponent } from '../cluster/processes.ts';
import { CriClient, type CriVersion } from './cri.ts';
import { nodeCommand } from './isolation.ts';
import type { NodeLayout } from './layout.ts';
import { NODE_CDI_DIR, PAUSE_IMAGE } from './layout.ts';

const BUILD_SCRIPT = join(import.meta.dirname, '..', 'cluster', 'build.sh');
const WASM_SHIM_SCRIPT = join(import.meta.dirname, '..', 'cluster', 'build-wasm-shim.sh');

/** Tether's wasmtime shim (deploy/wasm-shim): containerd maps runtime type `io.containerd.wasmtime.v1` to this name on its PATH. */
export const WASM_SHIM_BINARY = 'containerd-shim-wasmtime-v1';
/** The CRI runtime handler (and RuntimeClass name) that runs WebAssembly on the containerd 1.6 node. */
export const WASM_RUNTIME_HANDLER = 'wasmtime';

/**
 * Where test/cluster/build-wasm-shim.sh puts the shim for the current sources (a dir named by
 * their hash, so a changed crate is a different dir). Asks the script (~0.1 s, builds nothing).
 */
export function wasmShimBinDir(cacheDir: string): string {
  return execFileSync('bash', [WASM_SHIM_SCRIPT, '--print-dir'], {
    encoding: 'utf8',
    env: { ...process.env, TETHER_CACHE: cacheDir },
  }).trim();
}

/** The shim's bin dir when the shim is built (test/cluster/build.sh builds it), else undefined. */
export function builtWasmShimDir(cacheDir: string): string | undefined {
  try {
    const dir = wasmShimBinDir(cacheDir);
    return existsSync(join(dir, WASM_SHIM_BINARY)) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** The pinned containerd 2 version, read from test/cluster/build.sh so it is stated once. */
export function pinnedContainerdVersion(): string {
  const match = /^CONTAINERD_VERSION=(\S+)$/m.exec(readFileSync(BUILD_SCRIPT, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`no CONTAINERD_VERSION= line in ${BUILD_SCRIPT}`);
  return match[1];
}

/** Where build.sh puts containerd 2 (containerd, containerd-shim-runc-v2, ctr) under a cache dir. */
export function containerdBinDir(cacheDir: string): string {
  return join(cacheDir, `containerd-${pinnedContainerdVersion()}`, 'bin');
}

/** The `ctr` that speaks to this node's containerd (containerd 2's own for a containerd-2 node). */
export function ctrCommand(layout: NodeLayout): string {
  return layout.runtime === 'containerd-2' ? join(containerdBinDir(layout.cacheDir), 'ctr') : 'ctr';
}

/** What a node's runtime lacks on this machine (empty: it can start). */
export function missingRuntime(layout: NodeLayout): string[] {
  if (layout.runtime !== 'containerd-2') return [];
  const bin = containerdBinDir(layout.cacheDir);
  return ['containerd', 'containerd-shim-runc-v2', 'ctr']
    .filter((name) => !existsSync(join(bin, name)))
    .map((name) => `${join(bin, name)} (containerd 2: test/cluster/build.sh builds it)`);
}

/** The config of the node's containerd. */
export function containerdConfig(layout: NodeLayout, wasmShimDir: string | undefined = nodeWasmShimDir(layout)): string {
  return layout.runtime === 'containerd-2' ? containerd2Config(layout) : containerd16Config(layout, wasmShimDir);
}

/** The wasm shim's dir for `layout`'s containerd: built, and the node runs containerd 1.6. */
function nodeWasmShimDir(layout: NodeLayout): string | undefined {
  return layout.runtime === 'containerd-2' ? undefined : builtWasmShimDir(layout.cacheDir);
}

/**
 * True when the config file on disk is what this checkout would write: a reused node must not
 * lack a runtime, nor run an earlier build of the wasm shim (its dir is named in the config).
 */
export function isContainerdConfigCurrent(layout: NodeLayout): boolean {
  return existsSync(layout.containerdConfig) && readFileSync(layout.containerdConfig, 'utf8') === containerdConfig(layout);
}

/**
 * containerd 2's config (version 3 schema). CRI is split into plugins: runtime
 * (`io.containerd.cri.v1.runtime`: runc, CNI, CDI), images (`io.containerd.cri.v1.images`:
 * snapshotter, the pinned sandbox image) and the server (`io.containerd.grpc.v1.cri`: streaming).
 * CDI is always on in containerd ≥ 2.0 (`enable_cdi` is gone: 2.x drops the key when it
 * migrates an old config); `cdi_spec_dirs` names the directories spelled out here.
 */
function containerd2Config(layout: NodeLayout): string {
  const runtime = `plugins.'io.containerd.cri.v1.runtime'`;
  const images = `plugins.'io.containerd.cri.v1.images'`;
  return `# Written by test/e2e/containerd.ts; regenerated on every node start.
version = 3
root = ${JSON.stringify(layout.containerdRoot)}
state = ${JSON.stringify(layout.containerdState)}
# Snapshotters that cannot work here only add warnings; NRI would serve a machine-wide
# socket (/var/run/nri/nri.sock) that two nodes on one machine would fight over.
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.erofs", "io.containerd.nri.v1.nri"]

[grpc]
  address = ${JSON.stringify(layout.containerdSocket)}

[ttrpc]
  address = ${JSON.stringify(`${layout.containerdSocket}.ttrpc`)}

[debug]
  address = ""

[metrics]
  address = ""

# Default /opt/containerd: keep it inside our root instead.
[plugins.'io.containerd.internal.v1.opt']
  path = ${JSON.stringify(join(layout.containerdRoot, 'opt'))}

[plugins.'io.containerd.grpc.v1.cri']
  # Streaming (exec/attach/port-forward) on loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[${images}]
  snapshotter = "overlayfs"
  [${images}.pinned_images]
    sandbox = ${JSON.stringify(PAUSE_IMAGE)}

[${runtime}]
  # No CAP_SYS_RESOURCE in this VM: runc must not lower a process's oom_score_adj.
  restrict_oom_score_adj = true
  # CDI: /etc/cdi (static) and the node's own /var/run/cdi (DRA drivers write their specs there).
  cdi_spec_dirs = ["/etc/cdi", ${JSON.stringify(NODE_CDI_DIR)}]
  [${runtime}.containerd]
    default_runtime_name = "runc"
    [${runtime}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${runtime}.containerd.runtimes.runc.options]
        # cgroup v1 with the cgroupfs driver, as the kubelet is configured.
        SystemdCgroup = false
  [${runtime}.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = ${JSON.stringify(layout.cniConfDir)}
    max_conf_num = 1
`;
}

/**
 * The containerd config (version 2 schema, containerd 1.6). With `wasmShimDir`, a second runtime
 * `wasmtime` (type `io.containerd.wasmtime.v1`: containerd runs containerd-shim-wasmtime-v1 from
 * its PATH, which {@link startContainerd} puts first): pods with `runtimeClassName: wasmtime` run
 * the `.wasm` entrypoint of their image in wasmtime, their pause container as a plain process.
 */
function containerd16Config(layout: NodeLayout, wasmShimDir: string | undefined): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `# Written by test/e2e/containerd.ts; regenerated on every node start.
version = 2
root = ${JSON.stringify(layout.containerdRoot)}
state = ${JSON.stringify(layout.containerdState)}
# Snapshotters that cannot work here only add warnings.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = ${JSON.stringify(layout.containerdSocket)}

[ttrpc]
  address = ${JSON.stringify(`${layout.containerdSocket}.ttrpc`)}

[debug]
  address = ""

[metrics]
  address = ""

# Default /opt/containerd: keep it inside our root instead.
[plugins."io.containerd.internal.v1.opt"]
  path = ${JSON.stringify(join(layout.containerdRoot, 'opt'))}

[${cri}]
  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}
  # No CAP_SYS_RESOURCE in this VM: runc must not lower a process's oom_score_adj.
  restrict_oom_score_adj = true
  # Streaming (exec/attach/port-forward) on loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [${cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        # cgroup v1 with the cgroupfs driver, as the kubelet is configured.
        SystemdCgroup = false
${
  wasmShimDir !== undefined
    ? `    # WebAssembly: ${join(wasmShimDir, WASM_SHIM_BINARY)}, first on containerd's PATH.
    [${cri}.containerd.runtimes.${WASM_RUNTIME_HANDLER}]
      runtime_type = "io.containerd.wasmtime.v1"
`
    : ''
}  [${cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${JSON.stringify(layout.cniConfDir)}
    max_conf_num = 1
`;
}

/** Writes the config and starts containerd in its own process group. */
export function startContainerd(layout: NodeLayout): RunningComponent {
  mkdirSync(join(layout.containerdConfig, '..'), { recursive: true });
  mkdirSync(layout.containerdRoot, { recursive: true });
  mkdirSync(layout.runDir, { recursive: true, mode: 0o711 });
  mkdirSync(layout.logDir, { recursive: true });
  const wasmShimDir = nodeWasmShimDir(layout);
  writeFileSync(layout.containerdConfig, containerdConfig(layout, wasmShimDir));
  const args = ['--config', layout.containerdConfig, '--log-level', 'info'];
  // containerd 2 finds its shim (containerd-shim-runc-v2) on PATH: ours first, not Debian's 1.6 one.
  const bin = containerdBinDir(layout.cacheDir);
  const systemPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  if (layout.cdiSpecDir !== undefined) mkdirSync(layout.cdiSpecDir, { recursive: true });
  return startComponent({
    name: 'containerd',
    ...(layout.runtime === 'containerd-2'
      ? nodeCommand(layout, 'env', [`PATH=${bin}:${systemPath}`, join(bin, 'containerd'), ...args])
      : wasmShimDir !== undefined
        ? // containerd 1.6 finds containerd-shim-wasmtime-v1 on its PATH.
          nodeCommand(layout, 'env', [`PATH=${wasmShimDir}:${systemPath}`, 'containerd', ...args])
        : nodeCommand(layout, 'containerd', args)),
    logFile: join(layout.logDir, 'containerd.log'),
    cwd: layout.nodeDir,
  });
}

/**
 * Waits until containerd's CRI plugin answers Version. Fails early, with the
 * log tail, when containerd exits.
 */
export async function waitContainerdReady(layout: NodeLayout, component: RunningComponent, timeoutMs = 30_000): Promise<CriVersion> {
  const deadline = Date.now() + timeoutMs;
  const cri = new CriClient(layout.containerdSocket);
  let last: string;
  try {
    for (let attempt = 0; ; attempt++) {
      if (!isRunning(component)) {
        throw new Error(`containerd exited during start-up. Log tail (${component.logFile}):\n${logTail(component.logFile)}`);
      }
      try {
        return await cri.version();
      } catch (error) {
        last = (error as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(`containerd CRI not ready after ${timeoutMs} ms (last: ${last}). Log tail:\n${logTail(component.logFile)}`);
      }
      await delay(Math.min(50 * 2 ** attempt, 500));
    }
  } finally {
    cri.close();
  }
}
