/**
 * Informer: a list+watch cache of one resource type that keeps itself running.
 *
 * It lists (paginated), then watches from the list's resourceVersion, re-watching from the
 * last resourceVersion it saw whenever a watch ends (server timeout, apiserver restart), and
 * re-listing on 410 Gone. Failures back off exponentially with a cap; the backoff resets after
 * a successful list or event (client-node's own informer stops for good on an error).
 *
 * Handlers get every change with the old object, and whether it came from the initial list;
 * they must be cheap and synchronous (they only enqueue keys). Indexes answer "which objects
 * have value V" without scanning.
 */
import type { Logger } from 'pino';
import { collectionPath, isApiError, type KubeClient, type KubeObject, type RawWatchEvent, type ResourceType } from './client.ts';
import { sleep } from './sleep.ts';
import { Api } from './resources.ts';

/** A change the informer applied to its cache. */
export interface InformerEvent<T> {
  readonly type: 'added' | 'updated' | 'deleted';
  readonly object: T;
  /** The previous object for updates (and deletes seen through a re-list). */
  readonly old?: T;
  /** True while delivering the first list (objects that existed before we started). */
  readonly initial: boolean;
}

/** Maps an object to the index values it is filed under. */
export type Indexer<T> = (object: T) => readonly string[];

export interface InformerOptions<T> {
  readonly client: KubeClient;
  readonly type: ResourceType;
  /** Watch one namespace; all when undefined. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  /** e.g. `metadata.name=x`: watch one object (what a resourceNames RBAC rule allows). */
  readonly fieldSelector?: string;
  readonly indexers?: Readonly<Record<string, Indexer<T>>>;
  readonly log: Logger;
  /** First retry delay after a failure; default 200 ms. */
  readonly backoffBaseMs?: number;
  /**
   * Longest retry delay; default 4 s, so a cache is blind for at most that long after an
   * apiserver outage ends (at 10 s, brokers came back 10 s late after a 30 s outage).
   */
  readonly backoffMaxMs?: number;
  /**
   * Server-side watch timeout; default between 5 and 10 min, as client-go's reflector picks it
   * (each re-established watch is a request an idle process pays for). A watch silent for
   * WATCH_SILENCE_S (the apiserver sends a bookmark about every minute), or for this plus 30 s
   * when that is shorter, is presumed dead (no HTTP/2 pings over HTTP/1.1) and re-established
   * from its resourceVersion.
   */
  readonly watchTimeoutSeconds?: number;
  /** Applied to every object before it is cached (e.g. drop fields nobody reads, to save memory). */
  readonly transform?: (object: T) => T;
}

/** Shortest default watch timeout (client-go's reflector: 5 min, times 1 to 2). */
const MIN_WATCH_TIMEOUT_S = 300;
/** Seconds without a byte (three missed bookmarks) after which a watch is presumed dead. */
const WATCH_SILENCE_S = 180;

/** Cache key of an object: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(object: KubeObject): string {
  const namespace = object.metadata?.namespace;
  const name = object.metadata?.name ?? '';
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;
}

export const DEFAULT_BACKOFF_MAX_MS = 4_000;

/**
 * Delay before retry number `failures` (1-based): exponential from `base`, capped at `max`, with
 * equal jitter (half fixed, half random) so the informers of many agents do not retry in step
 * against a recovering apiserver. Never more than `max`.
 */
export function retryDelay(failures: number, base: number, max: number, random: () => number = Math.random): number {
  const capped = Math.min(base * 2 ** Math.max(0, failures - 1), max);
  return capped / 2 + random() * (capped / 2);
}

export class Informer<T extends KubeObject> {
  readonly type: ResourceType;
  readonly #options: InformerOptions<T>;
  readonly #api: Api;
  readonly #cache = new Map<string, T>();
  readonly #indexes = new Map<string, Map<string, Set<string>>>();
  readonly #handlers: ((event: InformerEvent<T>) => void)[] = [];
  readonly #syncWaiters: (() => void)[] = [];
  readonly #attemptWaiters: (() => void)[] = [];
  #synced = false;
  #attempted = false;
  #resourceVersion = '';
  #failures = 0;
  readonly #recoveredHandlers: (() => void)[] = [];
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  /** Listing, watching, or retrying. */
  #state: 'stopped' | 'listing' | 'watching' | 'backoff' = 'stopped';
  #lastError: unknown;

  constructor(options: InformerOptions<T>) {
    this.type = options.type;
    this.#options = options;
    this.#api = new Api(options.client);
    for (const name of Object.keys(options.indexers ?? {})) this.#indexes.set(name, new Map());
  }

