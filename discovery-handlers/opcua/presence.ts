/**
 * Which servers are present, and when each discovery URL or server is asked next. Pure: the
 * handler feeds it the outcome of every query round; time is passed in.
 *
 * - A server listed by a source and answering GetEndpoints is present.
 * - A listed server that fails GetEndpoints stays present until `offlineAfter` consecutive
 *   failures (one lost packet is not a departure), then is gone.
 * - A server no source lists any more (unregistered from the LDS, DNS-SD goodbye, removed
 *   from the details) is gone at once: the source said so.
 * - Whatever fails is asked again after the interval doubled per consecutive failure, capped
 *   (`nextAttempt`); a success resets it.
 */
import type { DiscoveredDevice } from '../contract.ts';

interface Entry {
  device: DiscoveredDevice | undefined;
  failures: number;
}

/** Servers by discovery URL, and the devices they are. */
export class PresenceTable {
  readonly #offlineAfter: number;
  readonly #entries = new Map<string, Entry>();

  constructor(offlineAfter: number) {
    this.#offlineAfter = offlineAfter;
  }

  /** GetEndpoints at `key` described `device` (undefined: answered, but filtered out or refused). */
  answered(key: string, device: DiscoveredDevice | undefined): void {
    this.#entries.set(key, { device, failures: 0 });
  }

  /** GetEndpoints at `key` failed; true when the server is now gone. */
  failed(key: string): boolean {
    const entry = this.#entries.get(key) ?? { device: undefined, failures: 0 };
    entry.failures += 1;
    if (entry.failures >= this.#offlineAfter) entry.device = undefined;
    this.#entries.set(key, entry);
    return entry.device === undefined;
  }

  /** Forgets every server not in `listed` (what the sources list now). */
  keepOnly(listed: ReadonlySet<string>): void {
    for (const key of [...this.#entries.keys()]) if (!listed.has(key)) this.#entries.delete(key);
  }

  /** Present devices, one per id (the first discovery URL in sort order wins), at most `max`. */
  devices(max: number): { devices: DiscoveredDevice[]; limited: boolean } {
    const byId = new Map<string, DiscoveredDevice>();
    let limited = false;
    for (const key of [...this.#entries.keys()].sort()) {
      const device = this.#entries.get(key)!.device;
      if (device === undefined || byId.has(device.id)) continue;
      if (byId.size >= max) {
        limited = true;
        continue;
      }
      byId.set(device.id, device);
    }
    return { devices: [...byId.values()], limited };
  }
}

/** Capped exponential backoff per key. */
export class Backoff {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #state = new Map<string, { failures: number; nextAt: number }>();

  constructor(baseMs: number, maxMs: number) {
    this.#baseMs = baseMs;
    this.#maxMs = maxMs;
  }

  /** Whether `key` may be asked at `now`. */
  due(key: string, now: number): boolean {
    const state = this.#state.get(key);
    return state === undefined || now >= state.nextAt;
  }

  succeeded(key: string): void {
    this.#state.delete(key);
  }

  /** Records a failure at `now`; returns the delay before the next attempt. */
  failed(key: string, now: number): number {
    const failures = (this.#state.get(key)?.failures ?? 0) + 1;
    // The first failure waits one interval (the normal round); each further one doubles it.
    const delay = Math.min(this.#maxMs, this.#baseMs * 2 ** (failures - 1));
    this.#state.set(key, { failures, nextAt: now + delay });
    return delay;
  }

  /** Forgets keys no longer in use. */
  keepOnly(keys: ReadonlySet<string>): void {
    for (const key of [...this.#state.keys()]) if (!keys.has(key)) this.#state.delete(key);
  }
}
