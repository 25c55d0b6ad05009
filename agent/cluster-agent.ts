/**
 * The agent on a cluster node: DeviceDiscoveries that select this node → discovery
 * sessions → served devices → (a) device plugins for the kubelet and (b) Device objects.
 *
 * Restart safety (Akri restarts churn): before any session starts, the agent reads the
 * Device objects this node is part of, seeds each session with them and restores its
 * slot ledger from them, so nothing is deleted or re-created; a seeded device leaves only
 * if the handler's first full report (or the startup timeout) says it is gone, and then
 * through the normal offline grace period.
 */
import { createHash } from 'node:crypto';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type V1ConfigMap,
  type V1Node,
  type V1Secret,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { parseSlotId } from '../api/names.ts';
import { API_GROUP, API_VERSION_NAME, type Device, type DeviceDiscovery } from '../api/schema.ts';
import type { AnyDiscoveryHandler, DiscoveredDevice } from '../discovery-handlers/contract.ts';
import { DevicePluginManager } from './device-plugin/manager.ts';
import { slotsOf, type ServedDevice } from './device-plugin/resources.ts';
import { nodeMatches, type NodeFacts } from '../api/node-selector.ts';
import { referencedObjects, resolveProperties, type ObjectRef } from './discovery/properties.ts';
import { DiscoverySession } from './discovery/session.ts';
import { ResilientInformer } from './kube/informer.ts';
import { KubeDevicesApi } from './kube/devices-api.ts';
import { DiscoveryEvents } from './kube/events.ts';
import { PodResourcesClient } from './kubelet/pod-resources-client.ts';
import { planLedgerReconcile } from './ledger/reconcile.ts';
import { SlotLedger } from './ledger/slot-ledger.ts';
import type { AgentMetrics } from './metrics.ts';
import { NodeDevices } from './node-devices.ts';
import { DevicePublisher, type PublishedDevice } from './publish/publisher.ts';
import { serialTask, type SerialTask } from './serial-task.ts';

export interface ClusterAgentOptions {
  readonly node: string;
  readonly kc: KubeConfig;
  readonly log: Logger;
  /** The kubelet's device-plugins directory. */
  readonly pluginDir: string;
  /** The kubelet's PodResources socket; enables slot reconciliation. */
  readonly podResourcesSocket?: string;
  /** Watch DeviceDiscoveries in this namespace only; all namespaces when absent. */
  readonly namespace?: string;
  readonly handlers: ReadonlyMap<string, AnyDiscoveryHandler>;
  /** Handlers registered at run time (external, Akri v0). */
  readonly externalHandler?: (name: string) => AnyDiscoveryHandler | undefined;
  readonly metrics: AgentMetrics;
  /** Longest wait for a handler's first report before unconfirmed devices go offline. */
  readonly startupTimeoutMs?: number;
  readonly reconcileIntervalMs?: number;
  readonly slotGraceMs?: number;
  readonly cdiKind?: string;
}

interface SessionEntry {
  readonly session: DiscoverySession;
  readonly fingerprint: string;
  capacity: number;
}

interface DesiredSession {
  readonly discovery: DeviceDiscovery;
  readonly handler: AnyDiscoveryHandler;
  readonly details: unknown;
  readonly properties: Map<string, string>;
  readonly fingerprint: string;
  readonly capacity: number;
  readonly graceMs: number;
}

const keyOf = (o: { metadata?: { namespace?: string; name?: string } }): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

function decodeSecret(secret: V1Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return { ...out, ...(secret.stringData ?? {}) };
}

export class ClusterAgent {
  readonly ledger = new SlotLedger();
  readonly devices: NodeDevices;
  readonly plugins: DevicePluginManager;
  readonly publisher: DevicePublisher;
  readonly api: KubeDevicesApi;
  readonly #options: ClusterAgentOptions;
  readonly #log: Logger;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #discoveries: ResilientInformer<DeviceDiscovery>;
  readonly #deviceObjects: ResilientInformer<Device>;
  readonly #nodeInformer: ResilientInformer<V1Node>;
  readonly #refs = new Map<string, ResilientInformer<V1Secret | V1ConfigMap>>();
  readonly #sessions = new Map<string, SessionEntry>();
  readonly #warned = new Map<string, string>();
  readonly #pluginSync: SerialTask;
  readonly #publishSync: SerialTask;
  readonly #sessionSync: SerialTask;
  readonly #podResources: PodResourcesClient | undefined;
  readonly #events: DiscoveryEvents;
  #missingSince = new Map<string, number>();
  #reportedAt: number | undefined;
  #timers: NodeJS.Timeout[] = [];
  #started = false;
  #ready = false;
  #stopping = false;

