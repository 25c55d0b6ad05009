/**
 * A Wasm broker against a container broker, side by side in one run, on the real two-node e2e
 * cluster (the real-node bench's set-up: Tether installed by its chart from its own image).
 * Needs root, and the wasmtime shim in node 1's containerd 1.6 (test/cluster/build-wasm-shim.sh,
 * which the e2e build runs).
 *
 * Two DeviceDiscoveries on node 1, each finding one debug-echo device behind the same
 * availability file (under the host's /var/lib/tether, which the agent pod mounts), so one write
 * takes both devices offline or back:
 * - `container`: `broker.pod`, the e2e's busybox broker (runc);
 * - `wasm`: `broker.workload`, an apps/v1 Deployment running the sample Wasm broker
 *   (examples/wasm-broker, a wasm32-wasip2 component) with `runtimeClassName: wasmtime`.
 *
 * Each round: OFFLINE → both broker pods DELETED (minus the 1 s offline grace), then `online` →
 * each kind's new broker pod created and Ready. Neither pod has a readiness probe, so Ready means
 * the same for both: the kubelet saw the container started. The Wasm broker's "serving" is the
 * arrival of its `listening on` log line (followed from the kubelet), which a started container
 * has not necessarily printed yet. The Deployment's pod comes through the Deployment and
 * ReplicaSet controllers, the Pod broker's straight from Tether's controller: both are what a user
 * of each form gets.
 *
 * Memory, once both brokers are Ready and the Wasm broker serves, per kind, measured the same way
 * for both:
 * - PSS of the broker pod's processes (those in the pod's memory cgroup: pause and the broker —
 *   runc's `sleep`/`sh`, the wasmtime shim's per-container processes and guest) plus their
 *   containerd shim (runc: `containerd-shim-runc-v2`; Wasm: the wasmtime shim's server), which
 *   lives outside the pod's cgroup. PSS divides shared pages among their users, so shim code
 *   shared with other pods' shims counts in part;
 * - the pod cgroup's `memory.usage_in_bytes` (cgroup v1: includes page cache the pod touched
 *   first; the shim is not in it).
 *
 * Rounds: TETHER_BENCH_WASM_ROUNDS (default 10). Times are the arrival of watch events at this
 * process. Figures are reported, never asserted.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Writable } from 'node:stream';
import { CoreV1Api, Log, NodeV1Api, type KubeConfig, type V1Pod, type V1RuntimeClass } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { busyboxBroker } from '../../test/e2e/layout.ts';
import { watchUntil } from '../../test/e2e/watch.ts';
import { importWasmBrokerImage, WASM_RUNTIME_CLASS_MANIFEST, wasmBrokerPodSpec, wasmRuntimeProblem } from '../../test/e2e/wasm.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';
import {
  createDiscovery,
  createNamespace,
  deleteNamespace,
  deleteTetherCrds,
  isPodReady,
  tolerating,
  waitGone,
} from '../real-node/kube.ts';
import { install, onNode1, SYSTEM_NAMESPACE, uninstall, withRealNodes, type RealNodes } from './real-node.ts';

const say = (message: string): void => void process.stderr.write(`[wasm-brokers bench] ${message}\n`);

const NAMESPACE = 'bench-wasm-brokers';
/** On the host's /var/lib/tether, which node 1's agent pod mounts at the same path. */
const AVAILABILITY_FILE = '/var/lib/tether/bench-wasm-brokers.availability';
const GRACE_S = 1;
const BROKER_SELECTOR = 'tether.dev/component=broker';
const LISTENING = 'wasm-broker: listening on';

const KINDS = ['container', 'wasm'] as const;
type Kind = (typeof KINDS)[number];
/** The DeviceDiscovery of each kind. */
const DISCOVERY: Record<Kind, string> = { container: 'container-echo', wasm: 'wasm-echo' };
const LABEL: Record<Kind, string> = { container: 'container broker (Pod, runc)', wasm: 'Wasm broker (Deployment, wasmtime)' };

