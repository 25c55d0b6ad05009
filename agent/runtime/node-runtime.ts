/**
 * The node runtime: discovery sessions → served devices → device plugins, with one slot
 * ledger, for both the standalone agent and the cluster agent. What differs between them is
 * behind two adapters (see adapters.ts): where discoveries come from and where devices are
 * published.
 *
 * Change propagation is level-triggered: every change (a handler report, a slot claim, a
 * server-side slot record) triggers serial tasks that recompute from current state — one
 * for the sessions, one for the plugins, one for the publication.
 *
 * Restart safety: a session starts seeded with the devices the publication says this node
 * served before (cluster: its Device objects), so nothing is deleted or re-created; a seeded
 * device leaves only if the handler's first full report (or the start-up timeout) says it is
 * gone, and then through the normal offline grace period.
 */
import type { Logger } from 'pino';
import type { AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import type { ServedDevice } from '../device.ts';
import { DevicePluginManager } from '../device-plugin/manager.ts';
import { splitDraDevices, type DraDeviceRouting } from '../dra/routing.ts';
import type { DevicePluginMode } from '../device-plugin/resources.ts';
import { DiscoverySession } from '../discovery/session.ts';
import { PodResourcesClient } from '../kubelet/pod-resources-client.ts';
import { planLedgerReconcile, type ReconcilePlan } from '../ledger/reconcile.ts';
import { shouldReconcile } from '../ledger/reconcile-schedule.ts';
import { SlotLedger } from '../ledger/slot-ledger.ts';
import type { AgentMetrics } from '../metrics.ts';
import type { PluginDevice } from '../../proto/types.ts';
import type { DevicePublication, DiscoverySource } from './adapters.ts';
import type { DesiredSession } from './desired-sessions.ts';
import { NodeDevices } from './node-devices.ts';
import { serialTask, type SerialTask } from './serial-task.ts';

export interface NodeRuntimeOptions {
  readonly node: string;
  readonly log: Logger;
  /** The kubelet's device-plugins directory. */
  readonly pluginDir: string;
  readonly source: DiscoverySource;
  readonly publication: DevicePublication;
  /** The kubelet's PodResources socket; enables slot reconciliation. */
  readonly podResourcesSocket?: string;
  /**
   * How often to reconcile the ledger with PodResources while this node holds a slot (0 = only
   * when asked); default 5 s.
   */
  readonly reconcileIntervalMs?: number;
  /** How often while it holds none (see ledger/reconcile-schedule.ts); default 60 s. */
  readonly idleReconcileIntervalMs?: number;
  /** How long a held slot may be missing from PodResources before it is freed; default 10 s. */
  readonly slotGraceMs?: number;
  /** Longest wait for a handler's first report before unconfirmed seeded devices go offline; default 30 s. */
  readonly startupTimeoutMs?: number;
  readonly cdiKind?: string;
  /** How devices are offered to the kubelet (see device-plugin/resources.ts); default `per-device`. */
  readonly devicePluginMode?: DevicePluginMode;
  readonly metrics?: AgentMetrics;
  /**
   * The DRA backend (`--dra`): devices of DRA discoveries go to it instead of the device
   * plugins. Absent: every device is served through the device plugins.
   */
  readonly dra?: DraDeviceRouting;
}

interface RunningSession {
  readonly session: DiscoverySession;
  readonly fingerprint: string;
  capacity: number;
}

export class NodeRuntime {
  /** Who holds which slot. Written only through `devices` (NodeDevices). */
  readonly ledger = new SlotLedger();
  readonly devices: NodeDevices;
  readonly plugins: DevicePluginManager;
  readonly #options: NodeRuntimeOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, RunningSession>();
  readonly #sessionSync: SerialTask;
  readonly #pluginSync: SerialTask;
  /**
   * What the next plugin sync must cover: the devices whose slots alone changed, or
   * 'all' (devices came or went, or a caller asked for everything).
   */
  #pluginWork: Set<string> | 'all' = 'all';
  readonly #publishSync: SerialTask;
  readonly #podResources: PodResourcesClient | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  #missingSince = new Map<string, number>();
  #reportedAt: number | undefined;
  #publishRetry: NodeJS.Timeout | undefined;
  #publishBackoffMs = 0;
  /** When PodResources was last asked (Date.now()). */
  #lastReconcileAt: number | undefined;
  /** The periodic reconcile's next tick, and when it is due (Date.now()). */
  #reconcileTimer: NodeJS.Timeout | undefined;
  #reconcileDueAt = 0;
  #started = false;
  #stopping = false;

  constructor(options: NodeRuntimeOptions) {
    this.#options = options;
    this.#log = options.log;
    const onError = (what: string) => (error: unknown) => this.#log.error({ err: error }, `Failed to ${what}`);
    this.#sessionSync = serialTask(() => this.#reconcileSessions(), onError('reconcile discovery sessions'));
    this.#pluginSync = serialTask(() => this.#syncPluginsNow(), onError('sync device plugins'));
    this.#publishSync = serialTask(() => this.#syncPublished(), onError('publish devices'));
    const { metrics, publication } = options;
    this.devices = new NodeDevices({
      node: options.node,
      ledger: this.ledger,
      onChange: () => this.#changed(),
      onSlotsChange: (devices) => void this.#syncPlugins(devices),
      ...(options.cdiKind === undefined ? {} : { cdiKind: options.cdiKind }),
      ...(options.devicePluginMode === undefined ? {} : { mode: options.devicePluginMode }),
      persistSlots: (device, held) => publication.persistSlots(device, held),
      // A re-claimed slot's grace restarts: its old pod's absence from PodResources says nothing
      // about the new pod, which may not be listed yet (the Device lost such a slot in CI).
      onClaimed: (slots) => {
        for (const slot of slots) this.#missingSince.delete(slot);
        // Holding a slot now: its pod's departure is watched at the short interval again.
        if (this.#started) this.#armReconcile(this.#reconcileEveryMs());
      },
      ...(metrics === undefined
        ? {}
        : {
            onAllocate: (outcome: 'ok' | 'conflict' | 'error', seconds: number) => {
              metrics.allocations.inc({ result: outcome });
              if (outcome === 'conflict') metrics.slotConflicts.inc();
              metrics.allocateSeconds.observe(seconds);
            },
          }),
    });
    this.plugins = new DevicePluginManager({
      pluginDir: options.pluginDir,
      backend: this.devices,
      log: options.log,
      ...(metrics === undefined ? {} : { onRegistration: () => metrics.registrations.inc() }),
    });
    this.#podResources = options.podResourcesSocket === undefined ? undefined : new PodResourcesClient(options.podResourcesSocket);
  }

  /** Whether `start` has finished (for /readyz). */
  get ready(): boolean {
    return this.#started && !this.#stopping;
  }

  /** Reads the published state, starts the source, the plugins and the sessions. */
  async start(): Promise<void> {
    const { source, publication } = this.#options;
    // Both first reads at once; sessions start only after both (seeds need the publication).
    await Promise.all([
      publication.start({
        republish: () => this.#changed(),
        slots: (name, slots) => {
          if (this.#started && this.devices.mirrorServerSlots(name, slots)) void this.#syncPlugins(new Set([name]));
        },
        served: (name) => this.devices.device(name),
        hasSession: (namespace, discovery) => this.#sessions.has(`${namespace}/${discovery}`),
      }),
      source.start(() => void this.#sessionSync.trigger()),
    ]);
    this.plugins.start();
    this.#started = true;
    await this.#sessionSync.trigger();
    this.#schedule(
      () => {
        for (const { session } of this.#sessions.values()) session.expireProvisional();
      },
      this.#options.startupTimeoutMs ?? 30_000,
      false,
    );
    this.#armReconcile(this.#reconcileEveryMs());
    this.#log.info({ sessions: this.#sessions.size, seededDevices: publication.seeded }, 'Agent started');
  }

  /** Stops everything without deleting anything: published devices stay, plugins deregister. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers) clearTimeout(timer);
    clearTimeout(this.#reconcileTimer);
    clearTimeout(this.#publishRetry);
    await this.#sessionSync.idle();
    await Promise.all([...this.#sessions.values()].map((e) => e.session.stop()));
    await Promise.all([this.#pluginSync.idle(), this.#publishSync.idle()]);
    await this.#options.publication.idle();
    await this.plugins.stop();
    await Promise.all([this.#options.source.stop(), this.#options.publication.stop()]);
    this.#podResources?.close();
  }

  /** Re-evaluates the desired sessions (e.g. an external handler just registered). */
  rediscover(): Promise<void> {
    return this.#sessionSync.trigger();
  }

  /** Waits until queued session, plugin and publication work has settled (tests, benchmarks). */
  async settled(): Promise<void> {
    await this.#sessionSync.idle();
    await this.#pluginSync.idle();
    await this.#publishSync.idle();
    await this.#options.publication.idle();
  }

  /** Frees slots whose pods are gone and adopts slots the kubelet holds (see ledger/reconcile.ts). */
  async reconcileLedger(): Promise<ReconcilePlan> {
    if (this.#podResources === undefined) throw new Error('no PodResources socket configured');
    this.#lastReconcileAt = Date.now();
    const pods = await this.#podResources.list();
    const plan = planLedgerReconcile({
      node: this.#options.node,
      held: [...this.ledger.entries()],
      pods,
      isOwnResource: (resource) => resource.startsWith('tether.dev/'),
      missingSince: this.#missingSince,
      now: Date.now(),
      graceMs: this.#options.slotGraceMs ?? 10_000,
      isUnrecorded: (slot) => this.devices.isUnrecorded(slot, (device) => this.#options.publication.serverSlots(device)),
    });
    this.#missingSince = plan.missingSince;
    if (plan.free.length === 0 && plan.adopt.length === 0 && plan.restore.length === 0) return plan;
    await this.devices.reconcileSlots(plan);
    if (plan.adopt.length > 0 || plan.restore.length > 0) this.#armReconcile(this.#reconcileEveryMs());
    this.#log.info({ freed: plan.free, adopted: plan.adopt.map((a) => a.slot), restored: plan.restore }, 'Reconciled slot ledger');
    await this.#syncPlugins();
    return plan;
  }

  #reconcileEveryMs(): number {
    return this.#options.reconcileIntervalMs ?? 5_000;
  }

  /**
   * Arms the periodic reconcile's next tick in `ms`, unless one is due sooner. A tick runs at
   * the short interval while this node holds a slot and at the idle interval otherwise, so an
   * idle agent wakes once a minute for it, not every 5 s (see ledger/reconcile-schedule.ts).
   */
  #armReconcile(ms: number): void {
    const every = this.#reconcileEveryMs();
    if (this.#podResources === undefined || every <= 0 || this.#stopping) return;
    const due = Date.now() + ms;
    if (this.#reconcileTimer !== undefined && this.#reconcileDueAt <= due) return;
    clearTimeout(this.#reconcileTimer);
    this.#reconcileDueAt = due;
    this.#reconcileTimer = setTimeout(() => {
      this.#reconcileTimer = undefined;
      const idleIntervalMs = this.#options.idleReconcileIntervalMs ?? 60_000;
      const holdsSlots = this.#holdsSlots();
      const sinceLastMs = this.#lastReconcileAt === undefined ? undefined : Date.now() - this.#lastReconcileAt;
      if (shouldReconcile({ holdsSlots, servesDevices: this.devices.servesAny(), sinceLastMs, idleIntervalMs }))
        this.reconcileLedger().catch((error: unknown) => this.#log.warn({ err: error }, 'Failed to reconcile slot ledger'));
      this.#armReconcile(holdsSlots ? every : idleIntervalMs);
    }, ms);
    this.#reconcileTimer.unref();
  }

  #holdsSlots(): boolean {
    for (const [, holder] of this.ledger.entries()) if (holder.node === this.#options.node) return true;
    return false;
  }

  /** A timer cleared by stop(); unref'd, so it never keeps the process alive. */
  #schedule(run: () => void, ms: number, repeat: boolean): void {
    const timer = repeat ? setInterval(run, ms) : setTimeout(run, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  // ---- change propagation -------------------------------------------------------------

  #changed(): void {
    this.#reportedAt ??= performance.now();
    void this.#syncPlugins();
    if (!this.#stopping) void this.#publishSync.trigger();
  }

  /** Queues a plugin sync: of the resources of `devices` only, or of everything. */
  #syncPlugins(devices: ReadonlySet<string> | 'all' = 'all'): Promise<void> {
    if (devices === 'all' || this.#pluginWork === 'all') this.#pluginWork = 'all';
    else for (const name of devices) this.#pluginWork.add(name);
    return this.#pluginSync.trigger();
  }

  async #syncPluginsNow(): Promise<void> {
    const work = this.#pluginWork;
    this.#pluginWork = new Set();
    if (work !== 'all' && work.size === 0) return; // a sync queued before this one covered it
    const dra = this.#options.dra;
    const isDra = (name: string): boolean => {
      const device = this.devices.device(name);
      return device !== undefined && dra !== undefined && dra.isDra(device.namespace, device.discovery);
    };
    // Looks up only the changed devices, not every served one.
    if (work !== 'all' && (dra === undefined || ![...work].some(isDra))) {
      // Slots of a few plugin-served devices changed (an Allocate): their resources only.
      if (this.plugins.update(this.devices.resourcesOf(work))) return;
    }
    const since = this.#reportedAt;
    this.#reportedAt = undefined;
    // Only devices new to this node need the cluster's slot record; every later change of it
    // arrives per device through the publication's `slots` event.
    this.devices.mirrorNewDevices((device) => this.#options.publication.serverSlots(device));
    await this.plugins.sync(this.#pluginResources());
    if (since !== undefined) this.#options.metrics?.eventToPluginSeconds.observe((performance.now() - since) / 1000);
  }

  /** The device plugins' resources; with a DRA backend, DRA discoveries' devices go to it. */
  #pluginResources(): ReadonlyMap<string, readonly PluginDevice[]> {
    const resources = this.devices.resources();
    const dra = this.#options.dra;
    if (dra === undefined) return resources;
    const split = splitDraDevices(resources, this.devices.devices(), (namespace, discovery) => dra.isDra(namespace, discovery));
    dra.setDevices(split.dra);
    return split.plugins;
  }

  async #syncPublished(): Promise<void> {
    if (this.#stopping) return;
    const devices = this.devices.devices();
    this.#countDevices(devices);
    const failed = await this.#options.publication.publish(devices);
    clearTimeout(this.#publishRetry);
    if (failed > 0 && !this.#stopping) {
      // Level-triggered retry: the next sync recomputes everything from current state.
      this.#publishBackoffMs = Math.min((this.#publishBackoffMs || 500) * 2, 30_000);
      this.#publishRetry = setTimeout(() => void this.#publishSync.trigger(), this.#publishBackoffMs);
      this.#publishRetry.unref();
    } else {
      this.#publishBackoffMs = 0;
    }
  }

  #countDevices(devices: readonly ServedDevice[]): void {
    const gauge = this.#options.metrics?.devices;
    if (gauge === undefined) return;
    const counts = new Map<string, { online: number; offline: number }>();
    for (const d of devices) {
      const key = `${d.namespace}/${d.discovery}`;
      const c = counts.get(key) ?? { online: 0, offline: 0 };
      if (d.online) c.online++;
      else c.offline++;
      counts.set(key, c);
    }
    gauge.reset();
    for (const [discovery, c] of counts) {
      gauge.set({ discovery, state: 'online' }, c.online);
      gauge.set({ discovery, state: 'offline' }, c.offline);
    }
  }

  // ---- sessions -------------------------------------------------------------------------

  /** Level-triggered: make the running sessions equal the desired ones. */
  async #reconcileSessions(): Promise<void> {
    if (!this.#started || this.#stopping) return;
    const running = (key: string): AnyDiscoveryHandler | undefined => this.#sessions.get(key)?.session.spec.handler;
    const desired = new Map((await this.#options.source.desired(running)).map((d) => [d.key, d]));
    for (const [key, entry] of [...this.#sessions]) {
      if (desired.has(key)) continue;
      this.#sessions.delete(key);
      await entry.session.stop();
      this.devices.setSessionDevices(key, []);
      this.devices.setBrokered(key, false);
      this.#log.info({ discovery: key }, 'Stopped discovery session');
    }
    for (const [key, want] of desired) {
      this.devices.setBrokered(key, want.brokered === true);
      const current = this.#sessions.get(key);
      if (current !== undefined && current.fingerprint === want.fingerprint) {
        if (current.capacity !== want.spec.capacity) {
          current.capacity = want.spec.capacity;
          current.session.setCapacity(want.spec.capacity);
          this.#log.info({ discovery: key, capacity: want.spec.capacity }, 'Resized devices');
        }
        continue;
      }
      // A replacement session starts from what the old one saw (or, at start-up, from what
      // the publication holds): its first report decides, so a spec change causes no churn.
      const seed =
        current !== undefined
          ? current.session.onlineDevices()
          : this.#options.publication.previouslyServed(want.spec.namespace, want.spec.name);
      if (current !== undefined) await current.session.stop();
      const session = this.#newSession(key, want);
      session.seed(seed);
      this.#sessions.set(key, { session, fingerprint: want.fingerprint, capacity: want.spec.capacity });
      session.start();
      if (current !== undefined) this.#schedule(() => session.expireProvisional(), this.#options.startupTimeoutMs ?? 30_000, false);
      this.#log.info({ discovery: key, handler: want.spec.handler.name, restarted: current !== undefined }, 'Started discovery session');
    }
  }

  #newSession(key: string, want: DesiredSession): DiscoverySession {
    const { metrics, source } = this.#options;
    return new DiscoverySession(want.spec, {
      node: this.#options.node,
      log: this.#log,
      onDevices: (devices) => this.devices.setSessionDevices(key, devices),
      ...(metrics === undefined
        ? {}
        : {
            count: (event: string) => {
              if (event === 'handler_error') metrics.handlerErrors.inc({ discovery: key });
              metrics.handlerEvents.inc({ handler: want.spec.handler.name, discovery: key, event });
            },
          }),
      onError: (error) => source.handlerFailed(want.spec, error),
    });
  }
}
