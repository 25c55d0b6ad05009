/**
 * One device-plugin gRPC server: one extended resource, one Unix socket in the kubelet's
 * device-plugins directory. It knows nothing about discovery or Kubernetes objects: the
 * manager gives it the device list and a backend that answers Allocate.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { credentials, status, type Client, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { loadDevicePluginProtos, type DevicePluginProtos } from '../../proto/load.ts';
import {
  DEVICE_PLUGIN_API_VERSION,
  type AllocateRequest,
  type AllocateResponse,
  type ContainerAllocateResponse,
  type ContainerPreferredAllocationRequest,
  type DevicePluginOptions,
  type Empty,
  type ListAndWatchResponse,
  type PluginDevice,
  type PreferredAllocationRequest,
  type PreferredAllocationResponse,
  type RegisterRequest,
} from '../../proto/types.ts';
import { GrpcSocketServer, type MethodHandler, type ServerStream } from './grpc-server.ts';

/** Answers the kubelet's questions about one resource. Called concurrently. */
export interface PluginBackend {
  /**
   * Allocates `deviceIds` (already checked to be known to this plugin) for one container.
   * Throw PluginError to fail the call with a specific gRPC status.
   */
  allocate(resourceName: string, deviceIds: readonly string[]): Promise<ContainerAllocateResponse>;
  /** Chooses `allocation_size` of the available IDs, including the must-include ones. */
  preferredAllocation(resourceName: string, request: ContainerPreferredAllocationRequest): readonly string[];
  /** Undoes `allocate` for a container whose sibling container's allocation failed. */
  release(resourceName: string, deviceIds: readonly string[]): void;
}

/** An error that maps to a specific gRPC status code for the kubelet. */
export class PluginError extends Error {
  readonly code: status;
  constructor(code: status, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PluginError';
    this.code = code;
  }
}

export interface DevicePluginServerOptions {
  readonly resourceName: string;
  readonly pluginDir: string;
  readonly backend: PluginBackend;
  readonly log: Logger;
  readonly protos?: DevicePluginProtos;
}

