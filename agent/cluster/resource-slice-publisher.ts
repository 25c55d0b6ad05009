/**
 * Publishes this node's ResourceSlices for its DRA discoveries (the pure part is
 * resource-slices.ts). Level-triggered and coalesced: `update` only records the newest device
 * set and wakes one loop, which plans against what the cluster holds (a ResourceSlice informer
 * on this node's slices of the driver, overlaid with the answers to its own writes) and writes
 * the difference — server-side apply as `tether-agent/<node>`, forced (each slice has exactly
 * one writer, this agent), then deletes. A slice changed or deleted by anyone else (say the
 * kubelet wiping a node's slices when a plugin deregisters) is noticed by the informer and
 * written again; a failed pass is retried with a capped backoff.
 */
import type { Logger } from 'pino';
import { agentManager } from '../../api/field-managers.ts';
import { DRA_DRIVER_NAME } from '../../api/dra-names.ts';
import type { DeviceDiscovery } from '../../api/schema.ts';
import { isApiError, type KubeClient } from '../../kube/client.ts';
import { Informer, withoutManagedFields } from '../../kube/informer.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import type { DevicePublication } from '../runtime/adapters.ts';
import {
  desiredPools,
  newSliceMemo,
  planSlices,
  type DraDiscoverySettings,
  type ResourceSlice,
  type SliceDevice,
} from './resource-slices.ts';

export interface ResourceSlicePublisherOptions {
  readonly node: string;
  readonly client: KubeClient;
  readonly log: Logger;
  /** The DeviceDiscovery `namespace/name` as this node knows it now (the source's informer). */
  readonly discovery: (namespace: string, name: string) => DeviceDiscovery | undefined;
  /** This node's Node object uid, if known: slices are owned by it, so deleting the Node deletes them. */
  readonly nodeUid?: () => string | undefined;
  /** Most concurrent writes per pass. */
  readonly concurrency?: number;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
}

/** The DRA settings of a discovery whose backend is DRA, else undefined. */
export function draSettings(discovery: DeviceDiscovery | undefined): DraDiscoverySettings | undefined {
  if (discovery?.spec.backend !== 'DRA') return undefined;
  return { evictOnOffline: discovery.spec.dra?.evictOnOffline ?? false, attributeTypes: discovery.spec.dra?.attributeTypes ?? {} };
}

function newer(a: string | undefined, b: string | undefined): boolean {
  try {
    return BigInt(a ?? '0') > BigInt(b ?? '0');
  } catch {
    return a !== b;
  }
}

export class ResourceSlicePublisher {
  readonly #options: ResourceSlicePublisherOptions;
  readonly #api: Api;
  readonly #informer: Informer<ResourceSlice>;
  /** Slices of this node as last seen: informer events and the answers to our own writes. */
  readonly #known = new Map<string, ResourceSlice>();
  readonly #memo = newSliceMemo();
  /** Pool → the generation this agent last wrote. */
  readonly #generations = new Map<string, number>();
  #devices: readonly SliceDevice[] = [];
  /**
   * Whether the runtime has said what this node serves. Until then the slices a previous run
   * wrote stand: planning with no devices would empty them for the length of a restart, and no
   * claim could be allocated meanwhile.
   */
  #told = false;
  #started = false;
  /** This node's slices first known (the informer synced). */
  #synced: Promise<void> = new Promise(() => undefined);
  #stopped = false;
  #dirty = false;
  #loop: Promise<void> | undefined;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  /** Writes issued (apply: a create or an apply; delete), for tests and benchmarks. */
  readonly writes = { apply: 0, delete: 0 };

