/**
 * Waiting on events, not timers: `until` resolves once a condition holds, re-checked whenever
 * `poke` says something happened, and rejects after its timeout.
 */
export class WakeSignal {
  readonly #waiters = new Set<() => void>();

  /** Re-checks every pending `until`. */
  poke(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** Resolves once `test()` holds, re-checked at every `poke`; rejects after `timeoutMs`. */
  async until(test: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }
}
