/**
 * The e2e control plane's cache dir: `<cache>/e2e`, holding its own
 * `cluster/` state and a symlink `k8s-<version>` → `<cache>/k8s-<version>`, so
 * clusterUp({ cacheDir }) finds (or builds once, into the shared place) the
 * same binaries as the integration project.
 */
import { lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterUp, pinnedK8sVersion, type ClusterInfo } from '../cluster/cluster.ts';
import { stringify } from 'yaml';
import type { NodeLayout } from './layout.ts';

/** Creates `<cache>/e2e` and its binaries symlink (idempotent). */
export function ensureE2eCacheDir(layout: NodeLayout): void {
  const name = `k8s-${pinnedK8sVersion()}`;
  const shared = join(layout.cacheDir, name);
  const link = join(layout.e2eDir, name);
  mkdirSync(shared, { recursive: true });
  mkdirSync(layout.e2eDir, { recursive: true });
  const existing = lstatSync(link, { throwIfNoEntry: false });
  if (existing !== undefined) {
    if (existing.isSymbolicLink() && readlinkSync(link) === shared) return;
    rmSync(link, { recursive: true, force: true });
  }
  symlinkSync(shared, link);
}

/**
 * The e2e control plane: served on node 1's address (node 2 and pods cannot
 * reach this machine's loopback), and quick to mark a silent node NotReady.
 */
export function e2eClusterUp(layout: NodeLayout, options: { signal?: AbortSignal } = {}): Promise<ClusterInfo> {
  return clusterUp({ cacheDir: layout.e2eDir, nodeAddress: layout.nodeIp, nodeMonitorGraceSeconds: NODE_MONITOR_GRACE_S, ...options });
}

/** kube-controller-manager's node-monitor grace in the e2e cluster (default 50 s). */
export const NODE_MONITOR_GRACE_S = 10;

/**
 * Chart values this cluster needs beyond the defaults: it runs no kube-proxy,
 * so the chart's pods are given the apiserver's address directly (in-cluster
 * clients read KUBERNETES_SERVICE_HOST/PORT; kube-proxy-free clusters do the
 * same). Written to `<e2e>/values.yaml` for `helm install -f`; returns the path.
 */
export function writeE2eChartValues(layout: NodeLayout, nodeServer: string): string {
  const server = new URL(nodeServer);
  const env = [
    { name: 'KUBERNETES_SERVICE_HOST', value: server.hostname },
    { name: 'KUBERNETES_SERVICE_PORT', value: server.port },
  ];
  const path = join(layout.e2eDir, 'values.yaml');
  writeFileSync(
    path,
    `# Written by test/e2e: the e2e cluster has no kube-proxy, so Tether's pods reach the apiserver here.\n${stringify({ agent: { extraEnv: env }, controller: { extraEnv: env } })}`,
  );
  return path;
}
