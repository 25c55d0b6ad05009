/**
 * DiscoverySession: a handler's reports become named, sanitised devices; failures restart the
 * handler with backoff; seeds bridge a restart; capacity changes without a restart. Every wait
 * is on the session's own callbacks, with a timeout.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceName } from '../../api/names.ts';
import { DetailsError, type DeviceSink, type DiscoveredDevice, type DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import type { ServedDevice } from '../device.ts';
import { DiscoverySession, type SessionSpec } from './session.ts';

const log = pino({ level: 'silent' });
const NODE = 'node-a';
const sessions: DiscoverySession[] = [];

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.stop()));
});

/**
 * A handler the test drives: it hands over its sink on every run, and fails when told to
 * (`refuseRuns`: with a DetailsError). With `retryable`, it has `untilRetryable`, which
 * resolves when the test calls `allowRetry()`.
 */
function drivenHandler(
  options: { shared?: boolean; failRuns?: number; refuseRuns?: number; returnEarly?: boolean; retryable?: boolean } = {},
) {
  const sinks: DeviceSink[] = [];
  const runs: AbortSignal[] = [];
  const waiters: (() => void)[] = [];
  const retries: (() => void)[] = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  const handler: DiscoveryHandler<unknown> = {
    name: 'driven',
    parseDetails: (raw) => raw,
    isShared: () => options.shared ?? false,
    run: async (_details, { sink, signal }) => {
      runs.push(signal);
      sinks.push(sink);
      wake();
      if (runs.length <= (options.refuseRuns ?? 0)) throw new DetailsError('details.x', `run ${runs.length} refused`);
      if (runs.length <= (options.failRuns ?? 0)) throw new Error(`run ${runs.length} failed`);
      if (options.returnEarly === true) return;
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    },
    ...(options.retryable === true
      ? {
          untilRetryable: (_error: DetailsError, signal: AbortSignal) =>
            new Promise<void>((resolve) => {
              retries.push(resolve);
              signal.addEventListener('abort', () => resolve(), { once: true });
              wake();
            }),
        }
      : {}),
  };
  const until = async (done: () => boolean, what: () => string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(what());
      await Promise.race([
        new Promise<void>((resolve) => waiters.push(resolve)),
        new Promise((resolve) => setTimeout(resolve, deadline - Date.now())),
      ]);
    }
  };
  const runCount = (n: number, timeoutMs = 2_000): Promise<void> =>
    until(
      () => runs.length >= n,
      () => `handler ran ${runs.length} times, wanted ${n}`,
      timeoutMs,
    );
  /** Resolves once the session waits in untilRetryable. */
  const waitingForRetry = (): Promise<void> =>
    until(
      () => retries.length > 0,
      () => 'session never waited for a retry',
      2_000,
    );
  const allowRetry = (): void => {
    for (const retry of retries.splice(0)) retry();
  };
  return { handler, sinks, runs, runCount, waitingForRetry, allowRetry };
}

interface Harness {
  session: DiscoverySession;
  reports: ServedDevice[][];
  counts: string[];
  errors: Error[];
  /** Resolves with the first report (already made or next) that satisfies `test`. */
  report(test: (devices: ServedDevice[]) => boolean, timeoutMs?: number): Promise<ServedDevice[]>;
}

function start(handler: DiscoveryHandler<unknown>, spec: Partial<SessionSpec> = {}, seed: DiscoveredDevice[] = []): Harness {
  const reports: ServedDevice[][] = [];
  const counts: string[] = [];
  const errors: Error[] = [];
  const listeners = new Set<() => void>();
  const session = new DiscoverySession(
    { namespace: 'ns', name: 'cams', handler, details: {}, capacity: 1, offlineGraceMs: 60_000, properties: new Map(), ...spec },
    {
      node: NODE,
      log,
      backoff: { initialMs: 5, maxMs: 20 },
      onDevices: (devices) => {
        reports.push(devices);
        for (const listener of listeners) listener();
      },
      count: (event) => counts.push(event),
      onError: (error) => errors.push(error),
    },
  );
  sessions.push(session);
  session.seed(seed);
  session.start();
  const report = (test: (devices: ServedDevice[]) => boolean, timeoutMs = 2_000): Promise<ServedDevice[]> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = reports.find(test);
        if (found === undefined) return false;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(
          new Error(
            `no matching report in ${timeoutMs} ms; reports: ${JSON.stringify(reports.map((r) => r.map((d) => [d.deviceId, d.online])))}`,
          ),
        );
      }, timeoutMs);
      if (!check()) listeners.add(check);
    });
  return { session, reports, counts, errors, report };
}

