/**
 * Fault 3: slot accounting when the kubelet or the agent goes away in the middle of Allocates.
 *   - kubelet restart during a burst of Allocates (the agent in-process, its periodic ledger
 *     reconcile on): Allocates cut by the restart may have claimed a slot the kubelet never
 *     recorded;
 *   - the agent SIGKILLed mid-burst (`tether agent`, a child process) and started again.
 * Asserted: afterwards 0 leaked slots — each Device's spec.slots held by this node is exactly
 * the set of slots the kubelet's PodResources says pods hold, and every cut pod got its slot
 * when admitted again (retried while refused). Printed: Allocates that
 * succeeded/failed, the most slots seen leaked, and the time until none was.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { deviceResourceName, parseSlotId, slotId } from '../../api/names.ts';
import { builtinHandlers } from '../../discovery-handlers/registry.ts';
import { freePort } from '../cluster/processes.ts';
import { spawnAgentProcess, startAgentNode } from '../integration/agent-node.ts';
import { uniqueSuffix, useTestNamespace } from '../integration/support.ts';
import {
  closeScene,
  createEchoDiscovery,
  echoDeviceName,
  figure,
  listDevices,
  openScene,
  seconds,
  waitFor,
  type Scene,
} from './support.ts';

const ns = useTestNamespace('fault-slots');
const log = pino({ level: process.env.TETHER_TEST_LOG ?? 'silent' });
const suffix = uniqueSuffix();
const DEVICES = ['a', 'b', 'c', 'd'];
const CAPACITY = 8;
const RECONCILE_MS = 1_000;
const SLOT_GRACE_MS = 2_000;
let scene: Scene;

beforeAll(async () => {
  scene = await openScene(ns.name);
});

afterAll(async () => {
  await closeScene(scene);
});

/** Slots per Device name as the kubelet's PodResources reports them held. */
function heldByKubelet(kubelet: MockKubelet): Map<string, Set<number>> {
  const held = new Map<string, Set<number>>();
  const ids = kubelet
    .listPods()
    .flatMap((pod) => pod.containers.flatMap((container) => container.devices.flatMap((device) => device.device_ids)));
  for (const id of ids) {
    const ref = parseSlotId(id);
    if (ref !== undefined) held.set(ref.deviceName, (held.get(ref.deviceName) ?? new Set()).add(ref.index));
  }
  return held;
}

/** Slots per Device name that `node` holds in spec.slots. */
async function heldOnDevices(node: string): Promise<Map<string, Set<number>>> {
  const held = new Map<string, Set<number>>();
  for (const device of await listDevices(scene)) {
    const name = device.metadata.name ?? '';
    for (const [slot, holder] of Object.entries(device.spec.slots ?? {})) {
      if (holder === node) held.set(name, (held.get(name) ?? new Set()).add(Number(slot)));
    }
  }
  return held;
}

/** Slots on the Devices that no pod holds (leaked) and pods' slots missing on the Devices. */
async function slotDiff(kubelet: MockKubelet, node: string): Promise<{ leaked: number; missing: number }> {
  const [kube, devices] = [heldByKubelet(kubelet), await heldOnDevices(node)];
  let leaked = 0;
  let missing = 0;
  for (const [name, slots] of devices) for (const s of slots) if (!kube.get(name)?.has(s)) leaked++;
  for (const [name, slots] of kube) for (const s of slots) if (!devices.get(name)?.has(s)) missing++;
  return { leaked, missing };
}

/** Waits until the diff is zero both ways; returns when. */
async function untilNoLeak(kubelet: MockKubelet, node: string, timeoutMs: number): Promise<{ at: number }> {
  await waitFor(
    async () => {
      const diff = await slotDiff(kubelet, node);
      return diff.leaked === 0 && diff.missing === 0;
    },
    { timeoutMs, description: 'Device slots equal to the slots PodResources reports held' },
  );
  return { at: Date.now() };
}

