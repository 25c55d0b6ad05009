/**
 * Test support: a DeviceSink that records every call, keeps the current set, counts handler
 * events and lets a test wait for a condition (event-driven, with a timeout) instead of
 * sleeping. Used by the ONVIF and USB handler tests.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { DeviceSink, DiscoveredDevice, HandlerContext } from '../../discovery-handlers/contract.ts';

export type SinkCall =
  | { readonly op: 'replaceAll'; readonly devices: readonly DiscoveredDevice[]; readonly at: number }
  | { readonly op: 'upsert'; readonly device: DiscoveredDevice; readonly at: number }
  | { readonly op: 'remove'; readonly id: string; readonly at: number };

export class RecordingSink implements DeviceSink {
  readonly calls: SinkCall[] = [];
  readonly current = new Map<string, DiscoveredDevice>();
  readonly counts = new Map<string, number>();
  /** Everything the handler logged, as JSON lines. */
  logText = '';
  readonly #waiters = new Set<() => void>();

  replaceAll(devices: readonly DiscoveredDevice[]): void {
    this.current.clear();
    for (const d of devices) this.current.set(d.id, d);
    this.#record({ op: 'replaceAll', devices: [...devices], at: performance.now() });
  }

  upsert(device: DiscoveredDevice): void {
    this.current.set(device.id, device);
    this.#record({ op: 'upsert', device, at: performance.now() });
  }

  remove(id: string): void {
    this.current.delete(id);
    this.#record({ op: 'remove', id, at: performance.now() });
  }

  count(event: string): void {
    this.counts.set(event, (this.counts.get(event) ?? 0) + 1);
    this.#notify();
  }

  /** A handler context reporting here, logging at debug level into `logText`. */
  context(signal: AbortSignal, properties: ReadonlyMap<string, string> = new Map()): HandlerContext {
    const stream = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.logText += chunk.toString();
        done();
      },
    });
    const log: Logger = pino({ level: 'debug' }, stream);
    return { sink: this, signal, properties, log, count: (event) => this.count(event) };
  }

  get replaceAlls(): number {
    return this.calls.filter((c) => c.op === 'replaceAll').length;
  }

  /** Resolves once `predicate` holds (checked after every sink call and count). */
  waitFor(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}; current: ${[...this.current.keys()].join(', ') || '(none)'}`),
        );
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  #record(call: SinkCall): void {
    this.calls.push(call);
    this.#notify();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}
