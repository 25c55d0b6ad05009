/**
 * A tiny CRI RuntimeService client over containerd's socket (the subset in
 * cri-subset.proto): a readiness probe for containerd's CRI plugin, and the
 * teardown `crictl rmp -fa` would do — stop and remove every pod sandbox, so
 * containers die, CNI DEL runs and the network namespaces go away.
 */
import {
  credentials,
  loadPackageDefinition,
  type Client,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

/** One pod sandbox as ListPodSandbox reports it. */
export interface CriSandbox {
  id: string;
  metadata: { name: string; namespace: string; uid: string; attempt: number } | null;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
}

/** One container as ListContainers reports it. */
export interface CriContainer {
  id: string;
  pod_sandbox_id: string;
  metadata: { name: string; attempt: number } | null;
  state: 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
}

/** CRI version info (runtime name and version, CRI API version). */
export interface CriVersion {
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

function runtimeService(): ServiceClientConstructor {
  const path = fileURLToPath(new URL('./cri-subset.proto', import.meta.url));
  const root = loadPackageDefinition(loadSync(path, { keepCase: true, longs: Number, enums: String, defaults: true, arrays: true }));
  const ctor = ((root['runtime'] as GrpcObject)['v1'] as GrpcObject)['RuntimeService'];
  if (typeof ctor !== 'function') throw new Error('RuntimeService missing from cri-subset.proto');
  return ctor;
}

/** A CRI client for one Unix socket; close it when done. */
export class CriClient {
  readonly #client: Client;

  constructor(socketPath: string) {
    const RuntimeService = runtimeService();
    this.#client = new RuntimeService(`unix://${socketPath}`, credentials.createInsecure());
  }

  #call<T>(method: string, request: object, timeoutMs: number): Promise<T> {
    const fn = (this.#client as unknown as Record<string, (...args: unknown[]) => void>)[method];
    if (fn === undefined) throw new Error(`no CRI method ${method}`);
    return new Promise((resolve, reject) => {
      fn.call(this.#client, request, { deadline: new Date(Date.now() + timeoutMs) }, (error: ServiceError | null, response: T) =>
        error ? reject(new Error(`CRI ${method} failed: ${error.details || error.message}`, { cause: error })) : resolve(response),
      );
    });
  }

  version(timeoutMs = 2_000): Promise<CriVersion> {
    return this.#call('Version', { version: 'v1' }, timeoutMs);
  }

  async sandboxes(timeoutMs = 10_000): Promise<CriSandbox[]> {
    return (await this.#call<{ items: CriSandbox[] }>('ListPodSandbox', {}, timeoutMs)).items;
  }

  async containers(timeoutMs = 10_000): Promise<CriContainer[]> {
    return (await this.#call<{ containers: CriContainer[] }>('ListContainers', {}, timeoutMs)).containers;
  }

  /** Stops (killing its containers, CNI DEL) and removes one sandbox. */
  async removeSandbox(id: string, timeoutMs = 30_000): Promise<void> {
    await this.#call('StopPodSandbox', { pod_sandbox_id: id }, timeoutMs);
    await this.#call('RemovePodSandbox', { pod_sandbox_id: id }, timeoutMs);
  }

  close(): void {
    this.#client.close();
  }
}