  constructor(options: ClusterAgentOptions) {
    this.#options = options;
    this.#log = options.log.child({ node: options.node });
    this.#core = options.kc.makeApiClient(CoreV1Api);
    this.#custom = options.kc.makeApiClient(CustomObjectsApi);
    this.#events = new DiscoveryEvents(this.#core, options.node, this.#log);
    this.api = new KubeDevicesApi(this.#custom, (kind) => options.metrics.apiWrites.inc({ kind }));
    const onError = (what: string) => (error: unknown) => this.#log.error({ err: error }, `Failed to ${what}`);
    this.#pluginSync = serialTask(() => this.#syncPlugins(), onError('sync device plugins'));
    this.#publishSync = serialTask(() => this.#syncPublished(), onError('publish devices'));
    this.#sessionSync = serialTask(() => this.#reconcileSessions(), onError('reconcile discovery sessions'));
    this.publisher = new DevicePublisher({
      node: options.node,
      api: this.api,
      log: this.#log,
      shouldDepart: (key) => this.#deviceObjects.get(key.split('/')[1]!, key.split('/')[0]) !== undefined && this.#sessions.has(this.#sessionKeyOfDevice(key)),
    });
    this.devices = new NodeDevices({
      node: options.node,
      ledger: this.ledger,
      onChange: () => this.#changed(),
      ...(options.cdiKind === undefined ? {} : { cdiKind: options.cdiKind }),
      persistSlots: (device, held) => this.publisher.setSlots(device.namespace, device.name, held),
      onAllocate: (outcome, seconds) => {
        options.metrics.allocations.inc({ result: outcome });
        if (outcome === 'conflict') options.metrics.slotConflicts.inc();
        options.metrics.allocateSeconds.observe(seconds);
      },
    });
    this.plugins = new DevicePluginManager({ pluginDir: options.pluginDir, backend: this.devices, log: this.#log });
    this.#podResources = options.podResourcesSocket === undefined ? undefined : new PodResourcesClient(options.podResourcesSocket);
    const ns = options.namespace;
    this.#discoveries = new ResilientInformer<DeviceDiscovery>({
      kc: options.kc,
      path: ns === undefined ? `/apis/${API_GROUP}/${API_VERSION_NAME}/devicediscoveries` : `/apis/${API_GROUP}/${API_VERSION_NAME}/namespaces/${ns}/devicediscoveries`,
      list: () => this.#listCustom<DeviceDiscovery>('devicediscoveries'),
      log: this.#log,
      onEvent: () => void this.#sessionSync.trigger(),
    });
    this.#deviceObjects = new ResilientInformer<Device>({
      kc: options.kc,
      path: ns === undefined ? `/apis/${API_GROUP}/${API_VERSION_NAME}/devices` : `/apis/${API_GROUP}/${API_VERSION_NAME}/namespaces/${ns}/devices`,
      list: () => this.#listCustom<Device>('devices'),
      log: this.#log,
      onEvent: (event, device) => this.#onDeviceObject(event, device),
    });
    this.#nodeInformer = new ResilientInformer<V1Node>({
      kc: options.kc,
      path: '/api/v1/nodes',
      fieldSelector: `metadata.name=${options.node}`,
      list: () => this.#core.listNode({ fieldSelector: `metadata.name=${options.node}` }),
      log: this.#log,
      onEvent: () => {
        void this.#sessionSync.trigger();
        this.#rejoinReleasedDevices();
      },
    });
  }

  /** Whether the initial sync is done (for /readyz). */
  get ready(): boolean {
    return this.#ready;
  }

  async start(): Promise<void> {
    const { metrics } = this.#options;
    await Promise.all([this.#nodeInformer.start(), this.#deviceObjects.start()]);
    const mine = this.#deviceObjects.list().filter((d) => (d.spec.nodes ?? []).includes(this.#options.node));
    this.publisher.seed(mine);
    await this.#discoveries.start();
    this.plugins.start();
    this.#started = true;
    await this.#sessionSync.trigger();
    const startupTimeout = setTimeout(() => {
      for (const { session } of this.#sessions.values()) session.expireProvisional();
    }, this.#options.startupTimeoutMs ?? 30_000);
    startupTimeout.unref();
    this.#timers.push(startupTimeout);
    const every = this.#options.reconcileIntervalMs ?? 5_000;
    if (this.#podResources !== undefined && every > 0) {
      const reconcile = setInterval(() => {
        this.reconcileLedger().catch((error: unknown) => this.#log.warn({ err: error }, 'Failed to reconcile slot ledger'));
      }, every);
      reconcile.unref();
      this.#timers.push(reconcile);
    }
    const registrations = setInterval(() => {
      const delta = this.plugins.registrations - (this.#lastRegistrations ?? 0);
      if (delta > 0) metrics.registrations.inc(delta);
      this.#lastRegistrations = this.plugins.registrations;
    }, 1_000);
    registrations.unref();
    this.#timers.push(registrations);
    this.#ready = true;
    this.#log.info({ sessions: this.#sessions.size, seededDevices: mine.length }, 'Agent started');
  }

  #lastRegistrations: number | undefined;

  /** Stops everything without deleting anything: devices stay, plugins deregister. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#ready = false;
    for (const timer of this.#timers) clearTimeout(timer);
    clearTimeout(this.#publishRetry);
    await this.#sessionSync.idle();
    await Promise.all([...this.#sessions.values()].map((e) => e.session.stop()));
    await Promise.all([this.#pluginSync.idle(), this.#publishSync.idle()]);
    await this.publisher.idle();
    await this.plugins.stop();
    await Promise.all([this.#discoveries.stop(), this.#deviceObjects.stop(), this.#nodeInformer.stop(), ...[...this.#refs.values()].map((r) => r.stop())]);
    this.#podResources?.close();
  }

  /** Re-evaluates every DeviceDiscovery (e.g. an external handler just registered). */
  rediscover(): Promise<void> {
    return this.#sessionSync.trigger();
  }

  /** Waits until queued plugin updates and Device writes have settled (tests, benchmarks). */
  async settled(): Promise<void> {
    await this.#sessionSync.idle();
    await this.#pluginSync.idle();
    await this.#publishSync.idle();
    await this.publisher.idle();
  }

  /** Frees slots whose pods are gone and adopts slots the kubelet holds. */
  async reconcileLedger(): Promise<void> {
    if (this.#podResources === undefined) throw new Error('no PodResources socket configured');
    const pods = await this.#podResources.list();
    const plan = planLedgerReconcile({
      node: this.#options.node,
      held: [...this.ledger.entries()],
      pods,
      isOwnResource: (r) => r.startsWith('tether.dev/'),
      missingSince: this.#missingSince,
      now: Date.now(),
      graceMs: this.#options.slotGraceMs ?? 10_000,
    });
    this.#missingSince = plan.missingSince;
    if (plan.free.length === 0 && plan.adopt.length === 0) return;
    this.ledger.applyReconcile(plan, this.#options.node);
    const touched = new Map<string, ServedDevice>();
    for (const slot of [...plan.free, ...plan.adopt.map((a) => a.slot)]) {
      const ref = parseSlotId(slot);
      const device = ref === undefined ? undefined : this.devices.device(ref.deviceName);
      if (device !== undefined) touched.set(device.name, device);
    }
    await Promise.all([...touched.values()].map((d) => this.publisher.setSlots(d.namespace, d.name, this.devices.heldIndexes(d))));
    this.#log.info({ freed: plan.free, adopted: plan.adopt.map((a) => a.slot) }, 'Reconciled slot ledger');
    this.#changed();
  }

  // ---- change propagation -------------------------------------------------------------

  #changed(): void {
    this.#reportedAt ??= performance.now();
    void this.#pluginSync.trigger();
    if (!this.#stopping) void this.#publishSync.trigger();
  }

  async #syncPlugins(): Promise<void> {
    const since = this.#reportedAt;
    this.#reportedAt = undefined;
    for (const device of this.devices.devices()) {
      const object = this.#deviceObjects.get(device.name, device.namespace);
      if (object !== undefined) this.ledger.mirrorDevice(slotsOf(device), object.spec.slots ?? {}, this.#options.node);
    }
    await this.plugins.sync(this.devices.resources());
    if (since !== undefined) this.#options.metrics.eventToPluginSeconds.observe((performance.now() - since) / 1000);
  }

  async #syncPublished(): Promise<void> {
    if (this.#stopping) return;
    const views = new Map<string, PublishedDevice>();
    const counts = new Map<string, { online: number; offline: number }>();
    for (const d of this.devices.devices()) {
      const discovery = this.#discoveries.get(d.discovery, d.namespace);
      const uid = discovery?.metadata?.uid;
      views.set(`${d.namespace}/${d.name}`, {
        online: d.online,
        view: {
          name: d.name,
          namespace: d.namespace,
          discovery: d.discovery,
          ...(uid === undefined ? {} : { discoveryUid: uid }),
          deviceId: d.deviceId,
          shared: d.shared,
          capacity: d.capacity,
          properties: d.properties,
          mounts: d.mounts,
          deviceNodes: d.deviceNodes,
        },
      });
      const c = counts.get(`${d.namespace}/${d.discovery}`) ?? { online: 0, offline: 0 };
      if (d.online) c.online++;
      else c.offline++;
      counts.set(`${d.namespace}/${d.discovery}`, c);
    }
    this.#options.metrics.devices.reset();
    for (const [discovery, c] of counts) {
      this.#options.metrics.devices.set({ discovery, state: 'online' }, c.online);
      this.#options.metrics.devices.set({ discovery, state: 'offline' }, c.offline);
    }
    const failed = await this.publisher.sync(views);
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

  #publishRetry: NodeJS.Timeout | undefined;
  #publishBackoffMs = 0;

  #onDeviceObject(event: 'add' | 'update' | 'delete', device: Device): void {
    if (!this.#started) return;
    const served = this.devices.device(device.metadata.name ?? '');
    if (served === undefined) return;
    if (event === 'delete') {
      // Someone deleted a device this node still sees: write it again.
      this.publisher.forget(keyOf(device));
      this.#changed();
      return;
    }
    if (this.ledger.mirrorDevice(slotsOf(served), device.spec.slots ?? {}, this.#options.node)) void this.#pluginSync.trigger();
    if (!(device.spec.nodes ?? []).includes(this.#options.node) && this.#nodeReady()) this.#rejoin(device);
  }

  /** True while this node's Ready condition is True (what the controller's node-loss check reads). */
  #nodeReady(): boolean {
    const node = this.#nodeInformer.get(this.#options.node);
    return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  }

  /**
   * The controller released this node from a Device it still serves (node loss: the node was
   * NotReady for too long, e.g. cut off from the apiserver). Once the node is Ready again the
   * entry is written anew. Waiting for Ready keeps a live agent on a NotReady node from undoing
   * the release at every reconcile.
   */
  #rejoin(device: Device): void {
    this.#log.info({ device: keyOf(device) }, 'Rejoining a device the controller released from this node');
    this.publisher.forget(keyOf(device));
    this.#changed();
  }

  /** On a Node change: rejoin every served device the controller released meanwhile. */
  #rejoinReleasedDevices(): void {
    if (!this.#started || !this.#nodeReady()) return;
    for (const device of this.#deviceObjects.list()) {
      if (this.devices.device(device.metadata.name ?? '') === undefined) continue;
      if (!(device.spec.nodes ?? []).includes(this.#options.node)) this.#rejoin(device);
    }
  }

  // ---- sessions -------------------------------------------------------------------------

  #sessionKeyOfDevice(deviceKey: string): string {
    const [namespace = '', name = ''] = deviceKey.split('/');
    const device = this.devices.device(name) ?? this.#deviceObjects.get(name, namespace);
    const discovery = device === undefined ? '' : 'discovery' in device ? device.discovery : device.spec.discovery;
    return `${namespace}/${discovery}`;
  }

  #warnOnce(discovery: DeviceDiscovery, reason: string, message: string, error?: unknown): void {
    const key = keyOf(discovery);
    const text = error instanceof Error ? `${message}: ${error.message}` : message;
    if (this.#warned.get(key) === text) return;
    this.#warned.set(key, text);
    this.#log.warn({ discovery: key, reason, ...(error === undefined ? {} : { err: error }) }, message);
    this.#events.warn(this.#eventTarget(discovery), reason, text);
  }

  #eventTarget(discovery: DeviceDiscovery): { namespace: string; name: string; uid?: string } {
    const uid = discovery.metadata.uid;
    return { namespace: discovery.metadata.namespace ?? '', name: discovery.metadata.name ?? '', ...(uid === undefined ? {} : { uid }) };
  }

  #nodeFacts(): NodeFacts {
    const node = this.#nodeInformer.get(this.#options.node);
    return { name: this.#options.node, labels: node?.metadata?.labels ?? {} };
  }

  #lookup(ref: ObjectRef): Record<string, string> | undefined {
    const object = this.#refs.get(`${ref.kind}/${ref.namespace}/${ref.name}`)?.get(ref.name, ref.namespace);
    if (object === undefined) return undefined;
    return ref.kind === 'Secret' ? decodeSecret(object) : { ...((object as V1ConfigMap).data ?? {}) };
  }

  /** Watches exactly the Secrets and ConfigMaps that properties reference. */
  async #ensureRefWatches(refs: readonly ObjectRef[]): Promise<void> {
    const missing = refs.filter((r) => !this.#refs.has(`${r.kind}/${r.namespace}/${r.name}`));
    await Promise.all(
      missing.map(async (ref) => {
        const fieldSelector = `metadata.name=${ref.name}`;
        const plural = ref.kind === 'Secret' ? 'secrets' : 'configmaps';
        const informer = new ResilientInformer<V1Secret | V1ConfigMap>({
          kc: this.#options.kc,
          path: `/api/v1/namespaces/${ref.namespace}/${plural}`,
          fieldSelector,
          list: () =>
            (ref.kind === 'Secret'
              ? this.#core.listNamespacedSecret({ namespace: ref.namespace, fieldSelector })
              : this.#core.listNamespacedConfigMap({ namespace: ref.namespace, fieldSelector })),
          log: this.#log,
          onEvent: () => void this.#sessionSync.trigger(),
        });
        this.#refs.set(`${ref.kind}/${ref.namespace}/${ref.name}`, informer);
        await informer.start();
      }),
    );
  }

  #handlerFor(discovery: DeviceDiscovery): AnyDiscoveryHandler | undefined {
    return (
      this.#options.handlers.get(discovery.spec.handler) ??
      this.#options.externalHandler?.(discovery.spec.handler) ??
      // An external handler that went away keeps its session: its devices go offline
      // through the grace period and return when it registers again.
      this.#sessions.get(keyOf(discovery))?.session.spec.handler
    );
  }

  async #desiredSessions(): Promise<Map<string, DesiredSession>> {
    const desired = new Map<string, DesiredSession>();
    const node = this.#nodeFacts();
    for (const discovery of this.#discoveries.list()) {
      const key = keyOf(discovery);
      if (discovery.metadata.deletionTimestamp !== undefined) continue;
      if (!nodeMatches(discovery.spec.nodeSelector, node)) continue;
      const handler = this.#handlerFor(discovery);
      if (handler === undefined) {
        this.#warnOnce(discovery, 'HandlerUnavailable', `Discovery handler ${discovery.spec.handler} is not available on this node`);
        continue;
      }
      let details: unknown;
      try {
        details = handler.parseDetails(discovery.spec.details ?? {});
      } catch (error) {
        this.#warnOnce(discovery, 'InvalidDetails', 'Rejected discovery details', error);
        continue;
      }
      const namespace = discovery.metadata.namespace ?? '';
      const properties = discovery.spec.properties ?? [];
      await this.#ensureRefWatches(referencedObjects(namespace, properties));
      const resolved = resolveProperties(namespace, properties, (ref) => this.#lookup(ref));
      if (!resolved.ok) {
        this.#warnOnce(discovery, 'PropertiesUnresolved', `Could not resolve properties: ${resolved.error}`);
        continue;
      }
      this.#warned.delete(key);
      const graceMs = (discovery.spec.offlineGracePeriodSeconds ?? 60) * 1000;
      const fingerprint = createHash('sha256')
        .update(JSON.stringify([handler.name, details, [...resolved.values].sort(), graceMs, discovery.metadata.uid]))
        .digest('hex');
      desired.set(key, { discovery, handler, details, properties: resolved.values, fingerprint, capacity: discovery.spec.capacity ?? 1, graceMs });
    }
    return desired;
  }

  /** Level-triggered: make the running sessions equal the desired ones. */
  async #reconcileSessions(): Promise<void> {
    if (!this.#started || this.#stopping) return;
    const desired = await this.#desiredSessions();
    for (const [key, entry] of [...this.#sessions]) {
      if (desired.has(key)) continue;
      this.#sessions.delete(key);
      await entry.session.stop();
      this.devices.setSessionDevices(key, []);
      this.#log.info({ discovery: key }, 'Stopped discovery session');
    }
    for (const [key, want] of desired) {
      const current = this.#sessions.get(key);
      if (current !== undefined && current.fingerprint === want.fingerprint) {
        if (current.capacity !== want.capacity) {
          current.capacity = want.capacity;
          current.session.setCapacity(want.capacity);
          this.#log.info({ discovery: key, capacity: want.capacity }, 'Resized devices');
        }
        continue;
      }
      // A replacement session starts from what the old one saw (or, at startup, from the
      // Device objects): its first report decides, so a spec change causes no churn.
      const seed = current !== undefined ? current.session.onlineDevices() : this.#seedFor(want.discovery);
      if (current !== undefined) await current.session.stop();
      const session = this.#newSession(key, want);
      session.seed(seed);
      this.#sessions.set(key, { session, fingerprint: want.fingerprint, capacity: want.capacity });
      session.start();
      if (current !== undefined) {
        const expire = setTimeout(() => session.expireProvisional(), this.#options.startupTimeoutMs ?? 30_000);
        expire.unref();
        this.#timers.push(expire);
      }
      this.#log.info({ discovery: key, handler: want.handler.name, restarted: current !== undefined }, 'Started discovery session');
    }
  }

  #newSession(key: string, want: DesiredSession): DiscoverySession {
    const { metrics } = this.#options;
    return new DiscoverySession(
      {
        namespace: want.discovery.metadata.namespace ?? '',
        name: want.discovery.metadata.name ?? '',
        handler: want.handler,
        details: want.details,
        capacity: want.capacity,
        offlineGraceMs: want.graceMs,
        properties: want.properties,
      },
      {
        node: this.#options.node,
        log: this.#log,
        onDevices: (devices) => this.devices.setSessionDevices(key, devices),
        count: (event) => {
          if (event === 'handler_error') metrics.handlerErrors.inc({ discovery: key });
          metrics.handlerEvents.inc({ handler: want.handler.name, discovery: key, event });
        },
        onError: (error) => this.#events.warn(this.#eventTarget(want.discovery), 'HandlerFailed', error.message),
      },
    );
  }

  /** Devices of this discovery that this node served before a restart. */
  #seedFor(discovery: DeviceDiscovery): DiscoveredDevice[] {
    const namespace = discovery.metadata.namespace ?? '';
    return this.#deviceObjects
      .list(namespace)
      .filter((d) => d.spec.discovery === discovery.metadata.name && (d.spec.nodes ?? []).includes(this.#options.node))
      .map((d) => ({
        id: d.spec.deviceId,
        properties: d.spec.properties ?? {},
        mounts: (d.spec.mounts ?? []).map((m) => ({ containerPath: m.containerPath, hostPath: m.hostPath, readOnly: m.readOnly ?? false })),
        deviceNodes: (d.spec.deviceNodes ?? []).map((n) => ({ containerPath: n.containerPath, hostPath: n.hostPath, permissions: n.permissions ?? 'rw' })),
      }));
  }

  // ---- I/O helpers ------------------------------------------------------------------------

  async #listCustom<T extends { metadata?: unknown }>(plural: string): Promise<KubernetesListObject<T & { metadata: never }>> {
    const ns = this.#options.namespace;
    const result: unknown =
      ns === undefined
        ? await this.#custom.listClusterCustomObject({ group: API_GROUP, version: API_VERSION_NAME, plural })
        : await this.#custom.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION_NAME, namespace: ns, plural });
    return result as KubernetesListObject<T & { metadata: never }>;
  }
}