describe('DiscoverySession', () => {
  it('names node-local devices per node and carries the discovery, uid and capacity', async () => {
    const driven = drivenHandler();
    const h = start(driven.handler, { capacity: 2, uid: 'uid-1' });
    await driven.runCount(1);
    driven.sinks[0]!.replaceAll([{ id: 'cam-1', properties: { URL: 'rtsp://a' } }]);
    const [device] = await h.report((d) => d.length === 1);
    expect(device).toEqual({
      name: deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'cam-1', node: NODE }),
      namespace: 'ns',
      discovery: 'cams',
      discoveryUid: 'uid-1',
      deviceId: 'cam-1',
      shared: false,
      capacity: 2,
      online: true,
      properties: { URL: 'rtsp://a' },
      mounts: [],
      deviceNodes: [],
    });
  });

  it('names shared devices without the node, so every node names them alike', async () => {
    const driven = drivenHandler({ shared: true });
    const h = start(driven.handler);
    await driven.runCount(1);
    driven.sinks[0]!.upsert({ id: 'cam-1', properties: {} });
    const [device] = await h.report((d) => d.length === 1);
    expect(device?.name).toBe(deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'cam-1' }));
    expect(device?.shared).toBe(true);
  });

  it('skips a device whose id cannot be named, counts it, and sanitises the rest', async () => {
    const driven = drivenHandler();
    const h = start(driven.handler);
    await driven.runCount(1);
    driven.sinks[0]!.replaceAll([
      { id: '', properties: {} },
      { id: 'ok', properties: { 'bad name': 'v' }, mounts: [{ containerPath: 'relative', hostPath: '/h', readOnly: true }] },
    ]);
    const [device] = await h.report((d) => d.length === 1);
    expect(device?.deviceId).toBe('ok');
    expect(device?.properties).toEqual({ bad_name: 'v' });
    expect(device?.mounts).toEqual([]);
    expect(h.counts).toEqual(expect.arrayContaining(['invalid_device_id', 'sanitised_device']));
  });

  it('a removed device turns offline at once and is gone after the grace period', async () => {
    const driven = drivenHandler();
    const h = start(driven.handler, { offlineGraceMs: 50 });
    await driven.runCount(1);
    driven.sinks[0]!.replaceAll([{ id: 'a', properties: {} }]);
    await h.report((d) => d.length === 1 && d[0]!.online);
    driven.sinks[0]!.remove('a');
    await h.report((d) => d.length === 1 && !d[0]!.online);
    await h.report((d) => d.length === 0);
  });

  it('restarts a failing handler with backoff, counts and reports each failure', async () => {
    const driven = drivenHandler({ failRuns: 2 });
    const h = start(driven.handler);
    await driven.runCount(3);
    expect(h.counts.filter((c) => c === 'handler_error')).toHaveLength(2);
    expect(h.errors.map((e) => e.message)).toEqual(['run 1 failed', 'run 2 failed']);
    expect(h.session.failures).toBe(2);
    driven.sinks[2]!.replaceAll([{ id: 'a', properties: {} }]);
    await h.report((d) => d.length === 1);
    expect(h.session.failures).toBe(0); // a report resets the backoff
  });

  it('a DetailsError from run is reported once and not retried: only a new spec (session) runs the handler again', async () => {
    const driven = drivenHandler({ refuseRuns: 1 });
    const h = start(driven.handler);
    await driven.runCount(1);
    // The session's backoff here is 5-20 ms: a blind retry would come well within 300 ms.
    await expect(driven.runCount(2, 300)).rejects.toThrow('handler ran 1 times');
    expect(h.errors.map((e) => e.message)).toEqual(['details.x: run 1 refused']);
    expect(h.counts.filter((c) => c === 'handler_error')).toHaveLength(1);
    await h.session.stop(); // ends the wait
  });

  it("a DetailsError is retried once the handler's untilRetryable resolves", async () => {
    const driven = drivenHandler({ refuseRuns: 1, retryable: true });
    const h = start(driven.handler);
    await driven.waitingForRetry();
    expect(driven.runs).toHaveLength(1);
    driven.allowRetry();
    await driven.runCount(2);
    driven.sinks[1]!.replaceAll([{ id: 'a', properties: {} }]);
    await h.report((d) => d.length === 1);
    expect(h.errors).toHaveLength(1);
  });

  it('a handler that returns before the session stops counts as a failure and runs again', async () => {
    const driven = drivenHandler({ returnEarly: true });
    const h = start(driven.handler);
    await driven.runCount(2);
    expect(h.errors[0]?.message).toMatch(/returned before the session was stopped/);
  });

  it('stop() aborts the running handler and resolves; nothing is reported after it', async () => {
    const driven = drivenHandler();
    const h = start(driven.handler, { offlineGraceMs: 10 });
    await driven.runCount(1);
    driven.sinks[0]!.replaceAll([{ id: 'a', properties: {} }]);
    driven.sinks[0]!.remove('a'); // an expiry timer is now pending
    await h.session.stop();
    expect(driven.runs[0]!.aborted).toBe(true);
    const reported = h.reports.length;
    await new Promise((resolve) => setTimeout(resolve, 30)); // past the grace period: the timer must be gone
    expect(h.reports).toHaveLength(reported);
  });

  it('seeded devices are served before the first report; the first full report decides', async () => {
    const driven = drivenHandler();
    const h = start(driven.handler, {}, [
      { id: 'kept', properties: {} },
      { id: 'gone', properties: {} },
    ]);
    await h.report((d) => d.length === 2 && d.every((x) => x.online));
    await driven.runCount(1);
    driven.sinks[0]!.replaceAll([{ id: 'kept', properties: {} }]);
    const after = await h.report((d) => d.some((x) => x.deviceId === 'gone' && !x.online));
    expect(after.find((x) => x.deviceId === 'kept')?.online).toBe(true);
  });

  it('expireProvisional takes unconfirmed seeded devices offline (the start-up timeout)', async () => {
    const driven = drivenHandler();
    const h = start(driven.handler, {}, [{ id: 'seeded', properties: {} }]);
    await h.report((d) => d.length === 1 && d[0]!.online);
    h.session.expireProvisional();
    await h.report((d) => d.length === 1 && !d[0]!.online);
  });

  it('setCapacity resizes every device without restarting the handler', async () => {
    const driven = drivenHandler();
    const h = start(driven.handler, { capacity: 1 });
    await driven.runCount(1);
    driven.sinks[0]!.replaceAll([
      { id: 'a', properties: {} },
      { id: 'b', properties: {} },
    ]);
    await h.report((d) => d.length === 2);
    h.session.setCapacity(4);
    const resized = await h.report((d) => d.length === 2 && d.every((x) => x.capacity === 4));
    expect(resized.map((d) => d.deviceId).sort()).toEqual(['a', 'b']);
    expect(driven.runs).toHaveLength(1);
  });

  it('onlineDevices gives what a replacement session is seeded with', async () => {
    const driven = drivenHandler();
    const h = start(driven.handler);
    await driven.runCount(1);
    driven.sinks[0]!.replaceAll([
      { id: 'a', properties: { V: '1' } },
      { id: 'b', properties: {} },
    ]);
    driven.sinks[0]!.remove('b');
    await h.report((d) => d.some((x) => x.deviceId === 'b' && !x.online));
    expect(h.session.onlineDevices()).toEqual([{ id: 'a', properties: { V: '1' } }]);
  });
});
