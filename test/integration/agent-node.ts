/**
 * One Tether agent (ClusterAgent, in-process) against the real apiserver, with its own mock
 * kubelet over real Unix sockets: a "node" for integration tests. No periodic reconcile and no
 * slot grace, so tests drive timing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ClusterAgent } from '../../agent/cluster-agent.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { createAgentMetrics } from '../../agent/metrics.ts';
import type { AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { loadKubeConfig } from './support.ts';

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
    reconcileIntervalMs: 0,
    slotGraceMs: 0,
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