/** The rows, in the order printed (each for both kinds). */
const METRICS = [
  'back → pod created',
  'back → pod Ready',
  'back → serving (log line)',
  'offline → pod DELETED (after grace)',
  'memory, PSS of pod processes + shim (MiB)',
  'memory, RSS of pod processes + shim (MiB)',
  'memory, pod cgroup usage (MiB)',
] as const;

type Samples = Record<string, number[]>;

function add(samples: Samples, name: string, value: number): void {
  (samples[name] ??= []).push(value);
}

function rounds(): number {
  const value = Number(process.env['TETHER_BENCH_WASM_ROUNDS'] ?? 10);
  if (!Number.isInteger(value) || value < 1) throw new Error(`TETHER_BENCH_WASM_ROUNDS must be a positive integer, not ${value}`);
  return value;
}

function kindOf(pod: V1Pod): Kind | undefined {
  const discovery = pod.metadata?.labels?.['tether.dev/discovery'];
  return KINDS.find((k) => DISCOVERY[k] === discovery);
}

/** The Wasm broker as a Deployment: the sample broker's pod, without the probe, set up like the busybox broker. */
function wasmBroker(): Record<string, unknown> {
  const spec = wasmBrokerPodSpec();
  // No readiness probe: Ready then means "started" for both kinds (a probe would round it up to its period).
  delete spec.containers[0]!.readinessProbe;
  return {
    workload: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      spec: {
        template: {
          spec: { ...spec, automountServiceAccountToken: false, enableServiceLinks: false, terminationGracePeriodSeconds: 1 },
        },
      },
    },
  };
}

function discoverySpec(node: string, description: string, broker: Record<string, unknown>): Record<string, unknown> {
  return {
    handler: 'debug-echo',
    details: { descriptions: [description], availabilityFile: AVAILABILITY_FILE },
    capacity: 1,
    offlineGracePeriodSeconds: GRACE_S,
    nodeSelector: onNode1(node),
    broker,
  };
}

/** Writes the availability file atomically (a rename: the handler sees one event with the whole content). */
async function setAvailability(content: 'OFFLINE' | 'online'): Promise<void> {
  await writeFile(`${AVAILABILITY_FILE}.tmp`, `${content}\n`);
  await rename(`${AVAILABILITY_FILE}.tmp`, AVAILABILITY_FILE);
}

/** Applies the `wasmtime` RuntimeClass as the users' manifest has it; true when this call created it. */
async function applyRuntimeClass(kc: KubeConfig): Promise<boolean> {
  const body = parse(readFileSync(WASM_RUNTIME_CLASS_MANIFEST, 'utf8')) as V1RuntimeClass;
  try {
    await kc.makeApiClient(NodeV1Api).createRuntimeClass({ body });
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 409) return false;
    throw error;
  }
}

/** Lists the broker pods of the namespace: the pods and the list's resourceVersion. */
async function listBrokers(kc: KubeConfig): Promise<{ pods: V1Pod[]; resourceVersion: string | undefined }> {
  const list = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: NAMESPACE, labelSelector: BROKER_SELECTOR });
  return { pods: list.items, resourceVersion: list.metadata?.resourceVersion };
}

/** Watches from `resourceVersion` until every pod in `uids` is DELETED; resolves with each one's time. */
async function watchDeleted(
  kc: KubeConfig,
  resourceVersion: string | undefined,
  uids: ReadonlyMap<string, Kind>,
): Promise<Map<Kind, number>> {
  const at = new Map<Kind, number>();
  await watchUntil<V1Pod>(kc, {
    path: `/api/v1/namespaces/${NAMESPACE}/pods`,
    labelSelector: BROKER_SELECTOR,
    ...(resourceVersion === undefined ? {} : { resourceVersion }),
    predicate: (pod, type) => {
      const kind = uids.get(pod.metadata?.uid ?? '');
      if (type === 'DELETED' && kind !== undefined && !at.has(kind)) at.set(kind, Date.now());
      return at.size === uids.size;
    },
    timeoutMs: 90_000,
    description: 'both brokers deleted',
  });
  return at;
}