/** The restarted agent's /readyz answers 200 (its Devices read back, its slots mirrored). */
async function agentReady(port: number): Promise<void> {
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, {
    timeoutMs: 30_000,
    description: 'restarted agent ready',
  });
}

/**
 * Every (device, slot) as one Allocate of its own pod, issued by LANES concurrent admitters
 * (as the kubelet admits pods); `midway` resolves once a quarter of them completed, so the
 * fault lands in the middle of the burst. Counts outcomes.
 */
function burst(
  kubelet: MockKubelet,
  names: readonly string[],
  tag: string,
): { all: Promise<{ ok: number; failed: number; cut: { name: string; slot: number }[] }>; midway: Promise<void> } {
  const LANES = 4;
  const work = names.flatMap((name) => Array.from({ length: CAPACITY }, (_, slot) => ({ name, slot })));
  let done = 0;
  let markMidway: () => void = () => undefined;
  const midway = new Promise<void>((resolve) => (markMidway = resolve));
  const outcome = { ok: 0, failed: 0, cut: [] as { name: string; slot: number }[] };
  const lane = async (index: number): Promise<void> => {
    for (let i = index; i < work.length; i += LANES) {
      const { name, slot } = work[i]!;
      try {
        await kubelet.allocateIds({ namespace: 'consumers', name: `${tag}-${name.slice(-6)}-${slot}` }, deviceResourceName(name), [
          slotId(name, slot),
        ]);
        outcome.ok++;
      } catch {
        outcome.failed++;
        outcome.cut.push({ name, slot });
      }
      if (++done >= work.length / 4) markMidway();
    }
  };
  const all = Promise.all(Array.from({ length: LANES }, (_, i) => lane(i))).then(() => {
    markMidway();
    return outcome;
  });
  return { all, midway };
}

/**
 * The kubelet admits the cut pods again once the plugins are back, retrying refused ones (a
 * slot claimed by an Allocate the kubelet never saw is refused until the ledger frees it).
 * Returns how many were refused at the first try.
 */
async function readmit(kubelet: MockKubelet, tag: string, cut: readonly { name: string; slot: number }[]): Promise<number> {
  let pending = [...cut];
  let refusedFirst: number | undefined;
  await waitFor(
    async () => {
      const left: typeof pending = [];
      for (const item of pending) {
        await kubelet
          .allocateIds({ namespace: 'consumers', name: `${tag}-${item.name.slice(-6)}-${item.slot}` }, deviceResourceName(item.name), [
            slotId(item.name, item.slot),
          ])
          .catch(() => left.push(item));
      }
      refusedFirst ??= left.length;
      pending = left;
      return pending.length === 0;
    },
    { timeoutMs: 30_000, description: 'every cut pod admitted again' },
  );
  return refusedFirst ?? 0;
}

const allHealthy = (kubelet: MockKubelet, names: readonly string[]): boolean =>
  names.every(
    (name) =>
      (kubelet.resource(deviceResourceName(name))?.devices ?? []).filter((d) => d.health === 'Healthy').length === CAPACITY &&
      kubelet.resource(deviceResourceName(name))?.connected === true,
  );

