/**
 * The foundation end to end on real gRPC over Unix sockets: debug-echo → device plugins
 * → mock kubelet (registration, ListAndWatch, preferred allocation, Allocate, restart).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceName, deviceResourceName, discoveryResourceName } from '../api/names.ts';
import { createDebugEchoHandler, parseDebugEchoDetails } from '../discovery-handlers/debug-echo/debug-echo.ts';
import { MockKubelet } from './kubelet/mock-kubelet.ts';
import { StandaloneAgent } from './standalone.ts';

const log = pino({ level: 'silent' });
const NODE = 'node-a';
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  dir: string;
  kubelet: MockKubelet;
  agent: StandaloneAgent;
  availability: string;
  nameOf: (description: string) => string;
}

/** `slotGraceMs`: with the mock kubelet's PodResources, the ledger reconciled only when the test asks. */
async function setup(
  options: {
    descriptions?: string[];
    capacity?: number;
    graceMs?: number;
    slotGraceMs?: number;
    /** Periodic reconciles (default: only when the test asks). */
    reconcile?: { everyMs: number; idleMs: number };
  } = {},
): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'tt-'));
  const availability = join(dir, 'availability');
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
  const details = parseDebugEchoDetails({ descriptions: options.descriptions ?? ['cam-a', 'cam-b'], availabilityFile: availability });
  const agent = new StandaloneAgent({
    node: NODE,
    pluginDir: join(dir, 'dp'),
    log,
    ...(options.slotGraceMs === undefined
      ? {}
      : {
          podResourcesSocket: kubelet.podResourcesSocket!,
          reconcileIntervalMs: options.reconcile?.everyMs ?? 0,
          ...(options.reconcile === undefined ? {} : { idleReconcileIntervalMs: options.reconcile.idleMs }),
          slotGraceMs: options.slotGraceMs,
        }),
    discoveries: [
      {
        namespace: 'default',
        name: 'echo',
        handler: createDebugEchoHandler(),
        details,
        capacity: options.capacity ?? 2,
        offlineGraceMs: options.graceMs ?? 60_000,
        properties: new Map(),
      },
    ],
  });
  agent.start();
  cleanups.push(async () => {
    await agent.stop();
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const nameOf = (description: string): string =>
    deviceName({ namespace: 'default', discovery: 'echo', deviceId: description, node: NODE });
  return { dir, kubelet, agent, availability, nameOf };
}

const healthy = (kubelet: MockKubelet, resource: string): string[] =>
  (kubelet.resource(resource)?.devices ?? [])
    .filter((d) => d.health === 'Healthy')
    .map((d) => d.ID)
    .sort();

describe('device plugins with the mock kubelet', () => {
  it('registers one resource per device and one per discovery, with capacity slots', async () => {
    const { kubelet, nameOf } = await setup();
    const a = nameOf('cam-a');
    const b = nameOf('cam-b');
    const expected = [deviceResourceName(a), deviceResourceName(b), discoveryResourceName('echo')].sort();
    await kubelet.waitFor(() => expected.every((r) => (kubelet.resource(r)?.devices.length ?? 0) > 0), 5_000, 'registrations');
    expect(kubelet.resourceNames()).toEqual(expected);
    expect(healthy(kubelet, deviceResourceName(a))).toEqual([`${a}-0`, `${a}-1`]);
    expect(healthy(kubelet, discoveryResourceName('echo'))).toEqual([`${a}-0`, `${a}-1`, `${b}-0`, `${b}-1`].sort());
    expect(kubelet.resource(deviceResourceName(a))?.options.get_preferred_allocation_available).toBe(true);
  });

  it('Allocate returns the properties as env vars and annotates the devices', async () => {
    const { kubelet, nameOf } = await setup();
    const a = nameOf('cam-a');
    const resource = deviceResourceName(a);
    await kubelet.waitFor(() => healthy(kubelet, resource).length === 2, 5_000, 'device resource');
    const response = await kubelet.allocate({ namespace: 'default', name: 'pod-1' }, resource, 1);
    expect(response.envs['DEBUG_ECHO_DESCRIPTION']).toBe('cam-a');
    expect(response.envs[`DEBUG_ECHO_DESCRIPTION_${a.slice(-16).toUpperCase()}`]).toBe('cam-a');
    expect(response.envs['TETHER_DEVICES']).toBe(a);
    expect(response.annotations['tether.dev/devices']).toBe(a);
  });

  it('a slot used through the device resource turns Unhealthy in the discovery resource (Akri #849)', async () => {
    const { kubelet, nameOf } = await setup({ capacity: 1 });
    const a = nameOf('cam-a');
    const perDevice = deviceResourceName(a);
    const perDiscovery = discoveryResourceName('echo');
    // Both plugins listed: each registers and streams its devices on its own schedule.
    await kubelet.waitFor(
      () => healthy(kubelet, perDiscovery).length === 2 && healthy(kubelet, perDevice).length === 1,
      5_000,
      'discovery and device resources',
    );
    await kubelet.allocate({ namespace: 'default', name: 'pod-1' }, perDevice, 1);
    await kubelet.waitFor(() => !healthy(kubelet, perDiscovery).includes(`${a}-0`), 5_000, 'slot hidden from discovery resource');
    // Still Healthy where it is allocated: the kubelet already counts it as used there.
    expect(healthy(kubelet, perDevice)).toEqual([`${a}-0`]);
    // The kubelet can no longer hand it out through the discovery resource.
    await expect(kubelet.allocateIds({ namespace: 'default', name: 'pod-2' }, perDiscovery, [`${a}-0`])).rejects.toMatchObject({
      code: status.ABORTED,
    });
  });

  it('preferred allocation spreads over distinct devices and keeps must-include IDs', async () => {
    const { kubelet, nameOf } = await setup({ descriptions: ['a', 'b', 'c'], capacity: 3 });
    const resource = discoveryResourceName('echo');
    await kubelet.waitFor(() => healthy(kubelet, resource).length === 9, 5_000, 'nine slots');
    const [a, b, c] = ['a', 'b', 'c'].map(nameOf) as [string, string, string];
    const preferred = await kubelet.preferredAllocation(resource, healthy(kubelet, resource), [`${b}-2`], 3);
    expect(preferred[0]).toBe(`${b}-2`);
    expect(new Set(preferred.map((id) => id.slice(0, -2)))).toEqual(new Set([a, b, c]));
    const response = await kubelet.allocate({ namespace: 'default', name: 'pod-3' }, resource, 2);
    expect(response.envs['TETHER_DEVICES']?.split(',')).toHaveLength(2);
    expect(response.envs['DEBUG_ECHO_DESCRIPTION']).toBeUndefined();
  });

  it('concurrent Allocates of one slot through two resources: exactly one wins', async () => {
    const { kubelet, nameOf } = await setup({ capacity: 1 });
    const a = nameOf('cam-a');
    await kubelet.waitFor(() => healthy(kubelet, discoveryResourceName('echo')).length === 2, 5_000, 'slots');
    const attempts = await Promise.allSettled([
      kubelet.allocateIds({ namespace: 'x', name: 'p1' }, deviceResourceName(a), [`${a}-0`]),
      kubelet.allocateIds({ namespace: 'x', name: 'p2' }, discoveryResourceName('echo'), [`${a}-0`]),
    ]);
    expect(attempts.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const [lost] = attempts.filter((r) => r.status === 'rejected');
    expect(lost?.reason).toMatchObject({ code: status.ABORTED, details: expect.stringContaining('slot already allocated') });
  });

  it('refuses unknown IDs, foreign IDs and empty requests with clear gRPC errors', async () => {
    const { kubelet, nameOf } = await setup();
    const a = nameOf('cam-a');
    const b = nameOf('cam-b');
    const resource = deviceResourceName(a);
    await kubelet.waitFor(() => healthy(kubelet, resource).length === 2, 5_000, 'device resource');
    await expect(kubelet.rawAllocate(resource, { container_requests: [{ devices_ids: ['nope-0'] }] })).rejects.toMatchObject({
      code: status.NOT_FOUND,
      details: expect.stringContaining('unknown device ID(s) nope-0'),
    });
    await expect(kubelet.rawAllocate(resource, { container_requests: [] })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(kubelet.rawAllocate(resource, { container_requests: [{ devices_ids: [] }] })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
    // b's slot is known to the discovery resource but not to a's device resource.
    await expect(kubelet.rawAllocate(resource, { container_requests: [{ devices_ids: [`${b}-0`] }] })).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
  });

  it('a failed container request releases the sibling containers it already allocated', async () => {
    const { kubelet, agent, nameOf } = await setup({ capacity: 1 });
    const a = nameOf('cam-a');
    const b = nameOf('cam-b');
    const resource = discoveryResourceName('echo');
    await kubelet.waitFor(() => healthy(kubelet, resource).length === 2, 5_000, 'slots');
    agent.ledger.claim([`${b}-0`], { node: 'other-node', resource });
    await expect(
      kubelet.rawAllocate(resource, { container_requests: [{ devices_ids: [`${a}-0`] }, { devices_ids: [`${b}-0`] }] }),
    ).rejects.toMatchObject({ code: status.ABORTED });
    expect(agent.ledger.holderOf(`${a}-0`)).toBeUndefined();
  });

  it('pushes health changes at once: offline → Unhealthy, online → Healthy', async () => {
    const { kubelet, nameOf, availability } = await setup();
    const resource = deviceResourceName(nameOf('cam-a'));
    await kubelet.waitFor(() => healthy(kubelet, resource).length === 2, 5_000, 'healthy');
    await writeFile(availability, 'OFFLINE\n');
    await kubelet.waitFor(
      () => healthy(kubelet, resource).length === 0 && (kubelet.resource(resource)?.devices.length ?? 0) === 2,
      5_000,
      'unhealthy',
    );
    await writeFile(availability, 'ONLINE\n');
    await kubelet.waitFor(() => healthy(kubelet, resource).length === 2, 5_000, 'healthy again');
  });

  it('removes a device after its grace period: its plugin stops and its slots leave the discovery resource', async () => {
    const { kubelet, nameOf, availability } = await setup({ graceMs: 50 });
    const a = nameOf('cam-a');
    await kubelet.waitFor(() => healthy(kubelet, discoveryResourceName('echo')).length === 4, 5_000, 'slots');
    await writeFile(availability, 'OFFLINE');
    await kubelet.waitFor(() => kubelet.resource(deviceResourceName(a))?.connected === false, 5_000, 'device plugin gone');
    await kubelet.waitFor(() => kubelet.resource(discoveryResourceName('echo'))?.connected === false, 5_000, 'discovery plugin gone');
  });

  it('re-registers every plugin within a second after a kubelet restart', async () => {
    const { kubelet, agent, nameOf } = await setup();
    const resources = [deviceResourceName(nameOf('cam-a')), deviceResourceName(nameOf('cam-b')), discoveryResourceName('echo')];
    await kubelet.waitFor(() => resources.every((r) => healthy(kubelet, r).length > 0), 5_000, 'initial registration');
    const registrations = kubelet.registrations;
    const restartedAt = performance.now();
    await kubelet.restart();
    expect(kubelet.resourceNames()).toEqual([]);
    await kubelet.waitFor(() => resources.every((r) => healthy(kubelet, r).length > 0), 1_000, 're-registration within 1 s');
    expect(kubelet.registrations - registrations).toBe(3);
    expect(performance.now() - restartedAt).toBeLessThan(1_000);
    expect(agent.plugins.registrations).toBeGreaterThanOrEqual(6);
  });

  it('registers plugins that started before the kubelet once kubelet.sock appears', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tt-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const pluginDir = join(dir, 'dp');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(pluginDir);
    const agent = new StandaloneAgent({
      node: NODE,
      pluginDir,
      log,
      discoveries: [
        {
          namespace: 'default',
          name: 'echo',
          handler: createDebugEchoHandler(),
          details: parseDebugEchoDetails({ descriptions: ['x'] }),
          capacity: 1,
          offlineGraceMs: 1_000,
          properties: new Map(),
        },
      ],
    });
    agent.start();
    cleanups.push(() => agent.stop());
    await agent.settled();
    const kubelet = new MockKubelet({ pluginDir });
    await kubelet.start();
    cleanups.push(() => kubelet.stop());
    await kubelet.waitFor(() => healthy(kubelet, discoveryResourceName('echo')).length === 1, 3_000, 'late registration');
  });

  it('shutdown removes its sockets', async () => {
    const { agent, kubelet } = await setup();
    await kubelet.waitFor(() => kubelet.resourceNames().length === 3, 5_000, 'registrations');
    const sockets = [...agent.plugins.servers().values()].map((s) => s.socketPath);
    const { access } = await import('node:fs/promises');
    await Promise.all(sockets.map((s) => access(s)));
    await agent.stop();
    for (const socket of sockets) await expect(access(socket)).rejects.toThrow();
    await kubelet.waitFor(() => kubelet.resourceNames().every((r) => kubelet.resource(r)?.connected === false), 5_000, 'streams closed');
  });
});

describe('ledger reconciliation against PodResources', () => {
  it('frees the slot of a deleted pod and adopts a slot the kubelet holds', async () => {
    const { agent, kubelet } = await setup({ descriptions: ['x', 'y'], capacity: 1, slotGraceMs: 0 });
    const x = deviceName({ namespace: 'default', discovery: 'echo', deviceId: 'x', node: NODE });
    const y = deviceName({ namespace: 'default', discovery: 'echo', deviceId: 'y', node: NODE });
    const any = discoveryResourceName('echo');
    await kubelet.waitFor(() => healthy(kubelet, any).length === 2, 5_000, 'slots');

    await kubelet.allocateIds({ namespace: 'default', name: 'p1' }, any, [`${x}-0`]);
    await kubelet.waitFor(() => !healthy(kubelet, deviceResourceName(x)).includes(`${x}-0`), 5_000, 'x hidden');
    kubelet.removePod('default', 'p1');
    const freed = await agent.reconcileLedger();
    expect(freed.free).toEqual([`${x}-0`]);
    await kubelet.waitFor(() => healthy(kubelet, deviceResourceName(x)).includes(`${x}-0`), 5_000, 'x free again');

    // The kubelet holds y's slot (e.g. allocated before an agent restart); the ledger does not.
    kubelet.recordAllocation({ namespace: 'default', name: 'p2' }, deviceResourceName(y), [`${y}-0`]);
    const adopted = await agent.reconcileLedger();
    expect(adopted.adopt).toEqual([{ slot: `${y}-0`, resource: deviceResourceName(y) }]);
    await kubelet.waitFor(() => !healthy(kubelet, any).includes(`${y}-0`), 5_000, 'y hidden from the discovery resource');
  });
});

describe('slot grace after a re-allocation', () => {
  it("a slot the kubelet gives a new pod restarts its grace: the old pod's absence never frees it", async () => {
    const { agent, kubelet } = await setup({ descriptions: ['x'], capacity: 1, slotGraceMs: 10_000 });
    cleanups.push(() => {
      vi.useRealTimers();
      return Promise.resolve();
    });
    const slot = `${deviceName({ namespace: 'default', discovery: 'echo', deviceId: 'x', node: NODE })}-0`;
    const any = discoveryResourceName('echo');
    await kubelet.waitFor(() => healthy(kubelet, any).length === 1, 5_000, 'the slot');
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });

    await kubelet.allocateIds({ namespace: 'default', name: 'p1' }, any, [slot]);
    kubelet.removePod('default', 'p1');
    expect((await agent.reconcileLedger()).free).toEqual([]); // missing from now on
    vi.setSystemTime(Date.now() + 8_000);
    // The kubelet admits p2 with the same slot: Allocate done, p2 not listed in PodResources yet.
    await kubelet.rawAllocate(any, { container_requests: [{ devices_ids: [slot] }] });
    vi.setSystemTime(Date.now() + 8_000); // 16 s after p1 left, 8 s after p2's Allocate
    expect((await agent.reconcileLedger()).free).toEqual([]);
    vi.setSystemTime(Date.now() + 10_000); // a full grace after p2 was first found missing: freed
    expect((await agent.reconcileLedger()).free).toEqual([slot]);
  });
});

describe('periodic ledger reconcile', () => {
  it('asks PodResources often only while a slot is held: an Allocate starts it, the freed slot ends it', async () => {
    const { agent, kubelet } = await setup({
      descriptions: ['x'],
      capacity: 1,
      slotGraceMs: 300,
      reconcile: { everyMs: 100, idleMs: 60_000 },
    });
    const slot = `${deviceName({ namespace: 'default', discovery: 'echo', deviceId: 'x', node: NODE })}-0`;
    const any = discoveryResourceName('echo');
    await kubelet.waitFor(
      () => healthy(kubelet, any).length === 1 && kubelet.podResourcesLists >= 1,
      5_000,
      'the slot and the first reconcile',
    );
    await kubelet.allocateIds({ namespace: 'default', name: 'p1' }, any, [slot]);
    // Idle until now, so the next tick was a minute away: the Allocate brings it forward.
    const afterAllocate = kubelet.podResourcesLists;
    await kubelet.waitFor(() => kubelet.podResourcesLists >= afterAllocate + 3, 2_000, 'reconciles while the slot is held');
    kubelet.removePod('default', 'p1');
    await kubelet.waitFor(() => [...agent.ledger.entries()].length === 0, 5_000, 'the slot freed after its grace');
    // Holding nothing again: back to the idle interval.
    const idleFrom = kubelet.podResourcesLists;
    await new Promise((resolve) => setTimeout(resolve, 500)); // five short intervals
    expect(kubelet.podResourcesLists).toBeLessThanOrEqual(idleFrom + 1);
  });
});

describe('shutdown races', () => {
  it('a plugin sync that lands after stop() opens no socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tt-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const { mkdir, readdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'dp'));
    const agent = new StandaloneAgent({
      node: NODE,
      pluginDir: join(dir, 'dp'),
      log,
      discoveries: [
        {
          namespace: 'default',
          name: 'echo',
          handler: createDebugEchoHandler(),
          details: parseDebugEchoDetails({ descriptions: ['a'] }),
          capacity: 1,
          offlineGraceMs: 1_000,
          properties: new Map(),
        },
      ],
    });
    agent.start();
    await agent.settled();
    await agent.stop();
    // A change arriving late (e.g. an Allocate finishing) triggers one more sync.
    await agent.plugins.sync(agent.devices.resources());
    expect((await readdir(join(dir, 'dp'))).filter((f) => f.endsWith('.sock'))).toEqual([]);
  });
});
