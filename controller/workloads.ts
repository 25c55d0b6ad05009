/**
 * Caches of workload brokers (`spec.broker.workload`): one informer per kind a DeviceDiscovery
 * names, started the first time a reconcile asks for it, its resource found through API
 * discovery (kube/api-discovery.ts). Like the Pod and Job informers they select on
 * `app.kubernetes.io/managed-by=tether-controller` and index by device and discovery.
 *
 * `ensure` never blocks: it answers what is known now (ready, pending, or failed with why) and
 * resolves in the background; when a kind becomes ready or fails, `onSettled` is called so the
 * devices waiting on it are reconciled again. A failed kind (a CRD not installed, a typo) is
 * asked again after `retryMs`. Informers run until `stop` — kinds no discovery names any more
 * keep being watched, so their brokers are still torn down.
 * WARNING: after a controller restart, a kind no DeviceDiscovery names is not watched; brokers
 * of that kind left from an earlier template are removed only with their Device (owner
 * reference, by the garbage collector).
 */
import type { Logger } from 'pino';
import { ApiResources, UnknownKindError } from '../kube/api-discovery.ts';
import type { KubeClient, ResourceType } from '../kube/client.ts';
import { Informer, withoutManagedFields, type InformerEvent } from '../kube/informer.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../api/labels.ts';
import { workloadKindKey, type WorkloadObject } from './devices/brokers/workload.ts';
import { BY_DEVICE, BY_DISCOVERY, labelKey } from './context.ts';
import { DEVICE_LABEL, DISCOVERY_LABEL } from '../api/labels.ts';

export type WorkloadKindState =
  | { readonly state: 'ready'; readonly type: ResourceType; readonly informer: Informer<WorkloadObject> }
  | { readonly state: 'pending' }
  | { readonly state: 'failed'; readonly message: string; readonly retryAtMs: number };

export interface WorkloadCachesOptions {
  readonly client: KubeClient;
  readonly namespace: string | undefined;
  readonly log: Logger;
  /** Every change of a watched workload broker (enqueue its device and discovery). */
  readonly onEvent: (event: InformerEvent<WorkloadObject>) => void;
  /** A kind became ready (synced) or failed to resolve. */
  readonly onSettled: (kind: string) => void;
  /** Retry delay after a kind failed to resolve; default 10 s. */
  readonly retryMs?: number;
  readonly now?: () => number;
}

export class WorkloadCaches {
  readonly #options: WorkloadCachesOptions;
  readonly #resources: ApiResources;
  readonly #kinds = new Map<string, WorkloadKindState>();
  #stopped = false;

  constructor(options: WorkloadCachesOptions) {
    this.#options = options;
    // A retry must ask the apiserver again: its cached answer may not be older than the retry delay.
    this.#resources = new ApiResources(options.client, {
      refreshMs: options.retryMs ?? 10_000,
      ...(options.now ? { now: options.now } : {}),
    });
  }

  /** State of `kind` in `apiVersion`, starting its resolution and informer when new. */
  ensure(apiVersion: string, kind: string): WorkloadKindState {
    const key = workloadKindKey(apiVersion, kind);
    const now = (this.#options.now ?? Date.now)();
    const known = this.#kinds.get(key);
    if (known !== undefined && !(known.state === 'failed' && now >= known.retryAtMs)) {
      return known.state === 'ready' && !known.informer.hasSynced() ? { state: 'pending' } : known;
    }
    if (this.#stopped) return { state: 'pending' };
    this.#kinds.set(key, { state: 'pending' });
    void this.#start(key, apiVersion, kind);
    return { state: 'pending' };
  }

  async #start(key: string, apiVersion: string, kind: string): Promise<void> {
    const { log, onSettled } = this.#options;
    let type: ResourceType;
    try {
      type = await this.#resources.resolve(apiVersion, kind);
    } catch (error) {
      const message =
        error instanceof UnknownKindError
          ? error.message
          : `could not look up ${kind} (${apiVersion}): ${error instanceof Error ? error.message : String(error)}`;
      this.#kinds.set(key, { state: 'failed', message, retryAtMs: (this.#options.now ?? Date.now)() + (this.#options.retryMs ?? 10_000) });
      log.warn({ kind: key, reason: message }, 'Could not resolve a broker kind');
      onSettled(key);
      return;
    }
    if (this.#stopped) return;
    const informer = new Informer<WorkloadObject>({
      client: this.#options.client,
      type,
      namespace: this.#options.namespace,
      log,
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`,
      transform: withoutManagedFields,
      indexers: { [BY_DEVICE]: (o) => labelKey(o, DEVICE_LABEL), [BY_DISCOVERY]: (o) => labelKey(o, DISCOVERY_LABEL) },
    });
    informer.onEvent(this.#options.onEvent);
    this.#kinds.set(key, { state: 'ready', type, informer });
    informer.start();
    log.info({ kind: key, resource: type.plural }, 'Started watching a broker kind');
    await informer.synced();
    if (!this.#stopped) onSettled(key);
  }

  /** The resource of a kind being watched. */
  typeOf(kind: string): ResourceType | undefined {
    const known = this.#kinds.get(kind);
    return known?.state === 'ready' ? known.type : undefined;
  }

  /** Workload brokers filed under `value` by `index` ('device' or 'discovery'), over every watched kind. */
  byIndex(index: string, value: string): { kind: string; object: WorkloadObject }[] {
    const out: { kind: string; object: WorkloadObject }[] = [];
    for (const [kind, known] of this.#kinds) {
      if (known.state !== 'ready') continue;
      for (const object of known.informer.byIndex(index, value)) out.push({ kind, object });
    }
    return out;
  }

  /** Every cached workload broker. */
  list(): { kind: string; object: WorkloadObject }[] {
    const out: { kind: string; object: WorkloadObject }[] = [];
    for (const [kind, known] of this.#kinds)
      if (known.state === 'ready') for (const object of known.informer.list()) out.push({ kind, object });
    return out;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const informers = [...this.#kinds.values()].flatMap((k) => (k.state === 'ready' ? [k.informer] : []));
    await Promise.all(informers.map((i) => i.stop()));
  }
}