it('kubelet restart during a burst of Allocates: afterwards 0 leaked slots', async () => {
  const node = `fs-k-${suffix}`;
  await scene.nodes.add(node);
  const agentNode = await startAgentNode({
    name: node,
    namespace: ns.name,
    handlers: builtinHandlers(),
    log,
    reconcileIntervalMs: RECONCILE_MS,
    slotGraceMs: SLOT_GRACE_MS,
  });
  scene.cleanups.push(() => agentNode.stop());
  const { kubelet, agent } = agentNode;
  await createEchoDiscovery(scene, 'kslots', { descriptions: DEVICES, capacity: CAPACITY, broker: false });
  const names = DEVICES.map((id) => echoDeviceName(ns.name, 'kslots', id, node));
  await kubelet.waitFor(() => allHealthy(kubelet, names), 30_000, 'every slot served');

  const { all, midway } = burst(kubelet, names, 'k');
  await midway;
  const restartAt = Date.now();
  await kubelet.restart();
  const outcome = await all;
  await kubelet.waitFor(
    () => names.every((name) => kubelet.resource(deviceResourceName(name))?.connected === true),
    15_000,
    'plugins re-registered',
  );
  const leakedAtReturn = (await slotDiff(kubelet, node)).leaked;
  const refused = await readmit(kubelet, 'k', outcome.cut);
  const { at } = await untilNoLeak(kubelet, node, 30_000);
  await agent.settled();
  expect(await slotDiff(kubelet, node)).toEqual({ leaked: 0, missing: 0 });
  expect([...heldByKubelet(kubelet).values()].reduce((n, slots) => n + slots.size, 0)).toBe(DEVICES.length * CAPACITY);
  figure(
    `kubelet restart during ${outcome.ok + outcome.failed} Allocates: ${outcome.ok} succeeded, ${outcome.failed} cut and admitted again after (${refused} refused at first: slot still claimed); ` +
      `${leakedAtReturn} slots leaked when the plugins were back; Device slots = PodResources (0 leaked) ${seconds(at - restartAt)} after the restart (ledger reconcile every ${seconds(RECONCILE_MS)}, slot grace ${seconds(SLOT_GRACE_MS)})`,
  );
});

function spawnAgent(node: string, pluginDir: string, podResourcesSocket: string, port: number): ChildProcess {
  const extraArgs = ['--reconcile-interval', String(RECONCILE_MS), '--slot-grace', String(SLOT_GRACE_MS)];
  return spawnAgentProcess({ node, namespace: ns.name, pluginDir, podResourcesSocket, port, extraArgs });
}

it('agent SIGKILLed mid-Allocate and started again: afterwards 0 leaked slots', async () => {
  const node = `fs-a-${suffix}`;
  await scene.nodes.add(node);
  const dir = await mkdtemp(join(tmpdir(), 'tfa-'));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
  const port = await freePort();
  let child = spawnAgent(node, join(dir, 'dp'), kubelet.podResourcesSocket!, port);
  scene.cleanups.push(async () => {
    child.kill('SIGKILL');
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await createEchoDiscovery(scene, 'aslots', { descriptions: DEVICES, capacity: CAPACITY, broker: false });
  const names = DEVICES.map((id) => echoDeviceName(ns.name, 'aslots', id, node));
  await kubelet.waitFor(() => allHealthy(kubelet, names), 60_000, 'every slot served');

  const { all, midway } = burst(kubelet, names, 'a');
  await midway;
  const killedAt = Date.now();
  child.kill('SIGKILL');
  await once(child, 'exit');
  const outcome = await all;
  const registrations = kubelet.registrations;
  child = spawnAgent(node, join(dir, 'dp'), kubelet.podResourcesSocket!, port);
  await kubelet.waitFor(
    () =>
      kubelet.registrations >= registrations + names.length &&
      names.every((name) => kubelet.resource(deviceResourceName(name))?.connected === true),
    60_000,
    'plugins of the restarted agent',
  );
  await agentReady(port);
  const leakedAtReturn = (await slotDiff(kubelet, node)).leaked;
  const refused = await readmit(kubelet, 'a', outcome.cut);
  const { at } = await untilNoLeak(kubelet, node, 30_000);
  expect(await slotDiff(kubelet, node)).toEqual({ leaked: 0, missing: 0 });
  expect([...heldByKubelet(kubelet).values()].reduce((n, slots) => n + slots.size, 0)).toBe(DEVICES.length * CAPACITY);
  figure(
    `agent SIGKILLed during ${outcome.ok + outcome.failed} Allocates: ${outcome.ok} succeeded, ${outcome.failed} cut and admitted again after (${refused} refused at first: slot still claimed); ` +
      `${leakedAtReturn} slots leaked when the plugins were back; Device slots = PodResources (0 leaked) ${seconds(at - killedAt)} after the kill (restart included; ledger reconcile every ${seconds(RECONCILE_MS)}, slot grace ${seconds(SLOT_GRACE_MS)})`,
  );
});