  constructor(options: ResourceSlicePublisherOptions) {
    this.#options = options;
    this.#api = new Api(options.client);
    this.#informer = new Informer<ResourceSlice>({
      client: options.client,
      type: RESOURCES.resourceSlices,
      fieldSelector: `spec.nodeName=${options.node},spec.driver=${DRA_DRIVER_NAME}`,
      log: options.log,
      transform: withoutManagedFields,
    });
    this.#informer.onEvent(({ type, object }) => {
      const name = object.metadata.name;
      const known = this.#known.get(name);
      if (type === 'deleted') {
        if (known === undefined || newer(known.metadata.resourceVersion, object.metadata.resourceVersion)) return;
        this.#known.delete(name);
      } else {
        if (known !== undefined && !newer(object.metadata.resourceVersion, known.metadata.resourceVersion)) {
          // Our own write seen again: keep the informer's copy, so each slice is held once, not twice.
          if (object.metadata.resourceVersion === known.metadata.resourceVersion) this.#known.set(name, object);
          return;
        }
        this.#known.set(name, object);
      }
      this.#kick();
    });
    this.#informer.onRecovered(() => this.#kick());
  }

  /**
   * Starts the informer and returns at once; publishing begins once this node's slices are
   * known. Not awaited on purpose: on a cluster without `resource.k8s.io/v1` (or an agent role
   * without resourceslices) the informer retries forever, and the device plugins and Devices
   * must not wait for it.
   */
  start(): Promise<void> {
    this.#informer.start();
    this.#synced = this.#informer.synced().then(() => {
      if (this.#stopped) return;
      for (const slice of this.#informer.list()) this.#known.set(slice.metadata.name, slice);
      this.#started = true;
      this.#kick();
    });
    return Promise.resolve();
  }

  /**
   * Resolves when the slices reflect the last `update` (its pass ran, or failed and waits for
   * a retry). Before this node's slices are first known it waits for them up to
   * `waitForSyncMs`, never longer: a cluster that does not answer the slice list must not hold
   * the caller.
   */
  async flushed(waitForSyncMs = 5_000): Promise<void> {
    if (!this.#started && !this.#stopped) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#synced, new Promise((resolve) => (timer = setTimeout(resolve, waitForSyncMs)))]);
      clearTimeout(timer);
    }
    await this.idle();
  }

  /** The devices this node serves now (all of them; non-DRA ones are skipped). Cheap, synchronous. */
  update(devices: readonly SliceDevice[]): void {
    this.#devices = devices;
    this.#told = true;
    this.#kick();
  }

  /** Plans again with the same devices (a DRA discovery's settings or backend changed). */
  resync(): void {
    this.#kick();
  }

  /** Resolves when no pass is running or pending (a scheduled retry does not count). */
  async idle(): Promise<void> {
    while (this.#loop !== undefined) await this.#loop;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#started = false;
    clearTimeout(this.#retry);
    await this.idle();
    await this.#informer.stop();
  }

  #kick(): void {
    if (!this.#started || !this.#told) return;
    this.#dirty = true;
    this.#loop ??= this.#run().finally(() => (this.#loop = undefined));
  }

  async #run(): Promise<void> {
    while (this.#dirty && this.#started && this.#told) {
      this.#dirty = false;
      try {
        await this.#pass();
        this.#failures = 0;
      } catch (error) {
        this.#failures++;
        const base = this.#options.retryBaseMs ?? 200;
        const delay = Math.min(this.#options.retryMaxMs ?? 30_000, base * 2 ** Math.min(this.#failures - 1, 16));
        this.#options.log.warn({ err: error, retryInMs: delay }, 'Failed to publish ResourceSlices');
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => this.#kick(), delay);
        this.#retry.unref();
        return;
      }
    }
  }

  async #pass(): Promise<void> {
    const { node, discovery } = this.#options;
    const started = performance.now();
    const pools = desiredPools(node, this.#devices, (namespace, name) => draSettings(discovery(namespace, name)), this.#memo);
    const plan = planSlices(node, pools, [...this.#known.values()], {}, this.#generations, this.#memo.keys);
    if (plan.apply.length === 0 && plan.delete.length === 0) return;
    const planned = performance.now();
    const uid = this.#options.nodeUid?.();
    const owner = uid === undefined ? {} : { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node, uid }] };
    await forEachLimit(plan.apply, this.#options.concurrency ?? 8, async (slice) => {
      this.writes.apply++;
      const body = { ...slice, metadata: { ...slice.metadata, ...owner } };
      const written = await this.#write(body);
      this.#known.set(written.metadata.name, withoutManagedFields(written));
      this.#generations.set(written.spec.pool.name, written.spec.pool.generation);
    });
    await forEachLimit(plan.delete, this.#options.concurrency ?? 8, async (name) => {
      this.writes.delete++;
      try {
        await this.#api.delete(RESOURCES.resourceSlices, undefined, name);
      } catch (error) {
        if (!isApiError(error, 404)) throw new Error(`deleting ResourceSlice ${name}`, { cause: error });
      }
      this.#known.delete(name);
    });
    this.#options.log.debug(
      {
        applied: plan.apply.length,
        deleted: plan.delete.length,
        planMs: Math.round(planned - started),
        writeMs: Math.round(performance.now() - planned),
      },
      'Published ResourceSlices',
    );
  }

  /**
   * A slice the cluster does not have yet is created (POST); one it has is applied. Both
   * as this node's field manager. A create costs the apiserver half what a server-side
   * apply of a 64-device slice does (~20–30 vs ~45–80 ms here): the first publication of
   * 10 000 devices is 157 of them.
   */
  async #write(slice: ResourceSlice): Promise<ResourceSlice> {
    const fieldManager = agentManager(this.#options.node);
    if (!this.#known.has(slice.metadata.name)) {
      try {
        return await this.#api.create<ResourceSlice>(RESOURCES.resourceSlices, undefined, slice, undefined, fieldManager);
      } catch (error) {
        if (!isApiError(error, 409)) throw error; // written meanwhile (not yet seen): apply it
      }
    }
    return this.#api.apply<ResourceSlice>(RESOURCES.resourceSlices, slice, { fieldManager, force: true });
  }
}

/** Runs `fn` over `items`, at most `limit` at once; rejects with the first error after all settle. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: Error | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failure ??= error instanceof Error ? error : new Error(String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}

/**
 * `publication` that also keeps the ResourceSlices equal to the devices it publishes: the node
 * runtime calls `publish` with every device it serves after each change, so the slices follow
 * the same level-triggered path as the Device objects. The slices go first: they are what the
 * scheduler allocates from, while the Device objects are the inventory, and thousands of
 * Device writes queued at the apiserver ahead of them would hold them back (10 000 devices:
 * every device in a slice after 10.4 s when written side by side).
 */
export function withResourceSlices(publication: DevicePublication, slices: ResourceSlicePublisher): DevicePublication {
  return {
    async start(events) {
      await publication.start(events);
      await slices.start();
    },
    get seeded() {
      return publication.seeded;
    },
    previouslyServed: (namespace, discovery) => publication.previouslyServed(namespace, discovery),
    serverSlots: (device) => publication.serverSlots(device),
    async publish(devices) {
      slices.update(devices);
      await slices.flushed();
      return publication.publish(devices);
    },
    persistSlots: (device, held) => publication.persistSlots(device, held),
    async idle() {
      await Promise.all([publication.idle(), slices.idle()]);
    },
    async stop() {
      await Promise.all([publication.stop(), slices.stop()]);
    },
  };
}
