/**
 * Informers an idle controller does without (issue 15). The brokers' Pods, Jobs and Services and
 * the DRA objects cost a watch each, and a watch wakes the process about once a minute for its
 * bookmark, yet there is nothing for them to see while no DeviceDiscovery and no Device exists
 * and none of their objects is left over. They start with the first DeviceDiscovery or Device
 * (or at start-up, when one of their objects exists) and then run for good. A worker waits for
 * them to sync before it reconciles, so no reconcile takes an unsynced cache for "no brokers".
 */
import type { Logger } from 'pino';
import type { Informer } from '../../kube/informer.ts';

export class OnDemandInformers {
  readonly #running: Informer<never>[];
  readonly #log: Logger;
  readonly #waiting: Informer<never>[] = [];
  readonly #mine: Informer<never>[] = [];
  readonly #leftOverSelectors = new Map<Informer<never>, string>();
  #started = false;

  /** `running`: the controller's list of running informers (health, readiness, stop); started ones join it. */
  constructor(running: Informer<never>[], log: Logger) {
    this.#running = running;
    this.#log = log;
  }

  get started(): boolean {
    return this.#started;
  }

  /**
   * Adds informers: started at once when the others already are, else with them.
   * `leftOverSelector`: only their objects that also match it count as left over (a
   * namespaced controller's cluster-scoped DeviceClasses: only its namespace's).
   */
  add(informers: readonly Informer<never>[], leftOverSelector?: string): void {
    this.#mine.push(...informers);
    if (leftOverSelector !== undefined) for (const informer of informers) this.#leftOverSelectors.set(informer, leftOverSelector);
    if (this.#started) this.#run(informers);
    else this.#waiting.push(...informers);
  }

  /** Starts every informer added (idempotent). */
  start(reason: string): void {
    if (this.#started) return;
    this.#started = true;
    this.#log.info({ reason, informers: this.#waiting.map((i) => i.type.plural) }, 'Starting the broker and DRA informers');
    this.#run(this.#waiting.splice(0));
  }

  /** Whether any added informer's objects exist (left over from an earlier run). */
  async anyLeftOver(signal: AbortSignal): Promise<boolean> {
    const found = await Promise.all(this.#waiting.map((i) => i.anyExists(signal, this.#leftOverSelectors.get(i))));
    return found.includes(true);
  }

  /** Resolves once every started informer has synced (at once when none is started or all are). */
  async synced(signal: AbortSignal): Promise<void> {
    // Aborted already: an 'abort' listener would never fire, and a stopped cache may never sync.
    if (!this.#started || signal.aborted) return;
    const syncing = this.#mine.filter((i) => !i.hasSynced());
    if (syncing.length === 0) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      void Promise.all(syncing.map((i) => i.synced())).then(done);
    });
  }

  #run(informers: readonly Informer<never>[]): void {
    for (const informer of informers) informer.start();
    this.#running.push(...informers);
  }
}
