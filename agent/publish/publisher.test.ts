import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { Device } from '../../api/schema.ts';
import { ApplyConflictError, type DevicesApi } from './devices-api.ts';
import type { DeviceName } from '../../api/names.ts';
import type { ServedDevice } from '../device.ts';
import { identityApply } from './device-object.ts';
import { DevicePublisher, STATUS_MIN_INTERVAL_MS } from './publisher.ts';

interface Call {
  kind: 'apply' | 'status' | 'delete' | 'get';
  manager?: string;
  force?: boolean;
  body?: Record<string, unknown>;
}

/** An in-memory apiserver stand-in that records calls and answers like SSA for one node. */
function fakeApi(options: { otherNodes?: string[]; conflict?: boolean; deleteConflicts?: number; nodesOnGet?: string[] } = {}): {
  api: DevicesApi;
  calls: Call[];
} {
  const calls: Call[] = [];
  const api: DevicesApi = {
    apply: (body, manager, force) => {
      calls.push({ kind: 'apply', manager, force, body });
      if (options.conflict === true && manager.endsWith('/slots')) return Promise.reject(new ApplyConflictError('conflict'));
      const spec = (body['spec'] ?? {}) as Record<string, unknown>;
      const mine = (spec['nodes'] as string[] | undefined) ?? [];
      return Promise.resolve({
        ...body,
        metadata: { ...(body['metadata'] as object), resourceVersion: String(calls.length) },
        spec: { ...spec, nodes: [...mine, ...(options.otherNodes ?? [])] },
      } as unknown as Device);
    },
    applyStatus: (body, manager) => {
      calls.push({ kind: 'status', manager, body });
      return Promise.resolve(body as unknown as Device);
    },
    deleteIfUnchanged: () => {
      calls.push({ kind: 'delete' });
      const conflict = (options.deleteConflicts ?? 0) > 0;
      if (conflict) options.deleteConflicts = (options.deleteConflicts ?? 0) - 1;
      return Promise.resolve(!conflict);
    },
    get: (namespace, name) => {
      calls.push({ kind: 'get' });
      return Promise.resolve({
        metadata: { name, namespace, resourceVersion: 'fresh' },
        spec: { nodes: options.nodesOnGet ?? [] },
      } as unknown as Device);
    },
  };
  return { api, calls };
}

const view: ServedDevice = {
  name: 'cams-00000000000000aa' as DeviceName,
  namespace: 'ns',
  discovery: 'cams',
  discoveryUid: 'uid-1',
  deviceId: 'cam-a',
  shared: false,
  capacity: 2,
  properties: { URL: 'rtsp://a' },
  mounts: [],
  deviceNodes: [],
  online: true,
};
const key = 'ns/cams-00000000000000aa';
const log = pino({ level: 'silent' });
const one = (online: boolean, v: ServedDevice = view): Map<string, ServedDevice> => new Map([[key, { ...v, online }]]);

/** The Device as this node published it for `view` (what an agent reads back after a restart). */
function serverObject(status?: Device['status']): Device {
  return {
    ...identityApply(view, 'n1'),
    metadata: {
      name: view.name,
      namespace: 'ns',
      ownerReferences: [{ apiVersion: 'tether.dev/v1alpha1', kind: 'DeviceDiscovery', name: 'cams', uid: 'uid-1' }],
    },
    ...(status === undefined ? {} : { status }),
  } as unknown as Device;
}

