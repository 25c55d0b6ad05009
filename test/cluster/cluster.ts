/**
 * A real Kubernetes control plane on this machine, for tests: etcd,
 * kube-apiserver, kube-controller-manager and kube-scheduler built from the
 * Go module proxy by build.sh, started on free loopback ports, with Tether's
 * CRDs installed. No kubelet or nodes: Pods get created, never scheduled or run.
 *
 * All state lives in one directory (certs, kubeconfigs, logs, etcd data,
 * state.json with the PIDs), `${TETHER_CACHE:-~/.cache/tether}/cluster/`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { SERVICE_CIDR, ensureCerts, writeKubeconfig } from './certs.ts';
import type { ClusterCerts } from './certs.ts';
import { withLock } from './lock.ts';
import { startProgress, type Progress } from './progress.ts';
import { freePort, isRunning, logTail, startComponent, stopComponent, waitHealthy } from './processes.ts';
import type { ComponentSpec, RunningComponent } from './processes.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const APISERVER_STOP_GRACE_MS = 3_000;
const BUILD_SCRIPT = join(import.meta.dirname, 'build.sh');

/** Options shared by every cluster operation. */
export interface ClusterOptions {
  /** Root of builds and state; default `$TETHER_CACHE` or `~/.cache/tether`. */
  cacheDir?: string;
  /** Directory of CRD manifests to install; default `<repo>/deploy/crds`. */
  crdDir?: string;
  /** Per-component start-up deadline; default 120 s (2 busy cores are slow). */
  readyTimeoutMs?: number;
  /** Progress messages; default stderr. */
  log?: (message: string) => void;
  /**
   * Serve nodes and pods, not only this machine: the apiserver listens on every address, is
   * advertised (and certified) as `nodeAddress`, and reaches kubelets at their InternalIP. Default:
   * loopback only. A running cluster started with another value is restarted.
   */
  nodeAddress?: string;
  /** kube-controller-manager's --node-monitor-grace-period (s): how soon a silent node is NotReady. */
  nodeMonitorGraceSeconds?: number;
  /**
   * Aborting stops a running build (its whole process group) and makes clusterUp reject.
   * Without it, the build shares this process's group (a terminal's Ctrl-C reaches it).
   */
  signal?: AbortSignal;
}

/** What a running cluster offers to its users. */
export interface ClusterInfo {
  kubeconfig: string;
  server: string;
  /** The apiserver URL nodes and pods use (`https://<nodeAddress>:<port>`); `server` without a nodeAddress. */
  nodeServer: string;
  stateDir: string;
  binDir: string;
  k8sVersion: string;
  /** True when an already-running cluster was reused. */
  reused: boolean;
}

type ComponentName = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler';

/** state.json: how to find, check, stop and restart each component. */
interface ClusterState {
  k8sVersion: string;
  binDir: string;
  kubeconfig: string;
  server: string;
  /** What the cluster was started with (reuse requires the same). */
  nodeAddress?: string;
  nodeMonitorGraceSeconds?: number;
  components: Record<ComponentName, RunningComponent>;
}

interface Context {
  cacheDir: string;
  stateDir: string;
  stateFile: string;
  crdDir: string;
  readyTimeoutMs: number;
  log: (message: string) => void;
  nodeAddress: string | undefined;
  nodeMonitorGraceSeconds: number | undefined;
  signal: AbortSignal | undefined;
}

function contextOf(options: ClusterOptions = {}): Context {
  const cacheDir = options.cacheDir ?? process.env.TETHER_CACHE ?? join(homedir(), '.cache', 'tether');
  const stateDir = join(cacheDir, 'cluster');
  return {
    cacheDir,
    stateDir,
    stateFile: join(stateDir, 'state.json'),
    crdDir: options.crdDir ?? join(REPO_ROOT, 'deploy', 'crds'),
    readyTimeoutMs: options.readyTimeoutMs ?? 120_000,
    log: options.log ?? ((message) => process.stderr.write(`[cluster] ${message}\n`)),
    nodeAddress: options.nodeAddress,
    nodeMonitorGraceSeconds: options.nodeMonitorGraceSeconds,
    signal: options.signal,
  };
}

