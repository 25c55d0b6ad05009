/**
 * Fault 4: the controller leader dies between a device going offline and its teardown.
 * Two `tether controller` replicas (child processes, leader election on a Lease, the chart's
 * RBAC); the discovery opts in to evicting consumers (`tether.dev/evict-consumers-on-offline`);
 * a consumer Pod on the node requests the device. The leader is frozen (SIGSTOP — so it
 * cannot tear anything down), the device goes offline on the node, the agent deletes its
 * Device after the grace period, and then the leader is SIGKILLed. kube-controller-manager is
 * stopped meanwhile, so its garbage collector cannot delete the brokers in Tether's place.
 * Asserted: the standby takes over, deletes the broker and evicts the consumer (from the
 * cluster's state: the sweep on leadership start). Printed: the times from the kill.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deviceResourceName } from '../../api/names.ts';
import { builtinHandlers } from '../../discovery-handlers/registry.ts';
import { RESOURCES } from '../../kube/resources.ts';
import { controllerServiceAccount } from '../support/fake-cluster.ts';
import { startAgentNode, type AgentNode } from '../integration/agent-node.ts';
import { loadKubeConfig, uniqueSuffix, useTestNamespace } from '../integration/support.ts';
import { restartFaultControllers, stopControllerManager } from './control-plane.ts';
import {
  cacheDir,
  closeScene,
  createEchoDiscovery,
  echoDeviceName,
  figure,
  listDevices,
  liveBrokers,
  openScene,
  seconds,
  setOnline,
  waitFor,
  type Scene,
} from './support.ts';

const ns = useTestNamespace('fault-leader');
const log = pino({ level: process.env.TETHER_TEST_LOG ?? 'silent' });
const suffix = uniqueSuffix();
const node = `fl-${suffix}`;
const LEASE = `tether-controller-${suffix}`;
const LEASE_DURATION_S = 10;
const BIN = join(import.meta.dirname, '../../bin/tether.ts');
let scene: Scene;
let agentNode: AgentNode;
let kubeconfigFile: string;
const replicas: Replica[] = [];

interface Replica {
  readonly name: string;
  readonly child: ChildProcess;
  port?: number;
}

function startReplica(name: string): Replica {
  const args = [
    BIN,
    '--log-level',
    'info',
    'controller',
    '--kubeconfig',
    kubeconfigFile,
    '--namespace',
    ns.name,
    '--leader-election-id',
    LEASE,
  ];
  args.push(
    '--lease-duration',
    String(LEASE_DURATION_S),
    '--renew-deadline',
    '8000',
    '--retry-period',
    '500',
    '--http-address',
    '127.0.0.1:0',
  );
  const child = spawn(process.execPath, args, {
    env: { ...process.env, POD_NAME: name, POD_NAMESPACE: ns.name },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const replica: Replica = { name, child };
  let buffered = '';
  child.stderr.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (process.env.TETHER_TEST_LOG !== undefined) process.stderr.write(`[${name}] ${line}\n`);
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'Started the controller') replica.port = entry.port;
      } catch {
        // not JSON
      }
    }
  });
  replicas.push(replica);
  return replica;
}

async function isLeader(replica: Replica): Promise<boolean | undefined> {
  if (replica.port === undefined || replica.child.exitCode !== null || replica.child.signalCode !== null) return undefined;
  try {
    return /^tether_controller_leader 1$/m.test(
      await (await fetch(`http://127.0.0.1:${replica.port}/metrics`, { signal: AbortSignal.timeout(1_000) })).text(),
    );
  } catch {
    return undefined;
  }
}

async function leaderAmong(candidates: Replica[]): Promise<Replica> {
  return waitFor(
    async () => {
      const states = await Promise.all(candidates.map(isLeader));
      const leaders = candidates.filter((_, i) => states[i] === true);
      return leaders.length === 1 && states.every((s) => s !== undefined) && leaders[0];
    },
    { description: 'exactly one leader', timeoutMs: 60_000 },
  );
}

beforeAll(async () => {
  scene = await openScene(ns.name);
  await scene.nodes.add(node);
  const account = await controllerServiceAccount(loadKubeConfig(), scene.admin, ns.name, `tether-controller-${suffix}`);
  scene.cleanups.push(account.cleanup);
  kubeconfigFile = join(scene.dir, 'controller.kubeconfig');
  await writeFile(kubeconfigFile, account.kubeConfig.exportConfig());
  agentNode = await startAgentNode({ name: node, namespace: ns.name, handlers: builtinHandlers(), log });
  scene.cleanups.push(() => agentNode.stop());
});

afterAll(async () => {
  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await restartFaultControllers(cacheDir()).catch(() => undefined);
  await scene?.admin.client
    .request('DELETE', `/api/v1/namespaces/${ns.name}/pods`, { verb: 'delete', resource: 'pods', query: { gracePeriodSeconds: 0 } })
    .catch(() => undefined);
  await closeScene(scene);
});

it(
  'leader SIGKILLed between a device going offline and its teardown: the new leader tears the brokers down and evicts the consumers',
  { timeout: 180_000 },
  async () => {
    const a = startReplica('replica-a');
    const b = startReplica('replica-b');
    const leader = await leaderAmong([a, b]);
    const standby = leader === a ? b : a;
    const file = await createEchoDiscovery(scene, 'evicting', {
      descriptions: ['e'],
      graceS: 1,
      annotations: { 'tether.dev/evict-consumers-on-offline': 'true' },
    });
    const name = echoDeviceName(ns.name, 'evicting', 'e', node);
    await waitFor(async () => ((await liveBrokers(scene)).get(name) ?? []).length === 1, {
      description: 'a broker for the device',
      timeoutMs: 60_000,
    });
    const consumer = `consumer-${suffix}`;
    await scene.admin.create(RESOURCES.pods, ns.name, {
      metadata: { name: consumer, namespace: ns.name },
      spec: {
        nodeName: node,
        containers: [{ name: 'app', image: 'example.com/app:1', resources: { limits: { [deviceResourceName(name)]: '1' } } }],
      },
    });

    await stopControllerManager(cacheDir());
    leader.child.kill('SIGSTOP');
    await setOnline(file, false);
    await waitFor(async () => !(await listDevices(scene)).some((d) => d.metadata.name === name), {
      description: 'the agent deleted the Device after its grace period',
      timeoutMs: 30_000,
    });
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    expect(((await liveBrokers(scene)).get(name) ?? []).length).toBe(1); // nobody tore it down yet

    const evicted = async (): Promise<boolean> => {
      const pods = await scene.admin.list<V1Pod>(RESOURCES.pods, { namespace: ns.name, fieldSelector: `metadata.name=${consumer}` });
      return pods.items.length === 0 || pods.items[0]!.metadata?.deletionTimestamp != null;
    };
    let newLeaderAt = 0;
    let brokerGoneAt = 0;
    let evictedAt = 0;
    await Promise.all([
      leaderAmong([standby]).then(() => (newLeaderAt = Date.now())),
      waitFor(async () => ((await liveBrokers(scene)).get(name) ?? []).length === 0, {
        description: 'broker deleted by the new leader',
        timeoutMs: 60_000,
      }).then(() => (brokerGoneAt = Date.now())),
      waitFor(evicted, { description: 'consumer evicted by the new leader', timeoutMs: 60_000 }).then(() => (evictedAt = Date.now())),
    ]);
    const events = await scene.admin.client.request<{ items: { reason?: string; regarding?: { name?: string } }[] }>(
      'GET',
      `/apis/events.k8s.io/v1/namespaces/${ns.name}/events`,
      { verb: 'list', resource: 'events' },
    );
    expect(events.items.some((e) => e.reason === 'ConsumerEvicted' && e.regarding?.name === consumer)).toBe(true);
    figure(
      `controller leader SIGKILLed after the Device was deleted (frozen before the device went offline; lease ${LEASE_DURATION_S} s) → ` +
        `standby led ${seconds(newLeaderAt - killedAt)}, broker deleted ${seconds(brokerGoneAt - killedAt)}, consumer evicted ${seconds(evictedAt - killedAt)} after the kill (garbage collector stopped)`,
    );
  },
);
