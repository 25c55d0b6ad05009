/**
 * The agent without a cluster: the node runtime with discoveries given up front and
 * devices published nowhere (slots accounted in memory). Used by `tether demo`, by tests
 * and by the benchmarks; the cluster agent runs the same runtime with cluster adapters.
 */
import type { Logger } from 'pino';
import type { DevicePluginManager } from './device-plugin/manager.ts';
import type { SessionSpec } from './discovery/session.ts';
import type { ReconcilePlan } from './ledger/reconcile.ts';
import type { SlotLedger } from './ledger/slot-ledger.ts';
import { noPublication, staticDiscoveries } from './runtime/adapters.ts';
import { NodeRuntime } from './runtime/node-runtime.ts';
import type { NodeDevices } from './runtime/node-devices.ts';

export interface StandaloneAgentOptions {
  readonly node: string;
  readonly pluginDir: string;
  readonly discoveries: readonly SessionSpec[];
  readonly log: Logger;
  readonly cdiKind?: string;
  /** The kubelet's PodResources socket; enables ledger reconciliation. */
  readonly podResourcesSocket?: string;
  /** How often to reconcile the ledger while this node holds a slot (0 = only when asked). */
  readonly reconcileIntervalMs?: number;
  /** How often while it holds none. */
  readonly idleReconcileIntervalMs?: number;
  /** How long a held slot may be missing from PodResources before it is freed. */
  readonly slotGraceMs?: number;
}

export class StandaloneAgent {
  readonly #runtime: NodeRuntime;
  readonly #log: Logger;
  #starting: Promise<void> = Promise.resolve();

  constructor(options: StandaloneAgentOptions) {
    this.#log = options.log;
    this.#runtime = new NodeRuntime({
      node: options.node,
      log: options.log,
      pluginDir: options.pluginDir,
      source: staticDiscoveries(options.discoveries),
      publication: noPublication(),
      ...(options.podResourcesSocket === undefined ? {} : { podResourcesSocket: options.podResourcesSocket }),
      ...(options.reconcileIntervalMs === undefined ? {} : { reconcileIntervalMs: options.reconcileIntervalMs }),
      ...(options.idleReconcileIntervalMs === undefined ? {} : { idleReconcileIntervalMs: options.idleReconcileIntervalMs }),
      ...(options.slotGraceMs === undefined ? {} : { slotGraceMs: options.slotGraceMs }),
      ...(options.cdiKind === undefined ? {} : { cdiKind: options.cdiKind }),
    });
  }

  get ledger(): SlotLedger {
    return this.#runtime.ledger;
  }

  get devices(): NodeDevices {
    return this.#runtime.devices;
  }

  get plugins(): DevicePluginManager {
    return this.#runtime.plugins;
  }

  /** Starts serving in the background (nothing to wait for without a cluster); `settled()` waits. */
  start(): void {
    this.#starting = this.#runtime.start().catch((error: unknown) => this.#log.error({ err: error }, 'Failed to start the agent'));
  }

  /** Frees slots whose pods are gone and adopts slots the kubelet holds (see ledger/reconcile.ts). */
  reconcileLedger(): Promise<ReconcilePlan> {
    return this.#runtime.reconcileLedger();
  }

  /** Resolves once start-up and all queued plugin updates have been applied. */
  async settled(): Promise<void> {
    await this.#starting;
    await this.#runtime.settled();
  }

  async stop(): Promise<void> {
    await this.#starting;
    await this.#runtime.stop();
  }
}
