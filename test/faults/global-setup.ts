/**
 * vitest globalSetup of the `faults` project: brings up the fault suite's OWN control plane
 * (test/faults/control-plane.ts), separate from the integration suite's shared one, because
 * these tests stop its apiserver and etcd. The binaries are reused from the shared cache.
 * It keeps running afterwards (fast reruns); TETHER_CLUSTER_DOWN=1 stops it at the end.
 */
import type { TestProject } from 'vitest/node';
import { clusterDown, clusterUp } from '../cluster/cluster.ts';
import { faultCacheDir, linkSharedBinaries } from './control-plane.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The fault control plane's cache dir (its state is in `<dir>/cluster`). */
    faultCacheDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cacheDir = faultCacheDir();
  linkSharedBinaries(cacheDir);
  let info;
  try {
    info = await clusterUp({ cacheDir, log: (m) => process.stderr.write(`[faults cluster] ${m}\n`) });
  } catch (error) {
    throw new Error(`fault control plane did not come up: ${(error as Error).message}`, { cause: error });
  }
  process.env.KUBECONFIG = info.kubeconfig;
  project.provide('kubeconfig', info.kubeconfig);
  project.provide('clusterBinDir', info.binDir);
  project.provide('faultCacheDir', cacheDir);
  return async () => {
    if (process.env.TETHER_CLUSTER_DOWN === '1') await clusterDown({ cacheDir });
  };
}
