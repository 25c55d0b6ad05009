/**
 * Idle footprint in the cluster (issue 15): Tether installed by its Helm chart from its own
 * image on the two real e2e nodes (bench/measures/real-node.ts sets them up), with no
 * DeviceDiscovery, left alone. The kubelets probe the pods at the chart's periods, the
 * processes read their service account and run with the chart's NODE_OPTIONS, as users run
 * them. After every pod is Ready and a controller leads, RSS and CPU of each container's Node
 * process are read from the host's /proc (the containers share this machine's kernel) over N
 * idle minutes, beside a bare Node process started on the host as the control.
 *
 *   sudo npm run bench -- real-node-idle    TETHER_BENCH_IDLE_MINUTES (default 5),
 *                                           TETHER_BENCH_IDLE_SETTLE_S (default 90)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { CoreV1Api, type V1Lease, type V1Pod } from '@kubernetes/client-node';
import { watchSetUntil } from '../../test/e2e/watch.ts';
import type { Measure, Measurement } from '../harness.ts';
import { createNamespace, deleteTetherCrds, isPodReady } from '../real-node/kube.ts';
import { sampleIdle, type IdleSubject } from './idle.ts';
import { install, SYSTEM_NAMESPACE, uninstall, withRealNodes, type RealNodes } from './real-node.ts';

const say = (message: string): void => void process.stderr.write(`[real-node-idle bench] ${message}\n`);

const SELECT_TETHER = 'app.kubernetes.io/instance=tether';
const CONTROLLER_LEASE = 'tether-controller';

/** Host PIDs of the processes in a container (its id appears in their /proc/<pid>/cgroup). */
export async function containerPids(containerId: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cgroup = await readFile(`/proc/${entry}/cgroup`, 'utf8').catch(() => '');
    if (cgroup.includes(containerId)) pids.push(Number(entry));
  }
  return pids;
}

/** The Node process of a pod's first container, by its host PID. */
async function nodeProcessOf(pod: V1Pod): Promise<number> {
  const id = pod.status?.containerStatuses?.[0]?.containerID?.replace(/^\w+:\/\//, '');
  if (id === undefined || id === '') throw new Error(`pod ${pod.metadata?.name} has no container id`);
  for (const pid of await containerPids(id)) {
    // Node 24 names its main thread "MainThread" (comm), so go by the command line's argv[0].
    const argv0 = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')[0] ?? '';
    if (argv0.endsWith('/node') || argv0 === 'node') return pid;
  }
  throw new Error(`no node process found in container ${id} of pod ${pod.metadata?.name}`);
}

async function idleInCluster(env: RealNodes): Promise<Measurement[]> {
  const minutes = Number(process.env['TETHER_BENCH_IDLE_MINUTES'] ?? 5);
  const settleS = Number(process.env['TETHER_BENCH_IDLE_SETTLE_S'] ?? 90);
  await uninstall(env); // a release left by an interrupted run
  await deleteTetherCrds(env.kc); // the e2e control plane's own; helm installs the chart's
  await createNamespace(env.kc, SYSTEM_NAMESPACE, { 'pod-security.kubernetes.io/enforce': 'privileged' });
  await install(env, true);
  const core = env.kc.makeApiClient(CoreV1Api);
  const nodes = (await core.listNode()).items.length;
  await watchSetUntil(env.kc, {
    path: `/api/v1/namespaces/${SYSTEM_NAMESPACE}/pods`,
    labelSelector: SELECT_TETHER,
    predicate: (pods: V1Pod[]) =>
      pods.filter((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'agent' && isPodReady(p)).length === nodes &&
      pods.some((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'controller' && isPodReady(p)),
    timeoutMs: 180_000,
    description: 'an agent Ready on every node and a controller Ready',
  });
  const { objects: leases } = await watchSetUntil<V1Lease>(env.kc, {
    path: `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NAMESPACE}/leases`,
    predicate: (all) => all.some((l) => l.metadata?.name === CONTROLLER_LEASE && (l.spec?.holderIdentity ?? '') !== ''),
    timeoutMs: 180_000,
    description: `a controller holding the ${CONTROLLER_LEASE} Lease`,
  });
  const holder = leases.find((l) => l.metadata?.name === CONTROLLER_LEASE)?.spec?.holderIdentity ?? '';
  const pods = (await core.listNamespacedPod({ namespace: SYSTEM_NAMESPACE, labelSelector: SELECT_TETHER })).items.filter(
    (p) => p.metadata?.deletionTimestamp == null,
  );
  const subjects: IdleSubject[] = [];
  for (const pod of pods) {
    const component = pod.metadata?.labels?.['app.kubernetes.io/component'];
    const name = pod.metadata?.name ?? '';
    const role = component === 'controller' ? (holder.startsWith(name) ? 'leader' : 'standby') : pod.spec?.nodeName;
    const pid = await nodeProcessOf(pod);
    const label = `${component} (${role}, pod)`;
    subjects.push({
      label,
      pid,
      alive: () => {
        try {
          process.kill(pid, 0);
        } catch {
          throw new Error(`${label} (pid ${pid}) exited while idle`);
        }
      },
    });
  }
  subjects.sort((a, b) => a.label.localeCompare(b.label));
  const control = spawn(process.execPath, ['--max-semi-space-size=1', '-e', 'setInterval(() => {}, 10_000)'], { stdio: 'ignore' });
  subjects.push({
    label: 'control: bare node (host)',
    pid: control.pid!,
    alive: () => {
      if (control.exitCode !== null) throw new Error('the control process exited');
    },
  });
  try {
    say(`${subjects.map((s) => `${s.label} pid ${s.pid}`).join(', ')}; settling ${settleS} s, then ${minutes} idle minute(s)`);
    await delay(settleS * 1000);
    return await sampleIdle(subjects, minutes);
  } finally {
    const exited = once(control, 'exit');
    control.kill();
    await exited;
  }
}

export const realNodeIdleMeasures: Measure[] = [
  {
    name: 'real-node-idle',
    description: 'RSS and CPU-s per idle minute of the agent and controller pods installed by the chart on the real e2e nodes (needs root)',
    onlyWhenNamed: true,
    run: () => withRealNodes(idleInCluster),
  },
];