/** When each kind's new broker pod was created and became Ready, as watch events arrived. */
interface Arrivals {
  readonly created: Map<Kind, number>;
  readonly ready: Map<Kind, number>;
  readonly pods: Map<Kind, V1Pod>;
}

/** Watches from `resourceVersion` until a broker pod of each kind is Ready. */
async function watchReady(kc: KubeConfig, resourceVersion: string | undefined): Promise<Arrivals> {
  const arrivals: Arrivals = { created: new Map(), ready: new Map(), pods: new Map() };
  await watchUntil<V1Pod>(kc, {
    path: `/api/v1/namespaces/${NAMESPACE}/pods`,
    labelSelector: BROKER_SELECTOR,
    ...(resourceVersion === undefined ? {} : { resourceVersion }),
    predicate: (pod, type) => {
      const kind = kindOf(pod);
      if (kind === undefined || type === 'DELETED') return false;
      const now = Date.now();
      if (type === 'ADDED' && !arrivals.created.has(kind)) arrivals.created.set(kind, now);
      if (isPodReady(pod) && !arrivals.ready.has(kind)) {
        arrivals.ready.set(kind, now);
        arrivals.pods.set(kind, pod);
      }
      return arrivals.ready.size === KINDS.length;
    },
    timeoutMs: 120_000,
    description: 'a Ready broker of each kind',
    describe: (pod) => `${pod.metadata?.name ?? '?'}: ${JSON.stringify({ phase: pod.status?.phase, conditions: pod.status?.conditions })}`,
  });
  return arrivals;
}

