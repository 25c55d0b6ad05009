/**
 * Where the end-to-end node keeps its files, and the fixed names it uses.
 * One place, so setup, teardown, the CLI and the tests agree.
 *
 * - `${TETHER_CACHE:-~/.cache/tether}/e2e/` is the e2e cluster's cache dir:
 *   `cluster/` (its own control plane, see global-setup.ts for why) and a
 *   symlink `k8s-<version>` to the shared binaries, so nothing is built twice.
 * - `…/e2e/node/`: containerd config and root (image store), CNI config and
 *   IPAM state, images, kubelet config, certs, logs, `state.json`.
 * - `/run/tether-e2e/`: containerd's socket and state (runtime state belongs
 *   on a tmpfs; containerd 1.6 keeps shim sockets in /run/containerd/s anyway).
 * - `/var/lib/kubelet/`: the kubelet's root dir. Fixed by the device-plugin
 *   API (`/var/lib/kubelet/device-plugins/kubelet.sock` is a constant in the
 *   kubelet), so only one kubelet can run per machine.
 */
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';

/** Paths and names of the e2e node. */
export interface NodeLayout {
  /** Shared cache root (`$TETHER_CACHE` or `~/.cache/tether`). */
  cacheDir: string;
  /** The e2e cluster's cache dir (passed to clusterUp as `cacheDir`). */
  e2eDir: string;
  nodeDir: string;
  stateFile: string;
  lockFile: string;
  logDir: string;
  runDir: string;
  containerdConfig: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  cniConfDir: string;
  cniIpamDir: string;
  imageDir: string;
  kubeletDir: string;
  kubeletConfig: string;
  kubeletKubeconfig: string;
  kubeletCertDir: string;
  podLogsDir: string;
  kubeletRootDir: string;
  devicePluginDir: string;
  podResourcesSocket: string;
  /** The Node's name: the machine's hostname unless `TETHER_E2E_NODE_NAME` is set. */
  nodeName: string;
  /** Linux bridge the CNI config attaches pods to; also carries the node IP. */
  bridge: string;
  /** Pod subnet (a /24); its `.1` is the bridge's (and the node's) address. */
  podSubnet: string;
  nodeIp: string;
}

/** The busybox image pods run (`imagePullPolicy: Never`: it is imported, never pulled). */
export const BUSYBOX_IMAGE = 'tether.local/e2e/busybox:1';
/** The pod sandbox image (containerd's `sandbox_image`). */
export const PAUSE_IMAGE = 'tether.local/e2e/pause:1';

const DEFAULT_POD_SUBNET = '10.250.77.0/24';

/** The layout for this machine and environment. */
export function nodeLayout(env: NodeJS.ProcessEnv = process.env): NodeLayout {
  const cacheDir = env['TETHER_CACHE'] ?? join(homedir(), '.cache', 'tether');
  const e2eDir = join(cacheDir, 'e2e');
  const nodeDir = join(e2eDir, 'node');
  const runDir = '/run/tether-e2e';
  const kubeletDir = join(nodeDir, 'kubelet');
  const kubeletRootDir = '/var/lib/kubelet';
  const podSubnet = env['TETHER_E2E_POD_SUBNET'] ?? DEFAULT_POD_SUBNET;
  const match = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(podSubnet);
  if (match === null) throw new Error(`TETHER_E2E_POD_SUBNET must be an IPv4 /24 ending in .0/24, got ${podSubnet}`);
  const nodeName = (env['TETHER_E2E_NODE_NAME'] ?? hostname()).toLowerCase();
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(nodeName) || nodeName.length > 63) {
    throw new Error(`node name ${JSON.stringify(nodeName)} is not a valid Node name: set TETHER_E2E_NODE_NAME`);
  }
  return {
    cacheDir,
    e2eDir,
    nodeDir,
    stateFile: join(nodeDir, 'state.json'),
    lockFile: join(e2eDir, 'node.lock'),
    logDir: join(nodeDir, 'logs'),
    runDir,
    containerdConfig: join(nodeDir, 'containerd', 'config.toml'),
    containerdRoot: join(nodeDir, 'containerd', 'root'),
    containerdState: join(runDir, 'containerd'),
    containerdSocket: join(runDir, 'containerd.sock'),
    cniConfDir: join(nodeDir, 'cni', 'net.d'),
    cniIpamDir: join(nodeDir, 'cni', 'ipam'),
    imageDir: join(nodeDir, 'images'),
    kubeletDir,
    kubeletConfig: join(kubeletDir, 'config.yaml'),
    kubeletKubeconfig: join(kubeletDir, 'kubeconfig'),
    kubeletCertDir: join(kubeletDir, 'pki'),
    podLogsDir: join(nodeDir, 'pod-logs'),
    kubeletRootDir,
    devicePluginDir: join(kubeletRootDir, 'device-plugins'),
    podResourcesSocket: join(kubeletRootDir, 'pod-resources', 'kubelet.sock'),
    nodeName,
    bridge: 'tether-e2e0',
    podSubnet,
    nodeIp: `${match[1]}.1`,
  };
}
