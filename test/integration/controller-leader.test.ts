/**
 * Leader election of `tether controller` replicas, as separate processes (bin/tether.ts) on the
 * real control plane: one leader at a time; SIGKILL of the leader → a standby takes over once
 * the lease expires; SIGTERM → the lease is released and a standby takes over at once.
 * Assertions are on the Lease, on each replica's /metrics, and on brokers being created.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceName } from '../../api/names.ts';
import { KubeClient } from '../../kube/client.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { FakeNodes, applyAsAgent } from '../support/fake-cluster.ts';
import { API_VERSION, kubeconfigPath, loadKubeConfig, uniqueSuffix, useTestNamespace, waitFor } from './support.ts';

const namespace = useTestNamespace('it-ctl-leader');
const suffix = uniqueSuffix();
const LEASE = `tether-controller-${suffix}`;
const LEASE_DURATION_S = 3;
const BIN = join(import.meta.dirname, '../../bin/tether.ts');

interface Replica {
  readonly name: string;
  readonly child: ChildProcess;
  port?: number;
  identity?: string;
  readonly log: string[];
}

const replicas: Replica[] = [];
let admin: Api;
let nodes: FakeNodes;
const node = `ctl-${suffix}-leader`;

function startReplica(name: string): Replica {
  const child = spawn(
    process.execPath,
    [
      BIN,
      '--log-level',
      'info',
      'controller',
      '--kubeconfig',
      kubeconfigPath(),
      '--namespace',
      namespace.name,
      '--leader-election-id',
      LEASE,
      '--lease-duration',
      String(LEASE_DURATION_S),
      '--renew-deadline',
      '2000',
      '--retry-period',
      '250',
      '--http-address',
      '127.0.0.1:0',
    ],
    { env: { ...process.env, POD_NAME: name, POD_NAMESPACE: namespace.name }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const replica: Replica = { name, child, log: [] };
  let buffered = '';
  child.stderr.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      replica.log.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; identity?: string };
        if (entry.msg === 'Started the controller') replica.port = entry.port;
        if (entry.msg === 'Became the leader') replica.identity = entry.identity;
      } catch {
        // not JSON
      }
      newline = buffered.indexOf('\n');
    }
  });
  replicas.push(replica);
  return replica;
}

async function isLeader(replica: Replica): Promise<boolean | undefined> {
  if (replica.port === undefined || replica.child.exitCode !== null || replica.child.signalCode !== null) return undefined;
  try {
    const text = await (await fetch(`http://127.0.0.1:${replica.port}/metrics`)).text();
    return /^tether_controller_leader 1$/m.test(text);
  } catch {
    return undefined;
  }
}

interface Lease {
  metadata?: { name?: string };
  spec?: { holderIdentity?: string; leaseTransitions?: number };
}

function lease(): Promise<Lease> {
  return admin.get<Lease>(RESOURCES.leases, namespace.name, LEASE);
}

async function exited(replica: Replica): Promise<number | null> {
  if (replica.child.exitCode !== null || replica.child.signalCode !== null) return replica.child.exitCode;
  return new Promise((resolve) => replica.child.once('exit', (code) => resolve(code)));
}

async function leaderAmong(candidates: Replica[]): Promise<Replica> {
  return waitFor(
    async () => {
      const states = await Promise.all(candidates.map(isLeader));
      const leaders = candidates.filter((_, i) => states[i] === true);
      const followers = candidates.filter((_, i) => states[i] === false);
      return leaders.length === 1 && followers.length === candidates.length - 1 && leaders[0];
    },
    { description: 'exactly one leader among the replicas', timeoutMs: 30_000 },
  );
}

/** A device whose broker proves a leader is working. */
async function expectBrokerFor(deviceId: string): Promise<void> {
  const discovery = `leader-${suffix}`;
  const name = deviceName({ namespace: namespace.name, discovery, deviceId });
  await applyAsAgent(admin, { namespace: namespace.name, name, discovery, deviceId, shared: true, capacity: 1, node });
  await waitFor(
    async () =>
      (await admin.list(RESOURCES.pods, { namespace: namespace.name, labelSelector: `tether.dev/device=${name}` })).items.length === 1,
    {
      description: `a broker for ${deviceId}`,
      timeoutMs: 15_000,
    },
  );
}

beforeAll(async () => {
  admin = new Api(new KubeClient(loadKubeConfig()));
  nodes = new FakeNodes(admin);
  await nodes.add(node);
  const body = {
    apiVersion: API_VERSION,
    kind: 'DeviceDiscovery',
    metadata: { name: `leader-${suffix}`, namespace: namespace.name },
    spec: { handler: 'debug-echo', capacity: 1, broker: { pod: { spec: { containers: [{ name: 'b', image: 'example.com/b:1' }] } } } },
  };
  await admin.create(RESOURCES.deviceDiscoveries, namespace.name, body as never);
});

afterAll(async () => {
  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await admin?.client.request('DELETE', `/api/v1/namespaces/${namespace.name}/pods`, {
    verb: 'delete',
    resource: 'pods',
    query: { gracePeriodSeconds: 0 },
  });
  await admin?.delete(RESOURCES.leases, namespace.name, LEASE).catch(() => undefined);
  await nodes?.close();
});

describe('leader election', () => {
  it('runs one leader among two replicas, fails over when it dies, and hands over at once on SIGTERM', async () => {
    const a = startReplica('replica-a');
    const b = startReplica('replica-b');
    const first = await leaderAmong([a, b]);
    const standby = first === a ? b : a;
    expect((await lease()).spec?.holderIdentity).toBe(first.identity);
    expect(first.identity).toMatch(new RegExp(`^${first.name}_[0-9a-f]{8}$`));
    await expectBrokerFor('dev-1');
    const transitions = (await lease()).spec?.leaseTransitions ?? 0;

    // The leader dies without a word: the standby waits for the lease to expire, then leads.
    const killedAt = Date.now();
    first.child.kill('SIGKILL');
    const second = await leaderAmong([standby]);
    const failover = Date.now() - killedAt;
    expect(second).toBe(standby);
    expect((await lease()).spec).toMatchObject({ holderIdentity: standby.identity, leaseTransitions: transitions + 1 });
    expect(failover).toBeGreaterThanOrEqual(LEASE_DURATION_S * 1000 - 1_000);
    expect(failover).toBeLessThan(LEASE_DURATION_S * 1000 + 5_000);
    await expectBrokerFor('dev-2');

    // A new standby joins; SIGTERM on the leader releases the lease: the standby leads well
    // before the lease duration would have run out.
    const c = startReplica('replica-c');
    await waitFor(async () => (await isLeader(c)) === false, { description: 'replica-c running as a standby', timeoutMs: 30_000 });
    const termAt = Date.now();
    second.child.kill('SIGTERM');
    const third = await leaderAmong([c]);
    const handover = Date.now() - termAt;
    expect(await exited(second)).toBe(0);
    expect(third).toBe(c);
    expect(handover).toBeLessThan(LEASE_DURATION_S * 1000);
    expect(second.log.some((line) => line.includes('Released the leader lease'))).toBe(true);
    await expectBrokerFor('dev-3');
  });
});
