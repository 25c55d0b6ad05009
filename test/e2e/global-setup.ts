/**
 * vitest globalSetup of the `e2e` project: a control plane (test/cluster's
 * clusterUp) plus a real node on this machine (node.ts: containerd, CNI,
 * kubelet). Never skips: if anything cannot start, the run fails with the
 * failing component's log tail.
 *
 * The e2e control plane is a second instance, in `<cache>/e2e/cluster`, not
 * the integration tests' one: those assume no node exists (Pods are never
 * scheduled) and restart the apiserver under their own tests, while these
 * tests add a node and restart its kubelet. Both share the built binaries.
 *
 * After the run the node is torn down (set TETHER_E2E_KEEP_NODE=1 to keep it
 * for the next run); the control plane keeps running unless
 * TETHER_CLUSTER_DOWN=1, as in the integration project.
 */
import type { TestProject } from 'vitest/node';
import { clusterDown, clusterUp } from '../cluster/cluster.ts';
import { ensureE2eCacheDir } from './cluster.ts';
import { nodeLayout } from './layout.ts';
import { nodeDown, nodeUp } from './node.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Name of the e2e Node (the kubelet's `--hostname-override`). */
    e2eNodeName: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const layout = nodeLayout();
  const started = Date.now();
  ensureE2eCacheDir(layout);
  let cluster;
  try {
    cluster = await clusterUp({ cacheDir: layout.e2eDir });
  } catch (error) {
    throw new Error(`e2e control plane did not come up: ${(error as Error).message}`, { cause: error });
  }
  const controlPlaneS = (Date.now() - started) / 1_000;
  const node = await nodeUp(cluster);
  process.stderr.write(
    `[e2e] control plane ${cluster.reused ? 'reused' : 'started'} in ${controlPlaneS.toFixed(1)} s; ` +
      `node ${node.name} ${node.reused ? 'reused' : 'started'}; setup ${((Date.now() - started) / 1_000).toFixed(1)} s\n`,
  );
  process.env.KUBECONFIG = cluster.kubeconfig;
  project.provide('kubeconfig', cluster.kubeconfig);
  project.provide('clusterBinDir', cluster.binDir);
  project.provide('e2eNodeName', node.name);
  return async () => {
    if (process.env.TETHER_E2E_KEEP_NODE !== '1') await nodeDown();
    if (process.env.TETHER_CLUSTER_DOWN === '1') await clusterDown({ cacheDir: layout.e2eDir });
  };
}
