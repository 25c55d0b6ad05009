/**
 * The device-plugin manager against the mock kubelet: the desired set of resources becomes
 * registered plugins (and stops being), device lists reach the kubelet, and a kubelet that
 * restarts — or starts late — gets every plugin registered again without a new sync.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContainerAllocateResponse, PluginDevice } from '../../proto/types.ts';
import { MockKubelet } from '../kubelet/mock-kubelet.ts';
import { DevicePluginManager } from './manager.ts';
import type { PluginBackend } from './server.ts';

const CAMS = 'tether.dev/cams';
const DOOR = 'tether.dev/cams-door';

const backend: PluginBackend = {
  allocate: (resourceName: string, deviceIds: readonly string[]): Promise<ContainerAllocateResponse> =>
    Promise.resolve({
      envs: { RESOURCE: resourceName, SLOTS: deviceIds.join(',') },
      mounts: [],
      devices: [],
      annotations: {},
      cdi_devices: [],
    }),
  preferredAllocation: (_resourceName, request) => request.available_deviceIDs.slice(0, request.allocation_size),
  release: () => undefined,
};

const slots = (spec: string): PluginDevice[] =>
  spec.split(',').map((s) => {
    const [ID = '', health] = s.split(':');
    return { ID, health: health === 'U' ? 'Unhealthy' : 'Healthy' };
  });

let dir: string;
let kubelet: MockKubelet;
let manager: DevicePluginManager;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tdm-'));
  kubelet = new MockKubelet({ pluginDir: dir });
  // A long poll: registration must follow fs events, not the safety-net poll.
  manager = new DevicePluginManager({ pluginDir: dir, backend, log: pino({ level: 'silent' }), pollIntervalMs: 60_000 });
});

afterEach(async () => {
  await manager.stop();
  await kubelet.stop();
  await rm(dir, { recursive: true, force: true });
});

/** "ID:health,…" of `resource` as the kubelet sees it; '' when unknown. */
const seen = (resource: string): string => (kubelet.resource(resource)?.devices ?? []).map((d) => `${d.ID}:${d.health}`).join(',');

function waitSeen(resource: string, want: string): Promise<void> {
  return kubelet.waitFor(
    () => kubelet.resource(resource)?.connected === true && seen(resource) === want,
    3_000,
    `${resource} = ${want} (have ${seen(resource) || 'nothing'})`,
  );
}

describe('sync', () => {
  it('serves and registers one plugin per resource; the kubelet lists their devices', async () => {
    await kubelet.start();
    manager.start();
    await manager.sync(
      new Map([
        [CAMS, slots('door-0,door-1,yard-0:U')],
        [DOOR, slots('door-0,door-1')],
      ]),
    );
    await waitSeen(CAMS, 'door-0:Healthy,door-1:Healthy,yard-0:Unhealthy');
    await waitSeen(DOOR, 'door-0:Healthy,door-1:Healthy');
    expect([...manager.servers().keys()].sort()).toEqual([CAMS, DOOR]);
    expect(manager.registrations).toBe(2);
    expect(kubelet.resourceNames()).toEqual([CAMS, DOOR]);
    const response = await kubelet.allocate({ namespace: 'default', name: 'viewer' }, DOOR, 1);
    expect(response.envs).toEqual({ RESOURCE: DOOR, SLOTS: 'door-0' });
  });

  it('registers many plugins (registrations run side by side, each exactly once)', async () => {
    await kubelet.start();
    manager.start();
    const many = new Map(Array.from({ length: 60 }, (_, i) => [`tether.dev/many-${i}`, slots(`m${i}-0`)]));
    await manager.sync(many);
    await kubelet.waitFor(() => kubelet.resourceNames().length === 60, 10_000, '60 registrations');
    expect(manager.registrations).toBe(60);
    await waitSeen('tether.dev/many-59', 'm59-0:Healthy');
  });

  it('pushes changed device lists to the kubelet without registering again', async () => {
    await kubelet.start();
    manager.start();
    await manager.sync(new Map([[DOOR, slots('door-0,door-1')]]));
    await waitSeen(DOOR, 'door-0:Healthy,door-1:Healthy');
    await manager.sync(new Map([[DOOR, slots('door-0:U,door-1:U')]]));
    await waitSeen(DOOR, 'door-0:Unhealthy,door-1:Unhealthy');
    expect(manager.registrations).toBe(1);
    expect(kubelet.registrations).toBe(1);
  });

  it('stops the plugin of a resource that left the set: socket removed, kubelet stream ended', async () => {
    await kubelet.start();
    manager.start();
    await manager.sync(
      new Map([
        [CAMS, slots('door-0')],
        [DOOR, slots('door-0')],
      ]),
    );
    await waitSeen(DOOR, 'door-0:Healthy');
    const socket = manager.servers().get(DOOR)!.socketPath;
    expect(existsSync(socket)).toBe(true);

    await manager.sync(new Map([[CAMS, slots('door-0')]]));
    expect([...manager.servers().keys()]).toEqual([CAMS]);
    expect(existsSync(socket)).toBe(false);
    await kubelet.waitFor(() => kubelet.resource(DOOR)?.connected === false, 3_000, 'door plugin gone');
    expect(kubelet.resource(CAMS)?.connected).toBe(true);
  });
});

