/**
 * Moving from Akri (docs/migrating-from-akri.md), on the real control plane: the same devices
 * found three ways must give the same Devices and the same brokers —
 *   - native: `handler: debug-echo` with structured details;
 *   - Akri's handler image: an SDK handler registering as `debugEcho` (Akri's name) over the v0
 *     protocol, chosen with `handlerSource: External`, given Akri's discoveryDetails YAML text;
 *   - Akri's Configuration converted by the real `tether import-akri` CLI and applied as is: its
 *     `debugEcho` resolves to the built-in, which warns that it shadows the registered one.
 * A broker container gets the env var Akri's debugEcho broker reads (DEBUG_ECHO_DESCRIPTION).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExternalHandlerRegistry } from '../../agent/external/registry.ts';
import { deviceName, deviceResourceName } from '../../api/names.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { DEFAULT_CONFIG } from '../../controller/runtime/config.ts';
import { startController, type Controller } from '../../controller/main.ts';
import { DetailsError } from '../../discovery-handlers/contract.ts';
import { builtinHandlers } from '../../discovery-handlers/registry.ts';
import { serveDiscoveryHandler, type ServedDiscoveryHandler } from '../../discovery-handlers/sdk/index.ts';
import { KubeClient } from '../../kube/client.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { FakeKubelet, FakeNodes, controllerServiceAccount } from '../support/fake-cluster.ts';
import { startAgentNode, type AgentNode } from './agent-node.ts';
import { API_VERSION, kubeconfigPath, loadKubeConfig, uniqueSuffix, useTestNamespace, waitFor } from './support.ts';

const namespace = useTestNamespace('it-akri');
const log = pino({ level: process.env['TETHER_TEST_LOG'] ?? 'silent' });
const suffix = uniqueSuffix();
const nodeName = `akri-${suffix}`;
const DESCRIPTIONS = ['foo0', 'foo1'];
const CAPACITY = 2;
const AKRI_DETAILS = 'descriptions:\n- "foo0"\n- "foo1"\n';
const broker = { pod: { spec: { containers: [{ name: 'broker', image: 'example.com/debug-echo-broker:1' }] } } };

let admin: Api;
let nodes: FakeNodes;
let kubelet: FakeKubelet;
let controller: Controller;
let cleanupRbac: () => Promise<void> = () => Promise.resolve();
let agent: AgentNode;
let registry: ExternalHandlerRegistry;
let akriHandler: ServedDiscoveryHandler<{ descriptions: string[] }>;
let dir: string;
/** What the SDK handler was asked, per Discover call (parsed details). */
const asked: unknown[] = [];

const cli = fileURLToPath(new URL('../../bin/tether.mjs', import.meta.url));

/** Akri's debugEcho handler, as its image behaves: one device per description, shared false. */
async function serveAkriDebugEcho(socketDir: string): Promise<ServedDiscoveryHandler<{ descriptions: string[] }>> {
  return serveDiscoveryHandler<{ descriptions: string[] }>({
    name: 'debugEcho',
    shared: false,
    parseDetails: (raw) => {
      asked.push(raw);
      const descriptions = (raw as { descriptions?: unknown } | null)?.descriptions;
      if (!Array.isArray(descriptions)) throw new DetailsError('descriptions', 'must be a list');
      return { descriptions: descriptions.map(String) };
    },
    discover: (details, _properties, emit) => emit(details.descriptions.map((d) => ({ id: d, properties: { DEBUG_ECHO_DESCRIPTION: d } }))),
    agentSocket: join(socketDir, 'agent-registration.sock'),
    listen: { socket: join(socketDir, 'debugEcho.sock') },
  });
}

beforeAll(async () => {
  const kc = loadKubeConfig();
  admin = new Api(new KubeClient(kc));
  nodes = new FakeNodes(admin);
  const account = await controllerServiceAccount(kc, admin, namespace.name, `tether-controller-${suffix}`);
  cleanupRbac = account.cleanup;
  kubelet = new FakeKubelet(admin.client, log, namespace.name, () => 'run');
  await kubelet.start();
  controller = await startController(
    { ...DEFAULT_CONFIG, namespace: namespace.name, httpHost: '127.0.0.1', httpPort: 0, statusBatchMs: 50 },
    { kubeConfig: account.kubeConfig, log },
  );
  await waitFor(() => controller.isReady(), { description: 'controller caches synced' });

  dir = await mkdtemp(join(tmpdir(), 'takri-'));
  registry = new ExternalHandlerRegistry({ socketPath: join(dir, 'agent-registration.sock'), log });
  await registry.start();
  agent = await startAgentNode({
    name: nodeName,
    namespace: namespace.name,
    handlers: builtinHandlers(),
    externalHandler: (name) => registry.handler(name),
    log,
  });
  registry.on('registered', () => void agent.agent.rediscover());
  akriHandler = await serveAkriDebugEcho(dir);
}, 120_000);

