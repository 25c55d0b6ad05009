/**
 * Fault 1: kube-apiserver AND etcd down (the fault suite's own control plane) for
 * TETHER_FAULT_OUTAGE_S (default 60 s, as the issue asks) while devices change on the node:
 *   steady — online throughout;
 *   back   — goes offline, stays away past its grace period (its plugin is withdrawn), comes back;
 *   gone   — goes offline and stays away;
 *   fresh  — offline before the outage, appears during it.
 * Asserted: discovery goes on without the apiserver (the kubelet sees every change), and once
 * the apiserver is back the cluster ends exactly as expected — Devices of steady, back and
 * fresh Online with one broker each, none for gone — and stays so. Printed: time from the
 * apiserver's return to that state.
 */
import type { V1Node } from '@kubernetes/client-node';
import { RESOURCES } from '../../kube/resources.ts';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deviceResourceName } from '../../api/names.ts';
import type { Controller } from '../../controller/main.ts';
import { builtinHandlers } from '../../discovery-handlers/registry.ts';
import type { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { startAgentNode, type AgentNode } from '../integration/agent-node.ts';
import { uniqueSuffix, useTestNamespace } from '../integration/support.ts';
import { restartFaultControllers, startEtcdAndApiserver, stopApiserverAndEtcd } from './control-plane.ts';
import {
  cacheDir,
  closeScene,
  createEchoDiscovery,
  echoDeviceName,
  figure,
  listDevices,
  liveBrokers,
  nodeState,
  openScene,
  outageSeconds,
  seconds,
  setOnline,
  startTestController,
  waitFor,
  type Scene,
} from './support.ts';

const ns = useTestNamespace('fault-outage');
const log = pino({ level: process.env.TETHER_TEST_LOG ?? 'silent' });
const node = `fo-${uniqueSuffix()}`;
let scene: Scene;
let agentNode: AgentNode;
let controller: Controller;

beforeAll(async () => {
  scene = await openScene(ns.name);
  await scene.nodes.add(node);
  controller = await startTestController(scene, log);
  agentNode = await startAgentNode({ name: node, namespace: ns.name, handlers: builtinHandlers(), log });
  scene.cleanups.push(() => agentNode.stop());
});

afterAll(async () => {
  await closeScene(scene);
});

const healthy = (kubelet: MockKubelet, resource: string): number =>
  (kubelet.resource(resource)?.devices ?? []).filter((d) => d.health === 'Healthy').length;
const served = (kubelet: MockKubelet, resource: string): boolean => kubelet.resource(resource)?.connected === true;

interface Expected {
  readonly online: readonly string[];
  readonly absent: readonly string[];
}

/** When the Devices, and the brokers, were first seen as expected (ms since epoch). */
const reached: { devices?: number; brokers?: number } = {};

/** True when the Devices and brokers are exactly the expected ones (notes when each part was). */
async function converged(expected: Expected): Promise<boolean> {
  const [devices, brokers] = await Promise.all([listDevices(scene), liveBrokers(scene)]);
  const devicesOk =
    devices.length === expected.online.length &&
    expected.online.every((name) => devices.some((d) => d.metadata.name === name && nodeState(d, node) === 'Online'));
  const brokersOk = brokers.size === expected.online.length && expected.online.every((name) => (brokers.get(name) ?? []).length === 1);
  if (devicesOk) reached.devices ??= Date.now();
  if (brokersOk) reached.brokers ??= Date.now();
  return devicesOk && brokersOk;
}

/** What the cluster holds now (Devices with this node's state, brokers), for a timeout's message. */
async function clusterView(): Promise<string> {
  const [devices, brokers] = await Promise.all([listDevices(scene), liveBrokers(scene)]);
  const view = devices.map(
    (d) =>
      `${d.metadata.name}: ${nodeState(d, node) ?? 'no state'}, nodes ${JSON.stringify(d.spec.nodes ?? [])}, ${(brokers.get(d.metadata.name ?? '') ?? []).length} broker(s)`,
  );
  const nodeReady = (await scene.admin.get<V1Node>(RESOURCES.nodes, undefined, node)).status?.conditions?.find((c) => c.type === 'Ready');
  return `${view.join('; ') || 'no Devices'}; node Ready=${nodeReady?.status ?? '?'} (${nodeReady?.reason ?? ''})`;
}

/** Polls every 100 ms (for a precise figure) until `probe` holds; throws after `timeoutMs`. */
async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; now: ${await clusterView().catch(String)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

it(
  'apiserver + etcd down while devices change: discovery goes on, and the cluster converges to the expected state after',
  { timeout: 240_000 },
  async () => {
    const kubelet = agentNode.kubelet;
    const name = (discovery: string): string => echoDeviceName(ns.name, discovery, 'd', node);
    const files = {
      steady: await createEchoDiscovery(scene, 'steady', { descriptions: ['d'] }),
      back: await createEchoDiscovery(scene, 'back', { descriptions: ['d'] }),
      gone: await createEchoDiscovery(scene, 'gone', { descriptions: ['d'] }),
      fresh: await createEchoDiscovery(scene, 'fresh', { descriptions: ['d'], online: false }),
    };
    const before: Expected = { online: [name('steady'), name('back'), name('gone')], absent: [name('fresh')] };
    await until(() => converged(before), 60_000, 'the initial Devices and brokers');
    await agentNode.agent.settled();
    await waitFor(() => controller.pending() === 0, { description: 'controller idle' });
    const uidBefore = (await listDevices(scene)).find((d) => d.metadata.name === name('back'))?.metadata.uid;

    const outageMs = outageSeconds() * 1000;
    const down = Date.now();
    await stopApiserverAndEtcd(cacheDir());
    // Discovery goes on with the apiserver away: every change reaches the kubelet.
    const resource = (discovery: string): string => deviceResourceName(name(discovery));
    await Promise.all([setOnline(files.back, false), setOnline(files.gone, false), setOnline(files.fresh, true)]);
    await kubelet.waitFor(
      () => healthy(kubelet, resource('back')) === 0 && healthy(kubelet, resource('gone')) === 0,
      10_000,
      'back and gone Unhealthy',
    );
    await kubelet.waitFor(() => healthy(kubelet, resource('fresh')) === 1, 10_000, 'fresh served and Healthy');
    // Past the offline grace period: the agent withdraws the plugins of back and gone.
    await kubelet.waitFor(
      () => !served(kubelet, resource('back')) && !served(kubelet, resource('gone')),
      15_000,
      'back and gone withdrawn after the grace period',
    );
    await setOnline(files.back, true);
    await kubelet.waitFor(() => healthy(kubelet, resource('back')) === 1, 10_000, 'back served again');
    expect(healthy(kubelet, resource('steady'))).toBe(1);
    const changedWithin = Date.now() - down;
    // The outage lasts its set length (a fault's duration, not a synchronisation).
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, outageMs - changedWithin)));

    const restartStarted = Date.now();
    await startEtcdAndApiserver(cacheDir());
    const returned = Date.now();
    delete reached.devices;
    delete reached.brokers;
    const after: Expected = { online: [name('steady'), name('back'), name('fresh')], absent: [name('gone')] };
    await until(() => converged(after), 120_000, 'the Devices and brokers after the outage');
    const convergedAt = Date.now();
    // And it stays so once everything has settled.
    await agentNode.agent.settled();
    await waitFor(() => controller.pending() === 0, { description: 'controller idle' });
    expect(await converged(after)).toBe(true);
    const devices = await listDevices(scene);
    const lost = after.online.filter((n) => !devices.some((d) => d.metadata.name === n && nodeState(d, node) === 'Online')).length;
    expect(lost).toBe(0);
    const backUid = (d: string): string | undefined => devices.find((x) => x.metadata.name === d)?.metadata.uid;
    figure(
      `apiserver+etcd down ${seconds(restartStarted - down)}, unreachable ${seconds(returned - down)} with the restart (changes seen by the kubelet within ${seconds(changedWithin)} of the stop) ` +
        `→ converged ${seconds(convergedAt - returned)} after the apiserver returned (Devices ${seconds((reached.devices ?? convergedAt) - returned)}, brokers ${seconds((reached.brokers ?? convergedAt) - returned)}); ${lost} transitions lost (back: offline past grace → online ⇒ Online + 1 broker; gone ⇒ deleted, no broker; fresh ⇒ Online + 1 broker; back's Device ${backUid(name('back')) === uidBefore ? 'kept' : 'recreated'})`,
    );
    await restartFaultControllers(cacheDir());
  },
);