  /** Adds a change handler (before `start`, to see the initial list). */
  onEvent(handler: (event: InformerEvent<T>) => void): void {
    this.#handlers.push(handler);
  }

  /** Starts the list+watch loop in the background. */
  start(): void {
    if (this.#loop !== undefined) return;
    const abort = new AbortController();
    this.#abort = abort;
    this.#loop = this.#run(abort.signal);
  }

  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    this.#loop = undefined;
    this.#state = 'stopped';
  }

  /** True once the first list has been delivered. */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves once the first list has been delivered. */
  synced(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  /**
   * Resolves once the first list has been delivered or has failed (e.g. refused by RBAC):
   * for callers that treat "not readable" like "absent" instead of waiting for access.
   */
  attempted(): Promise<void> {
    if (this.#attempted) return Promise.resolve();
    return new Promise((resolve) => this.#attemptWaiters.push(resolve));
  }

  /**
   * Whether the apiserver holds any object this informer would cache (and that also matches
   * `alsoSelect`, a label selector): one list of at most one object, for a caller deciding
   * whether to start it at all.
   */
  async anyExists(signal?: AbortSignal, alsoSelect?: string): Promise<boolean> {
    const labelSelector = [this.#options.labelSelector, alsoSelect].filter((s) => s !== undefined && s !== '').join(',') || undefined;
    const page = await this.#options.client.request<{ items?: unknown[] }>('GET', collectionPath(this.type, this.#options.namespace), {
      verb: 'list',
      resource: this.type.plural,
      query: { limit: 1, labelSelector, fieldSelector: this.#options.fieldSelector },
      signal,
    });
    return (page.items ?? []).length > 0;
  }

  /** What the loop is doing, and the last error (for readiness and logs). */
  health(): { state: string; lastError?: string } {
    const error = this.#lastError;
    const lastError = error === undefined ? undefined : error instanceof Error ? error.message : JSON.stringify(error);
    return { state: this.#state, ...(lastError === undefined ? {} : { lastError }) };
  }

  /**
   * Calls `handler` each time the apiserver answers again after failures (an outage ended):
   * writers that backed off can retry now instead of at the end of their backoff.
   */
  onRecovered(handler: () => void): void {
    this.#recoveredHandlers.push(handler);
  }

  #recovered(): void {
    const wasFailing = this.#failures > 0;
    this.#failures = 0;
    this.#lastError = undefined;
    if (wasFailing) for (const handler of this.#recoveredHandlers) handler();
  }

  /** The error of the last failed list or watch, until one succeeds (e.g. a 403 from RBAC). */
  lastFailure(): unknown {
    return this.#lastError;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#cache.get(namespace === undefined || namespace === '' ? name : `${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  size(): number {
    return this.#cache.size;
  }

  /** Objects filed under `value` by indexer `index`. */
  byIndex(index: string, value: string): T[] {
    const keys = this.#indexes.get(index)?.get(value);
    if (keys === undefined) return [];
    const out: T[] = [];
    for (const key of keys) {
      const object = this.#cache.get(key);
      if (object !== undefined) out.push(object);
    }
    return out;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const base = this.#options.backoffBaseMs ?? 200;
    const max = this.#options.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS;
    while (!signal.aborted) {
      try {
        if (this.#resourceVersion === '') {
          this.#state = 'listing';
          await this.#list(signal);
        }
        this.#state = 'watching';
        await this.#watch(signal);
      } catch (error) {
        if (signal.aborted) break;
        this.#lastError = error;
        if (isApiError(error, 410)) {
          this.#resourceVersion = '';
          continue;
        }
        this.#failures++;
        this.#markAttempted();
        const delay = retryDelay(this.#failures, base, max);
        this.#state = 'backoff';
        this.#options.log.warn({ resource: this.type.plural, err: error, retryInMs: delay }, 'Informer failed; retrying');
        await sleep(delay, signal);
      }
    }
  }

  async #list(signal: AbortSignal): Promise<void> {
    const list = await this.#api.list<T>(this.type, {
      namespace: this.#options.namespace,
      labelSelector: this.#options.labelSelector,
      fieldSelector: this.#options.fieldSelector,
      signal,
    });
    const initial = !this.#synced;
    const fresh = new Map<string, T>();
    for (const item of list.items) fresh.set(objectKey(item), this.#prepare(item));
    for (const [key, old] of [...this.#cache.entries()]) {
      if (!fresh.has(key)) this.#remove(key, old, initial);
    }
    for (const [key, object] of fresh) this.#upsert(key, object, initial);
    this.#resourceVersion = list.metadata?.resourceVersion ?? '';
    this.#recovered();
    if (!this.#synced) {
      this.#synced = true;
      for (const resolve of this.#syncWaiters.splice(0)) resolve();
    }
    this.#markAttempted();
  }

  #markAttempted(): void {
    if (this.#attempted) return;
    this.#attempted = true;
    for (const resolve of this.#attemptWaiters.splice(0)) resolve();
  }

  async #watch(signal: AbortSignal): Promise<void> {
    const jittered =
      this.#options.watchTimeoutSeconds === undefined
        ? Math.round(MIN_WATCH_TIMEOUT_S * (1 + Math.random()))
        : Math.max(1, Math.round(this.#options.watchTimeoutSeconds * (0.9 + Math.random() * 0.2)));
    let gone = false;
    await this.#options.client.watch(
      collectionPath(this.type, this.#options.namespace),
      {
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: jittered,
        labelSelector: this.#options.labelSelector,
        fieldSelector: this.#options.fieldSelector,
      },
      this.type.plural,
      (event) => {
        if (gone) return;
        if (this.#onWatchEvent(event) === 'gone') gone = true;
      },
      signal,
      Math.min(jittered + 30, WATCH_SILENCE_S) * 1000,
    );
    if (gone) this.#resourceVersion = '';
  }

  #onWatchEvent(event: RawWatchEvent): 'ok' | 'gone' {
    if (event.type === 'ERROR') {
      if (event.object.code === 410) return 'gone';
      this.#options.log.warn({ resource: this.type.plural, status: event.object }, 'Watch reported an error');
      return 'gone';
    }
    const rv = event.object.metadata?.resourceVersion;
    if (event.type !== 'BOOKMARK') {
      const object = this.#prepare(event.object as T);
      const key = objectKey(object);
      if (event.type === 'DELETED') {
        const old = this.#cache.get(key);
        this.#remove(key, object, false, old);
      } else {
        this.#upsert(key, object, false);
      }
    }
    if (rv !== undefined && rv !== '') this.#resourceVersion = rv;
    this.#recovered();
    return 'ok';
  }

  #prepare(object: T): T {
    const typed = withTypeMeta(object, this.type);
    return this.#options.transform === undefined ? typed : this.#options.transform(typed);
  }

  #upsert(key: string, object: T, initial: boolean): void {
    const old = this.#cache.get(key);
    if (old !== undefined && old.metadata?.resourceVersion === object.metadata?.resourceVersion) return;
    if (old !== undefined) this.#unindex(key, old);
    this.#cache.set(key, object);
    this.#index(key, object);
    this.#emit({ type: old === undefined ? 'added' : 'updated', object, ...(old === undefined ? {} : { old }), initial });
  }

  #remove(key: string, object: T, initial: boolean, old?: T): void {
    const cached = old ?? this.#cache.get(key);
    if (cached === undefined) return;
    this.#unindex(key, cached);
    this.#cache.delete(key);
    this.#emit({ type: 'deleted', object, old: cached, initial });
  }

  #index(key: string, object: T): void {
    for (const [name, indexer] of Object.entries(this.#options.indexers ?? {})) {
      const index = this.#indexes.get(name)!;
      for (const value of indexer(object)) {
        let keys = index.get(value);
        if (keys === undefined) index.set(value, (keys = new Set()));
        keys.add(key);
      }
    }
  }

  #unindex(key: string, object: T): void {
    for (const [name, indexer] of Object.entries(this.#options.indexers ?? {})) {
      const index = this.#indexes.get(name)!;
      for (const value of indexer(object)) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(value);
      }
    }
  }

  #emit(event: InformerEvent<T>): void {
    for (const handler of this.#handlers) {
      try {
        handler(event);
      } catch (error) {
        this.#options.log.error({ resource: this.type.plural, err: error }, 'Informer handler threw');
      }
    }
  }
}

/** Drops metadata.managedFields (only Devices need them: node release reads them). */
export function withoutManagedFields<T extends KubeObject>(object: T): T {
  if (object.metadata?.managedFields === undefined) return object;
  const { managedFields: _dropped, ...metadata } = object.metadata;
  return { ...object, metadata };
}

/** List items come without apiVersion/kind; add them so objects look alike from both paths. */
function withTypeMeta<T extends KubeObject>(object: T, type: ResourceType): T {
  if (object.kind !== undefined) return object;
  return { apiVersion: type.group === '' ? type.version : `${type.group}/${type.version}`, kind: type.kind, ...object };
}
