/**
 * The agent without a cluster: discovery sessions feeding device plugins on this node,
 * slots accounted in memory. Used by `tether demo`, by tests and by the benchmarks;
 * the cluster agent adds Device resources and a Kubernetes-backed ledger around the
 * same pieces.
 */
import type { Logger } from 'pino';
import { DevicePluginManager } from './device-plugin/manager.ts';
import { DiscoverySession, type SessionSpec } from './discovery/session.ts';
import { planLedgerReconcile, type ReconcilePlan } from './ledger/reconcile.ts';
import { SlotLedger } from './ledger/slot-ledger.ts';
import { PodResourcesClient } from './kubelet/pod-resources-client.ts';
import { NodeDevices } from './node-devices.ts';
import { serialTask, type SerialTask } from './serial-task.ts';

export interface StandaloneAgentOptions {
  readonly node: string;
  readonly pluginDir: string;
  readonly discoveries: readonly SessionSpec[];
  readonly log: Logger;
  readonly cdiKind?: string;
  /** The kubelet's PodResources socket; enables ledger reconciliation. */
  readonly podResourcesSocket?: string;
  /** How often to reconcile the ledger (0 = only when asked). */
  readonly reconcileIntervalMs?: number;
  /** How long a held slot may be missing from PodResources before it is freed. */
  readonly slotGraceMs?: number;
}

export class StandaloneAgent {
  readonly ledger = new SlotLedger();
  readonly devices: NodeDevices;
  readonly plugins: DevicePluginManager;
  readonly sessions: DiscoverySession[];
  readonly #sync: SerialTask;
  readonly #options: StandaloneAgentOptions;
  readonly #podResources: PodResourcesClient | undefined;
  #missingSince = new Map<string, number>();
  #reconcileTimer: NodeJS.Timeout | undefined;

  constructor(options: StandaloneAgentOptions) {
    const log = options.log;
    this.#options = options;
    this.#podResources = options.podResourcesSocket === undefined ? undefined : new PodResourcesClient(options.podResourcesSocket);
    this.#sync = serialTask(
      () => this.plugins.sync(this.devices.resources()),
      (error) => log.error({ err: error }, 'Failed to sync device plugins'),
    );
    this.devices = new NodeDevices({
      node: options.node,
      ledger: this.ledger,
      onChange: () => void this.#sync.trigger(),
      ...(options.cdiKind === undefined ? {} : { cdiKind: options.cdiKind }),
    });
    this.plugins = new DevicePluginManager({ pluginDir: options.pluginDir, backend: this.devices, log });
    this.sessions = options.discoveries.map(
      (spec) =>
        new DiscoverySession(spec, {
          node: options.node,
          log,
          onDevices: (devices) => this.devices.setSessionDevices(`${spec.namespace}/${spec.name}`, devices),
        }),
    );
  }

  start(): void {
    this.plugins.start();
    for (const session of this.sessions) session.start();
    const every = this.#options.reconcileIntervalMs ?? 5_000;
    if (this.#podResources !== undefined && every > 0) {
      this.#reconcileTimer = setInterval(() => {
        this.reconcileLedger().catch((error: unknown) => this.#options.log.warn({ err: error }, 'Failed to reconcile slot ledger'));
      }, every);
      this.#reconcileTimer.unref();
    }
  }

  /** Frees slots whose pods are gone and adopts slots the kubelet holds (see ledger/reconcile.ts). */
  async reconcileLedger(): Promise<ReconcilePlan> {
    if (this.#podResources === undefined) throw new Error('no PodResources socket configured');
    const pods = await this.#podResources.list();
    const plan = planLedgerReconcile({
      node: this.#options.node,
      held: [...this.ledger.entries()],
      pods,
      isOwnResource: (resource) => resource.startsWith('tether.dev/'),
      missingSince: this.#missingSince,
      now: Date.now(),
      graceMs: this.#options.slotGraceMs ?? 10_000,
    });
    this.#missingSince = plan.missingSince;
    if (plan.free.length === 0 && plan.adopt.length === 0) return plan;
    this.ledger.applyReconcile(plan, this.#options.node);
    this.#options.log.info({ freed: plan.free, adopted: plan.adopt.map((a) => a.slot) }, 'Reconciled slot ledger');
    await this.#sync.trigger();
    return plan;
  }

  /** Resolves once all queued plugin updates have been applied. */
  settled(): Promise<void> {
    return this.#sync.idle();
  }

  async stop(): Promise<void> {
    clearInterval(this.#reconcileTimer);
    this.#podResources?.close();
    await Promise.all(this.sessions.map((s) => s.stop()));
    await this.#sync.idle();
    await this.plugins.stop();
  }
}
