/**
 * ResourceSlicePublisher against a scripted HTTP apiserver: a slice it does not know yet is
 * created (POST), one it knows is server-side applied, a create answered 409 falls back to an
 * apply; withResourceSlices writes the slices before it publishes the Devices; and `flushed`
 * stops waiting for a slice list that never succeeds after `waitForSyncMs`. Waits are on
 * recorded requests and on promises; the `waitForSyncMs` cases use fake timers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { FakeHttpServer } from '../../test/support/fake-http-server.ts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { agentManager } from '../../api/field-managers.ts';
import { deviceName } from '../../api/names.ts';
import { discovery } from '../../test/support/broker-fixtures.ts';
import type { KubeClient } from '../../kube/client.ts';
import type { ServedDevice } from '../device.ts';
import { noPublication, type DevicePublication, type PublicationEvents } from '../runtime/adapters.ts';
import { draSettings, ResourceSlicePublisher, withResourceSlices } from './resource-slice-publisher.ts';
import { desiredPools, planSlices, type ResourceSlice, type SliceDevice } from './resource-slices.ts';

const NODE = 'n1';
const SLICES = '/apis/resource.k8s.io/v1/resourceslices';
const APPLY_PATCH = 'application/apply-patch+yaml';
const log = pino({ level: 'silent' });
const DRA = discovery({ backend: 'DRA' });

interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly contentType: string | undefined;
  readonly body: ResourceSlice | undefined;
}

/** A write as the tests compare it: verb, where, as whom, which slice. */
interface Write {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly contentType: string | undefined;
  readonly slice: string | undefined;
}

/**
 * ResourceSlices: a list (answered with `items`, never answered, or failing with 500), watches
 * that stay open, writes echoed back with a new resourceVersion (a create answered with
 * `createStatus` instead when set; all of them held between `hold` and `release`).
 */
class FakeApiserver extends FakeHttpServer {
  items: ResourceSlice[] = [];
  list: 'answer' | 'hang' | 'fail' = 'answer';
  createStatus: number | undefined;
  readonly requests: Recorded[] = [];
  /** What was answered and what was published, in order (the publication stub adds to it). */
  readonly events: string[] = [];
  #held: Promise<void> | undefined;
  #release = (): void => undefined;
  #rv = 100;

  /** Holds the answers to writes until `release`. */
  hold(): void {
    this.#held = new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.#release();
  }

  lists(): number {
    return this.requests.filter((r) => r.method === 'GET' && r.query['watch'] !== 'true').length;
  }

  writes(): Write[] {
    return this.requests
      .filter((r) => r.method !== 'GET')
      .map(({ method, path, query, contentType, body }) => ({ method, path, query, contentType, slice: body?.metadata.name }));
  }

