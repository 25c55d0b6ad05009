/**
 * The agent on a cluster node: the node runtime (sessions → devices → plugins → ledger) with
 * the cluster adapters: discoveries from the DeviceDiscovery informer (those that select this
 * node), devices published as Device objects by server-side apply. All Kubernetes I/O goes
 * through the shared plain-JSON client (kube/).
 */
import type { KubeConfigSource } from '../kube/kubeconfig.ts';
import type { Logger } from 'pino';
import type { NodeFacts } from '../api/node-selector.ts';
import type { AnyDiscoveryHandler } from '../discovery-handlers/contract.ts';
import { KubeClient, type KubeObject } from '../kube/client.ts';
import { Informer, withoutManagedFields } from '../kube/informer.ts';
import { Api, RESOURCES } from '../kube/resources.ts';
import { DeviceObjects } from './cluster/device-publication.ts';
import { ClusterDiscoverySource } from './cluster/discovery-source.ts';
import { DiscoveryEvents } from './cluster/events.ts';
import { KubeDevicesApi } from './cluster/kube-devices-api.ts';
import { ResourceSlicePublisher, withResourceSlices } from './cluster/resource-slice-publisher.ts';
import type { DevicePluginMode } from './device-plugin/resources.ts';
import type { ServedDevice } from './device.ts';
import type { DraBackend } from './dra/backend.ts';
import type { AgentMetrics } from './metrics.ts';
import { NodeRuntime } from './runtime/node-runtime.ts';

export interface ClusterAgentOptions {
  readonly node: string;
  readonly kc: KubeConfigSource;
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
  /** `lean`: one device-plugin server per discovery, not per device (device-plugin/resources.ts). */
  readonly devicePluginMode?: DevicePluginMode;
  /**
   * Serve the devices of DeviceDiscoveries with `spec.backend: DRA` as a kubelet DRA plugin
   * (agent/dra/, loaded only then); absent: every device goes through the device plugins.
   */
  readonly dra?: ClusterAgentDraOptions;
}

/** Where the DRA kubelet plugin works (docs/dra.md, "The kubelet plugin"). */
export interface ClusterAgentDraOptions {
  /** The kubelet's root directory, e.g. /var/lib/kubelet. */
  readonly kubeletDir: string;
  /** The runtime's CDI spec directory, e.g. /var/run/cdi. */
  readonly cdiDir: string;
  /** Where the checkpoint of prepared claims lives. */
  readonly stateDir: string;
}

/** The fields of this node the agent reads. */
interface NodeObject extends KubeObject {
  status?: { conditions?: { type: string; status: string }[] };
}

export class ClusterAgent {
  readonly api: KubeDevicesApi;
  readonly #runtime: NodeRuntime;
  readonly #node: Informer<NodeObject>;
  readonly #options: ClusterAgentOptions;
  readonly #kube: Api;
  #dra: DraBackend | undefined;
  /** The DRA devices the runtime last routed, kept for a backend that starts after it. */
  #draDevices: readonly ServedDevice[] = [];

