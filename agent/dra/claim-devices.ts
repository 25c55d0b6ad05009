/**
 * From a ResourceClaim to the devices this node prepares for it: pure.
 *
 * The scheduler writes the allocation into `status.allocation.devices.results`, one result per
 * allocated device, naming driver, pool and device as the ResourceSlice did. Tether's slice
 * device names are Device names (api/dra-names.ts), so a result's `device` is looked up among
 * the devices this node serves; anything else is a per-claim error the kubelet shows on the pod
 * and retries.
 */
import { DRA_DRIVER_NAME, parseDraDeviceName } from '../../api/dra-names.ts';
import type { ServedDevice } from '../device.ts';

/** One `status.allocation.devices.results[]` entry (resource.k8s.io/v1), the fields read here. */
export interface DeviceRequestAllocationResult {
  readonly request: string;
  readonly driver: string;
  readonly pool: string;
  readonly device: string;
  readonly shareID?: string;
}

/** The parts of a resource.k8s.io/v1 ResourceClaim the kubelet plugin reads. */
export interface ResourceClaim {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string };
  readonly status?: {
    readonly allocation?: { readonly devices?: { readonly results?: readonly DeviceRequestAllocationResult[] } };
  };
}

/** One device of a claim, resolved to what this node serves. */
export interface ResolvedDevice {
  readonly result: DeviceRequestAllocationResult;
  readonly device: ServedDevice;
}

export type ResolveOutcome = { readonly devices: ResolvedDevice[] } | { readonly error: string };

/**
 * The devices of `claim` allocated from this driver, each mapped to the served device, or why
 * the claim cannot be prepared here. `served(name)` answers for devices of DRA discoveries this
 * node serves now; an offline device counts as not served (nothing could reach it).
 */
export function resolveClaimDevices(claim: ResourceClaim, uid: string, served: (name: string) => ServedDevice | undefined): ResolveOutcome {
  if (claim.metadata?.uid !== uid) {
    return { error: `ResourceClaim has uid ${claim.metadata?.uid ?? '(none)'}, the kubelet asked for ${uid}: it was replaced` };
  }
  const allocation = claim.status?.allocation;
  if (allocation === undefined) return { error: 'ResourceClaim is not allocated' };
  const devices: ResolvedDevice[] = [];
  const problems: string[] = [];
  for (const result of allocation.devices?.results ?? []) {
    if (result.driver !== DRA_DRIVER_NAME) continue;
    const resolved = resolveResult(result, served);
    if (typeof resolved === 'string') problems.push(resolved);
    else devices.push({ result, device: resolved });
  }
  return problems.length > 0 ? { error: problems.join('; ') } : { devices };
}

/** The served device a result names, or why there is none. */
function resolveResult(result: DeviceRequestAllocationResult, served: (name: string) => ServedDevice | undefined): ServedDevice | string {
  const name = parseDraDeviceName(result.device);
  const device = name === undefined ? undefined : served(name);
  const what = `device ${result.device} (pool ${result.pool})`;
  if (device === undefined) return `${what} is not served by this node (gone, or not a DRA device here)`;
  if (!device.online) return `${what} is offline on this node`;
  return device;
}
