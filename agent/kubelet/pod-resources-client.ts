/** Client of the kubelet's PodResources API (List). One connection, reused. */
import { credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadPodResourcesProtos } from '../../proto/load.ts';
import type { ListPodResourcesResponse, PodResources } from '../../proto/types.ts';

export class PodResourcesClient {
  readonly #client: Client;

  constructor(socketPath: string) {
    const { PodResourcesLister } = loadPodResourcesProtos();
    this.#client = new PodResourcesLister(`unix://${socketPath}`, credentials.createInsecure());
  }

  list(timeoutMs = 5_000): Promise<PodResources[]> {
    const list = (this.#client as unknown as Record<string, (...args: unknown[]) => void>)['List']!;
    return new Promise((resolve, reject) => {
      list.call(
        this.#client,
        {},
        { deadline: new Date(Date.now() + timeoutMs) },
        (error: ServiceError | null, response: ListPodResourcesResponse) =>
          error ? reject(new Error('PodResources List failed', { cause: error })) : resolve(response.pod_resources),
      );
    });
  }

  close(): void {
    this.#client.close();
  }
}
