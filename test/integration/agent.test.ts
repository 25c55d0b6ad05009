/**
 * The cluster agent against the real kube-apiserver, with several agents (different node
 * names) in one test, each with its own mock kubelet over real Unix sockets.
 */
import { freePort } from '../cluster/processes.ts';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { planNodeRelease } from '../../controller/nodes/nodes.ts';
import { ExternalHandlerRegistry } from '../../agent/external/registry.ts';
import { deviceName, deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import type { Device } from '../../api/schema.ts';
import type { AnyDiscoveryHandler, DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { builtinHandlers } from '../../discovery-handlers/registry.ts';
import { serveDiscoveryHandler } from '../../discovery-handlers/sdk/index.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { spawnAgentProcess, startAgentNode, type AgentNode } from './agent-node.ts';
import { api, API_VERSION, GROUP, loadKubeConfig, ResilientWatch, uniqueSuffix, useTestNamespace, VERSION, waitFor } from './support.ts';

const ns = useTestNamespace('agent');
const log = pino({ level: process.env['TETHER_TEST_LOG'] ?? 'silent' });
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** Reports one device whose TOKEN property is the discovery's TOKEN property: shows what the handler was started with. */
const propertyEcho: DiscoveryHandler<Record<string, unknown>> = {
  name: 'property-echo',
  parseDetails: (raw) => (raw ?? {}) as Record<string, unknown>,
  isShared: () => false,
  run: async (_details, { sink, signal, properties }) => {
    sink.replaceAll([{ id: 'token-device', properties: { TOKEN: properties.get('TOKEN') ?? '' } }]);
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  },
};

function handlers(): Map<string, AnyDiscoveryHandler> {
  return new Map([...builtinHandlers(), ['property-echo', propertyEcho]]);
}

type Node = AgentNode;

async function startNode(
  name: string,
  options: { startupTimeoutMs?: number; externalHandler?: (name: string) => AnyDiscoveryHandler | undefined } = {},
): Promise<Node> {
  const node = await startAgentNode({ name, namespace: ns.name, handlers: handlers(), log, ...options });
  cleanups.push(() => node.stop());
  return node;
}

async function createDiscovery(name: string, spec: Record<string, unknown>): Promise<void> {
  await api().custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns.name,
    plural: 'devicediscoveries',
    body: { apiVersion: API_VERSION, kind: 'DeviceDiscovery', metadata: { name }, spec },
  });
  cleanups.push(async () => {
    await api().custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns.name,
      plural: 'devicediscoveries',
      name,
    });
  });
}