/** The pinned Kubernetes version, read from build.sh so it is stated once. */
export function pinnedK8sVersion(): string {
  const match = /^K8S_VERSION=(\S+)$/m.exec(readFileSync(BUILD_SCRIPT, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`no K8S_VERSION= line in ${BUILD_SCRIPT}`);
  return match[1];
}

/** Where build.sh puts (or has put) the binaries for the pinned version. */
export function binDirOf(options: ClusterOptions = {}): string {
  return join(contextOf(options).cacheDir, `k8s-${pinnedK8sVersion()}`, 'bin');
}

/** A go package path as `go build -v` prints it (`k8s.io/api/core/v1`, `fmt`). */
const PACKAGE_LINE = /^[\w.~-]+(\/[\w.~+-]+)*$/;

/**
 * Runs build.sh; it returns at once when the pinned binaries are cached. While it builds, a
 * progress line (test/cluster/progress.ts) shows the part being built, its packages compiled
 * out of the total, and the elapsed time; when everything is cached, one "reusing cached" line.
 */
async function ensureBinaries(context: Context): Promise<string> {
  const bin = binDirOf({ cacheDir: context.cacheDir });
  const cached: string[] = [];
  const built: string[] = [];
  let progress: Progress | undefined;
  let state: { phase: string; done?: number; total?: number } | undefined;
  let tail: string[] = [];
  const onLine = (line: string): void => {
    tail = [...tail.slice(-39), line];
    const marker = /^\[build\.sh\] (.+?): (cached|building.*|compiling (\d+) packages)$/.exec(line);
    if (marker !== null) {
      const part = marker[1]!;
      if (marker[2] === 'cached') cached.push(part);
      else if (marker[3] !== undefined) {
        // The stale count includes the main package, which may only need linking (a minute for kubernetes).
        const stale = Number(marker[3]);
        state =
          stale === 1
            ? { phase: `building ${part}: linking` }
            : { phase: `building ${part}: compiling`, done: 0, ...(stale === 0 ? {} : { total: stale - 1 }) };
      } else {
        built.push(part);
        state = { phase: `building ${part}: resolving Go modules` };
      }
      if (state !== undefined && marker[2] !== 'cached') {
        progress ??= startProgress({ label: 'build' }, { phase: state.phase });
        progress.update(state);
      }
      return;
    }
    if (state === undefined || progress === undefined) return;
    if (PACKAGE_LINE.test(line) && state.done !== undefined) {
      const done = state.done + 1;
      state = {
        ...state,
        done,
        ...(state.total !== undefined && done >= state.total
          ? { phase: state.phase.replace(/compiling$/, 'compiling the main package and linking') }
          : {}),
      };
      progress.update({ ...state, detail: line });
    } else if (line.startsWith('go: downloading ')) {
      progress.update({ ...state, detail: line.slice('go: '.length) });
    }
  };
  // Progress goes to stderr so stdout stays `export KUBECONFIG=…` only.
  const child = spawn('bash', [BUILD_SCRIPT], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TETHER_CACHE: context.cacheDir, TETHER_BUILD_PROGRESS: '1' },
    detached: context.signal !== undefined,
  });
  const stop = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  context.signal?.addEventListener('abort', stop, { once: true });
  let pending = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  const [code, signal] = (await once(child, 'close').finally(() => context.signal?.removeEventListener('abort', stop))) as [
    number | null,
    NodeJS.Signals | null,
  ];
  if (pending !== '') onLine(pending);
  if (context.signal?.aborted === true) {
    progress?.done('build stopped');
    throw new Error('stopped before the Kubernetes binaries were built', { cause: context.signal.reason });
  }
  if (code !== 0) {
    progress?.done(`build failed`);
    throw new Error(`test/cluster/build.sh failed (exit ${code ?? signal}); last output:\n${tail.join('\n')}`);
  }
  if (progress === undefined) context.log(`reusing cached ${cached.join(', ')} (${bin})`);
  else progress.done(`built ${built.join(', ')}${cached.length === 0 ? '' : `; reused cached ${cached.join(', ')}`} → ${bin}`);
  return bin;
}

