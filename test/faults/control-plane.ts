/**
 * The fault suite's own control plane: a separate cache dir (`$TETHER_FAULT_CACHE`, default
 * `~/.cache/tether-faults`) whose Kubernetes binaries are a symlink to the shared build
 * (never rebuilt), so stopping its apiserver and etcd disturbs no other suite.
 *
 * {@link stopApiserverAndEtcd} / {@link startEtcdAndApiserver} stop and restart exactly the
 * processes this control plane started (state.json), with their previous flags and ports.
 */
import { lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pinnedK8sVersion, restartControllers, startApiserver } from '../cluster/cluster.ts';
import { isRunning, startComponent, stopComponent, waitHealthy, type RunningComponent } from '../cluster/processes.ts';

/** Root of the fault suite's cluster state (never the shared `~/.cache/tether`). */
export function faultCacheDir(): string {
  return process.env.TETHER_FAULT_CACHE ?? join(homedir(), '.cache', 'tether-faults');
}

/** Links the shared, already built `k8s-<version>` directory into the fault cache dir. */
export function linkSharedBinaries(cacheDir: string): void {
  const name = `k8s-${pinnedK8sVersion()}`;
  const shared = join(process.env.TETHER_CACHE ?? join(homedir(), '.cache', 'tether'), name);
  const link = join(cacheDir, name);
  mkdirSync(cacheDir, { recursive: true });
  const existing = lstatSync(link, { throwIfNoEntry: false });
  if (existing !== undefined) {
    if (existing.isSymbolicLink() && readlinkSync(link) === shared) return;
    rmSync(link, { recursive: true, force: true });
  }
  symlinkSync(shared, link);
}

interface State {
  components: Record<'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler', RunningComponent>;
}

function stateFile(cacheDir: string): string {
  return join(cacheDir, 'cluster', 'state.json');
}

function readState(cacheDir: string): State {
  return JSON.parse(readFileSync(stateFile(cacheDir), 'utf8')) as State;
}

/** Stops this control plane's kube-apiserver, then its etcd (the data stays on disk). */
export async function stopApiserverAndEtcd(cacheDir: string): Promise<void> {
  const state = readState(cacheDir);
  if (!state.components.etcd.args.some((a) => a.includes(cacheDir))) throw new Error(`refusing to stop an etcd outside ${cacheDir}`);
  await stopComponent(state.components['kube-apiserver'], 3_000);
  await stopComponent(state.components.etcd);
}

/**
 * Starts etcd again (same flags, data and ports), waits for its /health, then the apiserver
 * (waits for /readyz), then restarts controller-manager and scheduler, whose informers would
 * otherwise re-list only after a long backoff.
 */
export async function startEtcdAndApiserver(cacheDir: string): Promise<void> {
  const state = readState(cacheDir);
  const etcd = state.components.etcd;
  if (!isRunning(etcd)) {
    state.components.etcd = startComponent(etcd);
    writeFileSync(stateFile(cacheDir), `${JSON.stringify(state, null, 2)}\n`);
    const client = etcd.args.find((a) => a.startsWith('--listen-client-urls='))!.slice('--listen-client-urls='.length);
    await waitHealthy(state.components.etcd, {
      url: `${client}/health`,
      timeoutMs: 60_000,
      isHealthy: (body) => body.includes('"health":"true"'),
    });
  }
  await startApiserver({ cacheDir });
}

/** Restarts controller-manager and scheduler of this control plane (after an outage). */
export function restartFaultControllers(cacheDir: string): Promise<void> {
  return restartControllers({ cacheDir });
}

/**
 * Stops this control plane's kube-controller-manager (its garbage collector would delete a
 * gone Device's brokers through owner references, hiding whether Tether's controller did).
 * {@link restartFaultControllers} brings it back.
 */
export async function stopControllerManager(cacheDir: string): Promise<void> {
  await stopComponent(readState(cacheDir).components['kube-controller-manager']);
}
