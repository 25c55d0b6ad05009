/**
 * The informer against a scripted HTTP apiserver: it lists, watches, re-watches from the last
 * resourceVersion when a watch ends, re-lists on 410 Gone (delivering the deletions it missed),
 * and keeps retrying with backoff through server errors — client-node's informer stops for good.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient } from './client.ts';
import { DEFAULT_BACKOFF_MAX_MS, Informer, retryDelay, type InformerEvent } from './informer.ts';
import { RESOURCES } from './resources.ts';

interface Pod {
  metadata: { name: string; namespace: string; resourceVersion: string; labels?: Record<string, string> };
}

const pod = (name: string, rv: number, device = 'd1'): Pod => ({
  metadata: { name, namespace: 'ns', resourceVersion: String(rv), labels: { 'tether.dev/device': device } },
});

/** A fake apiserver for /api/v1/pods whose answers the test scripts. */
class FakeApiserver {
  server: Server;
  port = 0;
  items: Pod[] = [];
  listRv = 1;
  lists = 0;
  watches: { query: URLSearchParams; res: ServerResponse }[] = [];
  /** Next watch answers: 'stream' (keep open), a status code, or 'gone' (a 410 ERROR event). */
  watchPlan: (number | 'stream' | 'gone')[] = [];
  listPlan: number[] = [];