describe('kubelet restarts', () => {
  it('re-serves and re-registers every plugin when the kubelet restarts, with the same devices', async () => {
    await kubelet.start();
    manager.start();
    await manager.sync(
      new Map([
        [CAMS, slots('door-0,yard-0:U')],
        [DOOR, slots('door-0')],
      ]),
    );
    await waitSeen(CAMS, 'door-0:Healthy,yard-0:Unhealthy');
    await waitSeen(DOOR, 'door-0:Healthy');
    const sockets = [...manager.servers().values()].map((s) => s.socketPath);
    expect(kubelet.registrations).toBe(2);

    // The restart wipes the plugin sockets and the kubelet forgets every resource.
    await kubelet.restart();
    expect(kubelet.resourceNames()).toEqual([]);
    await waitSeen(CAMS, 'door-0:Healthy,yard-0:Unhealthy');
    await waitSeen(DOOR, 'door-0:Healthy');
    expect(kubelet.registrations).toBe(4);
    for (const socket of sockets) expect(existsSync(socket)).toBe(true);

    // And again: not a one-off.
    await kubelet.restart();
    await waitSeen(DOOR, 'door-0:Healthy');
    await waitSeen(CAMS, 'door-0:Healthy,yard-0:Unhealthy');
  });

  it('registers once a kubelet that was absent at sync time comes up', async () => {
    manager.start();
    await manager.sync(new Map([[DOOR, slots('door-0')]]));
    expect(manager.registrations).toBe(0);
    expect(existsSync(manager.servers().get(DOOR)!.socketPath)).toBe(true);

    await kubelet.start();
    await waitSeen(DOOR, 'door-0:Healthy');
    expect(kubelet.registrations).toBe(1);
  });

  it('registers with a kubelet that comes back after being down', async () => {
    await kubelet.start();
    manager.start();
    await manager.sync(new Map([[DOOR, slots('door-0')]]));
    await waitSeen(DOOR, 'door-0:Healthy');
    await kubelet.stop(); // kubelet.sock removed; plugin sockets stay
    await manager.sync(new Map([[DOOR, slots('door-0:U')]]));
    await kubelet.start();
    await waitSeen(DOOR, 'door-0:Unhealthy');
    expect(kubelet.registrations).toBe(2);
  });

  it('re-serves and re-registers when the whole device-plugins directory is replaced (the watch follows the new one)', async () => {
    await kubelet.start();
    manager.start();
    await manager.sync(new Map([[DOOR, slots('door-0')]]));
    await waitSeen(DOOR, 'door-0:Healthy');

    for (const round of [1, 2]) {
      await kubelet.stop();
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
      await kubelet.start();
      await waitSeen(DOOR, 'door-0:Healthy');
      expect(existsSync(manager.servers().get(DOOR)!.socketPath)).toBe(true);
      expect(kubelet.registrations, `round ${round}`).toBe(1 + round);
    }
  });
});

describe('safety-net poll', () => {
  it('runs only while a plugin is served: an agent serving no device never wakes for it', async () => {
    await kubelet.start();
    manager.start();
    expect(manager.pollIntervalMs).toBeUndefined();
    await manager.sync(new Map([[DOOR, slots('door-0')]]));
    expect(manager.pollIntervalMs).toBe(60_000);
    await waitSeen(DOOR, 'door-0:Healthy');
    await manager.sync(new Map());
    expect(manager.pollIntervalMs).toBeUndefined();

    // Without a poll the first plugin still registers, and a kubelet restart still reaches it.
    await manager.sync(new Map([[CAMS, slots('cam-0')]]));
    await waitSeen(CAMS, 'cam-0:Healthy');
    await kubelet.stop();
    await kubelet.start();
    await kubelet.waitFor(() => kubelet.registrations === 3, 3_000, 'registration after the kubelet restart');
  });
});

describe('stop', () => {
  it('stops every plugin, removes their sockets and ignores a late sync', async () => {
    await kubelet.start();
    manager.start();
    await manager.sync(
      new Map([
        [CAMS, slots('door-0')],
        [DOOR, slots('door-0')],
      ]),
    );
    await waitSeen(CAMS, 'door-0:Healthy');
    await waitSeen(DOOR, 'door-0:Healthy');
    const sockets = [...manager.servers().values()].map((s) => s.socketPath);

    await manager.stop();
    expect(manager.servers().size).toBe(0);
    for (const socket of sockets) expect(existsSync(socket)).toBe(false);
    await kubelet.waitFor(
      () => kubelet.resource(CAMS)?.connected === false && kubelet.resource(DOOR)?.connected === false,
      3_000,
      'plugins gone',
    );

    await manager.sync(new Map([[DOOR, slots('door-0')]]));
    expect(manager.servers().size).toBe(0);
    expect(existsSync(sockets[1]!)).toBe(false);
    expect(existsSync(kubelet.kubeletSocket)).toBe(true); // nothing else touched
  });

  it('does not re-register after stop when the kubelet restarts', async () => {
    await kubelet.start();
    manager.start();
    await manager.sync(new Map([[DOOR, slots('door-0')]]));
    await waitSeen(DOOR, 'door-0:Healthy');
    await manager.stop();
    const before = kubelet.registrations;
    await kubelet.restart();
    // A fresh plugin registering proves the kubelet is back and listening; ours stays away.
    const other = new DevicePluginManager({ pluginDir: dir, backend, log: pino({ level: 'silent' }), pollIntervalMs: 60_000 });
    other.start();
    try {
      await other.sync(new Map([[CAMS, slots('x-0')]]));
      await waitSeen(CAMS, 'x-0:Healthy');
      expect(kubelet.registrations).toBe(before + 1);
      expect(kubelet.resource(DOOR)).toBeUndefined();
    } finally {
      await other.stop();
    }
  });
});
