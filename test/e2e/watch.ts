/**
 * Waiting on the real apiserver by watching, not sleeping: `watchUntil`
 * resolves with the first object a predicate accepts, within a deadline.
 */
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { Watch } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';

/** Options for {@link watchUntil}. */
export interface WatchUntilOptions<T> {
  /** Collection path, e.g. `/api/v1/nodes` or `/api/v1/namespaces/x/pods`. */
  path: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** Start from here (e.g. a list's resourceVersion) instead of replaying the current state. */
  resourceVersion?: string;
  /**
   * Accepts an object (with the event type: ADDED, MODIFIED, DELETED). May
   * throw to fail the wait at once (e.g. a pod that can no longer succeed).
   */
  predicate: (object: T, type: string) => boolean;
  timeoutMs: number;
  /** What is awaited, for the timeout message. */
  description: string;
  /** Polled every 250 ms; a returned string fails the wait (e.g. "kubelet exited"). */
  abortIf?: () => string | undefined;
  /** How the last seen object is shown on timeout; default its JSON `status`. */
  describe?: (object: T) => string;
}

function defaultDescribe(object: KubernetesObject): string {
  return JSON.stringify((object as { status?: unknown }).status ?? object).slice(0, 3_000);
}

/**
 * Watches a collection from its current state (a watch without
 * resourceVersion first replays every existing object as ADDED) and resolves
 * with the first object `predicate` accepts. Reconnects from the last seen
 * resourceVersion when the watch ends; starts over after 410 Gone.
 */
export function watchUntil<T extends KubernetesObject>(kc: KubeConfig, options: WatchUntilOptions<T>): Promise<T> {
  const watch = new Watch(kc);
  return new Promise<T>((resolve, reject) => {
    let resourceVersion: string | undefined = options.resourceVersion;
    let controller: AbortController | undefined;
    let last: T | undefined;
    let finished = false;
    let lastError: unknown;
    const finish = (error: Error | undefined, object?: T): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (poll !== undefined) clearInterval(poll);
      controller?.abort();
      if (error === undefined && object !== undefined) resolve(object);
      else reject(error ?? new Error('watch finished without an object'));
    };
    const timer = setTimeout(() => {
      const seen = last === undefined ? 'nothing' : (options.describe ?? defaultDescribe)(last);
      const cause = lastError === undefined ? {} : { cause: lastError };
      finish(new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.description}; last seen: ${seen}`, cause));
    }, options.timeoutMs);
    const abortIf = options.abortIf;
    const poll =
      abortIf === undefined
        ? undefined
        : setInterval(() => {
            const reason = abortIf();
            if (reason !== undefined) finish(new Error(`gave up waiting for ${options.description}: ${reason}`));
          }, 250);
    const onEvent = (type: string, object: T): void => {
      if (finished) return;
      if (type === 'ERROR') {
        // 410 Gone (too old a resourceVersion): replay from the current state.
        resourceVersion = undefined;
        return;
      }
      resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
      if (type === 'BOOKMARK') return;
      last = object;
      try {
        if (options.predicate(object, type)) finish(undefined, object);
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    };
    const reconnect = (error: unknown): void => {
      if (finished) return;
      // Idle watches time out (client-side, 30 s) by design: not worth reporting.
      const name = (error as { name?: string } | null | undefined)?.name;
      if (error !== null && error !== undefined && name !== 'TimeoutError' && name !== 'AbortError') lastError = error;
      setTimeout(connect, 200);
    };
    const connect = (): void => {
      if (finished) return;
      const query = {
        allowWatchBookmarks: true,
        resourceVersion,
        fieldSelector: options.fieldSelector,
        labelSelector: options.labelSelector,
      };
      watch.watch(options.path, query, onEvent, reconnect).then((started) => {
        controller = started;
        if (finished) started.abort();
      }, reconnect);
    };
    connect();
  });
}

/** Options for {@link watchSetUntil}. */
export interface WatchSetOptions<T> {
  /** Collection path, e.g. `/api/v1/namespaces/x/pods`. */
  path: string;
  labelSelector?: string;
  /** Judges the whole current set (by name) after the list and after every event. */
  predicate: (objects: T[]) => boolean;
  timeoutMs: number;
  description: string;
  describe?: (objects: T[]) => string;
}

/**
 * Lists a collection, then watches it from the list's resourceVersion,
 * keeping the current set of objects; resolves with (and the time of) the
 * first set `predicate` accepts. The time is taken when the event arrives,
 * so benches can use it as "when the world changed, as a client saw it".
 */
export async function watchSetUntil<T extends KubernetesObject>(
  kc: KubeConfig,
  options: WatchSetOptions<T>,
): Promise<{ objects: T[]; at: number }> {
  const objects = new Map<string, T>();
  const describe = options.describe ?? ((set: T[]) => set.map((o) => o.metadata?.name ?? '?').join(', '));
  const key = (o: T): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
  const list = await listCollection<T>(kc, options.path, options.labelSelector);
  for (const item of list.items) objects.set(key(item), item);
  const current = (): T[] => [...objects.values()];
  if (options.predicate(current())) return { objects: current(), at: Date.now() };
  let found: { objects: T[]; at: number } | undefined;
  try {
    await watchUntil<T>(kc, {
      path: options.path,
      ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }),
      resourceVersion: list.resourceVersion,
      predicate: (object, type) => {
        if (type === 'DELETED') objects.delete(key(object));
        else objects.set(key(object), object);
        if (!options.predicate(current())) return false;
        found = { objects: current(), at: Date.now() };
        return true;
      },
      timeoutMs: options.timeoutMs,
      description: options.description,
      describe: () => describe(current()),
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}; set: ${describe(current())}`, { cause: error });
  }
  if (found === undefined) throw new Error(`watch for ${options.description} ended without a match`);
  return found;
}

async function listCollection<T>(kc: KubeConfig, path: string, labelSelector?: string): Promise<{ items: T[]; resourceVersion: string }> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig has no current cluster');
  const url = new URL(`${cluster.server}${path}`);
  if (labelSelector !== undefined) url.searchParams.set('labelSelector', labelSelector);
  const options: RequestOptions = { method: 'GET' };
  await kc.applyToHTTPSOptions(options);
  const body = await new Promise<string>((resolve, reject) => {
    const request = httpsRequest(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (response.statusCode === 200) resolve(text);
        else reject(new Error(`GET ${path}: ${response.statusCode ?? '?'} ${text.slice(0, 500)}`));
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
  const parsed = JSON.parse(body) as { items: T[]; metadata: { resourceVersion: string } };
  return { items: parsed.items, resourceVersion: parsed.metadata.resourceVersion };
}