  constructor() {
    this.server = createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const w of this.watches) w.res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  send(type: string, object: unknown): void {
    const w = this.watches.at(-1)!;
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  endWatch(): void {
    this.watches.at(-1)!.res.end();
  }

  /** Query of every list request. */
  listQueries: URLSearchParams[] = [];

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('watch') === 'true') {
      const plan = this.watchPlan.shift() ?? 'stream';
      this.watches.push({ query: url.searchParams, res });
      if (typeof plan === 'number') {
        res.writeHead(plan, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', code: plan, message: 'scripted failure' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      if (plan === 'gone') res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old' } })}\n`);
      else res.write('');
      return;
    }
    this.lists++;
    this.listQueries.push(url.searchParams);
    const status = this.listPlan.shift();
    if (status !== undefined) {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: status }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'PodList', metadata: { resourceVersion: String(this.listRv) }, items: this.items }));
  }
}

let fake: FakeApiserver;
let informer: Informer<Pod> | undefined;

afterEach(async () => {
  await informer?.stop();
  await fake?.stop();
});

async function setup(options: { fieldSelector?: string } = {}): Promise<{ events: InformerEvent<Pod>[] }> {
  fake = new FakeApiserver();
  await fake.start();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${fake.port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  informer = new Informer<Pod>({
    client: new KubeClient(kc),
    type: RESOURCES.pods,
    log: pino({ level: 'silent' }),
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    indexers: { device: (p) => [p.metadata.labels?.['tether.dev/device'] ?? ''] },
    ...options,
  });
  const events: InformerEvent<Pod>[] = [];
  informer.onEvent((e) => events.push(e));
  return { events };
}

async function until(probe: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('Informer', () => {
  it('lists, then watches from the list resourceVersion, and indexes objects', async () => {
    const { events } = await setup();
    fake.items = [pod('a', 5)];
    fake.listRv = 7;
    informer!.start();
    await informer!.synced();
    expect(events).toEqual([{ type: 'added', object: { apiVersion: 'v1', kind: 'Pod', ...pod('a', 5) }, initial: true }]);
    await until(() => fake.watches.length === 1);
    expect(fake.watches[0]!.query.get('resourceVersion')).toBe('7');
    expect(fake.watches[0]!.query.get('allowWatchBookmarks')).toBe('true');

    fake.send('ADDED', pod('b', 8, 'd2'));
    fake.send('MODIFIED', pod('a', 9, 'd2'));
    await until(() => events.length === 3);
    expect(events.slice(1).map((e) => [e.type, e.object.metadata.name, e.initial])).toEqual([
      ['added', 'b', false],
      ['updated', 'a', false],
    ]);
    expect(events[2]!.old?.metadata.resourceVersion).toBe('5');
    expect(
      informer!
        .byIndex('device', 'd2')
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(informer!.byIndex('device', 'd1')).toEqual([]);
  });

  it('re-watches from the last resourceVersion it saw when a watch ends (bookmarks included)', async () => {
    await setup();
    informer!.start();
    await informer!.synced();
    await until(() => fake.watches.length === 1);
    fake.send('ADDED', pod('a', 11));
    fake.send('BOOKMARK', { metadata: { resourceVersion: '15' } });
    await until(() => informer!.size() === 1);
    fake.endWatch();
    await until(() => fake.watches.length === 2);
    expect(fake.watches[1]!.query.get('resourceVersion')).toBe('15');
    expect(fake.lists).toBe(1);
  });

  it('re-lists on 410 Gone and delivers the deletions it missed', async () => {
    const { events } = await setup();
    fake.items = [pod('a', 2), pod('b', 3)];
    informer!.start();
    await informer!.synced();
    await until(() => fake.watches.length === 1);
    fake.items = [pod('b', 3)];
    fake.listRv = 20;
    fake.watchPlan = ['gone'];
    fake.endWatch();
    await until(() => fake.lists === 2 && fake.watches.length >= 3);
    expect(events.filter((e) => e.type === 'deleted').map((e) => [e.object.metadata.name, e.initial])).toEqual([['a', false]]);
    expect(fake.watches.at(-1)!.query.get('resourceVersion')).toBe('20');
  });

  it('keeps retrying, with backoff, through failing lists and watches', async () => {
    await setup();
    fake.listPlan = [500, 503];
    fake.watchPlan = [500, 500, 'stream'];
    informer!.start();
    await informer!.synced();
    expect(fake.lists).toBe(3);
    await until(() => fake.watches.length === 3);
    expect(informer!.health().state).toBe('watching');
    fake.send('ADDED', pod('late', 30));
    await until(() => informer!.get('ns', 'late') !== undefined);
  });

  it('onRecovered fires when the apiserver answers again after failures, and not on a healthy start', async () => {
    await setup();
    let recovered = 0;
    informer!.onRecovered(() => recovered++);
    fake.listPlan = [503, 503];
    informer!.start();
    await informer!.synced();
    expect(recovered).toBe(1);
    await until(() => fake.watches.length === 1);
    expect(recovered).toBe(1);

    await informer!.stop();
    await fake.stop();
    await setup();
    let healthy = 0;
    informer!.onRecovered(() => healthy++);
    informer!.start();
    await informer!.synced();
    await until(() => fake.watches.length === 1);
    expect(healthy).toBe(0);
  });

  it('lists and watches with the field selector (one object, as a resourceNames RBAC rule allows)', async () => {
    await setup({ fieldSelector: 'metadata.name=a' });
    informer!.start();
    await informer!.synced();
    await until(() => fake.watches.length === 1);
    expect(fake.listQueries[0]!.get('fieldSelector')).toBe('metadata.name=a');
    expect(fake.watches[0]!.query.get('fieldSelector')).toBe('metadata.name=a');
  });

  it('attempted() resolves after the first failed list (not synced), and synced() only once a list succeeds', async () => {
    await setup();
    fake.listPlan = [403, 403];
    let synced = false;
    informer!.start();
    void informer!.synced().then(() => (synced = true));
    await informer!.attempted();
    expect(fake.lists).toBe(1);
    expect(synced).toBe(false);
    expect(informer!.hasSynced()).toBe(false);
    await informer!.synced();
    expect(fake.lists).toBe(3);
    await informer!.attempted(); // already settled: resolves at once
  });
});

describe('retryDelay', () => {
  it('grows exponentially from the base and never exceeds the cap, jitter included', () => {
    expect([1, 2, 3].map((n) => retryDelay(n, 200, 4_000, () => 1))).toEqual([200, 400, 800]);
    for (let failures = 1; failures < 40; failures++) {
      for (const r of [0, 0.5, 1])
        expect(retryDelay(failures, 200, DEFAULT_BACKOFF_MAX_MS, () => r)).toBeLessThanOrEqual(DEFAULT_BACKOFF_MAX_MS);
    }
  });

  it('keeps at least half the step, so retries stay spread but never spin', () => {
    expect(retryDelay(30, 200, 4_000, () => 0)).toBe(2_000);
    expect(retryDelay(1, 200, 4_000, () => 0)).toBe(100);
  });
});
