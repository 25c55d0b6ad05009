/**
 * Lean device-plugin mode through the node runtime, its real plugin sockets and the mock
 * kubelet: one resource per discovery however many devices, Allocate, preferred allocation,
 * health and PodResources reconciliation through that resource, brokered discoveries keeping
 * their per-device resources, and an event touching one device mirroring one device.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceName, deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import type { AnyDiscoveryHandler, DeviceSink } from '../../discovery-handlers/contract.ts';
import type { ServedDevice } from '../device.ts';
import { MockKubelet } from '../kubelet/mock-kubelet.ts';
import { noPublication, type DiscoverySource } from './adapters.ts';
import type { DesiredSession } from './desired-sessions.ts';
import { NodeRuntime } from './node-runtime.ts';

const log = pino({ level: 'silent' });
const NODE = 'n1';
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const nameOf = (discovery: string, id: string): string => deviceName({ namespace: 'ns', discovery, deviceId: id, node: NODE });

interface Rig {
  runtime: NodeRuntime;
  kubelet: MockKubelet;
  sinks: Map<string, DeviceSink>;
  /** Calls of the publication's `serverSlots`, by device name. */
  serverSlotCalls: string[];
  setSessions: (sessions: DesiredSession[]) => void;
  want: (name: string, o?: { devices?: number; capacity?: number; brokered?: boolean }) => DesiredSession;
}