async function patchDiscovery(name: string, spec: Record<string, unknown>): Promise<void> {
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  await api().custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace: ns.name, plural: 'devicediscoveries', name, body: { spec } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

/** Creates the Node object if needed and sets its Ready condition (no kubelet runs here). */
async function setNodeReady(name: string, ready: boolean): Promise<void> {
  try {
    await api().core.createNode({ body: { metadata: { name } } });
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw error;
  }
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  const now = new Date().toISOString();
  const condition = {
    type: 'Ready',
    status: ready ? 'True' : 'False',
    reason: ready ? 'KubeletReady' : 'KubeletNotReady',
    message: 'set by the test',
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  };
  await api().core.patchNodeStatus(
    { name, body: { status: { conditions: [condition] } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

/** Server-side apply of a Device `body` under `fieldManager` (never forced). */
async function applyAs(fieldManager: string, body: object, subresource?: string): Promise<void> {
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  const name = (body as { metadata: { name: string } }).metadata.name;
  const request = { group: GROUP, version: VERSION, namespace: ns.name, plural: 'devices', name, body, fieldManager, force: false };
  const options = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  if (subresource === 'status') await api().custom.patchNamespacedCustomObjectStatus(request, options);
  else await api().custom.patchNamespacedCustomObject(request, options);
}

async function devices(discovery?: string): Promise<Device[]> {
  const list = (await api().custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns.name,
    plural: 'devices',
  })) as { items: Device[] };
  return list.items.filter((d) => discovery === undefined || d.spec.discovery === discovery);
}

const healthy = (kubelet: MockKubelet, resource: string): string[] =>
  (kubelet.resource(resource)?.devices ?? [])
    .filter((d) => d.health === 'Healthy')
    .map((d) => d.ID)
    .sort();

describe('cluster agent', () => {
  it('a shared device seen by two nodes is one Device listing both', async () => {
    await createDiscovery('shared-cams', { handler: 'debug-echo', details: { descriptions: ['cam-1'], shared: true }, capacity: 2 });
    const [a, b] = await Promise.all([startNode('node-a'), startNode('node-b')]);
    const device = await waitFor(async () => (await devices('shared-cams')).find((d) => (d.spec.nodes ?? []).length === 2), {
      description: 'Device with both nodes',
    });
    expect(device.spec.nodes?.sort()).toEqual(['node-a', 'node-b']);
    expect(device.metadata.name).toBe(deviceName({ namespace: ns.name, discovery: 'shared-cams', deviceId: 'cam-1' }));
    expect(device.spec.properties).toEqual({ DEBUG_ECHO_DESCRIPTION: 'cam-1' });
    expect(device.metadata.ownerReferences?.[0]?.kind).toBe('DeviceDiscovery');
    expect(await devices('shared-cams')).toHaveLength(1);
    const resource = deviceResourceName(device.metadata.name!);
    await a.kubelet.waitFor(() => healthy(a.kubelet, resource).length === 2, 5_000, 'plugin on node-a');
    await b.kubelet.waitFor(() => healthy(b.kubelet, resource).length === 2, 5_000, 'plugin on node-b');
  });

  it('two nodes racing for the last slot: exactly one wins, the other sees it Unhealthy', async () => {
    await createDiscovery('race', { handler: 'debug-echo', details: { descriptions: ['only'], shared: true }, capacity: 1 });
    const [a, b] = await Promise.all([startNode('race-a'), startNode('race-b')]);
    const name = deviceName({ namespace: ns.name, discovery: 'race', deviceId: 'only' });
    const resource = deviceResourceName(name);
    await a.kubelet.waitFor(() => healthy(a.kubelet, resource).length === 1, 10_000, 'slot on a');
    await b.kubelet.waitFor(() => healthy(b.kubelet, resource).length === 1, 10_000, 'slot on b');
    const results = await Promise.allSettled([
      a.kubelet.allocateIds({ namespace: 'x', name: 'pa' }, resource, [`${name}-0`]),
      b.kubelet.allocateIds({ namespace: 'x', name: 'pb' }, resource, [`${name}-0`]),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected');
    expect(lost?.reason).toMatchObject({ code: status.ABORTED });
    const winner = results[0].status === 'fulfilled' ? 'race-a' : 'race-b';
    const loser = winner === 'race-a' ? b : a;
    const device = await waitFor(async () => (await devices('race')).find((d) => d.spec.slots?.['0'] !== undefined));
    expect(device.spec.slots).toEqual({ '0': winner });
    await loser.kubelet.waitFor(() => healthy(loser.kubelet, resource).length === 0, 10_000, 'slot Unhealthy on the loser');
    await loser.kubelet.waitFor(
      () => !healthy(loser.kubelet, discoveryResourceName('race')).includes(`${name}-0`),
      10_000,
      'hidden from the discovery resource too',
    );
  });

  it('rejoins a Device the controller released for node loss, once its Node is Ready again', async () => {
    const nodeName = `rejoin-${uniqueSuffix()}`;
    await setNodeReady(nodeName, true);
    cleanups.push(async () => {
      await api().core.deleteNode({ name: nodeName });
    });
    await createDiscovery('rejoin', { handler: 'debug-echo', details: { descriptions: ['cam-r'], shared: true } });
    await startNode(nodeName);
    // Listed with its status entry too (written right after the Device), so the watch below
    // starts after every write of the join.
    const listed = await waitFor(
      async () =>
        (await devices('rejoin')).find(
          (d) => (d.spec.nodes ?? []).includes(nodeName) && (d.status?.nodeStates ?? []).some((s) => s.node === nodeName),
        ),
      { description: 'the Device listing the node, with its status entry' },
    );
    // The node drops out (NotReady) and the controller releases it, as its node-loss cleanup
    // does: the agent's own entry removed under the agent's field manager.
    await setNodeReady(nodeName, false);
    const watch = new ResilientWatch(loadKubeConfig(), `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/devices`);
    await watch.start(listed.metadata.resourceVersion);
    cleanups.push(() => Promise.resolve(watch.stop()));
    const current = (await devices('rejoin')).find((d) => d.metadata.name === listed.metadata.name)!;
    for (const release of planNodeRelease(current, nodeName)) await applyAs(release.fieldManager, release.body, release.subresource);
    await watch.next((e) => e.type === 'MODIFIED' && !((e.object as unknown as Device).spec.nodes ?? []).includes(nodeName), {
      description: 'the release',
    });
    const released = watch.events.findIndex((e) => !((e.object as unknown as Device).spec.nodes ?? []).includes(nodeName));
    // Ready again: the agent writes its entry anew (while NotReady it left the release alone).
    const beforeReady = watch.events.length;
    await setNodeReady(nodeName, true);
    const back = await watch.next((e) => e.type === 'MODIFIED' && ((e.object as unknown as Device).spec.nodes ?? []).includes(nodeName), {
      description: 'the node back in the Device',
    });
    expect(watch.events.indexOf(back)).toBeGreaterThan(released);
    expect(
      watch.events.slice(released, beforeReady).filter((e) => ((e.object as unknown as Device).spec.nodes ?? []).includes(nodeName)),
    ).toEqual([]);
  });

  it('kubelet restart: every plugin re-registers', async () => {
    await createDiscovery('restart-kubelet', { handler: 'debug-echo', details: { descriptions: ['x', 'y'] } });
    const n = await startNode('kr-node');
    const resource = discoveryResourceName('restart-kubelet');
    await n.kubelet.waitFor(() => healthy(n.kubelet, resource).length === 2, 10_000, 'initial');
    await n.kubelet.restart();
    await n.kubelet.waitFor(
      () => healthy(n.kubelet, resource).length === 2 && n.kubelet.resourceNames().length === 3,
      1_000,
      're-registration within 1 s',
    );
  });

  it('frees the slot of a deleted pod and adopts a slot the kubelet holds, on the Device', async () => {
    await createDiscovery('ledger', { handler: 'debug-echo', details: { descriptions: ['d'] }, capacity: 2 });
    const n = await startNode('ledger-node');
    const name = deviceName({ namespace: ns.name, discovery: 'ledger', deviceId: 'd', node: 'ledger-node' });
    const resource = deviceResourceName(name);
    await n.kubelet.waitFor(() => healthy(n.kubelet, resource).length === 2, 10_000, 'slots');
    await n.kubelet.allocateIds({ namespace: 'x', name: 'p1' }, resource, [`${name}-0`]);
    await waitFor(async () => (await devices('ledger'))[0]?.spec.slots?.['0'] === 'ledger-node', { description: 'slot 0 claimed' });
    n.kubelet.removePod('x', 'p1');
    await n.agent.reconcileLedger();
    await waitFor(async () => (await devices('ledger'))[0]?.spec.slots === undefined, { description: 'slot 0 freed on the Device' });
    n.kubelet.recordAllocation({ namespace: 'x', name: 'p2' }, resource, [`${name}-1`]);
    await n.agent.reconcileLedger();
    await waitFor(async () => (await devices('ledger'))[0]?.spec.slots?.['1'] === 'ledger-node', { description: 'slot 1 adopted' });
    await n.kubelet.waitFor(() => !healthy(n.kubelet, discoveryResourceName('ledger')).includes(`${name}-1`), 5_000, 'adopted slot hidden');
  });

  it('a details change rediscovers: new devices appear, dropped ones leave after the grace period', async () => {
    await createDiscovery('respec', { handler: 'debug-echo', details: { descriptions: ['a', 'b'] }, offlineGracePeriodSeconds: 1 });
    await startNode('respec-node');
    await waitFor(async () => (await devices('respec')).length === 2, { description: 'a and b' });
    await patchDiscovery('respec', { details: { descriptions: ['a', 'c'] } });
    const ids = await waitFor(
      async () => {
        const ids = (await devices('respec')).map((d) => d.spec.deviceId).sort();
        return ids.join() === 'a,c' ? ids : undefined;
      },
      { description: 'a and c only', timeoutMs: 15_000 },
    );
    expect(ids).toEqual(['a', 'c']);
  });

  it('capacity change resizes the live plugins and the Device', async () => {
    await createDiscovery('resize', { handler: 'debug-echo', details: { descriptions: ['r'] }, capacity: 1 });
    const n = await startNode('resize-node');
    const resource = deviceResourceName(deviceName({ namespace: ns.name, discovery: 'resize', deviceId: 'r', node: 'resize-node' }));
    await n.kubelet.waitFor(() => healthy(n.kubelet, resource).length === 1, 10_000, 'one slot');
    await patchDiscovery('resize', { capacity: 3 });
    await n.kubelet.waitFor(() => healthy(n.kubelet, resource).length === 3, 10_000, 'three slots');
    await waitFor(async () => (await devices('resize'))[0]?.spec.capacity === 3, { description: 'Device capacity 3' });
  });

  it('a rotated Secret restarts the handler with the new value', async () => {
    await api().core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'token' }, stringData: { value: 'v1' } } });
    await createDiscovery('secret-echo', {
      handler: 'property-echo',
      properties: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'token', key: 'value' } } }],
    });
    await startNode('secret-node');
    await waitFor(async () => (await devices('secret-echo'))[0]?.spec.properties?.['TOKEN'] === 'v1', { description: 'TOKEN v1' });
    await api().core.replaceNamespacedSecret({
      name: 'token',
      namespace: ns.name,
      body: { metadata: { name: 'token' }, stringData: { value: 'v2' } },
    });
    await waitFor(async () => (await devices('secret-echo'))[0]?.spec.properties?.['TOKEN'] === 'v2', { description: 'TOKEN v2' });
  });

  it('an external handler (SDK, Akri v0 protocol) registering later unblocks its discovery; its devices become Devices', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tx-'));
    const registry = new ExternalHandlerRegistry({ socketPath: join(dir, 'agent.sock'), log });
    await registry.start();
    cleanups.push(async () => {
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    });
    await createDiscovery('remote', { handler: 'thermo', details: { sensors: ['t1', 't2'] } });
    const n = await startNode('ext-node', { externalHandler: (name) => registry.handler(name) });
    registry.on('registered', () => void n.agent.rediscover());
    expect(await devices('remote')).toEqual([]);
    const served = await serveDiscoveryHandler<{ sensors: string[] }>({
      name: 'thermo',
      shared: false,
      parseDetails: (raw) => raw as { sensors: string[] },
      discover: (details, _properties, emit) => emit(details.sensors.map((id) => ({ id, properties: { SENSOR: id } }))),
      agentSocket: join(dir, 'agent.sock'),
      listen: { socket: join(dir, 'thermo.sock') },
    });
    cleanups.push(() => served.stop());
    const found = await waitFor(
      async () => {
        const list = await devices('remote');
        return list.length === 2 ? list : undefined;
      },
      { description: 'two Devices from the external handler' },
    );
    expect(found.map((d) => d.spec.properties?.['SENSOR']).sort()).toEqual(['t1', 't2']);
    await n.kubelet.waitFor(
      () => healthy(n.kubelet, discoveryResourceName('remote')).length === 2,
      10_000,
      'external devices at the kubelet',
    );
  });

  it('bad details surface as a Warning Event naming the field; fixing them starts discovery', async () => {
    await createDiscovery('bad-details', { handler: 'debug-echo', details: { descriptions: ['ok', ''] } });
    await startNode('events-node');
    const event = await waitFor(
      async () =>
        (await api().core.listNamespacedEvent({ namespace: ns.name })).items.find(
          (e) => e.involvedObject.name === 'bad-details' && e.reason === 'InvalidDetails',
        ),
      { description: 'InvalidDetails event' },
    );
    expect(event.type).toBe('Warning');
    expect(event.message).toContain('details.descriptions[1]');
    expect(event.message).toContain('events-node');
    expect(await devices('bad-details')).toEqual([]);
    await patchDiscovery('bad-details', { details: { descriptions: ['ok'] } });
    await waitFor(async () => (await devices('bad-details')).length === 1, { description: 'device after the fix' });
  });

  it('offline → Unhealthy and status Offline at once; flapping inside the grace period costs bounded writes; gone after the grace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tf-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'availability');
    await createDiscovery('flappy', {
      handler: 'debug-echo',
      details: { descriptions: ['f'], availabilityFile: file },
      offlineGracePeriodSeconds: 3,
    });
    const n = await startNode('flap-node');
    const name = deviceName({ namespace: ns.name, discovery: 'flappy', deviceId: 'f', node: 'flap-node' });
    const resource = deviceResourceName(name);
    await n.kubelet.waitFor(() => healthy(n.kubelet, resource).length === 1, 10_000, 'online');
    await n.agent.settled();
    const uid = (await devices('flappy'))[0]!.metadata.uid;
    const writesBefore = { ...n.agent.api.writes };
    for (let i = 0; i < 5; i++) {
      await writeFile(file, 'OFFLINE');
      await n.kubelet.waitFor(() => healthy(n.kubelet, resource).length === 0, 5_000, 'Unhealthy');
      await n.agent.settled();
      await writeFile(file, 'ONLINE');
      await n.kubelet.waitFor(() => healthy(n.kubelet, resource).length === 1, 5_000, 'Healthy');
      await n.agent.settled();
    }
    const writes = n.agent.api.writes.apply + n.agent.api.writes.status - writesBefore.apply - writesBefore.status;
    expect(writes).toBeLessThanOrEqual(10); // one status write per transition, nothing else
    expect((await devices('flappy'))[0]!.metadata.uid).toBe(uid);
    await writeFile(file, 'OFFLINE');
    await waitFor(async () => (await devices('flappy'))[0]?.status?.nodeStates?.[0]?.state === 'Offline', {
      description: 'status Offline',
    });
    await waitFor(async () => (await devices('flappy')).length === 0, {
      description: 'Device deleted after the grace period',
      timeoutMs: 15_000,
    });
    await n.kubelet.waitFor(() => n.kubelet.resource(resource)?.connected === false, 5_000, 'plugin removed');
  });
});

