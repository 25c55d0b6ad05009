/**
 * Idle footprint (issue 15): the real `tether agent` (every built-in handler registered, no
 * DeviceDiscovery, so no devices; its own mock kubelet over real sockets) and the real
 * `tether controller` (leader-elected) against a real kube-apiserver, left alone. After they
 * are ready and have settled, RSS is sampled every few seconds and CPU is read from
 * /proc/<pid>/task/<tid>/schedstat (CPU the process used, whatever else the machine is doing)
 * over N idle minutes. A bare Node process with the same flags (`setInterval` every 10 s) is
 * measured beside them as the control: this machine's idle cost moves severalfold within an
 * evening, and the control shows how much of a figure is the machine's.
 *
 *   npm run bench -- idle          TETHER_BENCH_IDLE_MINUTES (default 2), TETHER_BENCH_IDLE_SETTLE_S (30),
 *                                  TETHER_BENCH_IDLE_ENTRY=js|ts|both (default both),
 *                                  TETHER_BENCH_IDLE_NODE_FLAGS (default: the chart's, V8_FLAGS below),
 *                                  TETHER_BENCH_IDLE_CONTROLLER_ARGS (extra flags, e.g. longer leader election periods),
 *                                  TETHER_BENCH_IDLE_KUBECONFIG=json|yaml (default json, see below),
 *                                  TETHER_BENCH_IDLE_BASELINE=<git ref> (also runs that commit's image
 *                                  JavaScript beside, at the same time: a paired comparison),
 *                                  TETHER_BENCH_IDLE_VARIANT_FLAGS="<node flags>" (also runs this tree's
 *                                  JavaScript beside with these flags added: a paired A/B of V8 flags)
 *
 * The kubelet probes both in the cluster, so the bench does too, as the kubelet does (a new
 * connection per probe) at the periods of the chart's liveness and readiness probes (read from
 * its templates; TETHER_BENCH_IDLE_PROBES=0 for none).
 *
 * In the cluster both components read their service account, never a YAML kubeconfig, so the
 * `yaml` package (loaded only for YAML text) stays out of them; by default they get the bench
 * cluster's kubeconfig as JSON, so that they run here as they run there.
 *
 * Two ways to run the same code side by side, both measured at once:
 * - `js`: the JavaScript the image ships (tsc → dist/bench-app, as deploy/image/app-tree.ts
 *   emits it), run as the image runs it (`node bin/tether.js`, NODE_ENV=production);
 * - `ts`: `node bin/tether.mjs …` from the sources (type stripping + compile cache), as the
 *   README's commands run it.
 *
 * The control plane is this measure's own (`${TETHER_BENCH_IDLE_CACHE:-~/.cache/tether-bench-idle}`, binaries
 * linked from the shared build), never the integration suite's; it keeps running afterwards
 * (TETHER_CLUSTER_DOWN=1 stops it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { clusterDown, clusterUp } from '../../test/cluster/cluster.ts';
import { freePort, httpGet, logTail } from '../../test/cluster/processes.ts';
import { linkSharedBinaries } from '../../test/faults/control-plane.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';
import { buildJavaScript, checkoutRef } from '../image-app.ts';

const REPO = resolve(import.meta.dirname, '../..');
const SAMPLE_MS = 5_000;
/** The V8 flags the Helm chart gives both components (deploy/helm/tether/values.yaml `nodeOptions`). */
const V8_FLAGS = '--max-semi-space-size=1';
/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on every architecture Node runs on. */
const CLOCK_TICKS_PER_S = 100;

const say = (message: string): void => void process.stderr.write(`[idle bench] ${message}\n`);

/**
 * CPU seconds a process has used so far: the sum of its threads' run time from
 * /proc/<pid>/task/<tid>/schedstat (nanoseconds, exact), falling back to utime + stime from
 * /proc/<pid>/stat (1/100 s ticks, sampled: too coarse for a few ticks per idle minute).
 */
