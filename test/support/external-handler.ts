/**
 * Test support for external handlers: a recording DeviceSink, a run harness for an
 * adapter, and event-driven waiting (no sleeps). Used by the agent/external,
 * discovery-handlers/sdk and discovery-handlers/examples tests.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { DeviceSink, DiscoveredDevice, DiscoveryHandler } from '../../discovery-handlers/contract.ts';

/**
 * Resolves once `predicate()` holds, checking now and after every `event` on `emitter`;
 * rejects after `timeoutMs` naming `what`.
 */
export function waitUntil(
  emitter: EventEmitter,
  event: string | readonly string[],
  predicate: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const events = typeof event === 'string' ? [event] : event;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!predicate()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      for (const e of events) emitter.off(e, check);
    };
    for (const e of events) emitter.on(e, check);
    check();
  });
}

/** A DeviceSink that keeps every list it got; emits 'change' after each. */
export class RecordingSink extends EventEmitter implements DeviceSink {
  readonly lists: DiscoveredDevice[][] = [];

  get latest(): DiscoveredDevice[] | undefined {
    return this.lists.at(-1);
  }

  /** Ids of the latest list, sorted ([] before the first report). */
  ids(): string[] {
    return (this.latest ?? []).map((d) => d.id).sort();
  }

  device(id: string): DiscoveredDevice | undefined {
    return this.latest?.find((d) => d.id === id);
  }

  replaceAll(devices: readonly DiscoveredDevice[]): void {
    this.lists.push([...devices]);
    this.emit('change');
  }

  upsert(): void {
    throw new Error('external handlers report full lists only');
  }

  remove(): void {
    throw new Error('external handlers report full lists only');
  }

  waitFor(predicate: (sink: this) => boolean, timeoutMs: number, what: string): Promise<void> {
    return waitUntil(this, 'change', () => predicate(this), timeoutMs, what);
  }

  /** Waits until the latest list has exactly these ids. */
  waitForIds(ids: readonly string[], timeoutMs = 5_000): Promise<void> {
    const want = [...ids].sort().join(',');
    return this.waitFor((s) => s.idString() === want, timeoutMs, `devices [${want}] (have [${this.ids().join(',')}])`);
  }

  /** The latest ids joined, for comparisons. */
  idString(): string {
    return this.ids().join(',');
  }
}

/** One handler run with its sink, counters and a stop. */
export interface TestRun {
  readonly sink: RecordingSink;
  readonly counts: Map<string, number>;
  /** The run's promise; already has a no-op catch attached, so awaiting a rejection is safe. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export function startRun(
  handler: DiscoveryHandler<unknown>,
  rawDetails: unknown,
  log: Logger,
  properties: ReadonlyMap<string, string> = new Map(),
): TestRun {
  const abort = new AbortController();
  const sink = new RecordingSink();
  const counts = new Map<string, number>();
  const done = handler.run(handler.parseDetails(rawDetails), {
    sink,
    signal: abort.signal,
    properties,
    log,
    count: (event) => {
      counts.set(event, (counts.get(event) ?? 0) + 1);
      sink.emit('count', event);
    },
  });
  done.catch(() => undefined);
  return {
    sink,
    counts,
    done,
    stop: async () => {
      abort.abort();
      await done.catch(() => undefined);
    },
  };
}
