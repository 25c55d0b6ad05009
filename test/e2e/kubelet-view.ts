/**
 * The kubelet's own view of allocatable devices (PodResources GetAllocatableResources): device
 * IDs per resource, from plugins that are registered and report them Healthy. No vitest here:
 * the e2e tests and `npm run bench -- real-node` both use it.
 */
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { loadPodResourcesProtos } from '../../proto/load.ts';
import type { AllocatableResourcesResponse } from '../../proto/types.ts';

/** Device IDs per resource name, each list sorted. */
export async function kubeletAllocatable(podResourcesSocket: string, timeoutMs = 5_000): Promise<Map<string, string[]>> {
  const { PodResourcesLister } = loadPodResourcesProtos();
  const client = new PodResourcesLister(`unix://${podResourcesSocket}`, credentials.createInsecure());
  try {
    const call = (client as unknown as Record<string, (...args: unknown[]) => void>)['GetAllocatableResources']!;
    const response = await new Promise<AllocatableResourcesResponse>((resolve, reject) => {
      call.call(
        client,
        {},
        { deadline: new Date(Date.now() + timeoutMs) },
        (error: ServiceError | null, value: AllocatableResourcesResponse) => (error ? reject(error) : resolve(value)),
      );
    });
    const ids = new Map<string, string[]>();
    for (const d of response.devices) ids.set(d.resource_name, [...(ids.get(d.resource_name) ?? []), ...d.device_ids].sort());
    return ids;
  } finally {
    client.close();
  }
}
