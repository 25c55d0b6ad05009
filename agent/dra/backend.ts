/**
 * The DRA backend of one agent: the driver (claims, CDI specs, checkpoint) behind the kubelet
 * plugin (sockets), reading ResourceClaims through Tether's own Kubernetes client. The cluster
 * agent imports this module dynamically, only with `--dra`, so the protos and gRPC services
 * cost an agent without DRA nothing.
 */
import type { Logger } from 'pino';
import type { Api } from '../../kube/resources.ts';
import { RESOURCES } from '../../kube/resources.ts';
import type { KubeObject } from '../../kube/client.ts';
import type { ServedDevice } from '../device.ts';
import type { ResourceClaim } from './claim-devices.ts';
import { DraDriver, type ClaimReader } from './driver.ts';
import { DraPlugin } from './plugin.ts';

export interface DraBackendOptions {
  readonly node: string;
  /** The kubelet's root directory (plugins_registry/ and plugins/ are inside). */
  readonly kubeletDir: string;
  /** Where claim CDI specs go (the runtime's CDI spec dir). */
  readonly cdiDir: string;
  /** The agent's state directory (dra-checkpoint.json). */
  readonly stateDir: string;
  readonly claims: ClaimReader;
  readonly log: Logger;
}

/** A running DRA backend. */
export interface DraBackend {
  readonly driver: DraDriver;
  readonly plugin: DraPlugin;
  /** Every device of a DRA discovery this node serves now. */
  setDevices(devices: readonly ServedDevice[]): void;
  /** Stops serving; prepared claims stay in the checkpoint and their CDI specs stay. */
  stop(): Promise<void>;
}

/** Reads ResourceClaims with `get` (the agent's RBAC needs get on resourceclaims). */
export function kubeClaimReader(api: Api): ClaimReader {
  return {
    read: (namespace, name, signal) => api.get<KubeObject & ResourceClaim>(RESOURCES.resourceClaims, namespace, name, signal),
  };
}

/** Loads the checkpoint, then serves the kubelet plugin. */
export async function startDraBackend(options: DraBackendOptions): Promise<DraBackend> {
  const driver = new DraDriver({ cdiDir: options.cdiDir, stateDir: options.stateDir, claims: options.claims, log: options.log });
  await driver.start();
  const plugin = new DraPlugin({ kubeletDir: options.kubeletDir, node: options.node, driver, log: options.log });
  await plugin.start();
  return {
    driver,
    plugin,
    setDevices: (devices) => driver.setDevices(devices),
    stop: () => plugin.stop(),
  };
}