afterAll(async () => {
  await akriHandler?.stop();
  await agent?.stop();
  await registry?.stop();
  await controller?.stop();
  await admin?.client.request('DELETE', `/api/v1/namespaces/${namespace.name}/pods`, {
    verb: 'delete',
    resource: 'pods',
    query: { gracePeriodSeconds: 0 },
  });
  await kubelet?.stop();
  await nodes?.close();
  await cleanupRbac();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** `tether import-akri` on an Akri Configuration, as a user runs it (Node 24, the real CLI). */
async function importAkri(file: string): Promise<{ discoveries: DeviceDiscovery[]; stderr: string }> {
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, 'import-akri', file], {
    env: { ...process.env, KUBECONFIG: kubeconfigPath() },
  });
  const discoveries = parseAllDocuments(stdout).map((d) => d.toJS() as DeviceDiscovery);
  return { discoveries, stderr };
}

async function createDiscovery(body: DeviceDiscovery): Promise<void> {
  await admin.create(RESOURCES.deviceDiscoveries, namespace.name, { ...body, metadata: { ...body.metadata, namespace: namespace.name } });
  // A broker can only be placed where the node offers the device's resource.
  const allocatable = Object.fromEntries(
    DESCRIPTIONS.map((id) => [
      deviceResourceName(deviceName({ namespace: namespace.name, discovery: body.metadata.name!, deviceId: id, node: nodeName })),
      '2',
    ]),
  );
  await nodes.add(nodeName, { ...(await currentAllocatable()), ...allocatable });
}

async function currentAllocatable(): Promise<Record<string, string>> {
  try {
    const node = await admin.get<{ metadata?: object; status?: { allocatable?: Record<string, string> } }>(
      RESOURCES.nodes,
      undefined,
      nodeName,
    );
    return Object.fromEntries(Object.entries(node.status?.allocatable ?? {}).filter(([k]) => k.startsWith('tether.dev/')));
  } catch {
    return {};
  }
}

/** What must be the same whichever way a discovery was written: its Devices and brokers, without names. */
interface Observed {
  readonly devices: { deviceId: string; properties: Record<string, string>; capacity: number; nodes: string[] }[];
  readonly brokers: {
    device: string;
    node: string | undefined;
    image: string | undefined;
    phase: string | undefined;
    resources: string[];
  }[];
}

async function observe(discovery: string): Promise<Observed | undefined> {
  const all = await admin.list<Device>(RESOURCES.devices, { namespace: namespace.name });
  const devices = all.items.filter((d) => d.spec.discovery === discovery).sort((a, b) => (a.spec.deviceId < b.spec.deviceId ? -1 : 1));
  if (devices.length !== DESCRIPTIONS.length) return undefined;
  const pods = await admin.list<V1Pod>(RESOURCES.pods, { namespace: namespace.name, labelSelector: `tether.dev/discovery=${discovery}` });
  const running = pods.items.filter((p) => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp == null);
  if (running.length !== DESCRIPTIONS.length) return undefined;
  const byName = new Map(devices.map((d) => [d.metadata.name, d.spec.deviceId]));
  return {
    devices: devices.map((d) => ({
      deviceId: d.spec.deviceId,
      properties: d.spec.properties ?? {},
      capacity: d.spec.capacity,
      nodes: [...(d.spec.nodes ?? [])].sort(),
    })),
    brokers: running
      .map((p) => ({
        device: byName.get(p.metadata?.labels?.['tether.dev/device'] ?? '') ?? '?',
        node: p.spec?.nodeName,
        image: p.spec?.containers[0]?.image,
        phase: p.status?.phase,
        // The device's own resource, by shape: tether.dev/<discovery>-<hash>.
        resources: Object.keys(p.spec?.containers[0]?.resources?.limits ?? {}).map((r) =>
          r.replace(`tether.dev/${discovery}-`, 'tether.dev/<discovery>-').replace(/-[0-9a-f]{16}$/, '-<hash>'),
        ),
      }))
      .sort((a, b) => (a.device < b.device ? -1 : 1)),
  };
}

