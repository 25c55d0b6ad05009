/**
 * ResourceSlices of DRA discoveries, written by real agents (in-process, mock kubelets) to the
 * real apiserver: what the apiserver accepts and keeps (v1 with consumable capacity and device
 * taints is served by the pinned control plane with its default feature gates), offline taints
 * on and off, repair after a foreign delete, shared devices in one pool on two nodes, and
 * cleanup when a discovery leaves the DRA backend.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { draPoolName } from '../../api/dra-names.ts';
import { deviceName } from '../../api/names.ts';
import type { ResourceSlice } from '../../agent/cluster/resource-slices.ts';
import type { DeviceSink, DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { KubeClient, type KubeObject } from '../../kube/client.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterAgent } from '../../agent/cluster-agent.ts';
import { createAgentMetrics } from '../../agent/metrics.ts';
import { API_VERSION, loadKubeConfig, ResilientWatch, uniqueSuffix, useTestNamespace, waitFor } from './support.ts';

const ns = useTestNamespace('it-slices');
const log = pino({ level: process.env['TETHER_TEST_LOG'] ?? 'silent' });
const admin = new Api(new KubeClient(loadKubeConfig()));
const cleanups: (() => Promise<void>)[] = [];
const suffix = uniqueSuffix();

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A handler the test drives: each running session's sink, by discovery name. */
function drivenHandler(shared: boolean): { handler: DiscoveryHandler<Record<string, unknown>>; sinks: Map<string, DeviceSink> } {
  const sinks = new Map<string, DeviceSink>();
  const handler: DiscoveryHandler<Record<string, unknown>> = {
    name: shared ? 'driven-shared' : 'driven',
    parseDetails: (raw) => (raw ?? {}) as Record<string, unknown>,
    isShared: () => shared,
    run: async (details, { sink, signal }) => {
      sinks.set(details['key'] as string, sink);
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    },
  };
  return { handler, sinks };
}

