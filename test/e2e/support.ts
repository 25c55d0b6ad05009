/**
 * Helpers for the e2e tests: the Tether agent as a CLI child process, pods
 * that request extended resources, and deadline-bounded waits on the Node,
 * Pods and Devices (watches) and on the kubelet's own PodResources view.
 * API clients, namespaces and `waitFor` come from the integration helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { inject } from 'vitest';
import type { Device } from '../../api/schema.ts';
import { freePort, logTail } from '../cluster/processes.ts';
import { api, GROUP, VERSION, waitFor } from '../integration/support.ts';
import { BUSYBOX_IMAGE } from './layout.ts';
import { kubeletAllocatable } from './kubelet-view.ts';
import { watchUntil } from './watch.ts';

export { api, waitFor };

/** The e2e Node's name (provided by the global setup). */
export function nodeName(): string {
  return inject('e2eNodeName');
}

/** A running `tether agent` child process. */
export interface AgentProcess {
  child: ChildProcess;
  httpPort: number;
  logFile: string;
  /** SIGTERM, then wait for exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** Throws (with the log tail) if the agent has exited. */
  assertRunning(): void;
}

/** Options for {@link startAgent}. */
export interface AgentOptions {
  node: string;
  namespace: string;
  devicePluginDir: string;
  podResourcesSocket: string;
  logFile: string;
  extraArgs?: string[];
}

/**
 * Starts `node bin/tether.ts agent` (the real CLI) and waits for /readyz.
 * Logs (JSON, debug level) go to `logFile`, replacing an earlier run's.
 */
export async function startAgent(options: AgentOptions): Promise<AgentProcess> {
  const cli = fileURLToPath(new URL('../../bin/tether.ts', import.meta.url));
  const httpPort = await freePort();
  const log = openSync(options.logFile, 'w');
  const args = [
    cli,
    '--log-level',
    'debug',
    'agent',
    '--node-name',
    options.node,
    '--namespace',
    options.namespace,
    '--kubeconfig',
    inject('kubeconfig'),
    '--device-plugin-dir',
    options.devicePluginDir,
    '--pod-resources-socket',
    options.podResourcesSocket,
    '--registration-socket',
    '',
    '--http-address',
    `127.0.0.1:${httpPort}`,
    ...(options.extraArgs ?? []),
  ];
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, { stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  const assertRunning = (): void => {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `tether agent exited (${child.exitCode ?? child.signalCode}). Log tail (${options.logFile}):\n${logTail(options.logFile)}`,
      );
    }
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitFor(
      async () => {
        assertRunning();
        return (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok;
      },
      { timeoutMs: 30_000, description: 'tether agent /readyz' },
    );
  } catch (error) {
    await stop();
    throw new Error(`tether agent did not become ready. Log tail (${options.logFile}):\n${logTail(options.logFile)}`, { cause: error });
  }
  return { child, httpPort, logFile: options.logFile, stop, assertRunning };
}

/** Creates a DeviceDiscovery in `namespace`. */
export async function createDiscovery(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await api().custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: 'devicediscoveries',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'DeviceDiscovery', metadata: { name }, spec },
  });
}

/**
 * A busybox pod that requests `count` of an extended resource, prints
 * `script`'s output and then idles; exits at once on SIGTERM so deletion is
 * quick. No service-account token or service links: nothing but the device.
 */
export function devicePod(name: string, resource: string, script: string, count = 1): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { 'tether.dev/e2e': 'true' } },
    spec: {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: 'main',
          image: BUSYBOX_IMAGE,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', `trap 'exit 0' TERM; ${script}; sleep 3600 & wait`],
          resources: { limits: { [resource]: String(count) } },
        },
      ],
    },
  };
}

/** Creates a pod in `namespace`. */
export async function createPod(namespace: string, pod: V1Pod): Promise<void> {
  await api().core.createNamespacedPod({ namespace, body: pod });
}

/** Deletes a pod and waits until it is gone from the API (the kubelet confirmed its containers stopped). */
export async function deletePod(namespace: string, name: string, timeoutMs = 60_000): Promise<void> {
  await api().core.deleteNamespacedPod({ namespace, name });
  await watchUntil<V1Pod>(api().kc, {
    path: `/api/v1/namespaces/${namespace}/pods`,
    fieldSelector: `metadata.name=${name}`,
    predicate: (_pod, type) => type === 'DELETED',
    timeoutMs,
    description: `pod ${name} deleted`,
    describe: (pod) => `${pod.status?.phase ?? '?'} deletionTimestamp=${String(pod.metadata?.deletionTimestamp)}`,
  });
}