describe('DevicePublisher', () => {
  it('a new device costs one forced identity apply and one Online status apply; repeating the same state costs nothing', async () => {
    const { api, calls } = fakeApi();
    const publisher = new DevicePublisher({ node: 'n1', api, log, now: () => new Date('2026-01-01T00:00:00Z') });
    await publisher.sync(one(true));
    await publisher.sync(one(true));
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatchObject({ kind: 'apply', manager: 'tether-agent/n1', force: true });
    // Never an empty status, also for a Device re-created after it went away.
    expect(calls[1]).toMatchObject({
      kind: 'status',
      manager: 'tether-agent/n1',
      body: { status: { nodeStates: [{ node: 'n1', state: 'Online', lastSeenTime: '2026-01-01T00:00:00Z' }] } },
    });
    expect((calls[0]!.body!['spec'] as Record<string, unknown>)['nodes']).toEqual(['n1']);
    // Empty mounts/deviceNodes are left out of the apply, never sent as [].
    expect(calls[0]!.body!['spec']).not.toHaveProperty('mounts');
  });

  it('offline and back cost one status apply each', async () => {
    const { api, calls } = fakeApi();
    let clock = Date.parse('2026-01-01T00:00:00Z');
    // Transitions seconds apart (closer ones are coalesced: next test).
    const publisher = new DevicePublisher({ node: 'n1', api, log, now: () => new Date((clock += 5_000) - 5_000) });
    await publisher.sync(one(true));
    await publisher.sync(one(false));
    await publisher.sync(one(false));
    await publisher.sync(one(true));
    expect(calls.map((c) => c.kind)).toEqual(['apply', 'status', 'status', 'status']);
    expect(calls[2]!.body).toMatchObject({
      status: { nodeStates: [{ node: 'n1', state: 'Offline', lastSeenTime: '2026-01-01T00:00:05Z' }] },
    });
  });

  it('a device flapping faster than the status interval costs one write per interval, with its latest state', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') });
    try {
      const { api, calls } = fakeApi();
      const publisher = new DevicePublisher({ node: 'n1', api, log, now: () => new Date() });
      await publisher.sync(one(true));
      for (let flap = 0; flap < 10; flap++) {
        await publisher.sync(one(false));
        await publisher.sync(one(true));
      }
      await publisher.sync(one(false));
      expect(calls.map((c) => c.kind)).toEqual(['apply', 'status']); // Online at once, the rest held back
      await vi.advanceTimersByTimeAsync(STATUS_MIN_INTERVAL_MS);
      await publisher.idle();
      expect(calls.map((c) => c.kind)).toEqual(['apply', 'status', 'status']);
      expect(calls[2]!.body).toMatchObject({ status: { nodeStates: [{ node: 'n1', state: 'Offline' }] } });
      // Back to the state last written within the next interval: nothing more to write.
      await publisher.sync(one(true));
      await publisher.sync(one(false));
      await vi.advanceTimersByTimeAsync(STATUS_MIN_INTERVAL_MS);
      await publisher.idle();
      expect(calls).toHaveLength(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a capacity change re-applies the identity', async () => {
    const { api, calls } = fakeApi();
    const publisher = new DevicePublisher({ node: 'n1', api, log });
    await publisher.sync(one(true));
    await publisher.sync(one(true, { ...view, capacity: 3 }));
    expect(calls.filter((c) => c.kind === 'apply')).toHaveLength(2);
  });

  it('departure releases this node and deletes the object when no node is left', async () => {
    const { api, calls } = fakeApi();
    const publisher = new DevicePublisher({ node: 'n1', api, log });
    await publisher.sync(one(true));
    await publisher.sync(new Map());
    expect(calls.map((c) => c.kind)).toEqual(['apply', 'status', 'apply', 'delete']);
    expect(calls[2]!.body!['spec']).not.toHaveProperty('nodes');
  });

  it('departure keeps the object when another node still sees it', async () => {
    const { api, calls } = fakeApi({ otherNodes: ['n2'] });
    const publisher = new DevicePublisher({ node: 'n1', api, log });
    await publisher.sync(one(true));
    await publisher.sync(new Map());
    expect(calls.map((c) => c.kind)).toEqual(['apply', 'status', 'apply']);
  });

  it('a delete refused because something else changed the object is retried while no node sees it', async () => {
    const { api, calls } = fakeApi({ deleteConflicts: 1 });
    const publisher = new DevicePublisher({ node: 'n1', api, log });
    await publisher.sync(one(true));
    await publisher.sync(new Map());
    expect(calls.map((c) => c.kind)).toEqual(['apply', 'status', 'apply', 'delete', 'get', 'delete']);
  });

  it('a delete refused because a node joined meanwhile is not retried', async () => {
    const { api, calls } = fakeApi({ deleteConflicts: 1, nodesOnGet: ['n3'] });
    const publisher = new DevicePublisher({ node: 'n1', api, log });
    await publisher.sync(one(true));
    await publisher.sync(new Map());
    expect(calls.map((c) => c.kind)).toEqual(['apply', 'status', 'apply', 'delete', 'get']);
  });

  it('no departure write when the object or its discovery is gone', async () => {
    const { api, calls } = fakeApi();
    const publisher = new DevicePublisher({ node: 'n1', api, log, shouldDepart: () => false });
    await publisher.sync(one(true));
    await publisher.sync(new Map());
    expect(calls.map((c) => c.kind)).toEqual(['apply', 'status']);
  });

  it('after a restart, a server object that already matches costs nothing', async () => {
    const { api, calls } = fakeApi();
    const publisher = new DevicePublisher({ node: 'n1', api, log });
    publisher.seed([serverObject({ nodeStates: [{ node: 'n1', state: 'Online' }] })]);
    await publisher.sync(one(true));
    expect(calls).toEqual([]);
    await publisher.sync(one(true, { ...view, properties: { URL: 'rtsp://b' } }));
    expect(calls).toHaveLength(1);
  });

  it('after a restart, a server object without this node’s status entry gets it, once', async () => {
    const { api, calls } = fakeApi();
    const publisher = new DevicePublisher({ node: 'n1', api, log });
    publisher.seed([serverObject()]);
    await publisher.sync(one(true));
    await publisher.sync(one(true));
    expect(calls.map((c) => c.kind)).toEqual(['status']);
  });

  it('slot claims use their own manager, never forced, and surface conflicts', async () => {
    const { api, calls } = fakeApi({ conflict: true });
    const publisher = new DevicePublisher({ node: 'n1', api, log });
    await expect(publisher.setSlots('ns', view.name, [1])).rejects.toBeInstanceOf(ApplyConflictError);
    expect(calls[0]).toMatchObject({
      kind: 'apply',
      manager: 'tether-agent/n1/slots',
      force: false,
      body: { spec: { slots: { '1': 'n1' } } },
    });
  });

  it('releasing every slot leaves the field out', async () => {
    const { api, calls } = fakeApi();
    const publisher = new DevicePublisher({ node: 'n1', api, log });
    await publisher.setSlots('ns', view.name, []);
    expect(calls[0]!.body!['spec']).toEqual({});
  });
});
