/**
 * vitest globalSetup of the `integration` project: brings the real control
 * plane up once per run (or reuses a running one) and hands the kubeconfig to
 * the tests (`inject('kubeconfig')`). Never skips: if the cluster cannot
 * start, the run fails with the failing component's log tail.
 *
 * The cluster keeps running afterwards for fast local iteration; set
 * TETHER_CLUSTER_DOWN=1 to stop it at the end of the run.
 */
import type { TestProject } from 'vitest/node';
import { clusterDown, clusterUp } from './cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the admin kubeconfig of the test cluster. */
    kubeconfig: string;
    /** Directory holding kubectl, helm and the other built binaries. */
    clusterBinDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let info;
  try {
    info = await clusterUp();
  } catch (error) {
    throw new Error(`test cluster did not come up: ${(error as Error).message}`, { cause: error });
  }
  process.env.KUBECONFIG = info.kubeconfig;
  project.provide('kubeconfig', info.kubeconfig);
  project.provide('clusterBinDir', info.binDir);
  return async () => {
    if (process.env.TETHER_CLUSTER_DOWN === '1') await clusterDown();
  };
}
