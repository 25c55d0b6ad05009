/**
 * Composition root of `tether agent`: builds the pieces from a validated config, runs
 * until the signal aborts, then shuts down without deleting anything.
 */
import { KubeConfig } from '../kube/kubeconfig.ts';
import type { Logger } from 'pino';
import { builtinNameFor } from '../discovery-handlers/names.ts';
import { builtinHandlers } from '../discovery-handlers/registry.ts';
import { ClusterAgent } from './cluster-agent.ts';
import type { DevicePluginMode } from './device-plugin/resources.ts';
import { endpointsFile } from './external/endpoint-store.ts';
import { ExternalHandlerRegistry } from './external/registry.ts';
import { startHttpServer } from './http-server.ts';
import { createAgentMetrics } from './metrics.ts';

export interface AgentConfig {
  /** This node's name (from the downward API in a DaemonSet). */
  readonly node: string;
  /** Kubeconfig path; in-cluster config when absent. */
  readonly kubeconfig?: string;
  /** Watch one namespace only; all when absent. */
  readonly namespace?: string;
  readonly pluginDir: string;
  /** Empty string disables slot reconciliation. */
  readonly podResourcesSocket: string;
  /** Where external (Akri v0) handlers register; empty string disables. */
  readonly registrationSocket: string;
  /**
   * Where the agent keeps state across restarts (the external handler endpoints it
   * remembers: `<stateDir>/external-handlers.json`); empty string disables.
   */
  readonly stateDir: string;
  /** host:port for /metrics, /healthz, /readyz; empty string disables. */
  readonly httpAddress: string;
  readonly startupTimeoutMs: number;
  readonly reconcileIntervalMs: number;
  readonly slotGraceMs: number;
  readonly cdiKind?: string;
  /** `per-device` (default) or `lean`: one device-plugin server per discovery (docs/device-plugin-modes.md). */
  readonly devicePluginMode?: DevicePluginMode;
  /** Serve DRA discoveries as a kubelet DRA plugin (checkpoint in `stateDir`); absent: off. */
  readonly dra?: { readonly kubeletDir: string; readonly cdiDir: string };
}

export async function runAgent(config: AgentConfig, log: Logger, signal: AbortSignal): Promise<void> {
  const kc = new KubeConfig();
  if (config.kubeconfig !== undefined) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromCluster();
  const metrics = createAgentMetrics();
  const external =
    config.registrationSocket === ''
      ? undefined
      : new ExternalHandlerRegistry({
          socketPath: config.registrationSocket,
          log,
          ...(config.stateDir === '' ? {} : { stateFile: endpointsFile(config.stateDir) }),
        });
  const agent = new ClusterAgent({
    node: config.node,
    kc,
    log,
    pluginDir: config.pluginDir,
    ...(config.podResourcesSocket === '' ? {} : { podResourcesSocket: config.podResourcesSocket }),
    ...(config.namespace === undefined ? {} : { namespace: config.namespace }),
    handlers: builtinHandlers(),
    ...(external === undefined ? {} : { externalHandler: (name: string) => external.handler(name) }),
    metrics,
    startupTimeoutMs: config.startupTimeoutMs,
    reconcileIntervalMs: config.reconcileIntervalMs,
    slotGraceMs: config.slotGraceMs,
    ...(config.cdiKind === undefined ? {} : { cdiKind: config.cdiKind }),
    ...(config.devicePluginMode === undefined ? {} : { devicePluginMode: config.devicePluginMode }),
    ...(config.dra === undefined ? {} : { dra: { ...config.dra, stateDir: config.stateDir } }),
  });
  const http =
    config.httpAddress === ''
      ? undefined
      : await startHttpServer(config.httpAddress, metrics.registry, { healthy: () => !signal.aborted, ready: () => agent.ready });
  try {
    if (external !== undefined) {
      await external.start();
      // A newly registered handler may unblock a waiting discovery. (Unregistering stops
      // nothing: the running session keeps its devices through the grace period.)
      external.on('registered', (name: string) => {
        const builtin = builtinNameFor(name);
        if (builtin !== undefined)
          log.warn(
            { handler: name, builtin },
            'Registered an external handler under a built-in handler name; only DeviceDiscoveries with handlerSource External use it',
          );
        void agent.rediscover();
      });
    }
    await agent.start();
  } catch (error) {
    // A failed start is fatal: release everything (the HTTP server would keep a half-started
    // agent alive and "healthy"), so the process exits and the kubelet restarts it.
    await Promise.allSettled([agent.stop(), external?.stop()]);
    await new Promise<void>((resolve) => (http === undefined ? resolve() : http.close(() => resolve())));
    throw error;
  }
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  log.info('Shutting down: deregistering plugins, deleting nothing');
  await agent.stop();
  await external?.stop();
  await new Promise<void>((resolve) => (http === undefined ? resolve() : http.close(() => resolve())));
}