async function rig(initial: (want: Rig['want']) => DesiredSession[], mode: 'lean' | 'per-device' = 'lean'): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'tlm-'));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
  const sinks = new Map<string, DeviceSink>();
  const handler: AnyDiscoveryHandler = {
    name: 'driven',
    parseDetails: (raw) => raw,
    isShared: () => false,
    run: async (details, { sink, signal }) => {
      const { name, devices } = details as { name: string; devices: number };
      sinks.set(name, sink);
      sink.replaceAll(Array.from({ length: devices }, (_, i) => ({ id: `d${i}`, properties: { INDEX: String(i) } })));
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    },
  };
  const want: Rig['want'] = (name, o = {}) => ({
    key: `ns/${name}`,
    fingerprint: name,
    brokered: o.brokered ?? false,
    spec: {
      namespace: 'ns',
      name,
      handler,
      details: { name, devices: o.devices ?? 3 },
      capacity: o.capacity ?? 1,
      offlineGraceMs: 60_000,
      properties: new Map(),
    },
  });
  let sessions = initial(want);
  let changed: () => void = () => undefined;
  const source: DiscoverySource = {
    start: (onChange) => {
      changed = onChange;
      return Promise.resolve();
    },
    desired: () => Promise.resolve(sessions),
    handlerFailed: () => undefined,
    stop: () => Promise.resolve(),
  };
  const serverSlotCalls: string[] = [];
  const publication = {
    ...noPublication(),
    serverSlots: (device: ServedDevice) => {
      serverSlotCalls.push(device.name);
      return {};
    },
  };
  const runtime = new NodeRuntime({
    node: NODE,
    log,
    pluginDir: join(dir, 'dp'),
    source,
    publication,
    podResourcesSocket: kubelet.podResourcesSocket!,
    reconcileIntervalMs: 0,
    slotGraceMs: 0,
    devicePluginMode: mode,
  });
  await runtime.start();
  cleanups.push(async () => {
    await runtime.stop();
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const setSessions = (next: DesiredSession[]): void => {
    sessions = next;
    changed();
  };
  return { runtime, kubelet, sinks, serverSlotCalls, setSessions, want };
}

const healthy = (kubelet: MockKubelet, resource: string): number =>
  kubelet.resource(resource)?.devices.filter((d) => d.health === 'Healthy').length ?? 0;

describe('lean device-plugin mode', () => {
  it('serves one resource per discovery, whatever the number of devices', async () => {
    const { runtime, kubelet } = await rig((want) => [want('cams', { devices: 200, capacity: 2 }), want('mics', { devices: 5 })]);
    await kubelet.waitFor(
      () => healthy(kubelet, discoveryResourceName('cams')) === 400 && healthy(kubelet, discoveryResourceName('mics')) === 5,
    );
    expect(kubelet.resourceNames()).toEqual([discoveryResourceName('cams'), discoveryResourceName('mics')]);
    expect([...runtime.plugins.servers().keys()].sort()).toEqual([discoveryResourceName('cams'), discoveryResourceName('mics')]);
  });

  it('allocates through the discovery resource: env vars of the chosen device, spread over devices, held slot Unhealthy', async () => {
    const { kubelet } = await rig((want) => [want('cams', { devices: 3, capacity: 2 })]);
    const resource = discoveryResourceName('cams');
    await kubelet.waitFor(() => healthy(kubelet, resource) === 6);
    const response = await kubelet.allocate({ namespace: 'ns', name: 'p1' }, resource, 2);
    const devices = (response.envs['TETHER_DEVICES'] ?? '').split(',');
    // GetPreferredAllocation spreads: two slots, two distinct devices.
    expect(new Set(devices).size).toBe(2);
    expect(Object.keys(response.envs).some((k) => k.startsWith('INDEX_'))).toBe(true);
    await kubelet.waitFor(() => healthy(kubelet, resource) === 6, 5_000, 'held slots stay Healthy where held');
    const one = await kubelet.allocate({ namespace: 'ns', name: 'p2' }, resource, 1);
    expect(one.envs['INDEX']).toBeDefined(); // one device: plain property names too
  });

  it('marks an offline device Unhealthy under the discovery resource', async () => {
    const { kubelet, sinks } = await rig((want) => [want('cams', { devices: 3 })]);
    const resource = discoveryResourceName('cams');
    await kubelet.waitFor(() => healthy(kubelet, resource) === 3);
    sinks.get('cams')!.remove('d1');
    await kubelet.waitFor(() => healthy(kubelet, resource) === 2, 5_000, 'd1 Unhealthy');
    const d1 = kubelet.resource(resource)!.devices.find((d) => d.ID === `${nameOf('cams', 'd1')}-0`);
    expect(d1?.health).toBe('Unhealthy');
  });

  it('reconciles with PodResources under the discovery resource: adopts what the kubelet holds, frees what it no longer does', async () => {
    const { runtime, kubelet } = await rig((want) => [want('cams', { devices: 2 })]);
    const resource = discoveryResourceName('cams');
    await kubelet.waitFor(() => healthy(kubelet, resource) === 2);
    const slot = `${nameOf('cams', 'd0')}-0`;
    kubelet.recordAllocation({ namespace: 'ns', name: 'old' }, resource, [slot]);
    const adopted = await runtime.reconcileLedger();
    expect(adopted.adopt).toEqual([{ slot, resource }]);
    expect(runtime.ledger.holderOf(slot)).toEqual({ node: NODE, resource });
    kubelet.removePod('ns', 'old');
    const freed = await runtime.reconcileLedger(); // slot grace 0: freed when first seen missing
    expect(freed.free).toEqual([slot]);
    expect(runtime.ledger.holderOf(slot)).toBeUndefined();
  });

  it("keeps each device's own resource for a brokered discovery (its brokers request it), and drops it when the broker goes", async () => {
    const { kubelet, setSessions, want } = await rig((w) => [w('cams', { devices: 2, brokered: true }), w('mics', { devices: 2 })]);
    const own = deviceResourceName(nameOf('cams', 'd0'));
    await kubelet.waitFor(() => healthy(kubelet, own) === 1 && healthy(kubelet, discoveryResourceName('mics')) === 2);
    expect(kubelet.resourceNames()).not.toContain(deviceResourceName(nameOf('mics', 'd0')));
    // A broker's slot, taken through the device's own resource, is not offered through the discovery's.
    await kubelet.allocate({ namespace: 'ns', name: 'broker' }, own, 1);
    await kubelet.waitFor(
      () => healthy(kubelet, discoveryResourceName('cams')) === 1,
      5_000,
      'broker slot Unhealthy in the discovery resource',
    );
    setSessions([want('cams', { devices: 2, brokered: false }), want('mics', { devices: 2 })]);
    await kubelet.waitFor(() => kubelet.resource(own)?.connected === false, 5_000, 'own resource gone');
  });

  it('mirrors the cluster slot record only for devices an event touched: O(1) ledger work per event', async () => {
    const { runtime, kubelet, sinks, serverSlotCalls } = await rig((want) => [want('cams', { devices: 500 })]);
    const resource = discoveryResourceName('cams');
    await kubelet.waitFor(() => healthy(kubelet, resource) === 500);
    await runtime.settled();
    expect(serverSlotCalls).toHaveLength(500); // each device once, when it appeared
    const mirror = vi.spyOn(runtime.ledger, 'mirrorDevice');
    serverSlotCalls.length = 0;
    sinks.get('cams')!.upsert({ id: 'new', properties: { INDEX: 'new' } });
    await kubelet.waitFor(() => healthy(kubelet, resource) === 501);
    await runtime.settled();
    expect(serverSlotCalls).toEqual([nameOf('cams', 'new')]);
    expect(mirror).toHaveBeenCalledTimes(1);
    sinks.get('cams')!.remove('d7'); // online → offline: same slots, nothing to mirror
    await kubelet.waitFor(() => healthy(kubelet, resource) === 500);
    await runtime.settled();
    expect(serverSlotCalls).toHaveLength(1);
    expect(mirror).toHaveBeenCalledTimes(1);
  });

  it("re-advertises only the claimed device's resources after an Allocate, and they match a full sync (per-device mode)", async () => {
    const { runtime, kubelet } = await rig((want) => [want('cams', { devices: 20 }), want('mics', { devices: 5 })], 'per-device');
    const cams = discoveryResourceName('cams');
    await kubelet.waitFor(() => healthy(kubelet, cams) === 20 && healthy(kubelet, discoveryResourceName('mics')) === 5);
    await runtime.settled();
    const servers = runtime.plugins.servers();
    expect(servers.size).toBe(20 + 5 + 2);
    const updated = new Set<string>();
    for (const [name, server] of servers) {
      const setDevices = server.setDevices.bind(server);
      vi.spyOn(server, 'setDevices').mockImplementation((devices) => {
        updated.add(name);
        return setDevices(devices);
      });
    }
    const own = deviceResourceName(nameOf('cams', 'd3'));
    await kubelet.allocate({ namespace: 'ns', name: 'p1' }, own, 1);
    await kubelet.waitFor(() => healthy(kubelet, cams) === 19, 5_000, 'the slot Unhealthy under the discovery resource');
    await runtime.settled();
    expect([...updated].sort()).toEqual([own, cams].sort());
    // What the partial sync advertised is what a full one would.
    for (const [name, devices] of runtime.devices.resources())
      expect(servers.get(name)!.devices, name).toEqual(devices.sort((a, b) => (a.ID < b.ID ? -1 : 1)));
  });
});
