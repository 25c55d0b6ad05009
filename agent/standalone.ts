/**
 * The agent without a cluster: discovery sessions feeding device plugins on this node,
 * slots accounted in memory. Used by `tether demo`, by tests and by the benchmarks;
 * the cluster agent adds Device resources and a Kubernetes-backed ledger around the
 * same pieces.
 */
import type { Logger } from 'pino';
import { DevicePluginManager } from './device-plugin/manager.ts';
import { DiscoverySession, type SessionSpec } from './discovery/session.ts';
import { SlotLedger } from './ledger/slot-ledger.ts';
import { NodeDevices } from './node-devices.ts';
import { serialTask, type SerialTask } from './serial-task.ts';

export interface StandaloneAgentOptions {
  readonly node: string;
  readonly pluginDir: string;
  readonly discoveries: readonly SessionSpec[];
  readonly log: Logger;
  readonly cdiKind?: string;
}

export class StandaloneAgent {
  readonly ledger = new SlotLedger();
  readonly devices: NodeDevices;
  readonly plugins: DevicePluginManager;
  readonly sessions: DiscoverySession[];
  readonly #sync: SerialTask;

  constructor(options: StandaloneAgentOptions) {
    const log = options.log;
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
  }

  /** Resolves once all queued plugin updates have been applied. */
  settled(): Promise<void> {
    return this.#sync.idle();
  }

  async stop(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.stop()));
    await this.#sync.idle();
    await this.plugins.stop();
  }
}
