/**
 * A kubelet stand-in for fast tests. It speaks the real protos over Unix sockets:
 * serves device-plugin Registration on <pluginDir>/kubelet.sock, dials each plugin,
 * consumes ListAndWatch, calls GetPreferredAllocation and Allocate the way the kubelet's
 * device manager does, serves PodResources (List, GetAllocatableResources, Get) from its
 * own allocations, and can simulate a restart (plugin sockets wiped, kubelet.sock
 * re-created, allocations kept as the kubelet's checkpoint keeps them).
 */
import { EventEmitter } from 'node:events';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  credentials,
  Server,
  ServerCredentials,
  status,
  type Client,
  type ClientReadableStream,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadDevicePluginProtos, loadPodResourcesProtos } from '../../proto/load.ts';
import type {
  AllocatableResourcesResponse,
  AllocateRequest,
  AllocateResponse,
  ContainerAllocateResponse,
  DevicePluginOptions,
  GetPodResourcesRequest,
  GetPodResourcesResponse,
  ListAndWatchResponse,
  ListPodResourcesResponse,
  PluginDevice,
  PodResources,
  PreferredAllocationRequest,
  PreferredAllocationResponse,
  RegisterRequest,
} from '../../proto/types.ts';

const RESOURCE_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)\/([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const CHECKPOINT = 'kubelet_internal_checkpoint';

type Rpc = (request: unknown, callback?: unknown) => unknown;

/** What the mock knows about one registered resource. */
export interface RegisteredResource {
  readonly endpoint: string;
  readonly options: DevicePluginOptions;
  devices: PluginDevice[];
  /** False once the plugin's ListAndWatch stream ended (the kubelet then treats devices as unusable). */
  connected: boolean;
  /** ListAndWatch messages received. */
  updates: number;
}

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly container?: string;
}

export interface MockKubeletOptions {
  readonly pluginDir: string;
  /** Where to serve PodResources; omitted = not served. */
  readonly podResourcesDir?: string;
}

/** Events: 'registered' (resource), 'devices' (resource, devices, receivedAtMs), 'disconnected' (resource). */
export class MockKubelet extends EventEmitter {
  readonly #options: MockKubeletOptions;
  readonly #dp = loadDevicePluginProtos();
  readonly #pr = loadPodResourcesProtos();
  readonly #resources = new Map<string, RegisteredResource>();
  readonly #clients = new Map<string, { client: Client; stream: ClientReadableStream<ListAndWatchResponse> }>();
  /** pod key → container → resource → device IDs */
  readonly #allocations = new Map<string, Map<string, Map<string, string[]>>>();
  #registration: Server | undefined;
  #podResources: Server | undefined;
  /** PodResources List calls answered. */
  podResourcesLists = 0;
  /** Register calls answered (accepted or refused). */
  registrations = 0;

  constructor(options: MockKubeletOptions) {
    super();
    this.#options = options;
  }

  get kubeletSocket(): string {
    return join(this.#options.pluginDir, 'kubelet.sock');
  }

  get podResourcesSocket(): string | undefined {
    return this.#options.podResourcesDir === undefined ? undefined : join(this.#options.podResourcesDir, 'kubelet.sock');
  }

  async start(): Promise<void> {
    await mkdir(this.#options.pluginDir, { recursive: true });
    this.#registration = await this.#serve(this.kubeletSocket, this.#dp.Registration.service, {
      Register: (call: ServerUnaryCall<RegisterRequest, unknown>, done: sendUnaryData<unknown>) => this.#register(call.request, done),
    });
    if (this.#options.podResourcesDir !== undefined && this.#podResources === undefined) {
      await mkdir(this.#options.podResourcesDir, { recursive: true });
      this.#podResources = await this.#serve(this.podResourcesSocket!, this.#pr.PodResourcesLister.service, {
        List: (_c: unknown, done: sendUnaryData<ListPodResourcesResponse>) => {
          this.podResourcesLists++;
          done(null, { pod_resources: this.listPods() });
          this.emit('listed');
        },
        GetAllocatableResources: (_c: unknown, done: sendUnaryData<AllocatableResourcesResponse>) =>
          done(null, { devices: this.#allocatable(), cpu_ids: [], memory: [] }),
        Get: (call: ServerUnaryCall<GetPodResourcesRequest, unknown>, done: sendUnaryData<GetPodResourcesResponse>) => {
          const pod = this.listPods().find((p) => p.name === call.request.pod_name && p.namespace === call.request.pod_namespace);
          if (pod === undefined)
            done({ code: status.NOT_FOUND, details: `pod ${call.request.pod_namespace}/${call.request.pod_name} not found` });
          else done(null, { pod_resources: pod });
        },
      });
    }
  }

  /** Stops serving and drops plugin connections; sockets of plugins are left alone. */
  async stop(): Promise<void> {
    await this.#stopRegistration();
    const pr = this.#podResources;
    this.#podResources = undefined;
    if (pr !== undefined) await new Promise<void>((resolve) => pr.tryShutdown(() => resolve()));
  }

  /**
   * Simulates a kubelet restart: connections drop, every file in the device-plugins dir
   * except the checkpoint is removed, and kubelet.sock comes back. Allocations survive.
   */
  async restart(): Promise<void> {
    await this.#stopRegistration();
    for (const name of await readdir(this.#options.pluginDir)) {
      if (name !== CHECKPOINT) await rm(join(this.#options.pluginDir, name), { force: true, recursive: true });
    }
    this.#resources.clear();
    this.emit('restarted');
    await this.start();
  }

  resource(name: string): RegisteredResource | undefined {
    return this.#resources.get(name);
  }

  resourceNames(): string[] {
    return [...this.#resources.keys()].sort();
  }

  /** Device IDs the kubelet would consider for a new pod: healthy, connected, not allocated. */
  freeDevices(resource: string): string[] {
    const r = this.#resources.get(resource);
    if (r === undefined || !r.connected) return [];
    const used = this.#allocatedIds(resource);
    return r.devices.filter((d) => d.health === 'Healthy' && !used.has(d.ID)).map((d) => d.ID);
  }

  /**
   * Admits a container that requests `count` of `resource`, as the kubelet does: picks from
   * free healthy devices (asking the plugin's preferred allocation when offered), then calls
   * Allocate and records the result.
   */
  async allocate(pod: PodRef, resource: string, count: number): Promise<ContainerAllocateResponse> {
    const r = this.#resources.get(resource);
    if (r === undefined) throw new Error(`resource ${resource} is not registered`);
    const free = this.freeDevices(resource);
    if (free.length < count) throw new Error(`${resource}: requested ${count}, only ${free.length} free`);
    let chosen = free.slice(0, count);
    if (r.options.get_preferred_allocation_available) {
      const preferred = await this.preferredAllocation(resource, free, [], count);
      // The kubelet uses the preference only when it is a valid choice.
      if (preferred.length === count && preferred.every((id) => free.includes(id))) chosen = preferred;
    }
    return this.allocateIds(pod, resource, chosen);
  }

  /** Calls Allocate with exactly these IDs (no free-device checks) and records success. */
  async allocateIds(pod: PodRef, resource: string, ids: readonly string[]): Promise<ContainerAllocateResponse> {
    const request: AllocateRequest = { container_requests: [{ devices_ids: [...ids] }] };
    const response = await this.#call<AllocateResponse>(resource, 'Allocate', request);
    const container = response.container_responses[0];
    if (container === undefined) throw new Error(`${resource}: Allocate returned no container response`);
    this.#record(pod, resource, ids);
    return container;
  }

  /** Raw Allocate, for tests that send malformed or multi-container requests. */
  rawAllocate(resource: string, request: AllocateRequest): Promise<AllocateResponse> {
    return this.#call<AllocateResponse>(resource, 'Allocate', request);
  }

  async preferredAllocation(resource: string, available: string[], mustInclude: string[], size: number): Promise<string[]> {
    const request: PreferredAllocationRequest = {
      container_requests: [{ available_deviceIDs: available, must_include_deviceIDs: mustInclude, allocation_size: size }],
    };
    const response = await this.#call<PreferredAllocationResponse>(resource, 'GetPreferredAllocation', request);
    return response.container_responses[0]?.deviceIDs ?? [];
  }

  /** Forgets a pod's allocations (the pod was deleted). */
  removePod(namespace: string, name: string): void {
    this.#allocations.delete(`${namespace}/${name}`);
    this.emit('pods');
  }

  /** Injects an allocation the plugin never saw (e.g. from a checkpoint written before an agent restart). */
  recordAllocation(pod: PodRef, resource: string, ids: readonly string[]): void {
    this.#record(pod, resource, ids);
  }

  listPods(): PodResources[] {
    return [...this.#allocations].map(([key, containers]) => {
      const [namespace = '', name = ''] = key.split('/');
      return {
        name,
        namespace,
        containers: [...containers].map(([container, resources]) => ({
          name: container,
          devices: [...resources].map(([resource_name, device_ids]) => ({ resource_name, device_ids, topology: null })),
          cpu_ids: [],
          memory: [],
          dynamic_resources: [],
        })),
      };
    });
  }

  /** Resolves when `predicate` holds, re-checking on every event; rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const events = ['registered', 'devices', 'disconnected', 'restarted', 'pods', 'listed'];
      const check = (): void => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`mock kubelet: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        for (const e of events) this.off(e, check);
      };
      for (const e of events) this.on(e, check);
    });
  }

  #record(pod: PodRef, resource: string, ids: readonly string[]): void {
    const key = `${pod.namespace}/${pod.name}`;
    const containers = this.#allocations.get(key) ?? new Map<string, Map<string, string[]>>();
    const resources = containers.get(pod.container ?? 'main') ?? new Map<string, string[]>();
    resources.set(resource, [...(resources.get(resource) ?? []), ...ids]);
    containers.set(pod.container ?? 'main', resources);
    this.#allocations.set(key, containers);
    this.emit('pods');
  }

  #allocatedIds(resource: string): Set<string> {
    const ids = new Set<string>();
    for (const containers of this.#allocations.values()) {
      for (const resources of containers.values()) for (const id of resources.get(resource) ?? []) ids.add(id);
    }
    return ids;
  }

  #allocatable(): { resource_name: string; device_ids: string[]; topology: null }[] {
    return [...this.#resources].map(([resource_name, r]) => ({
      resource_name,
      device_ids: r.devices.map((d) => d.ID),
      topology: null,
    }));
  }

  #register(request: RegisterRequest, done: sendUnaryData<unknown>): void {
    this.registrations++;
    const refuse = (details: string): void => done({ code: status.INVALID_ARGUMENT, details });
    if (request.version !== 'v1beta1') return refuse(`unsupported device plugin API version ${request.version}`);
    if (!RESOURCE_NAME.test(request.resource_name)) return refuse(`invalid extended resource name ${request.resource_name}`);
    if (request.resource_name.split('/')[1]!.length > 63) return refuse(`resource name ${request.resource_name} too long`);
    if (request.endpoint.length === 0 || request.endpoint.includes('/')) return refuse(`invalid endpoint ${request.endpoint}`);
    done(null, {});
    // Like the kubelet: answer first, then dial the plugin and start watching.
    this.#connect(request);
  }

  #connect(request: RegisterRequest): void {
    const name = request.resource_name;
    this.#disconnect(name);
    const resource: RegisteredResource = {
      endpoint: request.endpoint,
      options: request.options ?? { pre_start_required: false, get_preferred_allocation_available: false },
      devices: [],
      connected: true,
      updates: 0,
    };
    this.#resources.set(name, resource);
    const client = new this.#dp.DevicePlugin(`unix://${join(this.#options.pluginDir, request.endpoint)}`, credentials.createInsecure());
    const stream = (client as unknown as Record<string, Rpc>)['ListAndWatch']!.call(
      client,
      {},
    ) as ClientReadableStream<ListAndWatchResponse>;
    this.#clients.set(name, { client, stream });
    stream.on('data', (message: ListAndWatchResponse) => {
      const receivedAt = performance.now();
      resource.devices = message.devices;
      resource.updates++;
      this.emit('devices', name, message.devices, receivedAt);
    });
    const ended = (): void => {
      if (this.#clients.get(name)?.stream !== stream) return;
      resource.connected = false;
      this.emit('disconnected', name);
    };
    stream.on('error', ended);
    stream.on('end', ended);
    this.emit('registered', name);
  }

  #disconnect(name: string): void {
    const c = this.#clients.get(name);
    if (c === undefined) return;
    this.#clients.delete(name);
    c.stream.cancel();
    c.client.close();
  }

  async #stopRegistration(): Promise<void> {
    for (const name of [...this.#clients.keys()]) this.#disconnect(name);
    for (const r of this.#resources.values()) r.connected = false;
    const server = this.#registration;
    this.#registration = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await rm(this.kubeletSocket, { force: true });
  }

  #call<T>(resource: string, method: string, request: unknown): Promise<T> {
    const c = this.#clients.get(resource);
    if (c === undefined) return Promise.reject(new Error(`resource ${resource} is not connected`));
    const rpc = (c.client as unknown as Record<string, Rpc>)[method]!;
    return new Promise<T>((resolve, reject) => {
      rpc.call(c.client, request, (error: ServiceError | null, response: T) => (error ? reject(error) : resolve(response)));
    });
  }

  async #serve(socket: string, service: object, implementation: object): Promise<Server> {
    await rm(socket, { force: true });
    const server = new Server();
    server.addService(service as never, implementation as never);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
    );
    return server;
  }
}
