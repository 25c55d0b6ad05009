/**
 * The controller's only door to the apiserver: plain-JSON requests and watches, counted.
 *
 * Why not the generated clients: they deserialise lists into classes (timestamps become Date)
 * while watch events stay plain JSON, so an informer built on both holds two shapes of the
 * same object; and each generated call builds a new TLS dispatcher (no connection reuse).
 * Here every object is the apiserver's JSON, one dispatcher is reused (refreshed every minute
 * so rotated tokens are picked up), and every request is counted by verb and resource — the
 * benchmark reports those counts and `/metrics` exports them.
 *
 * Errors are client-node `ApiException`s with the numeric HTTP `code` and the Status body.
 */
import { ApiException, HttpMethod, IsomorphicFetchHttpLibrary, RequestContext, type KubeConfig } from '@kubernetes/client-node';

/** A Kubernetes resource type: where its objects live. */
export interface ResourceType {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

/** apiVersion string of a resource type (`v1`, `batch/v1`, `tether.dev/v1alpha1`). */
export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/** Collection URL path; `namespace` undefined means all namespaces (or a cluster-scoped type). */
export function collectionPath(type: ResourceType, namespace?: string): string {
  const base = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  const ns = type.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${type.plural}`;
}

/** Object URL path, optionally of a subresource (`status`, `eviction`). */
export function objectPath(type: ResourceType, namespace: string | undefined, name: string, subresource?: string): string {
  const sub = subresource === undefined ? '' : `/${subresource}`;
  return `${collectionPath(type, namespace)}/${encodeURIComponent(name)}${sub}`;
}

/** Minimal object shape every Kubernetes object has. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
    creationTimestamp?: unknown;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
    managedFields?: { manager?: string; operation?: string; subresource?: string; fieldsV1?: object }[];
  };
}

/** A list response. */
export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** Verb label for request counting. */
export type Verb = 'list' | 'watch' | 'get' | 'create' | 'update' | 'patch' | 'apply' | 'delete';

/** Counts of requests issued, by `verb resource` (e.g. `create pods`). */
export class RequestCounter {
  readonly #counts = new Map<string, number>();
  #listeners: ((verb: Verb, resource: string) => void)[] = [];

  record(verb: Verb, resource: string): void {
    const key = `${verb} ${resource}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    for (const listener of this.#listeners) listener(verb, resource);
  }

  /** Called on every request (metrics hook). */
  onRequest(listener: (verb: Verb, resource: string) => void): void {
    this.#listeners.push(listener);
  }

  total(): number {
    let sum = 0;
    for (const n of this.#counts.values()) sum += n;
    return sum;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  reset(): void {
    this.#counts.clear();
  }
}

/** Options of one request. */
export interface RequestOptions {
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** For counting; defaults from the method. */
  readonly verb: Verb;
  /** For counting: the resource plural (and subresource). */
  readonly resource: string;
}

/** One watch event as the apiserver sends it. */
export interface RawWatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: KubeObject & { code?: number; message?: string };
}

const AUTH_REFRESH_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;

interface Auth {
  readonly headers: Record<string, string>;
  readonly dispatcher: ReturnType<RequestContext['getDispatcher']>;
  readonly at: number;
}

/**
 * JSON requests against one apiserver. Safe for concurrent use. `close()` releases pooled
 * connections.
 */
export class KubeClient {
  readonly counter: RequestCounter;
  readonly #kc: KubeConfig;
  readonly #server: string;
  readonly #http = new IsomorphicFetchHttpLibrary();
  #auth: Promise<Auth> | undefined;

  constructor(kc: KubeConfig, counter: RequestCounter = new RequestCounter()) {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    this.#kc = kc;
    this.#server = cluster.server.replace(/\/+$/, '');
    this.counter = counter;
  }

  /** Performs a request and returns the parsed JSON body (undefined for an empty body). */
  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, options: RequestOptions): Promise<T> {
    const ctx = await this.#context(method, path, options.query);
    ctx.setHeaderParam('Accept', 'application/json');
    if (options.body !== undefined) {
      ctx.setHeaderParam('Content-Type', options.contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(options.body));
    }
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    ctx.setSignal(options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]));
    this.counter.record(options.verb, options.resource);
    const response = await this.#http.send(ctx).toPromise();
    const text = await response.body.text();
    if (response.httpStatusCode < 200 || response.httpStatusCode > 299) {
      throw new ApiException(
        response.httpStatusCode,
        `${method} ${path}: HTTP ${response.httpStatusCode}: ${statusMessage(text)}`,
        text,
        response.headers,
      );
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /**
   * Opens a watch and calls `onEvent` per event until the stream ends; resolves then (clean
   * end) or rejects (HTTP error, network error, `inactivityMs` without a byte). The caller
   * reconnects. `signal` aborts it (resolves).
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    resource: string,
    onEvent: (event: RawWatchEvent) => void,
    signal: AbortSignal,
    inactivityMs: number,
  ): Promise<void> {
    const ctx = await this.#context('GET', path, { ...query, watch: true });
    ctx.setHeaderParam('Accept', 'application/json');
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, inactivityMs);
      timer.unref();
    };
    ctx.setSignal(controller.signal);
    this.counter.record('watch', resource);
    try {
      arm();
      const response = await this.#http.send(ctx).toPromise();
      if (response.httpStatusCode !== 200) {
        const text = await response.body.text();
        throw new ApiException(
          response.httpStatusCode,
          `watch ${path}: HTTP ${response.httpStatusCode}: ${statusMessage(text)}`,
          text,
          response.headers,
        );
      }
      const stream = response.body.stream();
      if (stream === null) throw new Error(`watch ${path}: no response body`);
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of stream) {
        arm();
        buffered += decoder.decode(chunk, { stream: true });
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== '') onEvent(JSON.parse(line) as RawWatchEvent);
          newline = buffered.indexOf('\n');
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (timedOut) throw new Error(`watch ${path}: no data for ${inactivityMs} ms`, { cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }

  async #context(
    method: string,
    path: string,
    query: Record<string, string | number | boolean | undefined> | undefined,
  ): Promise<RequestContext> {
    const url = new URL(this.#server + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const ctx = new RequestContext(url.toString(), method as HttpMethod);
    const auth = await this.#currentAuth();
    for (const [key, value] of Object.entries(auth.headers)) ctx.setHeaderParam(key, value);
    if (auth.dispatcher !== undefined) ctx.setDispatcher(auth.dispatcher);
    return ctx;
  }

  async #currentAuth(): Promise<Auth> {
    const current = this.#auth;
    if (current !== undefined) {
      const auth = await current.catch(() => undefined);
      if (auth !== undefined && Date.now() - auth.at < AUTH_REFRESH_MS) return auth;
    }
    const next = this.#authenticate();
    this.#auth = next;
    return next;
  }

  async #authenticate(): Promise<Auth> {
    const probe = new RequestContext(this.#server, HttpMethod.GET);
    await this.#kc.applySecurityAuthentication(probe);
    return { headers: { ...probe.getHeaders() }, dispatcher: probe.getDispatcher(), at: Date.now() };
  }
}

function statusMessage(text: string): string {
  try {
    const status = JSON.parse(text) as { message?: string };
    return status.message ?? text.slice(0, 500);
  } catch {
    return text.slice(0, 500);
  }
}

/** HTTP status code of an ApiException, else undefined. */
export function errorCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** True for an ApiException with one of `codes`. */
export function isApiError(error: unknown, ...codes: number[]): boolean {
  const code = errorCode(error);
  return code !== undefined && codes.includes(code);
}
