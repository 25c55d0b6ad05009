/**
 * WebAssembly on the e2e node, for tests: Tether's wasmtime shim (deploy/wasm-shim, built by
 * test/cluster/build-wasm-shim.sh — test/cluster/build.sh runs it, so the e2e setup has it before
 * node 1's containerd 1.6 starts with the `wasmtime` runtime), the sample broker's image
 * (examples/wasm-broker packed by deploy/image/wasm-image.ts) imported into a node's containerd,
 * the `wasmtime` RuntimeClass, and a pod that runs the broker.
 *
 * Reusable by any e2e test that runs Wasm brokers: call {@link ensureWasmRuntime} in beforeAll,
 * then use {@link wasmBrokerPodSpec} (or {@link WASM_BROKER_IMAGE} with `runtimeClassName:
 * wasmtime`) in a pod template.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { buildWasmBrokerImage, WASM_BROKER_IMAGE, type BuiltWasmImage, type WasmBrokerTarget } from '../../deploy/image/wasm-image.ts';
import { runCommand } from '../../deploy/image/exec.ts';
import { api, kubectl } from '../integration/support.ts';
import { watchUntil } from './watch.ts';
import { ctrCommand, isContainerdConfigCurrent, WASM_RUNTIME_HANDLER, WASM_SHIM_BINARY, builtWasmShimDir } from './containerd.ts';
import { importedDigest } from './images.ts';
import type { NodeLayout } from './layout.ts';

export { WASM_BROKER_IMAGE, WASM_RUNTIME_HANDLER, WASM_SHIM_BINARY };

const execFileAsync = promisify(execFile);

/** The RuntimeClass `wasmtime` (handler `wasmtime`), as users apply it. */
export const WASM_RUNTIME_CLASS_MANIFEST = fileURLToPath(new URL('../../deploy/examples/runtimeclass-wasmtime.yaml', import.meta.url));
const BUILD_SCRIPT = fileURLToPath(new URL('../cluster/build-wasm-shim.sh', import.meta.url));

/**
 * Builds the shim when its cached build is missing (minutes cold, ~0.1 s cached) and returns
 * its bin dir. The e2e setup already ran it through build.sh; this is for callers outside it.
 */
export async function ensureWasmShim(cacheDir: string): Promise<string> {
  const env = { ...process.env, TETHER_CACHE: cacheDir };
  await execFileAsync('bash', [BUILD_SCRIPT], { env, maxBuffer: 64 * 1024 * 1024 });
  const dir = builtWasmShimDir(cacheDir);
  if (dir === undefined) throw new Error(`${BUILD_SCRIPT} succeeded but ${WASM_SHIM_BINARY} is missing`);
  return dir;
}

/**
 * Why `layout`'s containerd cannot run Wasm pods, or undefined when it can: it must be the
 * containerd 1.6 node, the shim must be built and containerd must run with the config that names it.
 */
export function wasmRuntimeProblem(layout: NodeLayout): string | undefined {
  if (layout.runtime === 'containerd-2') return `${layout.nodeName} runs containerd 2; the wasmtime runtime is on the containerd 1.6 node`;
  if (builtWasmShimDir(layout.cacheDir) === undefined) return `${WASM_SHIM_BINARY} is not built (test/cluster/build-wasm-shim.sh)`;
  if (!isContainerdConfigCurrent(layout)) return `${layout.nodeName}'s containerd runs an older config (restart the node)`;
  return undefined;
}

/**
 * Builds the sample broker's image (wasm32-wasip2 unless `target` says otherwise) and imports it
 * into `layout`'s containerd unless it has that digest.
 */
export async function importWasmBrokerImage(
  layout: NodeLayout,
  target: WasmBrokerTarget = 'wasm32-wasip2',
): Promise<BuiltWasmImage & { imported: boolean }> {
  const image = await buildWasmBrokerImage({ target, out: join(layout.imageDir, `wasm-broker-${target}.oci.tar`) });
  if (importedDigest(layout, image.name) === image.manifestDigest) return { ...image, imported: false };
  await execFileAsync(ctrCommand(layout), ['--address', layout.containerdSocket, '--namespace', 'k8s.io', 'images', 'import', image.out]);
  const listed = importedDigest(layout, image.name);
  if (listed !== image.manifestDigest)
    throw new Error(`imported ${image.name} but containerd lists ${listed ?? 'nothing'}, not ${image.manifestDigest}`);
  return { ...image, imported: true };
}

/** Applies the `wasmtime` RuntimeClass (idempotent). */
export async function applyWasmRuntimeClass(): Promise<void> {
  await kubectl('apply', '-f', WASM_RUNTIME_CLASS_MANIFEST);
}

/**
 * Everything a Wasm broker needs on `layout`'s node: throws {@link wasmRuntimeProblem}'s
 * answer, else imports the broker image and applies the RuntimeClass.
 */
