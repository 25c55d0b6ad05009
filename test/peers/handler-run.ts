/**
 * Runs a discovery handler against real peers and records what it reports, so tests can wait
 * for a state ("device X present with property Y") instead of sleeping.
 */
import { pino, type Logger } from 'pino';
import type { DeviceSink, DiscoveredDevice, DiscoveryHandler } from '../../discovery-handlers/contract.ts';

export type SinkCall =
  | { readonly kind: 'replaceAll'; readonly ids: readonly string[] }
  | { readonly kind: 'upsert'; readonly id: string }
  | { readonly kind: 'remove'; readonly id: string };

/** A level-based view of what the handler reported, plus the call log and event counts. */
export class RecordingSink implements DeviceSink {
  readonly devices = new Map<string, DiscoveredDevice>();
  readonly calls: SinkCall[] = [];
  readonly counts = new Map<string, number>();
  readonly #waiters = new Set<() => void>();

  replaceAll(devices: readonly DiscoveredDevice[]): void {
    this.devices.clear();
    for (const d of devices) this.devices.set(d.id, d);
    this.calls.push({ kind: 'replaceAll', ids: devices.map((d) => d.id) });
    this.#notify();
  }

  upsert(device: DiscoveredDevice): void {
    this.devices.set(device.id, device);
    this.calls.push({ kind: 'upsert', id: device.id });
    this.#notify();
  }

  remove(id: string): void {
    this.devices.delete(id);
    this.calls.push({ kind: 'remove', id });
    this.#notify();
  }

  count(event: string): void {
    this.counts.set(event, (this.counts.get(event) ?? 0) + 1);
    this.#notify();
  }

  counted(event: string): number {
    return this.counts.get(event) ?? 0;
  }

  ids(): string[] {
    return [...this.devices.keys()].sort();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Resolves once `predicate` holds (checked now and after every report or count). */
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        let ok: boolean;
        try {
          ok = predicate();
        } catch {
          ok = false;
        }
        if (!ok) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; devices: ${JSON.stringify(this.ids())}; calls: ${JSON.stringify(this.calls.slice(-20))}; counts: ${JSON.stringify([...this.counts])}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }
}

export interface RunningHandler {
  readonly sink: RecordingSink;
  readonly done: Promise<void>;
  /** Aborts the handler and waits for `run` to resolve (rejects if it rejected). */
  stop(): Promise<void>;
}

/** Starts `handler.run` with parsed `details`; register `stop` for cleanup. */
export function runHandler<D>(
  handler: DiscoveryHandler<D>,
  rawDetails: unknown,
  options: { properties?: ReadonlyMap<string, string>; log?: Logger } = {},
): RunningHandler {
  const sink = new RecordingSink();
  const abort = new AbortController();
  const details = handler.parseDetails(rawDetails);
  const done = handler.run(details, {
    sink,
    signal: abort.signal,
    properties: options.properties ?? new Map(),
    log: options.log ?? pino({ level: process.env['TETHER_TEST_LOG'] ?? 'silent' }),
    count: (event) => sink.count(event),
  });
  let failure: unknown;
  done.catch((error: unknown) => (failure = error));
  return {
    sink,
    done,
    stop: async () => {
      abort.abort();
      await done;
      if (failure !== undefined) throw failure as Error;
    },
  };
}
