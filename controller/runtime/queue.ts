/**
 * A deduplicating keyed work queue, as controller-runtime's: a key is queued at most once; a
 * key being processed is never handed to a second worker, and if it is added meanwhile it is
 * processed once more afterwards. Failures requeue with a per-key exponential delay
 * (`base · 2^failures`, capped); `forget` resets it after a success.
 *
 * Single-threaded JavaScript: no locks; `get()` awaits until a key is ready.
 */

export interface RateLimit {
  /** First retry delay after a failure. */
  readonly baseMs: number;
  /** Longest retry delay. */
  readonly maxMs: number;
}

export class WorkQueue {
  readonly #rate: RateLimit;
  readonly #queue: string[] = [];
  #head = 0;
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  #shutDown = false;
  /** Total adds that were not deduplicated (for metrics). */
  adds = 0;

  constructor(rate: RateLimit) {
    this.#rate = rate;
  }

  /** Queues `key` (no-op if it is already queued). */
  add(key: string): void {
    if (this.#shutDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.adds++;
    if (this.#processing.has(key)) return;
    this.#push(key);
  }

  /** Queues `key` after `delayMs`; an earlier pending delayed add wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.#shutDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.#delayed.set(key, { at, timer });
  }

  /** Requeues `key` after its failure delay and counts the failure. Returns the delay. */
  addRateLimited(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.min(this.#rate.baseMs * 2 ** failures, this.#rate.maxMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the failure count of `key` (after a successful reconcile). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Failures counted for `key` since it last succeeded. */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /**
   * The next key to process, or undefined once shut down or when `signal` aborts (then no key
   * is taken). Call `done(key)` afterwards.
   */
  get(signal?: AbortSignal): Promise<string | undefined> {
    if (signal?.aborted === true) return Promise.resolve(undefined);
    const key = this.#pop();
    if (key !== undefined) return Promise.resolve(this.#take(key));
    if (this.#shutDown) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter = (k: string | undefined): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(k);
      };
      const onAbort = (): void => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        resolve(undefined);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Marks `key` processed; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) this.#push(key);
  }

  /** Keys waiting (not counting delayed ones). */
  length(): number {
    return this.#queue.length - this.#head;
  }

  /** Keys handed out and not yet `done`. */
  processingCount(): number {
    return this.#processing.size;
  }

  /** Keys waiting for a delayed add. */
  delayedLength(): number {
    return this.#delayed.size;
  }

  /** Wakes every waiter with undefined and refuses new keys. */
  shutDown(): void {
    this.#shutDown = true;
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    for (const resolve of this.#waiters.splice(0)) resolve(undefined);
  }

  #push(key: string): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter(this.#take(key));
      return;
    }
    this.#queue.push(key);
  }

  #pop(): string | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const key = this.#queue[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    return key;
  }

  #take(key: string): string {
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }
}
