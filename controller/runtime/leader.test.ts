/**
 * LeaderElector against an in-memory Lease store with the apiserver's answers (404 for a
 * missing Lease, 409 for a stale resourceVersion): what happens when the Lease is deleted, as
 * `helm uninstall` deletes the chart's while the controllers are still running.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeApiError } from '../../kube/client.ts';
import type { Api } from '../../kube/resources.ts';
import { LeaderElector, type LeaderElectionConfig } from './leader.ts';
import { WakeSignal } from '../../test/support/wake-signal.ts';

interface StoredLease {
  metadata: { name: string; namespace: string; resourceVersion: string };
  spec: { holderIdentity?: string; renewTime?: string };
}

/** One namespace's Leases, answering as the apiserver does. */
class LeaseStore {
  /** Poked on every request and every leadership change. */
  readonly changed = new WakeSignal();
  lease: StoredLease | undefined;
  creates = 0;
  gets = 0;
  #version = 0;

  readonly api = {
    get: (_type: unknown, _namespace: string, _name: string): Promise<StoredLease> => {
      this.gets++;
      this.changed.poke();
      return this.lease === undefined ? Promise.reject(notFound()) : Promise.resolve(structuredClone(this.lease));
    },
    create: (_type: unknown, namespace: string, body: Omit<StoredLease, 'metadata'> & { metadata: { name: string } }) => {
      this.changed.poke();
      if (this.lease !== undefined) return Promise.reject(new KubeApiError(409, 'exists', '', {}));
      this.creates++;
      this.lease = { metadata: { name: body.metadata.name, namespace, resourceVersion: String(++this.#version) }, spec: body.spec };
      return Promise.resolve(structuredClone(this.lease));
    },
    replace: (_type: unknown, _namespace: string, _name: string, body: StoredLease) => {
      this.changed.poke();
      if (this.lease === undefined) return Promise.reject(notFound());
      if (body.metadata.resourceVersion !== this.lease.metadata.resourceVersion)
        return Promise.reject(new KubeApiError(409, 'conflict', '', {}));
      this.lease = { metadata: { ...this.lease.metadata, resourceVersion: String(++this.#version) }, spec: body.spec };
      return Promise.resolve(structuredClone(this.lease));
    },
  } as unknown as Api;
}

const notFound = (): KubeApiError => new KubeApiError(404, 'not found', '', {});

const config = (identity: string, leaseDurationSeconds = 1): LeaderElectionConfig => ({
  namespace: 'tether-system',
  name: 'tether-controller',
  identity,
  leaseDurationSeconds,
  renewDeadlineMs: 600,
  retryPeriodMs: 20,
});

const stops: AbortController[] = [];
afterEach(() => stops.splice(0).forEach((c) => c.abort()));

function elect(store: LeaseStore, identity: string, leaseDurationSeconds?: number) {
  const state = { leading: false, stoppedLeading: 0 };
  const elector = new LeaderElector(store.api, config(identity, leaseDurationSeconds), pino({ level: 'silent' }), {
    onStartedLeading: () => {
      state.leading = true;
      store.changed.poke();
    },
    onStoppedLeading: () => {
      state.leading = false;
      state.stoppedLeading++;
      store.changed.poke();
    },
  });
  const stop = new AbortController();
  stops.push(stop);
  const running = elector.run(stop.signal);
  return { state, elector, running };
}

describe('LeaderElector when its Lease is deleted', () => {
  it('the leader steps down and neither replica re-creates the Lease before its duration has passed', async () => {
    const store = new LeaseStore();
    const a = elect(store, 'a', 2);
    await store.changed.until(() => a.state.leading, 'a leads', 2_000);
    const b = elect(store, 'b', 2);
    await store.changed.until(
      // The leader renews without reading (its fast path), so a read is b's.
      () => store.gets > 0 && store.lease?.spec.holderIdentity === 'a' && !b.state.leading,
      'b has read the Lease a holds',
      2_000,
    );
    const deletedAt = Date.now();
    store.lease = undefined; // helm uninstall

    await store.changed.until(() => a.state.stoppedLeading === 1, 'a steps down', 2_000);
    expect(Date.now() - deletedAt).toBeLessThan(1_000); // at its next renewal, not after its renew deadline
    expect(store.lease).toBeUndefined();
    // Once the duration since the last renewal has passed, a replica that is still running
    // takes over by creating the Lease again (an administrator deleted it, nobody re-installs).
    await store.changed.until(() => store.lease !== undefined, 'the Lease created again', 4_000);
    expect(Date.now() - deletedAt).toBeGreaterThanOrEqual(1_500);
    await store.changed.until(() => a.state.leading || b.state.leading, 'a leader again', 2_000);
    expect(a.state.leading && b.state.leading).toBe(false);
  });

  it('a replica that never saw the Lease creates a missing one at once (a fresh install)', async () => {
    const store = new LeaseStore();
    const started = Date.now();
    const a = elect(store, 'a', 60);
    await store.changed.until(() => a.state.leading, 'a leads', 2_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(store.creates).toBe(1);
  });

  it('a re-installed replica leads at once while the uninstalled ones wait out the deleted Lease', async () => {
    const store = new LeaseStore();
    const old = elect(store, 'old', 60);
    await store.changed.until(() => old.state.leading, 'the old replica leads', 2_000);
    store.lease = undefined; // helm uninstall; the old pod is still terminating
    await store.changed.until(() => old.state.stoppedLeading === 1, 'the old replica steps down', 2_000);
    // helm install: the chart's Lease (no holder) and a new replica.
    store.lease = { metadata: { name: 'tether-controller', namespace: 'tether-system', resourceVersion: '100' }, spec: {} };
    const fresh = elect(store, 'new', 60);
    await store.changed.until(() => fresh.state.leading, 'the new replica leads', 2_000);
    expect(store.lease.spec.holderIdentity).toBe('new');
    expect(old.state.leading).toBe(false);
  });
});