export async function ensureWasmRuntime(layout: NodeLayout): Promise<BuiltWasmImage & { imported: boolean }> {
  const problem = wasmRuntimeProblem(layout);
  if (problem !== undefined) throw new Error(`no Wasm runtime: ${problem}`);
  const image = await importWasmBrokerImage(layout);
  await applyWasmRuntimeClass();
  return image;
}

/** What {@link wasmBrokerPodSpec} needs. */
export interface WasmBrokerOptions {
  /** Env vars for the broker (a device's, as Tether's device plugin would set them); PORT is added. */
  env?: Readonly<Record<string, string>>;
  /** Pins the pod to this node (the containerd 1.6 node: only its containerd has the runtime). */
  node?: string;
  /** The broker's HTTP port (default 8080). */
  port?: number;
  /** Another image (default {@link WASM_BROKER_IMAGE}), e.g. the preview 1 build. */
  image?: string;
}

/**
 * The pod spec of a sample Wasm broker: RuntimeClass `wasmtime`, the imported image (never
 * pulled), the `http` port and a readiness probe on `/healthz`. Usable as a Deployment's or a
 * DeviceDiscovery broker's pod template (the controller adds the device's resource and env).
 */
export function wasmBrokerPodSpec(options: WasmBrokerOptions = {}): V1PodSpec {
  const port = options.port ?? 8080;
  return {
    runtimeClassName: WASM_RUNTIME_HANDLER,
    ...(options.node === undefined ? {} : { nodeSelector: { 'kubernetes.io/hostname': options.node } }),
    containers: [
      {
        name: 'main',
        image: options.image ?? WASM_BROKER_IMAGE,
        imagePullPolicy: 'Never',
        env: [...Object.entries(options.env ?? {}).map(([name, value]) => ({ name, value })), { name: 'PORT', value: String(port) }],
        ports: [{ containerPort: port, name: 'http' }],
        readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2 },
      },
    ],
  };
}

/** A pod running the sample Wasm broker ({@link wasmBrokerPodSpec}). */
export function wasmBrokerPod(name: string, options: WasmBrokerOptions = {}): V1Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'wasm-broker' } }, spec: wasmBrokerPodSpec(options) };
}

/** Waits until the pod's Ready condition is True (its readiness probe passed). */
export async function waitPodReady(namespace: string, name: string, timeoutMs = 60_000): Promise<V1Pod> {
  return watchUntil<V1Pod>(api().kc, {
    path: `/api/v1/namespaces/${namespace}/pods`,
    fieldSelector: `metadata.name=${name}`,
    predicate: (pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    timeoutMs,
    description: `pod ${name} Ready`,
    describe: (pod) =>
      JSON.stringify({ phase: pod.status?.phase, conditions: pod.status?.conditions, containerStatuses: pod.status?.containerStatuses }),
  });
}

/** One process running the shim's binary. */
export interface WasmShimProcess {
  pid: number;
  ppid: number;
  /** Resident memory, KiB (pages shared with the other shim processes, such as the binary's code, count in each). */
  rssKiB: number;
  /** Proportional set size, KiB: shared pages divided among their users (the processes' PSS adds up). */
  pssKiB: number;
  /** The process's cgroup path (v1 memory controller): the container it belongs to, or the shim's own. */
  cgroup: string;
}

/**
 * The shim's processes on this machine, with their resident memory: per pod, containerd starts
 * one shim (the ttrpc server, parent 1 after it daemonises), which runs each container (pause,
 * then the wasm guest) as a child process of the same binary.
 */
export function wasmShimProcesses(): WasmShimProcess[] {
  const found: WasmShimProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (basename(readlinkSync(`/proc/${entry}/exe`)).replace(/ \(deleted\)$/, '') !== WASM_SHIM_BINARY) continue;
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
      const ppid = /^PPid:\s+(\d+)$/m.exec(status);
      const pss = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${entry}/smaps_rollup`, 'utf8'));
      const cgroups = readFileSync(`/proc/${entry}/cgroup`, 'utf8');
      const cgroup = /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$/m.exec(cgroups)?.[1] ?? /^0::(.*)$/m.exec(cgroups)?.[1] ?? '?';
      if (rss !== null && ppid !== null && pss !== null)
        found.push({ pid: Number(entry), ppid: Number(ppid[1]), rssKiB: Number(rss[1]), pssKiB: Number(pss[1]), cgroup });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}

/** The shim's version lines (`containerd-shim-wasmtime-v1 -v`). */
export function wasmShimVersion(cacheDir: string): string {
  const dir = builtWasmShimDir(cacheDir);
  if (dir === undefined) throw new Error(`${WASM_SHIM_BINARY} is not built`);
  return runCommand(join(dir, WASM_SHIM_BINARY), ['-v']).trim();
}