/** Socket file name for a resource: short (Unix socket paths are limited to 108 bytes) and stable. */
export function socketNameFor(resourceName: string): string {
  return `tether-${createHash('sha256').update(resourceName).digest('hex').slice(0, 16)}.sock`;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameIds(devices: readonly PluginDevice[], ids: readonly string[]): boolean {
  return devices.length === ids.length && devices.every((d, i) => d.ID === ids[i]);
}

function sameDevices(a: readonly PluginDevice[], b: readonly PluginDevice[]): boolean {
  return a.length === b.length && a.every((d, i) => d.ID === b[i]?.ID && d.health === b[i]?.health);
}

/** What the kubelet is told: a PluginError's own status, INTERNAL for anything else. */
function toStatusError(error: unknown): PluginError {
  if (error instanceof PluginError) return error;
  return new PluginError(status.INTERNAL, error instanceof Error ? error.message : String(error), { cause: error });
}

export class DevicePluginServer {
  readonly resourceName: string;
  readonly endpoint: string;
  readonly socketPath: string;
  readonly #backend: PluginBackend;
  readonly #log: Logger;
  readonly #protos: DevicePluginProtos;
  #devices: readonly PluginDevice[] = [];
  /** The IDs of `#devices`, for Allocate's check: O(request), not O(devices), per call. */
  #ids: ReadonlySet<string> = new Set();
  /** The IDs of the last `setDevices` input, in its order, and the permutation that sorts them. */
  #inputIds: readonly string[] = [];
  #order: readonly number[] = [];
  readonly #streams = new Set<ServerStream<ListAndWatchResponse>>();
  #server: GrpcSocketServer | undefined;

  constructor(options: DevicePluginServerOptions) {
    this.resourceName = options.resourceName;
    this.endpoint = socketNameFor(options.resourceName);
    this.socketPath = join(options.pluginDir, this.endpoint);
    this.#backend = options.backend;
    this.#log = options.log.child({ resource: options.resourceName });
    this.#protos = options.protos ?? loadDevicePluginProtos();
  }

  get devices(): readonly PluginDevice[] {
    return this.#devices;
  }

  /** Number of kubelet ListAndWatch streams currently open. */
  get watchers(): number {
    return this.#streams.size;
  }

  /**
   * Replaces the device list; pushes it to every open ListAndWatch stream when it changed.
   * Callers give the same IDs in the same order time after time (only health changes), so the
   * sort order of the last list is reused: O(devices) per call instead of a sort.
   */
  setDevices(devices: readonly PluginDevice[]): boolean {
    if (!sameIds(devices, this.#inputIds)) {
      this.#inputIds = devices.map((d) => d.ID);
      this.#order = devices.map((_, i) => i).sort((a, b) => compareIds(devices[a]!.ID, devices[b]!.ID));
    }
    const sorted = this.#order.map((i) => devices[i]!);
    if (sameDevices(sorted, this.#devices)) return false;
    this.#devices = sorted;
    this.#ids = new Set(sorted.map((d) => d.ID));
    for (const stream of this.#streams) stream.write(this.#snapshot());
    return true;
  }

  /** Binds the socket (removing a stale file first) and starts serving. Idempotent. */
  async serve(): Promise<void> {
    if (this.#server !== undefined) await this.#close();
    await rm(this.socketPath, { force: true });
    try {
      this.#server = await GrpcSocketServer.listen({
        socketPath: this.socketPath,
        service: this.#protos.DevicePlugin.service,
        handlers: this.#implementation(),
        onError: (error) => this.#log.debug({ err: error }, 'kubelet connection error'),
      });
    } catch (error) {
      throw new Error(`binding ${this.socketPath}`, { cause: error });
    }
  }

  /**
   * One registration attempt with the kubelet. Throws when the kubelet refuses or is absent.
   * `client`: a Registration client to kubelet.sock shared by many plugins (the caller closes
   * it); without one, a client is made and closed for this call.
   */
  async register(kubeletSocket: string, timeoutMs = 5_000, shared?: Client): Promise<void> {
    const client = shared ?? new this.#protos.Registration(`unix://${kubeletSocket}`, credentials.createInsecure());
    const request: RegisterRequest = {
      version: DEVICE_PLUGIN_API_VERSION,
      endpoint: this.endpoint,
      resource_name: this.resourceName,
      options: { pre_start_required: false, get_preferred_allocation_available: true },
    };
    try {
      await new Promise<void>((resolve, reject) => {
        const deadline = new Date(Date.now() + timeoutMs);
        (client as Client & Record<string, (...args: unknown[]) => void>)['Register']!(
          request,
          { deadline },
          (error: ServiceError | null) => (error ? reject(error) : resolve()),
        );
      });
      this.#log.debug({ endpoint: this.endpoint }, 'Registered device plugin');
    } catch (error) {
      throw new Error(`registering ${this.resourceName} with ${kubeletSocket}`, { cause: error });
    } finally {
      if (shared === undefined) client.close();
    }
  }

  /** Ends all streams, stops serving and removes the socket. */
  async stop(): Promise<void> {
    await this.#close();
    await rm(this.socketPath, { force: true });
  }

  async #close(): Promise<void> {
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
    const server = this.#server;
    this.#server = undefined;
    await server?.close();
  }

  #snapshot(): ListAndWatchResponse {
    return { devices: this.#devices.map((d) => ({ ID: d.ID, health: d.health, topology: d.topology ?? null })) };
  }

  #unknownIds(ids: readonly string[]): string[] {
    return ids.filter((id) => !this.#ids.has(id));
  }

  #implementation(): Record<string, MethodHandler> {
    const options: DevicePluginOptions = { pre_start_required: false, get_preferred_allocation_available: true };
    return {
      GetDevicePluginOptions: { unary: (_request: Empty) => options },
      ListAndWatch: {
        serverStream: (_request: Empty, stream: ServerStream<ListAndWatchResponse>) => {
          this.#streams.add(stream);
          stream.onClose(() => this.#streams.delete(stream));
          stream.write(this.#snapshot());
        },
      },
      GetPreferredAllocation: {
        unary: (request: PreferredAllocationRequest): PreferredAllocationResponse => {
          try {
            return {
              container_responses: request.container_requests.map((container) => ({
                deviceIDs: [...this.#backend.preferredAllocation(this.resourceName, container)],
              })),
            };
          } catch (error) {
            throw toStatusError(error);
          }
        },
      },
      Allocate: {
        unary: async (request: AllocateRequest): Promise<AllocateResponse> => {
          try {
            return await this.#allocate(request);
          } catch (error) {
            this.#log.warn({ err: error }, 'Refused allocation');
            throw toStatusError(error);
          }
        },
      },
      PreStartContainer: { unary: (_request: unknown): Empty => ({}) },
    };
  }

  async #allocate(request: AllocateRequest): Promise<AllocateResponse> {
    if (request.container_requests.length === 0) {
      throw new PluginError(status.INVALID_ARGUMENT, 'Allocate request has no container requests');
    }
    for (const container of request.container_requests) {
      if (container.devices_ids.length === 0) throw new PluginError(status.INVALID_ARGUMENT, 'container request has no device IDs');
      const unknown = this.#unknownIds(container.devices_ids);
      if (unknown.length > 0) {
        throw new PluginError(status.NOT_FOUND, `unknown device ID(s) ${unknown.join(', ')} for resource ${this.resourceName}`);
      }
    }
    // All containers or none: a failure part-way releases what was already allocated.
    const container_responses: ContainerAllocateResponse[] = [];
    const done: (readonly string[])[] = [];
    try {
      for (const container of request.container_requests) {
        container_responses.push(await this.#backend.allocate(this.resourceName, container.devices_ids));
        done.push(container.devices_ids);
      }
    } catch (error) {
      for (const ids of done) this.#backend.release(this.resourceName, ids);
      throw error;
    }
    return { container_responses };
  }
}