function podSummary(pod: V1Pod): string {
  return JSON.stringify({
    phase: pod.status?.phase,
    reason: pod.status?.reason,
    message: pod.status?.message,
    conditions: pod.status?.conditions,
    containerStatuses: pod.status?.containerStatuses,
  });
}

/** Waits for a pod to run; fails at once if it fails (e.g. UnexpectedAdmissionError from Allocate). */
export async function waitPodRunning(namespace: string, name: string, timeoutMs = 60_000): Promise<V1Pod> {
  return watchUntil<V1Pod>(api().kc, {
    path: `/api/v1/namespaces/${namespace}/pods`,
    fieldSelector: `metadata.name=${name}`,
    predicate: (pod) => {
      if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') throw new Error(`pod ${name} ended: ${podSummary(pod)}`);
      return pod.status?.phase === 'Running' && (pod.status.containerStatuses ?? []).every((c) => c.state?.running !== undefined);
    },
    timeoutMs,
    description: `pod ${name} Running`,
    describe: podSummary,
  });
}

/** Waits until the scheduler reports the pod Unschedulable; returns the condition's message. */
export async function waitPodUnschedulable(namespace: string, name: string, timeoutMs = 30_000): Promise<string> {
  const pod = await watchUntil<V1Pod>(api().kc, {
    path: `/api/v1/namespaces/${namespace}/pods`,
    fieldSelector: `metadata.name=${name}`,
    predicate: (p) => {
      if (p.spec?.nodeName !== undefined) throw new Error(`pod ${name} was bound to ${p.spec.nodeName}`);
      return p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable') ?? false;
    },
    timeoutMs,
    description: `pod ${name} Unschedulable`,
    describe: podSummary,
  });
  return pod.status?.conditions?.find((c) => c.type === 'PodScheduled')?.message ?? '';
}

/** Reads a pod's log through the apiserver (which fetches it from the kubelet). */
export async function podLog(namespace: string, name: string): Promise<string> {
  return api().core.readNamespacedPodLog({ namespace, name, container: 'main' });
}

/** Polls the pod's log until it contains every one of `lines` (whole lines); returns the log. */
export async function waitPodLogLines(namespace: string, name: string, lines: string[], timeoutMs = 20_000): Promise<string> {
  let log = '';
  try {
    return await waitFor(
      async () => {
        log = await podLog(namespace, name);
        const have = new Set(log.split('\n'));
        return lines.every((line) => have.has(line)) ? log : undefined;
      },
      { timeoutMs, description: `log lines of pod ${name}` },
    );
  } catch (error) {
    throw new Error(`pod ${name} log lacks some of ${JSON.stringify(lines)}; log:\n${log}`, { cause: error });
  }
}

/** `status.allocatable[resource]` of a Node, or undefined. */
export function allocatable(node: V1Node, resource: string): string | undefined {
  return node.status?.allocatable?.[resource];
}

/** Watches the Node until `predicate` accepts it. */
export async function waitNode(predicate: (node: V1Node) => boolean, description: string, timeoutMs = 30_000): Promise<V1Node> {
  return watchUntil<V1Node>(api().kc, {
    path: '/api/v1/nodes',
    fieldSelector: `metadata.name=${nodeName()}`,
    predicate: (node, type) => type !== 'DELETED' && predicate(node),
    timeoutMs,
    description,
    describe: (node) => JSON.stringify({ allocatable: node.status?.allocatable, capacity: node.status?.capacity }),
  });
}

/** Watches a Device until `predicate` accepts it (DELETED events pass `undefined`-free objects with type). */
export async function waitDevice(
  namespace: string,
  name: string,
  predicate: (device: Device, type: string) => boolean,
  description: string,
  timeoutMs = 30_000,
): Promise<Device> {
  return watchUntil<Device>(api().kc, {
    path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/devices`,
    fieldSelector: `metadata.name=${name}`,
    predicate,
    timeoutMs,
    description,
    describe: (device) => JSON.stringify({ nodes: device.spec.nodes, slots: device.spec.slots, capacity: device.spec.capacity }),
  });
}

/** Device IDs of `resource` in the kubelet's own PodResources view (kubelet-view.ts). */
export async function kubeletAllocatableIds(podResourcesSocket: string, resource: string, timeoutMs = 5_000): Promise<string[]> {
  return (await kubeletAllocatable(podResourcesSocket, timeoutMs)).get(resource) ?? [];
}
