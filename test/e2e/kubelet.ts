/**
 * The real kubelet for the e2e node: a client certificate for
 * `system:node:<name>` (group `system:nodes`) signed by the test cluster's CA,
 * a KubeletConfiguration for this VM (cgroup v1 + cgroupfs, no swap check,
 * containerd's socket), and start-up / readiness checks.
 *
 * Identity: the kubelet authenticates as a real node, so the apiserver's Node
 * authorizer and NodeRestriction admission apply exactly as in a cluster — it
 * may update only its own Node and Lease and the pods bound to it, read only
 * the Secrets/ConfigMaps those pods use, and create TokenReviews and
 * SubjectAccessReviews (used for its own webhook authn/authz). The admin
 * kubeconfig would work too, but would hide authorization bugs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeConfig, V1Node } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { writeKubeconfig } from '../cluster/certs.ts';
import { isRunning, logTail, startComponent, waitHealthy } from '../cluster/processes.ts';
import type { RunningComponent } from '../cluster/processes.ts';
import { nodeCommand } from './isolation.ts';
import type { NodeLayout } from './layout.ts';
import { watchUntil } from './watch.ts';

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr}`, { cause: error });
  }
}

/** Issues the node's client certificate and writes the kubelet's kubeconfig. */
export function writeNodeCredentials(layout: NodeLayout, server: string, caCert: string, caKey: string): void {
  mkdirSync(layout.kubeletCertDir, { recursive: true, mode: 0o700 });
  const cert = join(layout.kubeletCertDir, 'node-client.crt');
  const key = join(layout.kubeletCertDir, 'node-client.key');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  openssl([
    'req',
    '-new',
    '-key',
    key,
    '-out',
    cert,
    '-days',
    '365',
    '-subj',
    `/O=system:nodes/CN=system:node:${layout.nodeName}`,
    '-CA',
    caCert,
    '-CAkey',
    caKey,
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    '-addext',
    'extendedKeyUsage=clientAuth',
  ]);
  writeKubeconfig(layout.kubeletKubeconfig, server, caCert, { cert, key }, `system:node:${layout.nodeName}`);
}

/**
 * Ports and addresses the kubelet serves on. It listens on the node IP: the
 * apiserver reaches kubelets at their InternalIP (logs, exec), so node names
 * need not resolve.
 */
export interface KubeletEndpoints {
  address: string;
  port: number;
  healthzPort: number;
}

/** The KubeletConfiguration for this machine. */
export function kubeletConfiguration(layout: NodeLayout, endpoints: KubeletEndpoints, caCert: string): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This VM mounts cgroup v1 (hybrid); 1.35+ refuses it unless told.
    failCgroupV1: false,
    // containerd 1.6 lacks the RuntimeConfig RPC; the kubelet uses this value.
    cgroupDriver: 'cgroupfs',
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${layout.containerdSocket}`,
    address: endpoints.address,
    port: endpoints.port,
    readOnlyPort: 0,
    healthzBindAddress: layout.healthzAddress,
    healthzPort: endpoints.healthzPort,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: caCert },
    },
    authorization: { mode: 'Webhook' },
    podLogsDir: layout.podLogsDir,
    // Extended resources reach the Node within a second of a plugin's change
    // (default 10 s); the status is patched only when something changed.
    nodeStatusUpdateFrequency: '1s',
    nodeStatusReportFrequency: '1m',
    // Imported images cannot be pulled again: never garbage-collect them, and
    // never evict pods of a test for a nearly full disk.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '50Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%' },
    resolvConf: '/etc/resolv.conf',
    maxPods: 32,
    registerNode: true,
    // Node 2 shares this machine's cgroup hierarchies with node 1: its own parent keeps
    // either kubelet from treating the other's pod cgroups as orphans.
    ...(layout.isolation === undefined ? {} : { cgroupRoot: layout.isolation.cgroupRoot }),
  };
}

/**
 * Writes the config and starts the kubelet in its own process group.
 *
 * Dynamic Resource Allocation needs no flag on the pinned kubelet (v1.37: DRA is GA and always
 * on; consumable capacity, partitionable devices, binding conditions and resource health status
 * are beta and on by default): DRA plugins register through `<root-dir>/plugins_registry` and
 * serve from `<root-dir>/plugins/<driver>/`, both created here so a plugin may start first.
 * Injection needs a CDI runtime: only containerd-2 nodes (`layout.runtime`) apply CDI edits.
 */
export function startKubelet(layout: NodeLayout, binDir: string, endpoints: KubeletEndpoints, caCert: string): RunningComponent {
  mkdirSync(layout.kubeletDir, { recursive: true });
  mkdirSync(layout.pluginsRegistryDir, { recursive: true });
  mkdirSync(layout.pluginsDir, { recursive: true });
  mkdirSync(layout.podLogsDir, { recursive: true });
  mkdirSync(layout.logDir, { recursive: true });
  writeFileSync(layout.kubeletConfig, stringify(kubeletConfiguration(layout, endpoints, caCert)));
  return startComponent({
    name: 'kubelet',
    ...nodeCommand(layout, join(binDir, 'kubelet'), [
      `--config=${layout.kubeletConfig}`,
      `--kubeconfig=${layout.kubeletKubeconfig}`,
      `--hostname-override=${layout.nodeName}`,
      `--node-ip=${layout.nodeIp}`,
      `--root-dir=${layout.kubeletRootDir}`,
      `--cert-dir=${layout.kubeletCertDir}`,
      '--v=1',
    ]),
    logFile: join(layout.logDir, 'kubelet.log'),
    cwd: layout.kubeletDir,
  });
}

function readyCondition(node: V1Node): { status: string; heartbeat: number; reason: string } | undefined {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready === undefined) return undefined;
  return {
    status: ready.status,
    heartbeat: new Date(ready.lastHeartbeatTime ?? 0).getTime(),
    reason: `${ready.reason ?? ''}: ${ready.message ?? ''}`,
  };
}

/**
 * Waits for the kubelet's /healthz, then (watching the Node) for a Ready
 * condition the kubelet posted at or after `since`: a Ready Node left from an
 * earlier kubelet does not count. Fails early with the log tail if the
 * kubelet exits.
 */
export async function waitKubeletReady(
  kc: KubeConfig,
  layout: NodeLayout,
  component: RunningComponent,
  healthzPort: number,
  since: number,
  timeoutMs = 120_000,
): Promise<V1Node> {
  const deadline = Date.now() + timeoutMs;
  await waitHealthy(component, { url: `http://${layout.healthzAddress}:${healthzPort}/healthz`, timeoutMs });
  // Heartbeats have second precision.
  const sinceSecond = Math.floor(since / 1_000) * 1_000;
  return watchUntil<V1Node>(kc, {
    path: '/api/v1/nodes',
    fieldSelector: `metadata.name=${layout.nodeName}`,
    predicate: (node, type) => {
      const ready = readyCondition(node);
      return type !== 'DELETED' && ready?.status === 'True' && ready.heartbeat >= sinceSecond;
    },
    timeoutMs: Math.max(deadline - Date.now(), 1_000),
    description: `Node ${layout.nodeName} Ready`,
    abortIf: () =>
      isRunning(component) ? undefined : `kubelet exited. Log tail (${component.logFile}):\n${logTail(component.logFile, 60)}`,
    describe: (node) => JSON.stringify(node.status?.conditions ?? []),
  });
}