  constructor(options: ClusterAgentOptions) {
    this.#options = options;
    const log = options.log.child({ node: options.node });
    const client = new KubeClient(options.kc);
    const kube = new Api(client);
    this.#kube = kube;
    this.api = new KubeDevicesApi(kube, (kind) => options.metrics.apiWrites.inc({ kind }));
    this.#node = new Informer<NodeObject>({
      client,
      type: RESOURCES.nodes,
      fieldSelector: `metadata.name=${options.node}`,
      log,
      transform: withoutManagedFields,
    });
    const nodeReady = (): boolean => this.#nodeReady();
    const publication = new DeviceObjects({
      node: options.node,
      client,
      api: this.api,
      log,
      ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
      nodeReady,
    });
    const source = new ClusterDiscoverySource({
      client,
      log,
      ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
      nodeFacts: () => this.#nodeFacts(),
      handlers: options.handlers,
      ...(options.externalHandler === undefined ? {} : { externalHandler: options.externalHandler }),
      events: new DiscoveryEvents(kube, options.node, log),
    });
    // DRA discoveries: this node's ResourceSlices follow the devices it publishes — only when
    // this agent is the node's DRA plugin: a claim allocated from a slice no plugin prepares
    // would leave its pod stuck (and without --dra the device plugins serve those devices).
    const slices =
      options.dra === undefined
        ? undefined
        : new ResourceSlicePublisher({
            node: options.node,
            client,
            log,
            discovery: (namespace, name) => source.discovery(namespace, name),
            nodeUid: () => this.#node.get(undefined, options.node)?.metadata?.uid,
          });
    // A DRA discovery's settings (or its backend) changed: its slices change, its devices may not.
    source.onDiscoveryEvent(({ object, old }) => {
      const dra = (d: typeof old): boolean => d?.spec.backend === 'DRA';
      if ((dra(object) || dra(old)) && object.metadata.generation !== old?.metadata.generation) slices?.resync();
    });
    this.#runtime = new NodeRuntime({
      node: options.node,
      log,
      pluginDir: options.pluginDir,
      source,
      publication: slices === undefined ? publication : withResourceSlices(publication, slices),
      ...(options.podResourcesSocket === undefined ? {} : { podResourcesSocket: options.podResourcesSocket }),
      ...(options.reconcileIntervalMs === undefined ? {} : { reconcileIntervalMs: options.reconcileIntervalMs }),
      ...(options.slotGraceMs === undefined ? {} : { slotGraceMs: options.slotGraceMs }),
      ...(options.startupTimeoutMs === undefined ? {} : { startupTimeoutMs: options.startupTimeoutMs }),
      ...(options.cdiKind === undefined ? {} : { cdiKind: options.cdiKind }),
      ...(options.devicePluginMode === undefined ? {} : { devicePluginMode: options.devicePluginMode }),
      metrics: options.metrics,
      ...(options.dra === undefined
        ? {}
        : {
            dra: {
              isDra: (namespace: string, name: string) => source.discovery(namespace, name)?.spec.backend === 'DRA',
              setDevices: (devices: readonly ServedDevice[]) => {
                this.#draDevices = devices;
                this.#dra?.setDevices(devices);
              },
            },
          }),
    });
    // A Node change may select or unselect discoveries (labels) and end a release (Ready).
    this.#node.onEvent(() => {
      void this.#runtime.rediscover();
      publication.nodeChanged();
    });
  }

  /** Whether the initial sync is done (for /readyz). */
  get ready(): boolean {
    return this.#runtime.ready;
  }

  async start(): Promise<void> {
    this.#node.start();
    await this.#node.synced();
    const dra = this.#options.dra;
    if (dra !== undefined) {
      // Loaded only here: an agent without --dra never parses the DRA protos.
      const { kubeClaimReader, startDraBackend } = await import('./dra/backend.ts');
      this.#dra = await startDraBackend({ ...dra, node: this.#options.node, claims: kubeClaimReader(this.#kube), log: this.#options.log });
      this.#dra.setDevices(this.#draDevices);
    }
    await this.#runtime.start();
  }

  /** Stops everything without deleting anything: devices stay, plugins deregister. */
  async stop(): Promise<void> {
    await this.#runtime.stop();
    await this.#dra?.stop();
    await this.#node.stop();
  }

  /** Re-evaluates every DeviceDiscovery (e.g. an external handler just registered). */
  rediscover(): Promise<void> {
    return this.#runtime.rediscover();
  }

  /** Waits until queued plugin updates and Device writes have settled (tests, benchmarks). */
  settled(): Promise<void> {
    return this.#runtime.settled();
  }

  /** Frees slots whose pods are gone and adopts slots the kubelet holds. */
  async reconcileLedger(): Promise<void> {
    await this.#runtime.reconcileLedger();
  }

  #nodeFacts(): NodeFacts {
    const node = this.#node.get(undefined, this.#options.node);
    return { name: this.#options.node, labels: node?.metadata?.labels ?? {} };
  }

  #nodeReady(): boolean {
    const node = this.#node.get(undefined, this.#options.node);
    return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  }
}
