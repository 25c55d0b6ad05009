/**
 * Whether the apiserver serves Dynamic Resource Allocation (`resource.k8s.io/v1` with
 * DeviceClasses and ResourceClaimTemplates), asked once when the controller starts. Without
 * it the controller runs without its DRA part: no DeviceClass or claim-template informers
 * (they would never sync, so the controller would never be ready) and no DRA objects;
 * DRA discoveries get a Warning Event instead. The answer holds until the controller restarts.
 */
import { isApiError } from '../../kube/client.ts';
import { sleep } from '../../kube/sleep.ts';

export const DRA_API_PATH = '/apis/resource.k8s.io/v1';
const NEEDED = ['deviceclasses', 'resourceclaimtemplates'];

interface ResourceList {
  readonly resources?: readonly { readonly name?: string }[];
}

/**
 * True when `get(DRA_API_PATH)` lists what the controller writes; false when the group-version
 * is absent (404) or lacks a resource. Throws when the apiserver could not answer.
 */
export async function draServed(get: (path: string) => Promise<unknown>): Promise<boolean> {
  let list: ResourceList;
  try {
    list = (await get(DRA_API_PATH)) as ResourceList;
  } catch (error) {
    if (isApiError(error, 404)) return false;
    throw error;
  }
  const names = new Set((list.resources ?? []).map((r) => r.name));
  return NEEDED.every((name) => names.has(name));
}

/** {@link draServed}, asked again with capped backoff until the apiserver answers or `signal` aborts (then false). */
export async function waitForDraAnswer(
  get: (path: string) => Promise<unknown>,
  signal: AbortSignal,
  onError: (error: unknown) => void,
): Promise<boolean> {
  for (let delayMs = 500; !signal.aborted; delayMs = Math.min(delayMs * 2, 30_000)) {
    try {
      return await draServed(get);
    } catch (error) {
      onError(error);
      await sleep(delayMs, signal);
    }
  }
  return false;
}
