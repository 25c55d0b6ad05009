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
 *   kubelet), so a second kubelet needs its own mount namespace.
 *
 * Each node's containerd and kubelet run in the node's own mount namespace
 * (kept in a file under its run dir), where `/` is shared as on a real node.
 * Node 2 (`nodeLayout(env, 2)`) is a second machine on this one: a network
 * namespace `tether-e2e-n2` too (node IP `.2` of node 1's subnet on a veth
 * into node 1's bridge, own pod bridge and subnet), `/var/lib/kubelet` and
 * `/var/lib/tether` bind-mounted from `/var/lib/tether-e2e-n2/…` in its mount
 * namespace, and its pods' cgroups under `/tether-e2e-n2`. Everything else is node 1's layout
 * under other names (`…/e2e/node2/`, `/run/tether-e2e-n2/`).
 *
 * Runtimes: node 1 runs Debian's containerd 1.6; node 2 runs containerd 2 (built from the Go
 * module proxy by test/cluster/build.sh into `<cache>/containerd-<version>/bin`) with CDI, its
 * `/var/run/cdi` bind-mounted from `/var/lib/tether-e2e-n2/cdi` (`cdiSpecDir`), so the DRA e2e
 * has a CDI-capable node and the device-plugin e2e keeps a containerd 1.6 one.
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
  /** The kubelet's plugin registration dir (`<root-dir>/plugins_registry`, DRA plugins register here), as this process sees it. */
  pluginsRegistryDir: string;
  /** The kubelet's plugins dir (`<root-dir>/plugins`, DRA plugins' service sockets), as this process sees it. */
  pluginsDir: string;
  /**
   * The container runtime: Debian's containerd 1.6 (no CDI) or containerd 2 built by
   * test/cluster/build.sh (CDI always on; specs read from `/etc/cdi` and `/var/run/cdi`).
   */
  runtime: NodeRuntime;
  /**
   * containerd-2 nodes: the node's `/var/run/cdi` (dynamic CDI specs: DRA drivers write theirs
   * here) as this process sees it. Node 2's is its own directory, bind-mounted in its namespace.
   */
  cdiSpecDir?: string;
  /** The Node's name: the machine's hostname unless `TETHER_E2E_NODE_NAME` is set. */
  nodeName: string;
  /** Linux bridge the CNI config attaches pods to; also carries the node IP. */
  bridge: string;
  /** Pod subnet (a /24); its `.1` is the bridge's (and the node's) address. */
  podSubnet: string;
  /** The bridge's address: pods' gateway. */
  podGateway: string;
  /** The node's InternalIP; the kubelet serves on it. */
  nodeIp: string;
  /** Where the kubelet's /healthz listens (reachable from this process). */
  healthzAddress: string;
  /** 1 (the host's network) or 2 (own network namespace). */
  index: number;
  /** The node's own mount namespace (every node has one). */
  mountNs: NodeMountNamespace;
  /** Node 2 only: its own namespaces and what they hold. */
  isolation?: NodeIsolation;
}

/** A node in its own network and mount namespaces (node 2). */
export interface NodeIsolation {
  /** Network namespace (`ip netns`). */
  netns: string;
  /** The node's veth end (inside `netns`, carries `nodeIp`) and its peer on node 1's bridge. */
  nodeIf: string;
  hostIf: string;
  /** Node 1's bridge, which the peer joins. */
  hostBridge: string;
  /** Host directory of the node's own files behind its bind mounts. */
  hostRoot: string;
  /** cgroup parent of the node's pods (the kubelet's `cgroupRoot`). */
  cgroupRoot: string;
}

/**
 * A node's mount namespace, kept alive by a bind mount of its nsfs file (as
 * `ip netns` keeps network namespaces). Inside it `/` is made recursively
 * shared, as systemd does on a real node — volume mount propagation
 * (HostToContainer, the agent's /dev) requires it — without changing the
 * host's own mounts.
 */
export interface NodeMountNamespace {
  /** Directory holding the namespace file (a private bind mount of itself). */
  dir: string;
  file: string;
  /** Bind mounts inside the namespace: host `source` appears at `target`. */
  binds: { source: string; target: string }[];
}

/** A node's container runtime (see {@link NodeLayout.runtime}). */
export type NodeRuntime = 'containerd-1.6' | 'containerd-2';

/** Where a containerd-2 node's CDI specs live inside the node (containerd's default dynamic dir). */
export const NODE_CDI_DIR = '/var/run/cdi';

/** The busybox image pods run (`imagePullPolicy: Never`: it is imported, never pulled). */
export const BUSYBOX_IMAGE = 'tether.local/e2e/busybox:1';
/** The pod sandbox image (containerd's `sandbox_image`). */
export const PAUSE_IMAGE = 'tether.local/e2e/pause:1';

const DEFAULT_POD_SUBNET = '10.250.77.0/24';
const NODE2_NETNS = 'tether-e2e-n2';