  protected override async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const text = await FakeHttpServer.bodyText(req);
    const body = text === '' ? undefined : (JSON.parse(text) as ResourceSlice);
    const query = Object.fromEntries(url.searchParams);
    this.requests.push({ method: req.method ?? '', path: url.pathname, query, contentType: req.headers['content-type'], body });
    this.poke();
    if (req.method === 'GET') {
      if (query['watch'] === 'true' || this.list === 'hang') {
        res.writeHead(200, { 'content-type': 'application/json' });
        if (query['watch'] === 'true') res.write('');
        return; // left open: stop() closes every connection
      }
      if (this.list === 'fail') return answer(res, 500, { kind: 'Status', code: 500, message: 'scripted failure' });
      return answer(res, 200, { kind: 'ResourceSliceList', metadata: { resourceVersion: String(this.#rv) }, items: this.items });
    }
    await this.#held;
    const name = body?.metadata.name ?? url.pathname.split('/').at(-1);
    if (req.method === 'POST' && this.createStatus !== undefined) {
      this.events.push(`answered POST ${name} with ${this.createStatus}`);
      return answer(res, this.createStatus, { kind: 'Status', code: this.createStatus, reason: 'AlreadyExists' });
    }
    this.events.push(`answered ${req.method} ${name}`);
    answer(res, req.method === 'POST' ? 201 : 200, { ...body, metadata: { ...body?.metadata, resourceVersion: String(++this.#rv) } });
  }
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function served(id: string, properties: Record<string, string> = {}): ServedDevice {
  return {
    name: deviceName({ namespace: 'ns', discovery: 'cams', deviceId: id, node: NODE }),
    namespace: 'ns',
    discovery: 'cams',
    deviceId: id,
    shared: false,
    capacity: 2,
    online: true,
    properties,
    mounts: [],
    deviceNodes: [],
  };
}

/** The slices this node's publisher would write for `devices` into an empty cluster. */
function planned(devices: readonly SliceDevice[]): ResourceSlice[] {
  return planSlices(
    NODE,
    desiredPools(NODE, devices, () => draSettings(DRA)),
    [],
  ).apply;
}

interface Rig {
  readonly fake: FakeApiserver;
  readonly publisher: ResourceSlicePublisher;
}

let current: (Rig & { client: KubeClient }) | undefined;

afterEach(async () => {
  current?.fake.release();
  await current?.publisher.stop();
  vi.useRealTimers();
  current?.client.close();
  await current?.fake.stop();
  current = undefined;
});

async function rig(script: Partial<Pick<FakeApiserver, 'items' | 'list' | 'createStatus'>> = {}): Promise<Rig> {
  const fake = Object.assign(new FakeApiserver(), script);
  await fake.start();
  const client = fake.kubeClient();
  const publisher = new ResourceSlicePublisher({
    node: NODE,
    client,
    log,
    discovery: (namespace, name) => (namespace === 'ns' && name === 'cams' ? DRA : undefined),
    // A failed pass is not retried within a test: what one pass wrote is what the test sees.
    retryBaseMs: 60_000,
  });
  current = { fake, publisher, client };
  return current;
}

const create = (slice: string): Write => ({
  method: 'POST',
  path: SLICES,
  query: { fieldManager: agentManager(NODE) },
  contentType: 'application/json',
  slice,
});
const apply = (slice: string): Write => ({
  method: 'PATCH',
  path: `${SLICES}/${slice}`,
  query: { fieldManager: agentManager(NODE), force: 'true' },
  contentType: APPLY_PATCH,
  slice,
});

describe('ResourceSlicePublisher writes', () => {
  it('creates (POST) a slice it does not know, as tether-agent/<node>', async () => {
    const { fake, publisher } = await rig();
    const devices = [served('a'), served('b')];
    const [slice] = planned(devices);
    await publisher.start();
    publisher.update(devices);
    await publisher.flushed();
    expect(fake.writes()).toEqual([create(slice!.metadata.name)]);
    const body = fake.requests.find((r) => r.method === 'POST')!.body!;
    expect(body).toMatchObject({ apiVersion: 'resource.k8s.io/v1', kind: 'ResourceSlice', spec: { nodeName: NODE } });
    expect(body.spec.devices?.map((d) => d.name)).toEqual(slice!.spec.devices?.map((d) => d.name));
  });

  it('server-side applies (forced) a slice the informer listed', async () => {
    const [slice] = planned([served('a')]);
    const listed: ResourceSlice = {
      ...slice!,
      metadata: { ...slice!.metadata, resourceVersion: '7' },
      spec: { ...slice!.spec, devices: [] },
    };
    const { fake, publisher } = await rig({ items: [listed] });
    await publisher.start();
    publisher.update([served('a')]);
    await publisher.flushed();
    expect(fake.writes()).toEqual([apply(slice!.metadata.name)]);
  });

  it('server-side applies a slice it created before when its devices change', async () => {
    const { fake, publisher } = await rig();
    const [slice] = planned([served('a')]);
    await publisher.start();
    publisher.update([served('a')]);
    await publisher.flushed();
    publisher.update([served('a', { MODEL: 'x' })]);
    await publisher.flushed();
    expect(fake.writes()).toEqual([create(slice!.metadata.name), apply(slice!.metadata.name)]);
    expect(fake.requests.at(-1)!.body!.spec.devices![0]!.attributes['property.tether.dev/MODEL']).toEqual({ string: 'x' });
  });

  it('applies a slice whose create is answered 409 AlreadyExists', async () => {
    const { fake, publisher } = await rig({ createStatus: 409 });
    const [slice] = planned([served('a')]);
    await publisher.start();
    publisher.update([served('a')]);
    await publisher.flushed();
    expect(fake.writes()).toEqual([create(slice!.metadata.name), apply(slice!.metadata.name)]);
    expect(fake.events).toEqual([`answered POST ${slice!.metadata.name} with 409`, `answered PATCH ${slice!.metadata.name}`]);
  });
});

/** Records `publish` calls in the fake's event log; everything else publishes nothing. */
function recordingPublication(fake: FakeApiserver): DevicePublication {
  return {
    ...noPublication(),
    publish: (devices) => {
      fake.events.push(`published ${devices.length} devices`);
      return Promise.resolve(0);
    },
  };
}

const events: PublicationEvents = {
  republish: () => undefined,
  slots: () => undefined,
  served: () => undefined,
  hasSession: () => true,
};

describe('withResourceSlices', () => {
  it('publishes the devices only after the slice pass for them finished', async () => {
    const { fake, publisher } = await rig();
    fake.hold();
    const [slice] = planned([served('a')]);
    const publication = withResourceSlices(recordingPublication(fake), publisher);
    await publication.start(events);
    const publishing = publication.publish([served('a')]);
    await fake.until(() => fake.writes().length > 0, 'the slice write');
    // The write is held: nothing may be published while it is pending.
    expect(fake.events).toEqual([]);
    fake.release();
    await expect(publishing).resolves.toBe(0);
    expect(fake.events).toEqual([`answered POST ${slice!.metadata.name}`, 'published 1 devices']);
  });
});

describe('ResourceSlicePublisher.flushed', () => {
  it.each([
    ['never answers', 'hang', 1],
    ['keeps failing', 'fail', 2],
  ] as const)('stops waiting after waitForSyncMs when the slice list %s', async (_what, list, lists) => {
    const { fake, publisher } = await rig({ list });
    await publisher.start();
    publisher.update([served('a')]);
    await fake.until(() => fake.lists() >= lists, 'the slice list');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let flushed = false;
    const flushing = publisher.flushed(1_000).then(() => (flushed = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(flushed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(flushed).toBe(true);
    await flushing;
    expect(fake.writes()).toEqual([]);
  });

  it('lets withResourceSlices publish the devices after 5 s when the slice list never answers', async () => {
    const { fake, publisher } = await rig({ list: 'hang' });
    const publication = withResourceSlices(recordingPublication(fake), publisher);
    await publication.start(events);
    await fake.until(() => fake.lists() >= 1, 'the slice list');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const publishing = publication.publish([served('a')]);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(fake.events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.events).toEqual(['published 1 devices']);
    await expect(publishing).resolves.toBe(0);
  });
});