// ---- restart safety, through the real CLI and SIGKILL -----------------------------------

function spawnAgent(node: string, pluginDir: string, podResourcesSocket: string, port: number): ChildProcess {
  return spawnAgentProcess({ node, namespace: ns.name, pluginDir, podResourcesSocket, port });
}

describe('agent restart (tether agent, SIGKILL)', () => {
  it('deletes and recreates nothing, and writes nothing, when killed and restarted', async () => {
    await createDiscovery('survivor', {
      handler: 'debug-echo',
      details: { descriptions: ['s1', 's2', 's3'] },
      offlineGracePeriodSeconds: 1,
    });
    const dir = await mkdtemp(join(tmpdir(), 'tr-'));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
    await kubelet.start();
    const port = await freePort();
    let child = spawnAgent('kill-node', join(dir, 'dp'), kubelet.podResourcesSocket!, port);
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await kubelet.stop();
      await rm(dir, { recursive: true, force: true });
    });
    // With their status entries too (written right after each Device): every write of the start is done.
    const before = await waitFor(
      async () => {
        const list = await devices('survivor');
        const complete = list.length === 3 && list.every((d) => (d.status?.nodeStates ?? []).some((n) => n.node === 'kill-node'));
        return complete ? list : undefined;
      },
      { description: 'three Devices with their status', timeoutMs: 30_000 },
    );
    await kubelet.waitFor(() => healthy(kubelet, discoveryResourceName('survivor')).length === 3, 10_000, 'plugins');
    const watch = new ResilientWatch(api().kc, `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/devices`);
    const rv = (
      (await api().custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns.name, plural: 'devices' })) as {
        metadata: { resourceVersion: string };
      }
    ).metadata.resourceVersion;
    await watch.start(rv);
    cleanups.push(() => Promise.resolve(watch.stop()));

    child.kill('SIGKILL');
    await once(child, 'exit');
    const registrations = kubelet.registrations;
    child = spawnAgent('kill-node', join(dir, 'dp'), kubelet.podResourcesSocket!, port);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, {
      description: 'restarted agent ready',
      timeoutMs: 30_000,
    });
    await kubelet.waitFor(
      () => kubelet.registrations >= registrations + 4 && healthy(kubelet, discoveryResourceName('survivor')).length === 3,
      10_000,
      're-registered plugins',
    );
    // Past the startup timeout and the grace period: anything that would churn has churned.
    const metrics = await waitFor(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return /tether_devices\{discovery="[^"]+\/survivor",state="online"\} 3/.test(text) ? text : undefined;
      },
      { description: 'agent reports 3 online devices' },
    );
    expect(metrics).not.toMatch(/tether_apiserver_writes_total\{kind="[a-z]+"\} [1-9]/);
    const after = await devices('survivor');
    expect(after.map((d) => [d.metadata.uid, d.metadata.resourceVersion]).sort()).toEqual(
      before.map((d) => [d.metadata.uid, d.metadata.resourceVersion]).sort(),
    );
    expect(watch.events.filter((e) => e.type === 'DELETED' || e.type === 'ADDED')).toEqual([]);
  });
});