async function startNode(name: string, handler: DiscoveryHandler<Record<string, unknown>>): Promise<ClusterAgent> {
  // Not a built-in name: served as an external handler would be. The agent is the node's DRA
  // plugin (slices are published only then), in its own temporary kubelet, CDI and state dirs.
  const dir = await mkdtemp(join(tmpdir(), 'ta-dra-'));
  const agent = new ClusterAgent({
    node: name,
    kc: loadKubeConfig(),
    log: log.child({ node: name }),
    pluginDir: join(dir, 'dp'),
    namespace: ns.name,
    handlers: new Map(),
    externalHandler: (n) => (n === handler.name ? handler : undefined),
    metrics: createAgentMetrics({ defaultMetrics: false }),
    startupTimeoutMs: 2_000,
    reconcileIntervalMs: 0,
    slotGraceMs: 0,
    dra: { kubeletDir: join(dir, 'kubelet'), cdiDir: join(dir, 'cdi'), stateDir: join(dir, 'state') },
  });
  await mkdir(join(dir, 'dp'), { recursive: true });
  await agent.start();
  cleanups.push(async () => {
    await agent.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return agent;
}

async function createDiscovery(name: string, spec: Record<string, unknown>): Promise<void> {
  await admin.create(RESOURCES.deviceDiscoveries, ns.name, { apiVersion: API_VERSION, kind: 'DeviceDiscovery', metadata: { name }, spec });
  cleanups.push(() => admin.delete(RESOURCES.deviceDiscoveries, ns.name, name));
}

async function slicesOf(node: string): Promise<ResourceSlice[]> {
  const list = await admin.list<ResourceSlice>(RESOURCES.resourceSlices, { fieldSelector: `spec.nodeName=${node}` });
  return list.items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

const devicesOf = (slices: readonly ResourceSlice[]): NonNullable<ResourceSlice['spec']['devices']> =>
  slices.flatMap((s) => s.spec.devices ?? []);

describe('ResourceSlices of a DRA discovery', () => {
  it('publishes typed attributes and consumable slots, taints offline devices and repairs foreign deletes', async () => {
    const node = `slices-a-${suffix}`;
    const { handler, sinks } = drivenHandler(false);
    await createDiscovery('cams', {
      handler: handler.name,
      details: { key: 'cams' },
      backend: 'DRA',
      dra: { evictOnOffline: true, attributeTypes: { PORT: 'int', FIRMWARE: 'version' } },
      capacity: 3,
      offlineGracePeriodSeconds: 300,
    });
    await startNode(node, handler);
    const sink = await waitFor(() => sinks.get('cams'), { description: 'session running' });
    const one = { id: 'cam-1', properties: { PORT: '554', FIRMWARE: '2.1.0', 'site.zone': 'north' } };
    const two = { id: 'cam-2', properties: { PORT: 'n/a' } };
    sink.replaceAll([one, two]);
    const name1 = deviceName({ namespace: ns.name, discovery: 'cams', deviceId: 'cam-1', node });

    const slices = await waitFor(async () => {
      const s = await slicesOf(node);
      return devicesOf(s).length === 2 && s;
    });
    expect(slices).toHaveLength(1);
    expect(slices[0]!.spec).toMatchObject({
      driver: 'tether.dev',
      nodeName: node,
      pool: { name: draPoolName({ namespace: ns.name, discovery: 'cams', node }), generation: 1, resourceSliceCount: 1 },
    });
    const stored = devicesOf(slices).find((d) => d.name === name1)!;
    // Kept by the apiserver: allowMultipleAllocations and the request policy need DRAConsumableCapacity.
    expect(stored).toMatchObject({
      allowMultipleAllocations: true,
      capacity: { 'tether.dev/slots': { value: '3', requestPolicy: { default: '1', validValues: ['1'] } } },
      attributes: {
        'tether.dev/namespace': { string: ns.name },
        'tether.dev/discovery': { string: 'cams' },
        'tether.dev/device': { string: name1 },
        'tether.dev/deviceId': { string: 'cam-1' },
        'tether.dev/node': { string: node },
        'property.tether.dev/PORT': { int: 554 },
        'property.tether.dev/FIRMWARE': { version: '2.1.0' },
      },
    });
    expect(Object.keys(stored.attributes).some((k) => k.startsWith('property.tether.dev/site_zone_'))).toBe(true);
    // PORT "n/a" is not an int: left out, not published as a string.
    const second = devicesOf(slices).find((d) => d.name !== name1)!;
    expect(second.attributes['property.tether.dev/PORT']).toBeUndefined();

    // Offline (within the grace period): NoExecute taint, same generation; back online: gone.
    sink.replaceAll([two]);
    const tainted = await waitFor(async () => {
      const d = devicesOf(await slicesOf(node)).find((x) => x.name === name1);
      return d?.taints?.length === 1 && d;
    });
    expect(tainted.taints![0]).toMatchObject({ key: 'tether.dev/offline', value: 'true', effect: 'NoExecute' });
    expect((await slicesOf(node))[0]!.spec.pool.generation).toBe(1);
    sink.replaceAll([one, two]);
    await waitFor(async () => {
      const d = devicesOf(await slicesOf(node)).find((x) => x.name === name1);
      return d !== undefined && d.taints === undefined;
    });

    // Someone deletes the slice: the agent writes it again, at a new generation.
    await admin.delete(RESOURCES.resourceSlices, undefined, slices[0]!.metadata.name);
    const again = await waitFor(async () => {
      const s = await slicesOf(node);
      return s.length === 1 && devicesOf(s).length === 2 && s;
    });
    expect(again[0]!.spec.pool.generation).toBe(2);

    // Back to the device-plugin backend: the node's slices go.
    await admin.apply(
      RESOURCES.deviceDiscoveries,
      {
        apiVersion: API_VERSION,
        kind: 'DeviceDiscovery',
        metadata: { name: 'cams', namespace: ns.name },
        spec: { backend: 'DevicePlugin' },
      } as KubeObject,
      { fieldManager: 'test', force: true },
    );
    await waitFor(async () => (await slicesOf(node)).length === 0, { description: 'slices deleted' });
  });

  it('keeps the slices through an agent restart: never emptied, not rewritten', async () => {
    const node = `slices-r-${suffix}`;
    const { handler, sinks } = drivenHandler(false);
    await createDiscovery('restart', {
      handler: handler.name,
      details: { key: 'restart' },
      backend: 'DRA',
      offlineGracePeriodSeconds: 300,
    });
    const first = await startNode(node, handler);
    const devices = [
      { id: 'r-1', properties: {} },
      { id: 'r-2', properties: {} },
    ];
    (await waitFor(() => sinks.get('restart'), { description: 'session running' })).replaceAll(devices);
    const before = await waitFor(async () => {
      const s = await slicesOf(node);
      return devicesOf(s).length === 2 && s;
    });
    const watch = new ResilientWatch(loadKubeConfig(), '/apis/resource.k8s.io/v1/resourceslices');
    await watch.start(before[0]!.metadata.resourceVersion);
    cleanups.push(() => Promise.resolve(watch.stop()));
    await first.stop();
    sinks.delete('restart');

    // The new agent's session is seeded with what the old one served; its handler reports later.
    await startNode(node, handler);
    const sink = await waitFor(() => sinks.get('restart'), { description: 'session running again' });
    sink.replaceAll(devices);
    // A later change, published after anything the restart did: every earlier write is watched by then.
    sink.replaceAll([...devices, { id: 'r-3', properties: {} }]);
    await watch.next((e) => e.object.metadata?.name === before[0]!.metadata.name && devicesOf([e.object as ResourceSlice]).length === 3);
    const mine = watch.events.filter((e) => e.object.metadata?.name === before[0]!.metadata.name);
    const counts = mine.map((e) => (e.type === 'DELETED' ? -1 : devicesOf([e.object as ResourceSlice]).length));
    expect(counts).toEqual([3]);
  });

  it('lists a shared device on every node that sees it, under one name in one pool', async () => {
    const [a, b] = [`slices-s1-${suffix}`, `slices-s2-${suffix}`];
    const { handler, sinks } = drivenHandler(true);
    await createDiscovery('cameras', { handler: handler.name, details: { key: 'cameras' }, backend: 'DRA', capacity: 2 });
    await startNode(a, handler);
    const sinkA = await waitFor(() => sinks.get('cameras'));
    sinks.delete('cameras');
    sinkA.replaceAll([{ id: 'ip-cam', properties: {} }]);
    await startNode(b, handler);
    const sinkB = await waitFor(() => sinks.get('cameras'));
    sinkB.replaceAll([{ id: 'ip-cam', properties: {} }]);
    const name = deviceName({ namespace: ns.name, discovery: 'cameras', deviceId: 'ip-cam' });
    for (const node of [a, b]) {
      const slices = await waitFor(async () => {
        const s = await slicesOf(node);
        return s.length === 1 && s;
      });
      expect(slices[0]!.spec.pool.name).toBe(draPoolName({ namespace: ns.name, discovery: 'cameras' }));
      expect(devicesOf(slices).map((d) => [d.name, d.attributes['tether.dev/node']])).toEqual([[name, { string: node }]]);
    }
    // Gone from one node only: NoSchedule there (never NoExecute for a shared device), untouched on the other.
    sinkA.replaceAll([]);
    await waitFor(async () => devicesOf(await slicesOf(a))[0]?.taints?.[0]?.effect === 'NoSchedule');
    expect(devicesOf(await slicesOf(b))[0]?.taints).toBeUndefined();
  });
});
