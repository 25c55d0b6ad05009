/**
 * containerd for the e2e node: its own config file, socket, root and state,
 * so it never touches a system containerd (if one runs) and can be removed
 * without a trace.
 *
 * WARNING: containerd 1.6 puts shim sockets in /run/containerd/s whatever the
 * config says; their names hash our socket address, so they do not collide
 * with a system containerd's.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { isRunning, logTail, startComponent } from '../cluster/processes.ts';
import type { RunningComponent } from '../cluster/processes.ts';
import { CriClient, type CriVersion } from './cri.ts';
import { nodeCommand } from './isolation.ts';
import type { NodeLayout } from './layout.ts';
import { PAUSE_IMAGE } from './layout.ts';

/** The containerd config (version 2 schema, containerd 1.6). */
export function containerdConfig(layout: NodeLayout): string {
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
  [${cri}.cni]
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
  writeFileSync(layout.containerdConfig, containerdConfig(layout));
  return startComponent({
    name: 'containerd',
    ...nodeCommand(layout, 'containerd', ['--config', layout.containerdConfig, '--log-level', 'info']),
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
