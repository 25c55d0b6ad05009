/** On-demand informers: started once, together, joining the running list; the workers' gate; the left-over check. */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Informer } from '../../kube/informer.ts';
import { OnDemandInformers } from './on-demand.ts';

/** The part of an Informer the on-demand set uses, observable. */
class FakeInformer {
  readonly type: { plural: string };
  starts = 0;
  #synced = false;
  readonly #waiters: (() => void)[] = [];
  readonly selectorsAsked: (string | undefined)[] = [];
  readonly #exists: boolean;

  constructor(plural: string, exists = false) {
    this.type = { plural };
    this.#exists = exists;
  }

  start(): void {
    this.starts++;
  }

  hasSynced(): boolean {
    return this.#synced;
  }

  synced(): Promise<void> {
    return this.#synced ? Promise.resolve() : new Promise((resolve) => this.#waiters.push(resolve));
  }

  sync(): void {
    this.#synced = true;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  anyExists(_signal: AbortSignal | undefined, alsoSelect?: string): Promise<boolean> {
    this.selectorsAsked.push(alsoSelect);
    return Promise.resolve(this.#exists);
  }
}

const informer = (f: FakeInformer): Informer<never> => f as unknown as Informer<never>;
const log = pino({ level: 'silent' });

describe('OnDemandInformers', () => {
  it('starts what was added only when asked, once, and adds it to the running list; later additions start at once', () => {
    const running: Informer<never>[] = [];
    const [pods, jobs, classes] = [new FakeInformer('pods'), new FakeInformer('jobs'), new FakeInformer('deviceclasses')];
    const onDemand = new OnDemandInformers(running, log);
    onDemand.add([informer(pods), informer(jobs)]);
    expect([pods.starts, jobs.starts, running.length, onDemand.started]).toEqual([0, 0, 0, false]);

    onDemand.start('a DeviceDiscovery exists');
    onDemand.start('a Device exists');
    expect([pods.starts, jobs.starts, onDemand.started]).toEqual([1, 1, true]);
    expect(running.map((i) => i.type.plural)).toEqual(['pods', 'jobs']);

    onDemand.add([informer(classes)]);
    expect(classes.starts).toBe(1);
    expect(running.map((i) => i.type.plural)).toEqual(['pods', 'jobs', 'deviceclasses']);
  });

  it('gates workers: at once before the start, then until every started informer synced, or until stopped', async () => {
    const [pods, jobs] = [new FakeInformer('pods'), new FakeInformer('jobs')];
    const onDemand = new OnDemandInformers([], log);
    onDemand.add([informer(pods), informer(jobs)]);
    await onDemand.synced(new AbortController().signal); // nothing started: nothing to wait for

    onDemand.start('a Device exists');
    let passed = false;
    const gate = onDemand.synced(new AbortController().signal).then(() => (passed = true));
    pods.sync();
    await Promise.resolve();
    expect(passed).toBe(false);
    jobs.sync();
    await gate;
    expect(passed).toBe(true);

    const other = new FakeInformer('services');
    onDemand.add([informer(other)]);
    const stop = new AbortController();
    const stopped = onDemand.synced(stop.signal);
    stop.abort();
    await stopped; // resolves on stop although services never synced
    expect(other.hasSynced()).toBe(false);
    await onDemand.synced(stop.signal); // and at once when already stopped
    expect(other.hasSynced()).toBe(false);
  });

  it('finds left-over objects of any waiting kind, asking with the extra selector given for it', async () => {
    const [pods, classes] = [new FakeInformer('pods'), new FakeInformer('deviceclasses', true)];
    const onDemand = new OnDemandInformers([], log);
    onDemand.add([informer(pods)]);
    expect(await onDemand.anyLeftOver(new AbortController().signal)).toBe(false);
    onDemand.add([informer(classes)], 'tether.dev/discovery-namespace=edge');
    expect(await onDemand.anyLeftOver(new AbortController().signal)).toBe(true);
    expect(pods.selectorsAsked).toEqual([undefined, undefined]);
    expect(classes.selectorsAsked).toEqual(['tether.dev/discovery-namespace=edge']);
  });
});
