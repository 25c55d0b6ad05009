/**
 * Waiting on the real apiserver by watching, not sleeping: `watchUntil`
 * resolves with the first object a predicate accepts, within a deadline.
 */
import { Watch } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';

/** Options for {@link watchUntil}. */
export interface WatchUntilOptions<T> {
  /** Collection path, e.g. `/api/v1/nodes` or `/api/v1/namespaces/x/pods`. */
  path: string;
  fieldSelector?: string;
  labelSelector?: string;
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
    let resourceVersion: string | undefined;
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
      watch.watch(options.path, query, onEvent, reconnect).then(
        (started) => {
          controller = started;
          if (finished) started.abort();
        },
        reconnect,
      );
    };
    connect();
  });
}