/** Follows the Wasm broker's log from its start; resolves with the arrival time of its `listening on` line. */
async function waitListening(kc: KubeConfig, pod: V1Pod, timeoutMs = 60_000): Promise<number> {
  const name = pod.metadata?.name ?? '';
  let text = '';
  let resolveAt: (at: number) => void = () => undefined;
  const heard = new Promise<number>((resolve) => (resolveAt = resolve));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback): void {
      text += chunk.toString('utf8');
      if (text.includes(LISTENING)) resolveAt(Date.now());
      callback();
    },
  });
  // WARNING: Log pipes the response into `sink` and leaves the response's own errors unhandled; aborting
  // it (below) makes one, which would crash the process. The sink hears of its source through 'pipe'.
  sink.on('pipe', (source: NodeJS.ReadableStream) => void source.on('error', () => undefined));
  const controller = await new Log(kc).log(NAMESPACE, name, 'main', sink, { follow: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      heard,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no '${LISTENING}' in ${name}'s log after ${timeoutMs} ms; log: ${text.slice(-1_000)}`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** One process the runtime runs for a pod, with its resident memory. */
interface PodProcess {
  readonly pid: number;
  readonly ppid: number;
  readonly exe: string;
  readonly pssKiB: number;
  readonly rssKiB: number;
  /** The v1 memory cgroup path. */
  readonly cgroup: string;
}

function readProcess(pid: number): PodProcess | undefined {
  try {
    const exe = basename(readlinkSync(`/proc/${pid}/exe`)).replace(/ \(deleted\)$/, '');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    const ppid = /^PPid:\s+(\d+)$/m.exec(status);
    const pss = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    const cgroup = /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1] ?? '';
    if (rss === null || ppid === null || pss === null) return undefined;
    return { pid, ppid: Number(ppid[1]), exe, pssKiB: Number(pss[1]), rssKiB: Number(rss[1]), cgroup };
  } catch {
    return undefined; // gone meanwhile, or a kernel thread
  }
}

/** A pod's memory: its cgroup's processes plus their containerd shim, and the cgroup's own usage. */
interface PodMemory {
  readonly processes: PodProcess[];
  readonly pssKiB: number;
  readonly rssKiB: number;
  readonly cgroupBytes: number;
}

/** Reads the memory of the pod with `uid` on this machine (node 1 shares its /proc and cgroups). */
function podMemory(uid: string): PodMemory {
  const marker = `/pod${uid}`;
  const all = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map((entry) => readProcess(Number(entry)))
    .filter((p) => p !== undefined);
  const inPod = all.filter((p) => p.cgroup.includes(marker));
  if (inPod.length === 0) throw new Error(`no process in a memory cgroup of pod ${uid}`);
  const pids = new Set(inPod.map((p) => p.pid));
  const shims = all.filter((p) => !pids.has(p.pid) && p.exe.startsWith('containerd-shim') && inPod.some((c) => c.ppid === p.pid));
  const processes = [...shims, ...inPod];
  const cgroup = inPod[0]!.cgroup;
  const podCgroup = cgroup.slice(0, cgroup.indexOf(marker) + marker.length);
  const cgroupBytes = Number(readFileSync(`/sys/fs/cgroup/memory${podCgroup}/memory.usage_in_bytes`, 'utf8').trim());
  return {
    processes,
    pssKiB: processes.reduce((sum, p) => sum + p.pssKiB, 0),
    rssKiB: processes.reduce((sum, p) => sum + p.rssKiB, 0),
    cgroupBytes,
  };
}

const mib = (kib: number): number => kib / 1_024;

function describeProcesses(memory: PodMemory): string {
  return memory.processes
    .map((p) => `    ${p.pid}←${p.ppid} ${p.exe} PSS ${mib(p.pssKiB).toFixed(1)} MiB, RSS ${mib(p.rssKiB).toFixed(1)} MiB (${p.cgroup})`)
    .join('\n');
}

async function round(env: RealNodes, index: number, total: number, samples: Samples): Promise<void> {
  // Offline: both brokers' pods deleted.
  const before = await listBrokers(env.kc);
  const uids = new Map(
    before.pods.flatMap((p) => {
      const kind = kindOf(p);
      return kind === undefined || p.metadata?.deletionTimestamp != null ? [] : [[p.metadata?.uid ?? '', kind] as const];
    }),
  );
  if (uids.size !== KINDS.length) throw new Error(`expected one live broker of each kind, found ${uids.size}`);
  const deleted = watchDeleted(env.kc, before.resourceVersion, uids);
  deleted.catch(() => undefined);
  const offlineAt = Date.now();
  await setAvailability('OFFLINE');
  const deletedAt = await deleted;
  for (const kind of KINDS)
    add(samples, `${LABEL[kind]}: offline → pod DELETED (after grace)`, deletedAt.get(kind)! - offlineAt - GRACE_S * 1_000);

  // Back: each kind's new broker pod created and Ready.
  const after = await listBrokers(env.kc);
  const ready = watchReady(env.kc, after.resourceVersion);
  ready.catch(() => undefined);
  const onlineAt = Date.now();
  await setAvailability('online');
  const arrivals = await ready;
  const listeningAt = await waitListening(env.kc, arrivals.pods.get('wasm')!);
  for (const kind of KINDS) {
    add(samples, `${LABEL[kind]}: back → pod created`, arrivals.created.get(kind)! - onlineAt);
    add(samples, `${LABEL[kind]}: back → pod Ready`, arrivals.ready.get(kind)! - onlineAt);
  }
  add(samples, `${LABEL.wasm}: back → serving (log line)`, listeningAt - onlineAt);

  // Memory, both brokers running.
  const memory = new Map(KINDS.map((kind) => [kind, podMemory(arrivals.pods.get(kind)!.metadata?.uid ?? '')] as const));
  for (const kind of KINDS) {
    const m = memory.get(kind)!;
    add(samples, `${LABEL[kind]}: memory, PSS of pod processes + shim (MiB)`, mib(m.pssKiB));
    add(samples, `${LABEL[kind]}: memory, RSS of pod processes + shim (MiB)`, mib(m.rssKiB));
    add(samples, `${LABEL[kind]}: memory, pod cgroup usage (MiB)`, m.cgroupBytes / 1_048_576);
  }
  const c = memory.get('container')!;
  const w = memory.get('wasm')!;
  say(
    `round ${index}/${total}: Ready container ${arrivals.ready.get('container')! - onlineAt} ms | Wasm ${arrivals.ready.get('wasm')! - onlineAt} ms (serving ${listeningAt - onlineAt} ms); ` +
      `PSS container ${mib(c.pssKiB).toFixed(1)} MiB | Wasm ${mib(w.pssKiB).toFixed(1)} MiB; cgroup container ${(c.cgroupBytes / 1_048_576).toFixed(1)} MiB | Wasm ${(w.cgroupBytes / 1_048_576).toFixed(1)} MiB`,
  );
  if (index === 1) say(`processes (pid←ppid):\n  container:\n${describeProcesses(c)}\n  Wasm:\n${describeProcesses(w)}`);
}

async function measureBrokers(env: RealNodes): Promise<Measurement[]> {
  const problem = wasmRuntimeProblem(env.layout1);
  if (problem !== undefined) throw new Error(`node 1 cannot run Wasm pods: ${problem}`);
  const image = await importWasmBrokerImage(env.layout1);
  say(`Wasm broker image ${image.name} ${image.manifestDigest.slice(0, 19)} (${image.imported ? 'imported' : 'already imported'})`);
  const createdRuntimeClass = await applyRuntimeClass(env.kc);
  const total = rounds();
  const samples: Samples = {};
  try {
    await uninstall(env); // a release left by an interrupted run
    await deleteNamespace(env.kc, NAMESPACE);
    await deleteTetherCrds(env.kc); // helm refuses to adopt the CRDs the e2e control plane applied
    await createNamespace(env.kc, SYSTEM_NAMESPACE, { 'pod-security.kubernetes.io/enforce': 'privileged' });
    await install(env, true);
    await createNamespace(env.kc, NAMESPACE);
    await setAvailability('online');
    await createDiscovery(env.kc, NAMESPACE, DISCOVERY.container, discoverySpec(env.node1, 'container-1', busyboxBroker()));
    await createDiscovery(env.kc, NAMESPACE, DISCOVERY.wasm, discoverySpec(env.node1, 'wasm-1', wasmBroker()));
    const first = await watchReady(env.kc, undefined);
    await waitListening(env.kc, first.pods.get('wasm')!);
    say(`both brokers Ready; ${total} rounds`);
    for (let index = 1; index <= total; index++) await round(env, index, total, samples);
  } finally {
    await deleteNamespace(env.kc, NAMESPACE).catch((error: unknown) => say(`deleting ${NAMESPACE}: ${String(error)}`));
    await rm(AVAILABILITY_FILE, { force: true });
    if (createdRuntimeClass) {
      await tolerating([404], () => env.kc.makeApiClient(NodeV1Api).deleteRuntimeClass({ name: 'wasmtime' }));
      await waitGone(env.kc, '/apis/node.k8s.io/v1/runtimeclasses', ['wasmtime']);
    }
  }
  // Metric by metric, the two kinds next to each other.
  const rank = (name: string): number => METRICS.findIndex((metric) => name.endsWith(`: ${metric}`));
  const entries = Object.entries(samples).sort(([a], [b]) => rank(a) - rank(b));
  return entries.map(([name, values]) =>
    name.endsWith('(MiB)') ? summarize(name.replace(/ \(MiB\)$/, ''), 'MiB', values, 1) : summarize(name, 'ms', values),
  );
}

export const wasmBrokerMeasures: Measure[] = [
  {
    name: 'wasm-brokers',
    description:
      'device back → Wasm broker (Deployment, wasmtime) vs container broker (Pod, runc) Ready, and their memory, on the real e2e nodes (needs root)',
    onlyWhenNamed: true,
    run: () =>
      withRealNodes(async (env) => {
        const started = Date.now();
        const results = await measureBrokers(env);
        say(`measured in ${((Date.now() - started) / 1_000).toFixed(0)} s`);
        return results;
      }),
  },
];
