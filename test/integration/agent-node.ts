/**
 * One Tether agent (ClusterAgent, in-process) against the real apiserver, with its own mock
 * kubelet over real Unix sockets: a "node" for integration tests. No periodic reconcile and no
 * slot grace, so tests drive timing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ClusterAgent } from '../../agent/cluster-agent.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { createAgentMetrics } from '../../agent/metrics.ts';
import type { AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { kubeconfigPath, loadKubeConfig } from './support.ts';

export interface AgentNode {
  readonly name: string;
  readonly dir: string;
  readonly kubelet: MockKubelet;
  readonly agent: ClusterAgent;
  /** Stops the agent and the kubelet and removes their sockets. */
  stop(): Promise<void>;
}

export interface AgentNodeOptions {
  readonly name: string;
  readonly namespace: string;
  readonly handlers: ReadonlyMap<string, AnyDiscoveryHandler>;
  readonly log: Logger;
  readonly startupTimeoutMs?: number;
  /** Default 0: no periodic reconcile, tests drive timing. */
  readonly reconcileIntervalMs?: number;
  /** Default 0: no slot grace. */
  readonly slotGraceMs?: number;
  readonly externalHandler?: (name: string) => AnyDiscoveryHandler | undefined;
}

export async function startAgentNode(options: AgentNodeOptions): Promise<AgentNode> {
  const dir = await mkdtemp(join(tmpdir(), 'ta-'));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
  const agent = new ClusterAgent({
    node: options.name,
    kc: loadKubeConfig(),
    log: options.log.child({ node: options.name }),
    pluginDir: join(dir, 'dp'),
    podResourcesSocket: kubelet.podResourcesSocket!,
    namespace: options.namespace,
    handlers: options.handlers,
    ...(options.externalHandler === undefined ? {} : { externalHandler: options.externalHandler }),
    metrics: createAgentMetrics({ defaultMetrics: false }),
    startupTimeoutMs: options.startupTimeoutMs ?? 2_000,
    reconcileIntervalMs: options.reconcileIntervalMs ?? 0,
    slotGraceMs: options.slotGraceMs ?? 0,
  });
  await agent.start();
  return {
    name: options.name,
    dir,
    kubelet,
    agent,
    async stop(): Promise<void> {
      await agent.stop();
      await kubelet.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface AgentProcessOptions {
  readonly node: string;
  readonly namespace: string;
  readonly pluginDir: string;
  /** The kubelet's PodResources socket; '' turns slot reconciliation off. */
  readonly podResourcesSocket?: string;
  /** The external-handler registration socket; '' for none. */
  readonly registrationSocket?: string;
  /** Port of /healthz, /readyz and /metrics on 127.0.0.1. */
  readonly port: number;
  readonly startupTimeoutMs?: number;
  readonly extraArgs?: readonly string[];
  /** 'pipe': stdout and stderr readable by the test; default: stderr shown only with TETHER_TEST_LOG. */
  readonly output?: 'pipe' | 'log';
}

/** `tether agent` as its own process (the real CLI), against the test cluster. */
export function spawnAgentProcess(options: AgentProcessOptions): ChildProcess {
  const cli = fileURLToPath(new URL('../../bin/tether.ts', import.meta.url));
  const args = [cli, 'agent', '--node-name', options.node, '--namespace', options.namespace, '--device-plugin-dir', options.pluginDir];
  args.push('--pod-resources-socket', options.podResourcesSocket ?? '', '--registration-socket', options.registrationSocket ?? '');
  args.push(
    '--http-address',
    `127.0.0.1:${options.port}`,
    '--startup-timeout',
    String(options.startupTimeoutMs ?? 3000),
    ...(options.extraArgs ?? []),
  );
  const stdio =
    options.output === 'pipe'
      ? (['ignore', 'pipe', 'pipe'] as const)
      : (['ignore', 'ignore', process.env['TETHER_TEST_LOG'] ? 'inherit' : 'ignore'] as const);
  return spawn(process.execPath, args, { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, stdio: [...stdio] });
}
