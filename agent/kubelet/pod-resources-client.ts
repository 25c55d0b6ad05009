/** Client of the kubelet's PodResources API (List). One channel; its connection is let go when idle. */
import { credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadPodResourcesProtos } from '../../proto/load.ts';
import type { ListPodResourcesResponse, PodResources } from '../../proto/types.ts';
import { KUBELET_CHANNEL_OPTIONS } from './channel-options.ts';

export class PodResourcesClient {
  readonly #client: Client;

  /** `idleTimeoutMs`: how long an unused connection is kept (default KUBELET_CHANNEL_OPTIONS'). */
  constructor(socketPath: string, options: { readonly idleTimeoutMs?: number } = {}) {
    const { PodResourcesLister } = loadPodResourcesProtos();
    this.#client = new PodResourcesLister(`unix://${socketPath}`, credentials.createInsecure(), {
      ...KUBELET_CHANNEL_OPTIONS,
      ...(options.idleTimeoutMs === undefined ? {} : { 'grpc.client_idle_timeout_ms': options.idleTimeoutMs }),
    });
  }

  /** The channel, for its connectivity state. */
  get channel(): ReturnType<Client['getChannel']> {
    return this.#client.getChannel();
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