export async function cpuSeconds(pid: number): Promise<number> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const runNs = await Promise.all(
    tids.map((tid) =>
      readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').then(
        (s) => Number(s.split(' ')[0]),
        () => Number.NaN,
      ),
    ),
  );
  if (runNs.length > 0 && runNs.every(Number.isFinite)) return runNs.reduce((a, b) => a + b, 0) / 1e9;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state (field 3).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** VmRSS and VmHWM (peak) of a process, MiB. */
export async function rssMiB(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

interface Subject {
  readonly label: string;
  readonly child: ChildProcess;
  /** Its /readyz port; none for the control. */
  readonly port: number | undefined;
  readonly logFile: string;
}

const words = (text: string | undefined): string[] => (text ?? '').split(' ').filter((w) => w !== '');

function start(
  label: string,
  command: string[],
  env: NodeJS.ProcessEnv,
  port: number | undefined,
  dir: string,
  extraNodeFlags: readonly string[] = [],
): Subject {
  const logFile = join(dir, `${label.replace(/\W+/g, '-')}.log`);
  const fd = openSync(logFile, 'w');
  const nodeFlags = [...words(process.env['TETHER_BENCH_IDLE_NODE_FLAGS'] ?? V8_FLAGS), ...extraNodeFlags];
  const child = spawn(process.execPath, [...nodeFlags, ...command], { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return { label, child, port, logFile };
}

async function waitReady(subject: Subject, timeoutMs = 120_000): Promise<void> {
  if (subject.port === undefined) return;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (subject.child.exitCode !== null) throw new Error(`${subject.label} exited ${subject.child.exitCode}:\n${logTail(subject.logFile)}`);
    const ready = await httpGet(`http://127.0.0.1:${subject.port}/readyz`).catch(() => undefined);
    if (ready?.status === 200) return;
    await delay(250);
  }
  throw new Error(`${subject.label} not ready within ${timeoutMs} ms:\n${logTail(subject.logFile)}`);
}

async function stop(subject: Subject): Promise<void> {
  if (subject.child.exitCode !== null || subject.child.signalCode !== null) return;
  const exited = once(subject.child, 'exit');
  subject.child.kill('SIGTERM');
  await Promise.race([exited, delay(10_000).then(() => subject.child.kill('SIGKILL'))]);
}

interface Probe {
  readonly path: string;
  readonly periodS: number;
}

/** The liveness and readiness probes a chart template gives its container (startup probes end at the first success). */
export function chartProbes(template: string): Probe[] {
  const probes = [...template.matchAll(/(livenessProbe|readinessProbe):\s*\n\s*httpGet:\s*\n\s*path: (\S+)[^]*?periodSeconds: (\d+)/g)];
  return probes.map(([, , path, period]) => ({ path: path!, periodS: Number(period) }));
}

/** Probes `port` as the kubelet does: a new connection per probe, at each probe's period. Returns the stopper. */
function probeLikeKubelet(port: number, probes: readonly Probe[]): () => void {
  const timers = probes.map(({ path, periodS }) =>
    setInterval(() => {
      const request = httpRequest({
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: { Connection: 'close', 'User-Agent': 'kube-probe/1.37' },
      });
      request.on('response', (response) => response.resume());
      request.on('error', () => undefined); // a dead subject is reported by the sampling loop
      request.end();
    }, periodS * 1000),
  );
  return () => timers.forEach((t) => clearInterval(t));
}

/** A process measured while idle; `alive` throws when it is gone, with why. */
export interface IdleSubject {
  readonly label: string;
  readonly pid: number;
  readonly alive: () => void;
}

/**
 * Samples RSS every few seconds and CPU per minute of `subjects` over `minutes` idle minutes:
 * RSS (p50 over the samples), peak RSS (VmHWM), CPU-s per minute, and CPU-s per minute over
 * the whole window.
 */
export async function sampleIdle(subjects: readonly IdleSubject[], minutes: number): Promise<Measurement[]> {
  const rss = subjects.map(() => [] as number[]);
  const cpuPerMinute = subjects.map(() => [] as number[]);
  const first = await Promise.all(subjects.map((s) => cpuSeconds(s.pid)));
  let minuteStart = [...first];
  const started = Date.now();
  const end = started + minutes * 60_000;
  let nextMinute = started + 60_000;
  while (Date.now() < end) {
    await delay(Math.min(SAMPLE_MS, Math.max(0, end - Date.now())));
    for (const [i, s] of subjects.entries()) {
      s.alive();
      rss[i]!.push((await rssMiB(s.pid)).rss);
    }
    if (Date.now() >= nextMinute - 100) {
      const now = await Promise.all(subjects.map((s) => cpuSeconds(s.pid)));
      for (const i of subjects.keys()) cpuPerMinute[i]!.push(now[i]! - minuteStart[i]!);
      minuteStart = now;
      nextMinute += 60_000;
    }
  }
  const last = await Promise.all(subjects.map((s) => cpuSeconds(s.pid)));
  const elapsedMin = (Date.now() - started) / 60_000;
  const results: Measurement[] = [];
  for (const [i, s] of subjects.entries()) {
    const peak = (await rssMiB(s.pid)).peak;
    const total = (last[i]! - first[i]!) / elapsedMin;
    results.push(summarize(`idle ${s.label} RSS`, 'MiB', rss[i]!, 1));
    results.push(summarize(`idle ${s.label} peak RSS (VmHWM, incl. start-up)`, 'MiB', [peak], 1));
    results.push(summarize(`idle ${s.label} CPU, per minute`, 'CPU-s/min', cpuPerMinute[i]!, 3));
    results.push(summarize(`idle ${s.label} CPU, over ${elapsedMin.toFixed(1)} min`, 'CPU-s/min', [total], 3));
  }
  return results;
}

async function idle(): Promise<Measurement[]> {
  const minutes = Number(process.env['TETHER_BENCH_IDLE_MINUTES'] ?? 2);
  const settleS = Number(process.env['TETHER_BENCH_IDLE_SETTLE_S'] ?? 30);
  const baselineRef = process.env['TETHER_BENCH_IDLE_BASELINE'];
  const variantFlags = words(process.env['TETHER_BENCH_IDLE_VARIANT_FLAGS']);
  const entries = [
    ...((process.env['TETHER_BENCH_IDLE_ENTRY'] ?? 'both') === 'both' ? ['js', 'ts'] : [process.env['TETHER_BENCH_IDLE_ENTRY']!]),
    ...(baselineRef === undefined ? [] : ['baseline']),
    ...(variantFlags.length === 0 ? [] : ['variant']),
  ];
  const cacheDir = process.env['TETHER_BENCH_IDLE_CACHE'] ?? join(homedir(), '.cache', 'tether-bench-idle');
  linkSharedBinaries(cacheDir);
  const cluster = await clusterUp({ cacheDir, log: (m) => say(`cluster: ${m}`) });
  const js = entries.includes('js') || entries.includes('variant') ? await buildJavaScript() : undefined;
  const baseline =
    baselineRef === undefined ? undefined : await buildJavaScript('idle-baseline', await checkoutRef(baselineRef, 'idle-baseline'));
  const dir = await mkdtemp(join(tmpdir(), 'tidle-'));
  let kubeconfig = cluster.kubeconfig;
  if ((process.env['TETHER_BENCH_IDLE_KUBECONFIG'] ?? 'json') === 'json') {
    kubeconfig = join(dir, 'kubeconfig.json');
    await writeFile(kubeconfig, JSON.stringify(parseYaml(await readFile(cluster.kubeconfig, 'utf8'))));
  }
  const kubelets: MockKubelet[] = [];
  const subjects: Subject[] = [];
  const probing: (() => void)[] = [];
  try {
    for (const entry of entries) {
      const cli = entry === 'js' || entry === 'variant' ? [js!] : entry === 'baseline' ? [baseline!] : [join(REPO, 'bin', 'tether.mjs')];
      const env = entry === 'ts' ? {} : { NODE_ENV: 'production' };
      const label = entry === 'baseline' ? `baseline ${baselineRef}` : entry === 'variant' ? `js ${variantFlags.join(' ')}` : entry;
      const extraFlags = entry === 'variant' ? variantFlags : [];
      const node = join(dir, entry);
      const kubelet = new MockKubelet({ pluginDir: join(node, 'dp'), podResourcesDir: join(node, 'pr') });
      await kubelet.start();
      kubelets.push(kubelet);
      const agentPort = await freePort();
      subjects.push(
        start(
          `agent (${label})`,
          [
            ...cli,
            'agent',
            '--node-name',
            `bench-idle-${entry}`,
            '--kubeconfig',
            kubeconfig,
            '--device-plugin-dir',
            join(node, 'dp'),
            '--pod-resources-socket',
            kubelet.podResourcesSocket!,
            '--registration-socket',
            join(node, 'registration.sock'),
            '--http-address',
            `127.0.0.1:${agentPort}`,
            '--log-format',
            'json',
          ],
          env,
          agentPort,
          dir,
          extraFlags,
        ),
      );
      const controllerPort = await freePort();
      subjects.push(
        start(
          `controller (${label})`,
          [
            ...cli,
            'controller',
            '--kubeconfig',
            kubeconfig,
            '--leader-election-namespace',
            'default',
            '--leader-election-id',
            `bench-idle-${entry}`,
            '--http-address',
            `127.0.0.1:${controllerPort}`,
            '--log-format',
            'json',
            ...words(process.env['TETHER_BENCH_IDLE_CONTROLLER_ARGS']),
          ],
          env,
          controllerPort,
          dir,
          extraFlags,
        ),
      );
    }
    subjects.push(start('control: bare node', ['-e', 'setInterval(() => {}, 10_000)'], {}, undefined, dir));
    await Promise.all(subjects.map((s) => waitReady(s)));
    if (process.env['TETHER_BENCH_IDLE_PROBES'] !== '0') {
      const templates = join(REPO, 'deploy', 'helm', 'tether', 'templates');
      const probes = {
        agent: chartProbes(await readFile(join(templates, 'agent-daemonset.yaml'), 'utf8')),
        controller: chartProbes(await readFile(join(templates, 'controller-deployment.yaml'), 'utf8')),
      };
      for (const s of subjects) {
        if (s.port === undefined) continue;
        const own = s.label.startsWith('agent') ? probes.agent : probes.controller;
        probing.push(probeLikeKubelet(s.port, own));
      }
      say(
        `probing as the chart's kubelet probes do: agent ${JSON.stringify(probes.agent)}, controller ${JSON.stringify(probes.controller)}`,
      );
    }
    say(`ready; settling ${settleS} s, then sampling ${minutes} idle minute(s) every ${SAMPLE_MS / 1000} s`);
    await delay(settleS * 1000);
    return await sampleIdle(
      subjects.map((s) => ({
        label: s.label,
        pid: s.child.pid!,
        alive: () => {
          if (s.child.exitCode !== null) throw new Error(`${s.label} exited while idle:\n${logTail(s.logFile)}`);
        },
      })),
      minutes,
    );
  } finally {
    for (const stopProbing of probing) stopProbing();
    await Promise.all(subjects.map(stop));
    for (const kubelet of kubelets) await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
    if (process.env['TETHER_CLUSTER_DOWN'] === '1') await clusterDown({ cacheDir });
  }
}

export const idleMeasures: Measure[] = [
  {
    name: 'idle',
    description: 'RSS and CPU-s per idle minute of the real agent (all handlers, no devices) and controller against a real apiserver',
    onlyWhenNamed: true,
    run: idle,
  },
];
