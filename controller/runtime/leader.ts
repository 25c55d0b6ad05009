/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: several
 * replicas run, one holds the lease and works, the others wait as warm standbys (their caches
 * are filled) and take over when the lease is not renewed for `leaseDuration`.
 *
 * - Expiry is judged on the local clock from when this replica last saw the lease record
 *   change, never by comparing the holder's timestamps with ours (clock skew).
 * - Writes are optimistic (resourceVersion); a lost race is a 409 and simply "not leader".
 * - The leader renews every `retryPeriod`; if it cannot renew for `renewDeadline`, it steps
 *   down (calls `onStoppedLeading`) before its lease can expire elsewhere, so two replicas
 *   never act at once while the apiserver is reachable.
 * - `release` (on SIGTERM) clears the holder so a standby takes over within `retryPeriod`.
 * - A Lease this replica has seen that then disappears was deleted on purpose (`helm uninstall`
 *   removes the chart's): the leader steps down, and no replica that saw it re-creates it before
 *   its duration has passed since it last changed. Otherwise a replica being uninstalled would
 *   re-create it, die holding it, and a re-install would wait out the whole lease. A replica
 *   that never saw the Lease (a fresh install) creates a missing one at once.
 */
import type { Logger } from 'pino';
import { isApiError } from '../../kube/client.ts';
import { RESOURCES, type Api } from '../../kube/resources.ts';
import { withDeadline } from '../../kube/deadline.ts';
import { sleep } from '../../kube/sleep.ts';
import { microTime, toMillis } from './time.ts';

export interface LeaderElectionConfig {
  readonly namespace: string;
  readonly name: string;
  /** Unique per replica (e.g. pod name + random suffix). */
  readonly identity: string;
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export interface LeaderCallbacks {
  /** Called on winning the lease; `signal` aborts when leadership ends. */
  readonly onStartedLeading: (signal: AbortSignal) => void;
  /** Called after leadership ends (lost or released). */
  readonly onStoppedLeading: () => void;
  readonly onNewLeader?: (identity: string) => void;
}

export class LeaderElector {
  readonly #api: Api;
  readonly #config: LeaderElectionConfig;
  readonly #log: Logger;
  readonly #callbacks: LeaderCallbacks;
  #leading = false;
  #term: AbortController | undefined;
  /** Set by every read or write of the Lease: once set, the Lease's absence is a deletion. */
  #observed: { holder: string; renewTime: string; at: number } | undefined;
  #lease: Lease | undefined;
  #lastLeader = '';

  constructor(api: Api, config: LeaderElectionConfig, log: Logger, callbacks: LeaderCallbacks) {
    this.#api = api;
    this.#config = config;
    this.#log = log;
    this.#callbacks = callbacks;
  }

  isLeader(): boolean {
    return this.#leading;
  }

  /** Campaigns, leads, and campaigns again after losing the lease, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#acquire(signal);
      if (signal.aborted) break;
      this.#startLeading();
      await this.#renewLoop(signal);
      this.#stopLeading();
    }
  }

  /** Gives the lease up (call after the work stopped). No-op unless leading or last holder. */
  async release(): Promise<void> {
    const lease = this.#lease;
    if (lease?.spec?.holderIdentity !== this.#config.identity) return;
    const now = Date.now();
    try {
      this.#lease = await this.#api.replace<Lease>(RESOURCES.leases, this.#config.namespace, this.#config.name, {
        metadata: { ...lease.metadata },
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(now), acquireTime: microTime(now) },
      });
      this.#log.info({ lease: this.#config.name }, 'Released the leader lease');
    } catch (error) {
      this.#log.warn({ err: error }, 'Could not release the leader lease; it expires on its own');
    }
  }

  async #acquire(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (await this.#tryAcquireOrRenew(signal)) return;
      await sleep(this.#config.retryPeriodMs, signal);
    }
  }

  async #renewLoop(signal: AbortSignal): Promise<void> {
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.#config.retryPeriodMs, signal);
      if (signal.aborted) return;
      if ((await this.#renewHeld(signal)) || (await this.#tryAcquireOrRenew(signal))) {
        lastRenew = Date.now();
        continue;
      }
      if (this.#lease === undefined) {
        this.#log.warn({ lease: this.#config.name }, 'The leader lease was deleted; stepping down');
        return;
      }
      if (
        this.#lease?.spec?.holderIdentity !== undefined &&
        this.#lease.spec.holderIdentity !== this.#config.identity &&
        this.#lease.spec.holderIdentity !== ''
      ) {
        this.#log.warn({ holder: this.#lease.spec.holderIdentity }, 'Lost the leader lease to another replica');
        return;
      }
      if (Date.now() - lastRenew >= this.#config.renewDeadlineMs) {
        this.#log.warn({ renewDeadlineMs: this.#config.renewDeadlineMs }, 'Could not renew the leader lease in time; stepping down');
        return;
      }
    }
  }

  /**
   * The leader's renewal, as client-go's fast path: one update of the lease it holds (its last
   * resourceVersion), no read first — half the requests of an idle leader. Any failure (a
   * conflict: someone else wrote it) falls back to read-then-update.
   */
  #renewHeld(outer: AbortSignal): Promise<boolean> {
    return withDeadline(outer, this.#config.renewDeadlineMs, 'lease renewal timed out', (signal) => this.#renewHeldWithin(signal));
  }

  async #renewHeldWithin(signal: AbortSignal): Promise<boolean> {
    const now = Date.now();
    const held = this.#lease;
    const { namespace, name, identity, leaseDurationSeconds } = this.#config;
    if (held?.spec?.holderIdentity !== identity || held.metadata?.resourceVersion === undefined) return false;
    try {
      this.#lease = await this.#api.replace<Lease>(
        RESOURCES.leases,
        namespace,
        name,
        { metadata: { ...held.metadata }, spec: { ...held.spec, leaseDurationSeconds, renewTime: microTime(now) } },
        signal,
      );
      this.#observe(this.#lease, now);
      return true;
    } catch (error) {
      this.#log.debug({ err: error }, 'Could not renew the leader lease on the fast path; reading it');
      return false;
    }
  }

  /** One attempt; true when we hold the lease afterwards. */
  #tryAcquireOrRenew(outer: AbortSignal): Promise<boolean> {
    return withDeadline(outer, this.#config.renewDeadlineMs, 'lease update timed out', (signal) => this.#tryAcquireOrRenewWithin(signal));
  }

  async #tryAcquireOrRenewWithin(signal: AbortSignal): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.#config;
    const now = Date.now();
    let current: Lease;
    try {
      current = await this.#api.get<Lease>(RESOURCES.leases, namespace, name, signal);
    } catch (error) {
      if (isApiError(error, 404)) return this.#createUnlessDeleted(now, signal);
      this.#log.debug({ err: error }, 'Could not read the leader lease');
      return false;
    }
    this.#lease = current;
    this.#observe(current, now);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const heldByOther = holder !== '' && holder !== identity;
    const durationMs = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (heldByOther && this.#observed !== undefined && this.#observed.at + durationMs > now) return false;

    const transitions = spec.leaseTransitions ?? 0;
    const next: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: holder === identity && spec.acquireTime !== undefined ? spec.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: holder === identity ? transitions : transitions + 1,
    };
    try {
      this.#lease = await this.#api.replace<Lease>(
        RESOURCES.leases,
        namespace,
        name,
        { metadata: { ...current.metadata }, spec: next },
        signal,
      );
      this.#observe(this.#lease, now);
      return true;
    } catch (error) {
      this.#log.debug({ err: error }, 'Could not update the leader lease');
      return false;
    }
  }

  /** A missing Lease: created, unless this replica saw it and its duration has not passed since. */
  #createUnlessDeleted(now: number, signal: AbortSignal): Promise<boolean> {
    const durationMs = this.#config.leaseDurationSeconds * 1000;
    if (this.#observed !== undefined && now < this.#observed.at + durationMs) {
      if (this.#lease !== undefined)
        this.#log.info(
          { lease: this.#config.name, waitMs: this.#observed.at + durationMs - now },
          'The leader lease was deleted; waiting out its duration before creating it again',
        );
      this.#lease = undefined;
      return Promise.resolve(false);
    }
    return this.#create(now, signal);
  }

  async #create(now: number, signal: AbortSignal): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.#config;
    try {
      this.#lease = await this.#api.create<Lease>(
        RESOURCES.leases,
        namespace,
        {
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        },
        signal,
      );
      this.#observe(this.#lease, now);
      return true;
    } catch (error) {
      this.#log.debug({ err: error }, 'Could not create the leader lease');
      return false;
    }
  }

  /** Remembers when the lease record last changed, on our clock. */
  #observe(lease: Lease, now: number): void {
    const holder = lease.spec?.holderIdentity ?? '';
    const renewTime = lease.spec?.renewTime ?? '';
    if (this.#observed === undefined || this.#observed.holder !== holder || this.#observed.renewTime !== renewTime) {
      this.#observed = { holder, renewTime, at: now };
    }
    if (holder !== '' && holder !== this.#lastLeader) {
      this.#lastLeader = holder;
      this.#callbacks.onNewLeader?.(holder);
    }
  }

  #startLeading(): void {
    this.#leading = true;
    this.#term = new AbortController();
    this.#log.info({ identity: this.#config.identity, lease: this.#config.name }, 'Became the leader');
    this.#callbacks.onStartedLeading(this.#term.signal);
  }

  #stopLeading(): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#term?.abort();
    this.#callbacks.onStoppedLeading();
  }
}

/** When the lease was last renewed (for tests and status). */
export function leaseRenewedAt(lease: { spec?: { renewTime?: unknown } }): number | undefined {
  return toMillis(lease.spec?.renewTime);
}