/** The layout of node `index` (1 or 2) for this machine and environment. */
export function nodeLayout(env: NodeJS.ProcessEnv = process.env, index = 1): NodeLayout {
  const node1 = node1Layout(env);
  if (index === 1) return node1;
  if (index !== 2) throw new Error(`no e2e node ${index}: there are nodes 1 and 2`);
  const nodeDir = join(node1.e2eDir, 'node2');
  const runDir = '/run/tether-e2e-n2';
  const hostRoot = '/var/lib/tether-e2e-n2';
  const [a, b, c] = node1.podSubnet.split('.').map(Number) as [number, number, number];
  const podPrefix = `${a}.${b}.${c + 1}`;
  const nodeIp = node1.podSubnet.replace(/\.0\/24$/, '.2');
  const hostKubeletRoot = join(hostRoot, 'kubelet');
  const runtime = node2Runtime(env);
  const hostCdiDir = join(hostRoot, 'cdi');
  const files = nodeFiles(nodeDir, runDir);
  return {
    ...node1,
    ...files,
    // containerd 2 migrates the metadata database of a store it opens: 1.6 could not read it back.
    ...(runtime === 'containerd-2'
      ? { containerdConfig: join(nodeDir, 'containerd-2', 'config.toml'), containerdRoot: join(nodeDir, 'containerd-2', 'root') }
      : {}),
    lockFile: join(node1.e2eDir, 'node2.lock'),
    kubeletRootDir: '/var/lib/kubelet',
    // Seen from this process (the host's mount namespace).
    devicePluginDir: join(hostKubeletRoot, 'device-plugins'),
    podResourcesSocket: join(hostKubeletRoot, 'pod-resources', 'kubelet.sock'),
    pluginsRegistryDir: join(hostKubeletRoot, 'plugins_registry'),
    pluginsDir: join(hostKubeletRoot, 'plugins'),
    runtime,
    ...(runtime === 'containerd-2' ? { cdiSpecDir: hostCdiDir } : {}),
    nodeName: (env['TETHER_E2E_NODE2_NAME'] ?? 'tether-e2e-n2').toLowerCase(),
    bridge: 'tether-e2e1',
    podSubnet: `${podPrefix}.0/24`,
    podGateway: `${podPrefix}.1`,
    nodeIp,
    healthzAddress: nodeIp,
    index: 2,
    mountNs: {
      ...mountNsFiles(runDir),
      binds: [
        { source: hostKubeletRoot, target: '/var/lib/kubelet' },
        { source: join(hostRoot, 'tether'), target: '/var/lib/tether' },
        ...(runtime === 'containerd-2' ? [{ source: hostCdiDir, target: NODE_CDI_DIR }] : []),
      ],
    },
    isolation: {
      netns: NODE2_NETNS,
      nodeIf: 'te2e-n2',
      hostIf: 'te2e-n2h',
      hostBridge: node1.bridge,
      hostRoot,
      cgroupRoot: `/${NODE2_NETNS}`,
    },
  };
}

/** A node's own files: state and logs under `nodeDir` (cache), runtime state under `runDir` (tmpfs). */
function nodeFiles(
  nodeDir: string,
  runDir: string,
): Pick<
  NodeLayout,
  | 'nodeDir'
  | 'stateFile'
  | 'logDir'
  | 'runDir'
  | 'containerdConfig'
  | 'containerdRoot'
  | 'containerdState'
  | 'containerdSocket'
  | 'cniConfDir'
  | 'cniIpamDir'
  | 'imageDir'
  | 'kubeletDir'
  | 'kubeletConfig'
  | 'kubeletKubeconfig'
  | 'kubeletCertDir'
  | 'podLogsDir'
> {
  const kubeletDir = join(nodeDir, 'kubelet');
  return {
    nodeDir,
    stateFile: join(nodeDir, 'state.json'),
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
  };
}

/**
 * Node 2's runtime: containerd 2 (CDI; the DRA e2e runs there) unless
 * `TETHER_E2E_NODE2_RUNTIME=containerd-1.6`. Node 1 always runs containerd 1.6.
 */
function node2Runtime(env: NodeJS.ProcessEnv): NodeRuntime {
  const value = env['TETHER_E2E_NODE2_RUNTIME'] ?? 'containerd-2';
  if (value !== 'containerd-1.6' && value !== 'containerd-2') {
    throw new Error(`TETHER_E2E_NODE2_RUNTIME must be containerd-1.6 or containerd-2, got ${JSON.stringify(value)}`);
  }
  return value;
}

function mountNsFiles(runDir: string): { dir: string; file: string } {
  return { dir: join(runDir, 'ns'), file: join(runDir, 'ns', 'mnt') };
}

function node1Layout(env: NodeJS.ProcessEnv): NodeLayout {
  const cacheDir = env['TETHER_CACHE'] ?? join(homedir(), '.cache', 'tether');
  const e2eDir = join(cacheDir, 'e2e');
  const nodeDir = join(e2eDir, 'node');
  const runDir = '/run/tether-e2e';
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
    ...nodeFiles(nodeDir, runDir),
    lockFile: join(e2eDir, 'node.lock'),
    kubeletRootDir,
    devicePluginDir: join(kubeletRootDir, 'device-plugins'),
    podResourcesSocket: join(kubeletRootDir, 'pod-resources', 'kubelet.sock'),
    pluginsRegistryDir: join(kubeletRootDir, 'plugins_registry'),
    pluginsDir: join(kubeletRootDir, 'plugins'),
    runtime: 'containerd-1.6',
    nodeName,
    bridge: 'tether-e2e0',
    podSubnet,
    podGateway: `${match[1]}.1`,
    nodeIp: `${match[1]}.1`,
    healthzAddress: '127.0.0.1',
    index: 1,
    mountNs: { ...mountNsFiles(runDir), binds: [] },
  };
}

/**
 * A DeviceDiscovery `broker` for the e2e nodes: a busybox pod that prints the environment
 * variables matching `envPattern` (an extended regex anchored at the start; none: prints
 * nothing), then idles until SIGTERM (a 1 s grace bounds a slow one).
 */
export function busyboxBroker(envPattern?: string): { pod: { spec: Record<string, unknown> } } {
  const print = envPattern === undefined ? '' : `env | grep -E '^(${envPattern})' | sort; `;
  return {
    pod: {
      spec: {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'broker',
            image: BUSYBOX_IMAGE,
            imagePullPolicy: 'Never',
            command: ['sh', '-c', `${print}trap 'exit 0' TERM; sleep 86400 & wait`],
          },
        ],
      },
    },
  };
}
