/**
 * DeviceObjects (the cluster publication) against a scripted apiserver: what it reads back
 * seeds sessions and skips writes, the slots the cluster records reach the runtime, and a
 * deleted or released Device this node still serves is written again (a release only once
 * the node is Ready). Waits are on recorded requests and events, with timeouts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { FakeHttpServer } from '../../test/support/fake-http-server.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceName } from '../../api/names.ts';
import type { Device } from '../../api/schema.ts';
import { Api } from '../../kube/resources.ts';
import type { ServedDevice } from '../device.ts';
import type { PublicationEvents } from '../runtime/adapters.ts';
import { DeviceObjects } from './device-publication.ts';
import { KubeDevicesApi } from './kube-devices-api.ts';

const NODE = 'n1';
const log = pino({ level: 'silent' });

interface Request {
  method: string;
  path: string;
  body: Record<string, unknown> | undefined;
}

/** Devices in namespace ns: a list, one watch stream the test pushes to, and applies echoed back. */
class FakeApiserver extends FakeHttpServer {
  items: Device[] = [];
  readonly requests: Request[] = [];
  readonly #watches: ServerResponse[] = [];
  #rv = 100;

  /** Pushes a watch event to the open watch (waits for the informer to open it). */
  async send(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: Device): Promise<void> {
    await this.until(() => this.#watches.length > 0, 'the informer watching');
    this.#watches
      .at(-1)!
      .write(`${JSON.stringify({ type, object: { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.#rv) } } })}\n`);
  }

  applies(): Request[] {
    return this.requests.filter((r) => r.method === 'PATCH');
  }

  protected override async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const text = await FakeHttpServer.bodyText(req);
    const body = text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
    this.requests.push({ method: req.method ?? '', path: url.pathname, body });
    if (req.method === 'GET' && url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('');
      this.#watches.push(res);
      this.poke();
      return;
    }
    this.poke();
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.method === 'GET')
      res.end(JSON.stringify({ kind: 'DeviceList', metadata: { resourceVersion: String(this.#rv) }, items: this.items }));
    else res.end(JSON.stringify({ ...body, metadata: { ...(body?.['metadata'] as object), resourceVersion: String(++this.#rv) } }));
  }
}

function served(id: string, online = true): ServedDevice {
  return {
    name: deviceName({ namespace: 'ns', discovery: 'cams', deviceId: id, node: NODE }),
    namespace: 'ns',
    discovery: 'cams',
    deviceId: id,
    shared: false,
    capacity: 2,
    online,
    properties: { URL: `rtsp://${id}` },
    mounts: [],
    deviceNodes: [],
  };
}

/** The Device object a node wrote for `device`. */
function object(device: ServedDevice, nodes: string[], slots: Record<string, string> = {}): Device {
  return {
    apiVersion: 'tether.dev/v1alpha1',
    kind: 'Device',
    metadata: { name: device.name, namespace: 'ns', resourceVersion: '1' },
    spec: { discovery: 'cams', deviceId: device.deviceId, shared: false, capacity: 2, properties: { ...device.properties }, nodes, slots },
    status: { nodeStates: nodes.map((node) => ({ node, state: 'Online', lastSeenTime: '2026-01-01T00:00:00Z' })) },
  };
}

interface Rig {
  fake: FakeApiserver;
  publication: DeviceObjects;
  served: Map<string, ServedDevice>;
  republished: () => number;
  slotEvents: { name: string; slots: Readonly<Record<string, string>> }[];
  ready: { value: boolean };
}

let current: Rig | undefined;

afterEach(async () => {
  await current?.publication.stop();
  await current?.fake.stop();
  current = undefined;
});

async function rig(items: Device[], options: { ready?: boolean } = {}): Promise<Rig> {
  const fake = new FakeApiserver();
  fake.items = items;
  await fake.start();
  const client = fake.kubeClient();
  const ready = { value: options.ready ?? true };
  const publication = new DeviceObjects({
    node: NODE,
    client,
    api: new KubeDevicesApi(new Api(client)),
    log,
    namespace: 'ns',
    nodeReady: () => ready.value,
  });
  const servedDevices = new Map<string, ServedDevice>();
  let republished = 0;
  const slotEvents: Rig['slotEvents'] = [];
  const events: PublicationEvents = {
    republish: () => {
      republished++;
      fake.poke();
    },
    slots: (name, slots) => {
      slotEvents.push({ name, slots });
      fake.poke();
    },
    served: (name) => servedDevices.get(name),
    hasSession: (namespace, discovery) => namespace === 'ns' && discovery === 'cams',
  };
  await publication.start(events);
  current = { fake, publication, served: servedDevices, republished: () => republished, slotEvents, ready };
  return current;
}

describe('DeviceObjects', () => {
  it('seeds from this node’s Devices only, and re-publishing what the server already says writes nothing', async () => {
    const mine = served('a');
    const others = served('b');
    const r = await rig([object(mine, [NODE]), object(others, ['n2'])]);
    expect(r.publication.seeded).toBe(1);
    expect(r.publication.previouslyServed('ns', 'cams')).toEqual([
      { id: 'a', properties: { URL: 'rtsp://a' }, mounts: [], deviceNodes: [] },
    ]);
    expect(r.publication.previouslyServed('ns', 'other')).toEqual([]);
    expect(await r.publication.publish([mine])).toBe(0);
    expect(r.fake.applies()).toEqual([]);
  });

  it('a new device costs one identity apply under this node’s manager; a slot claim one apply of the slots', async () => {
    const r = await rig([]);
    const device = served('a');
    await r.publication.publish([device]);
    expect(r.fake.applies().map((a) => a.path)).toContain(`/apis/tether.dev/v1alpha1/namespaces/ns/devices/${device.name}`);
    const identity = r.fake.applies().find((a) => !a.path.endsWith('/status'))!;
    expect((identity.body?.['spec'] as { nodes: string[] }).nodes).toEqual([NODE]);
    const before = r.fake.applies().length;
    await r.publication.persistSlots(device, [1]);
    const claim = r.fake.applies().slice(before);
    expect(claim.map((a) => (a.body?.['spec'] as { slots?: Record<string, string> }).slots)).toEqual([{ '1': NODE }]);
  });

  it('hands the slots the cluster records for a served device to the runtime, and answers serverSlots from the cache', async () => {
    const device = served('a');
    const r = await rig([object(device, [NODE])]);
    r.served.set(device.name, device);
    expect(r.publication.serverSlots(device)).toEqual({});
    expect(r.publication.serverSlots(served('unknown'))).toBeUndefined();
    await r.fake.send('MODIFIED', object(device, [NODE, 'n2'], { '0': 'n2' }));
    await r.fake.until(() => r.slotEvents.length > 0, 'a slots event');
    expect(r.slotEvents).toEqual([{ name: device.name, slots: { '0': 'n2' } }]);
    expect(r.publication.serverSlots(device)).toEqual({ '0': 'n2' });
  });

  it('ignores Devices this node does not serve', async () => {
    const r = await rig([]);
    await r.fake.send('ADDED', object(served('stranger'), ['n2'], { '0': 'n2' }));
    await r.fake.send('DELETED', object(served('stranger'), ['n2']));
    const marker = served('marker');
    r.served.set(marker.name, marker);
    await r.fake.send('ADDED', object(marker, [NODE]));
    await r.fake.until(() => r.slotEvents.length > 0, 'the marker event');
    expect(r.slotEvents.map((e) => e.name)).toEqual([marker.name]);
    expect(r.republished()).toBe(0);
  });

  it('a deleted Device this node serves is written again on the next publish', async () => {
    const device = served('a');
    const r = await rig([object(device, [NODE])]);
    r.served.set(device.name, device);
    await r.publication.publish([device]);
    expect(r.fake.applies()).toEqual([]);
    await r.fake.send('DELETED', object(device, [NODE]));
    await r.fake.until(() => r.republished() === 1, 'a republish');
    await r.publication.publish([device]);
    expect(r.fake.applies().filter((a) => !a.path.endsWith('/status'))).toHaveLength(1);
  });

  it('a Device released from this node is rejoined only while the node is Ready', async () => {
    const device = served('a');
    const r = await rig([object(device, [NODE])], { ready: false });
    r.served.set(device.name, device);
    await r.fake.send('MODIFIED', object(device, ['n2']));
    await r.fake.until(() => r.slotEvents.length === 1, 'the release seen');
    expect(r.republished()).toBe(0);
    r.ready.value = true;
    r.publication.nodeChanged(); // the Node turned Ready
    expect(r.republished()).toBe(1);
    await r.publication.publish([device]);
    const rejoin = r.fake.applies().find((a) => !a.path.endsWith('/status'));
    expect((rejoin?.body?.['spec'] as { nodes?: string[] } | undefined)?.nodes).toEqual([NODE]);
  });

  it('a device no longer served departs: its entry is released (nodes left out of the apply)', async () => {
    const device = served('a');
    const r = await rig([object(device, [NODE])]);
    await r.publication.publish([]);
    const departure = r.fake.applies().find((a) => !a.path.endsWith('/status'));
    expect(departure?.body?.['spec']).not.toHaveProperty('nodes');
    expect(departure?.path).toBe(`/apis/tether.dev/v1alpha1/namespaces/ns/devices/${device.name}`);
  });
});