function readState(context: Context): ClusterState | undefined {
  if (!existsSync(context.stateFile)) return undefined;
  try {
    return JSON.parse(readFileSync(context.stateFile, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

function writeState(context: Context, state: ClusterState): void {
  writeFileSync(context.stateFile, `${JSON.stringify(state, null, 2)}\n`);
}

function apiserverTls(context: Context): { ca: Buffer; cert: Buffer; key: Buffer } {
  const certs = ensureCerts(join(context.stateDir, 'certs'));
  return { ca: readFileSync(certs.caCert), cert: readFileSync(certs.admin.cert), key: readFileSync(certs.admin.key) };
}

async function waitApiserverReady(context: Context, state: ClusterState, timeoutMs: number): Promise<void> {
  await waitHealthy(state.components['kube-apiserver'], {
    url: `${state.server}/readyz`,
    tls: apiserverTls(context),
    timeoutMs,
  });
}

/** True when every component of `state` runs and the apiserver answers /readyz. */
async function isHealthy(context: Context, state: ClusterState): Promise<boolean> {
  if (!Object.values(state.components).every(isRunning)) return false;
  try {
    await waitApiserverReady(context, state, 5_000);
    return true;
  } catch {
    return false;
  }
}

async function stopAll(state: ClusterState | undefined): Promise<void> {
  if (state === undefined) return;
  // Clients first, etcd last, so nothing logs storms of connection errors.
  const order: ComponentName[] = ['kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd'];
  for (const name of order) {
    const component = state.components[name] as RunningComponent | undefined;
    if (component !== undefined) await stopComponent(component, name === 'kube-apiserver' ? APISERVER_STOP_GRACE_MS : undefined);
  }
}

function etcdSpec(context: Context, binDir: string, clientPort: number, peerPort: number): ComponentSpec {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return {
    name: 'etcd',
    command: join(binDir, 'etcd'),
    cwd: context.stateDir,
    logFile: join(context.stateDir, 'logs', 'etcd.log'),
    args: [
      '--name=tether-test',
      `--data-dir=${join(context.stateDir, 'etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=tether-test=${peer}`,
      // Test data is disposable; fsync dominates etcd latency on slow CI disks.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
  };
}

function apiserverSpec(context: Context, binDir: string, certs: ClusterCerts, port: number, etcdPort: number): ComponentSpec {
  const served =
    context.nodeAddress === undefined
      ? ['--bind-address=127.0.0.1', '--advertise-address=127.0.0.1']
      : [
          '--bind-address=0.0.0.0',
          `--advertise-address=${context.nodeAddress}`,
          // Node names need not resolve: kubelets listen on their node IP.
          '--kubelet-preferred-address-types=InternalIP,Hostname',
        ];
  return {
    name: 'kube-apiserver',
    command: join(binDir, 'kube-apiserver'),
    cwd: context.stateDir,
    logFile: join(context.stateDir, 'logs', 'kube-apiserver.log'),
    args: [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      ...served,
      `--secure-port=${port}`,
      `--cert-dir=${join(context.stateDir, 'apiserver-certs')}`,
      `--tls-cert-file=${certs.apiserverCert}`,
      `--tls-private-key-file=${certs.apiserverKey}`,
      `--client-ca-file=${certs.caCert}`,
      `--kubelet-client-certificate=${certs.apiserverKubeletClient.cert}`,
      `--kubelet-client-key=${certs.apiserverKubeletClient.key}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--allow-privileged=true',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${certs.serviceAccountPub}`,
      `--service-account-signing-key-file=${certs.serviceAccountKey}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      // Loopback cannot be an Endpoints address, and pods could not reach it anyway.
      '--endpoint-reconciler-type=none',
      '--profiling=false',
    ],
  };
}

function controllerManagerSpec(context: Context, binDir: string, certs: ClusterCerts, port: number): ComponentSpec {
  return {
    name: 'kube-controller-manager',
    command: join(binDir, 'kube-controller-manager'),
    cwd: context.stateDir,
    logFile: join(context.stateDir, 'logs', 'kube-controller-manager.log'),
    args: [
      `--kubeconfig=${join(context.stateDir, 'kube-controller-manager.kubeconfig')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(context.stateDir, 'kube-controller-manager-certs')}`,
      // All default controllers: garbage collector, job, service accounts and
      // their tokens, namespace deletion, node lifecycle, CSR signing…
      '--controllers=*',
      '--use-service-account-credentials=true',
      `--root-ca-file=${certs.caCert}`,
      `--service-account-private-key-file=${certs.serviceAccountKey}`,
      `--cluster-signing-cert-file=${certs.caCert}`,
      `--cluster-signing-key-file=${certs.caKey}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      ...(context.nodeMonitorGraceSeconds === undefined
        ? []
        : [`--node-monitor-grace-period=${context.nodeMonitorGraceSeconds}s`, '--node-monitor-period=1s']),
      // One instance: leader election would only delay start after a restart.
      '--leader-elect=false',
      '--profiling=false',
    ],
  };
}

function schedulerSpec(context: Context, binDir: string, port: number): ComponentSpec {
  return {
    name: 'kube-scheduler',
    command: join(binDir, 'kube-scheduler'),
    cwd: context.stateDir,
    logFile: join(context.stateDir, 'logs', 'kube-scheduler.log'),
    args: [
      `--kubeconfig=${join(context.stateDir, 'kube-scheduler.kubeconfig')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(context.stateDir, 'kube-scheduler-certs')}`,
      '--leader-elect=false',
      '--profiling=false',
    ],
  };
}

function writeKubeconfigs(context: Context, certs: ClusterCerts, server: string): string {
  const admin = join(context.stateDir, 'admin.kubeconfig');
  writeKubeconfig(admin, server, certs.caCert, certs.admin, 'tether-admin');
  writeKubeconfig(
    join(context.stateDir, 'kube-controller-manager.kubeconfig'),
    server,
    certs.caCert,
    certs.controllerManager,
    'system:kube-controller-manager',
  );
  writeKubeconfig(join(context.stateDir, 'kube-scheduler.kubeconfig'), server, certs.caCert, certs.scheduler, 'system:kube-scheduler');
  return admin;
}

/** Starts the control plane from an empty state dir; stops what it started on failure. */
async function startFresh(context: Context, binDir: string): Promise<ClusterState> {
  rmSync(context.stateDir, { recursive: true, force: true });
  mkdirSync(join(context.stateDir, 'logs'), { recursive: true });
  const certs = ensureCerts(join(context.stateDir, 'certs'), context.nodeAddress === undefined ? [] : [`IP:${context.nodeAddress}`]);
  const [etcdPort, peerPort, apiPort, cmPort, schedulerPort] = await freePorts();
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfig = writeKubeconfigs(context, certs, server);
  const started: Partial<Record<ComponentName, RunningComponent>> = {};
  const state = {
    k8sVersion: pinnedK8sVersion(),
    binDir,
    kubeconfig,
    server,
    ...(context.nodeAddress === undefined ? {} : { nodeAddress: context.nodeAddress }),
    ...(context.nodeMonitorGraceSeconds === undefined ? {} : { nodeMonitorGraceSeconds: context.nodeMonitorGraceSeconds }),
    components: started,
  } as ClusterState;
  try {
    started.etcd = startComponent(etcdSpec(context, binDir, etcdPort, peerPort));
    writeState(context, state);
    await waitHealthy(started.etcd, {
      url: `http://127.0.0.1:${etcdPort}/health`,
      timeoutMs: context.readyTimeoutMs,
      isHealthy: (body) => body.includes('"health":"true"'),
    });
    started['kube-apiserver'] = startComponent(apiserverSpec(context, binDir, certs, apiPort, etcdPort));
    writeState(context, state);
    await waitApiserverReady(context, state, context.readyTimeoutMs);
    started['kube-controller-manager'] = startComponent(controllerManagerSpec(context, binDir, certs, cmPort));
    started['kube-scheduler'] = startComponent(schedulerSpec(context, binDir, schedulerPort));
    writeState(context, state);
    await Promise.all([
      waitHealthy(started['kube-controller-manager'], { url: `https://127.0.0.1:${cmPort}/healthz`, timeoutMs: context.readyTimeoutMs }),
      waitHealthy(started['kube-scheduler'], { url: `https://127.0.0.1:${schedulerPort}/healthz`, timeoutMs: context.readyTimeoutMs }),
    ]);
    return state;
  } catch (error) {
    await stopAllStarted(started);
    // Nothing runs any more; the logs stay for the post-mortem.
    rmSync(context.stateFile, { force: true });
    throw error;
  }
}

async function stopAllStarted(started: Partial<Record<ComponentName, RunningComponent>>): Promise<void> {
  for (const component of Object.values(started).reverse()) await stopComponent(component);
}

/** Five distinct free loopback ports, one per listener. */
async function freePorts(): Promise<[number, number, number, number, number]> {
  const ports = new Set<number>();
  while (ports.size < 5) ports.add(await freePort());
  return [...ports] as [number, number, number, number, number];
}

/** Runs the built kubectl against the cluster; throws with its stderr on failure. */
export function kubectl(kubeconfig: string, args: string[], options: ClusterOptions = {}): string {
  const command = join(binDirOf(options), 'kubectl');
  try {
    return execFileSync(command, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      // KUBERC=off: a developer's ~/.kube/kuberc must not change behaviour.
      env: { ...process.env, KUBECONFIG: kubeconfig, KUBERC: 'off' },
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`kubectl ${args.join(' ')} failed: ${stderr.trim()}`, { cause: error });
  }
}

/**
 * Installs (server-side apply, forcing ownership so edited CRDs always win)
 * every `*.yaml` in the CRD directory, then waits until each is Established.
 * Returns the applied object names.
 */
export function applyCrds(kubeconfig: string, options: ClusterOptions = {}): string[] {
  const context = contextOf(options);
  const files = existsSync(context.crdDir)
    ? readdirSync(context.crdDir)
        .filter((file) => file.endsWith('.yaml'))
        .sort()
    : [];
  if (files.length === 0) {
    context.log(`no CRDs in ${context.crdDir} yet`);
    return [];
  }
  const fileArgs = files.flatMap((file) => ['-f', join(context.crdDir, file)]);
  const applied = kubectl(
    kubeconfig,
    ['apply', '--server-side', '--force-conflicts', '--field-manager=tether-test-cluster', '-o', 'name', ...fileArgs],
    options,
  );
  const names = applied.split('\n').filter((name) => name.startsWith('customresourcedefinition'));
  if (names.length > 0) {
    kubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', ...names], options);
  }
  context.log(`CRDs applied and established: ${names.join(', ') || '(none)'}`);
  return names;
}

function infoOf(context: Context, state: ClusterState, reused: boolean): ClusterInfo {
  const { kubeconfig, server, binDir, k8sVersion } = state;
  const nodeServer = state.nodeAddress === undefined ? server : server.replace('127.0.0.1', state.nodeAddress);
  return { kubeconfig, server, nodeServer, stateDir: context.stateDir, binDir, k8sVersion, reused };
}

/** True when a running cluster was started with what `context` asks for. */
function startedAsAsked(context: Context, state: ClusterState): boolean {
  return state.nodeAddress === context.nodeAddress && state.nodeMonitorGraceSeconds === context.nodeMonitorGraceSeconds;
}

/**
 * Brings the cluster up, or reuses a healthy one started earlier from the same
 * state dir (CRDs are re-applied either way). Builds the binaries first when
 * the pinned version is not cached yet. Throws with the failing component's
 * log tail when something does not start.
 */
export async function clusterUp(options: ClusterOptions = {}): Promise<ClusterInfo> {
  const context = contextOf(options);
  mkdirSync(context.cacheDir, { recursive: true });
  return withLock(join(context.cacheDir, 'cluster.lock'), context.log, async () => {
    const binDir = await ensureBinaries(context);
    const previous = readState(context);
    let info: ClusterInfo;
    if (previous !== undefined && previous.binDir === binDir && startedAsAsked(context, previous) && (await isHealthy(context, previous))) {
      context.log(`reusing the running cluster at ${previous.server}`);
      info = infoOf(context, previous, true);
    } else {
      await stopAll(previous);
      const started = Date.now();
      const state = await startFresh(context, binDir);
      context.log(`control plane ${state.k8sVersion} up at ${state.server} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      info = infoOf(context, state, false);
    }
    applyCrds(info.kubeconfig, options);
    return info;
  });
}

/** Stops exactly the processes `clusterUp` started (by process group) and removes the state dir. */
export async function clusterDown(options: ClusterOptions = {}): Promise<void> {
  const context = contextOf(options);
  mkdirSync(context.cacheDir, { recursive: true });
  await withLock(join(context.cacheDir, 'cluster.lock'), context.log, async () => {
    await stopAll(readState(context));
    rmSync(context.stateDir, { recursive: true, force: true });
    context.log(`stopped; removed ${context.stateDir}`);
  });
}

/** Per-component liveness and apiserver readiness, for `main.ts status`. */
export async function clusterStatus(
  options: ClusterOptions = {},
): Promise<{ info?: ClusterInfo; running: Record<string, boolean>; ready: boolean }> {
  const context = contextOf(options);
  const state = readState(context);
  if (state === undefined) return { running: {}, ready: false };
  const running = Object.fromEntries(Object.entries(state.components).map(([name, component]) => [name, isRunning(component)]));
  return { info: infoOf(context, state, true), running, ready: await isHealthy(context, state) };
}

function requireState(context: Context): ClusterState {
  const state = readState(context);
  if (state === undefined) throw new Error(`no cluster state in ${context.stateDir}: run clusterUp first`);
  return state;
}

/** Stops only kube-apiserver (etcd keeps the data), to test reconnects. */
export async function stopApiserver(options: ClusterOptions = {}): Promise<void> {
  const context = contextOf(options);
  // It stops serving at once on SIGTERM but then often lingers until killed;
  // all its state is in etcd, so a short grace period loses nothing.
  await stopComponent(requireState(context).components['kube-apiserver'], APISERVER_STOP_GRACE_MS);
}

/** Starts kube-apiserver again with its previous flags and port; waits for /readyz. */
export async function startApiserver(options: ClusterOptions = {}): Promise<void> {
  const context = contextOf(options);
  const state = requireState(context);
  const previous = state.components['kube-apiserver'];
  if (isRunning(previous)) return;
  state.components['kube-apiserver'] = startComponent(previous);
  writeState(context, state);
  await waitApiserverReady(context, state, context.readyTimeoutMs);
}

/** The secure port a component was started with (`--secure-port=N`). */
function securePortOf(component: RunningComponent): string {
  const flag = component.args.find((arg) => arg.startsWith('--secure-port='));
  if (flag === undefined) throw new Error(`${component.name} has no --secure-port flag`);
  return flag.slice('--secure-port='.length);
}

/**
 * Restarts kube-controller-manager and kube-scheduler (same flags and ports)
 * and waits for their /healthz. After an apiserver outage their informers
 * re-list only after a backoff that can exceed 30 s; a restart makes the
 * control plane promptly usable again for the tests that follow.
 */
export async function restartControllers(options: ClusterOptions = {}): Promise<void> {
  const context = contextOf(options);
  const state = requireState(context);
  const names = ['kube-controller-manager', 'kube-scheduler'] as const;
  for (const name of names) await stopComponent(state.components[name]);
  for (const name of names) state.components[name] = startComponent(state.components[name]);
  writeState(context, state);
  await Promise.all(
    names.map((name) =>
      waitHealthy(state.components[name], {
        url: `https://127.0.0.1:${securePortOf(state.components[name])}/healthz`,
        timeoutMs: context.readyTimeoutMs,
      }),
    ),
  );
}

/** The last lines of one component's log. */
export function componentLogTail(name: ComponentName, lines = 40, options: ClusterOptions = {}): string {
  return logTail(join(contextOf(options).stateDir, 'logs', `${name}.log`), lines);
}