async function observed(discovery: string): Promise<Observed> {
  try {
    return await waitFor(() => observe(discovery), { description: `${discovery}: two Devices and two running brokers`, timeoutMs: 60_000 });
  } catch (error) {
    // Say what the cluster holds: which of Devices, Pods, scheduling is missing.
    const devices = await admin.list<Device>(RESOURCES.devices, { namespace: namespace.name });
    const pods = await admin.list<V1Pod>(RESOURCES.pods, { namespace: namespace.name, labelSelector: `tether.dev/discovery=${discovery}` });
    const summary = {
      devices: devices.items.filter((d) => d.spec.discovery === discovery).map((d) => [d.metadata.name, d.spec.nodes]),
      pods: pods.items.map((p) => [p.metadata?.name, p.spec?.nodeName, p.status?.phase, p.status?.conditions?.map((c) => c.message)]),
    };
    throw new Error(`${(error as Error).message}\n${JSON.stringify(summary)}`, { cause: error });
  }
}

describe('an Akri user moving to Tether', () => {
  let native: Observed;

  it('native: handler debug-echo with structured details', async () => {
    await createDiscovery({
      apiVersion: API_VERSION,
      kind: 'DeviceDiscovery',
      metadata: { name: 'native' },
      spec: { handler: 'debug-echo', details: { descriptions: DESCRIPTIONS }, capacity: CAPACITY, broker },
    });
    native = await observed('native');
    expect(native.devices.map((d) => d.deviceId)).toEqual(DESCRIPTIONS);
    expect(native.devices[0]).toEqual({
      deviceId: 'foo0',
      properties: { DEBUG_ECHO_DESCRIPTION: 'foo0' },
      capacity: CAPACITY,
      nodes: [nodeName],
    });
  });

  it("Akri's handler image: registered as debugEcho, chosen with handlerSource External, given Akri's YAML text", async () => {
    await createDiscovery({
      apiVersion: API_VERSION,
      kind: 'DeviceDiscovery',
      metadata: { name: 'sdk' },
      spec: { handler: 'debugEcho', handlerSource: 'External', details: AKRI_DETAILS, capacity: CAPACITY, broker },
    });
    expect(await observed('sdk')).toEqual(native);
    // The handler got Akri's discoveryDetails (the SDK parses the YAML the agent sent as is).
    expect(asked).toContainEqual({ descriptions: DESCRIPTIONS });
  });

  it('a converted Akri Configuration: same Devices and brokers; the built-in runs it and says it shadows the registered handler', async () => {
    const fixture = fileURLToPath(new URL('../fixtures/akri/debug-echo.yaml', import.meta.url));
    const { discoveries } = await importAkri(fixture);
    expect(discoveries).toHaveLength(1);
    const [converted] = discoveries;
    expect(converted?.spec.handler).toBe('debugEcho');
    expect(typeof converted?.spec.details).toBe('string');
    const body: DeviceDiscovery = {
      ...converted!,
      metadata: { name: 'converted' },
      // The fixture is Akri's chart default (capacity and broker image differ per install): compare like with like.
      spec: { ...converted!.spec, capacity: CAPACITY, broker },
    };
    await createDiscovery(body);
    expect(await observed('converted')).toEqual(native);
    const events = await waitFor(
      async () => {
        const list = await admin.list<{ metadata?: object; reason?: string; note?: string; regarding?: { name?: string } }>(
          RESOURCES.events,
          {
            namespace: namespace.name,
          },
        );
        const found = list.items.filter((e) => e.reason === 'ExternalHandlerShadowed');
        return found.length > 0 && found;
      },
      { description: 'an ExternalHandlerShadowed Warning' },
    );
    expect(events.map((e) => e.regarding?.name)).toEqual(['converted']);
    expect(events[0]?.note).toMatch(/handlerSource: External/);
  });

  it("a broker container gets the env var Akri's debugEcho broker reads", async () => {
    const resource = deviceResourceName(deviceName({ namespace: namespace.name, discovery: 'sdk', deviceId: 'foo1', node: nodeName }));
    const response = await agent.kubelet.allocate({ namespace: namespace.name, name: 'consumer' }, resource, 1);
    expect(response.envs).toMatchObject({ DEBUG_ECHO_DESCRIPTION: 'foo1' });
  });
});
