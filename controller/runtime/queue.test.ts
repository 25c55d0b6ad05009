import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue } from './queue.ts';

describe('WorkQueue', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('deduplicates queued keys and keeps order', async () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 100 });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands a key to two workers; a key added while processing runs once more afterwards', async () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 100 });
    q.add('a');
    const key = await q.get();
    q.add('a');
    q.add('a');
    expect(q.length()).toBe(0);
    q.done(key!);
    expect(q.length()).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(q.length()).toBe(0);
  });

  it('wakes a waiting worker', async () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 100 });
    const next = q.get();
    q.add('x');
    expect(await next).toBe('x');
    expect(q.processingCount()).toBe(1);
  });

  it('requeues failures with a capped exponential delay, reset by forget', () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 50 });
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited('k'))).toEqual([10, 20, 40, 50, 50]);
    expect(q.failures('k')).toBe(5);
    q.forget('k');
    expect(q.addRateLimited('k')).toBe(10);
  });

  it('adds after a delay, keeping the earliest pending delay', async () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 100 });
    q.addAfter('k', 1_000);
    q.addAfter('k', 100);
    q.addAfter('k', 5_000);
    expect(q.delayedLength()).toBe(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(q.length()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(q.length()).toBe(1);
    expect(q.delayedLength()).toBe(0);
  });

  it('get(signal) gives up without taking a key; shutDown wakes everyone', async () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 100 });
    const abort = new AbortController();
    const waiting = q.get(abort.signal);
    abort.abort();
    expect(await waiting).toBeUndefined();
    q.add('a');
    expect(q.length()).toBe(1);
    const other = q.get();
    expect(await other).toBe('a');
    const blocked = q.get();
    q.shutDown();
    expect(await blocked).toBeUndefined();
    q.add('b');
    expect(q.length()).toBe(0);
  });
});
