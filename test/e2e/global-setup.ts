/**
 * vitest globalSetup of the `e2e` project: a control plane (test/cluster's
 * clusterUp) plus two real nodes on this machine (node.ts: containerd, CNI,
 * kubelet; node 2 in its own network and mount namespaces) and the device LAN
 * both nodes reach (lan.ts). Never skips: if anything cannot start, the run
 * fails with the failing component's log tail.
 *
 * The e2e control plane is a second instance, in `<cache>/e2e/cluster`, not
 * the integration tests' one: those assume no node exists (Pods are never
 * scheduled) and restart the apiserver under their own tests, while these
 * tests add nodes and restart their kubelets. Both share the built binaries.
 * It serves on node 1's address (pods and node 2 cannot reach loopback) and
 * marks a silent node NotReady after 10 s (node-loss tests).
 *
 * After the run the nodes and the LAN are torn down (set
 * TETHER_E2E_KEEP_NODE=1 to keep them for the next run); the control plane
 * keeps running unless TETHER_CLUSTER_DOWN=1, as in the integration project.
 */
import type { TestProject } from 'vitest/node';
import { clusterDown } from '../cluster/cluster.ts';
import { e2eClusterUp, ensureE2eCacheDir } from './cluster.ts';
import { attachToLan, removeLan } from './lan.ts';
import { nodeLayout } from './layout.ts';
import { nodeDown, nodeUp } from './node.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Name of e2e node 1 (the kubelet's `--hostname-override`). */
    e2eNodeName: string;
    /** Name of e2e node 2 (own network and mount namespaces). */
    e2eNode2Name: string;
    /** `https://<node 1 address>:<port>`: the apiserver as pods and node 2 reach it. */
    e2eNodeServer: string;
  }
}

/** Node 1's and node 2's addresses on the device LAN (10.250.90.0/24). */
const LAN_NODE_ADDRESSES = ['10.250.90.11', '10.250.90.12'] as const;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const layout = nodeLayout();
  const layout2 = nodeLayout(process.env, 2);
  const started = Date.now();
  ensureE2eCacheDir(layout);
  let cluster;
  try {
    cluster = await e2eClusterUp(layout);
  } catch (error) {
    throw new Error(`e2e control plane did not come up: ${(error as Error).message}`, { cause: error });
  }
  const controlPlaneS = (Date.now() - started) / 1_000;
  const node = await nodeUp(cluster, { layout });
  const node2 = await nodeUp(cluster, { layout: layout2 });
  // The device LAN: both nodes on it by an interface named alike (lan.ts).
  attachToLan({ address: LAN_NODE_ADDRESSES[0], tag: 'n1' });
  attachToLan({ netns: layout2.isolation?.netns, address: LAN_NODE_ADDRESSES[1], tag: 'n2' });
  process.stderr.write(
    `[e2e] control plane ${cluster.reused ? 'reused' : 'started'} in ${controlPlaneS.toFixed(1)} s; ` +
      `nodes ${node.name} (${node.reused ? 'reused' : 'started'}), ${node2.name} (${node2.reused ? 'reused' : 'started'}); ` +
      `setup ${((Date.now() - started) / 1_000).toFixed(1)} s\n`,
  );
  process.env.KUBECONFIG = cluster.kubeconfig;
  project.provide('kubeconfig', cluster.kubeconfig);
  project.provide('clusterBinDir', cluster.binDir);
  project.provide('e2eNodeName', node.name);
  project.provide('e2eNode2Name', node2.name);
  project.provide('e2eNodeServer', cluster.nodeServer);
  return async () => {
    if (process.env.TETHER_E2E_KEEP_NODE !== '1') {
      removeLan();
      // Node 2 hangs off node 1's bridge: it goes first.
      await nodeDown({ layout: layout2 });
      await nodeDown({ layout });
    }
    if (process.env.TETHER_CLUSTER_DOWN === '1') await clusterDown({ cacheDir: layout.e2eDir });
  };
}
