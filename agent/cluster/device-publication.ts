/**
 * Where the cluster agent publishes its devices: Device objects, written by server-side
 * apply (publish/publisher.ts decides the writes) and read back through one Device informer,
 * which tells the runtime what the cluster says about slots, seeds sessions after a restart,
 * and notices when this node's entry was deleted or released by the controller.
 */
import type { Logger } from 'pino';
import type { Device } from '../../api/schema.ts';
import type { DiscoveredDevice } from '../../discovery-handlers/contract.ts';
import type { KubeClient } from '../../kube/client.ts';
import { Informer, withoutManagedFields, type InformerEvent } from '../../kube/informer.ts';
import { RESOURCES } from '../../kube/resources.ts';
import type { ServedDevice } from '../device.ts';
import { DevicePublisher } from '../publish/publisher.ts';
import type { DevicePublication, PublicationEvents } from '../runtime/adapters.ts';
import type { KubeDevicesApi } from './kube-devices-api.ts';

export interface DeviceObjectsOptions {
  readonly node: string;
  readonly client: KubeClient;
  readonly api: KubeDevicesApi;
  readonly log: Logger;
  /** Watch Devices in this namespace only; all namespaces when absent. */
  readonly namespace?: string;
  /** True while this node's Ready condition is True (what the controller's node-loss check reads). */
  readonly nodeReady: () => boolean;
}

const keyOf = (device: Device): string => `${device.metadata.namespace ?? ''}/${device.metadata.name ?? ''}`;

export class DeviceObjects implements DevicePublication {
  readonly #options: DeviceObjectsOptions;
  readonly #informer: Informer<Device>;
  readonly #publisher: DevicePublisher;
  #events: PublicationEvents | undefined;
  #seeded = 0;

  constructor(options: DeviceObjectsOptions) {
    this.#options = options;
    this.#informer = new Informer<Device>({
      client: options.client,
      type: RESOURCES.devices,
      ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
      log: options.log,
      transform: withoutManagedFields,
    });
    this.#informer.onEvent((event) => this.#onDevice(event));
    // Writes that failed during an outage are retried as soon as the apiserver answers again.
    this.#informer.onRecovered(() => this.#events?.republish());
    this.#publisher = new DevicePublisher({
      node: options.node,
      api: options.api,
      log: options.log,
      // No departure write for an object already gone, or whose discovery no longer runs
      // here (deleted: garbage collection removes it, and an apply would re-create it).
      shouldDepart: (key) => {
        const [namespace = '', name = ''] = key.split('/');
        const object = this.#informer.get(namespace, name);
        return object !== undefined && this.#events?.hasSession(namespace, object.spec.discovery) === true;
      },
    });
  }

  get seeded(): number {
    return this.#seeded;
  }

  async start(events: PublicationEvents): Promise<void> {
    this.#events = events;
    this.#informer.start();
    await this.#informer.synced();
    const mine = this.#mine();
    this.#publisher.seed(mine);
    this.#seeded = mine.length;
  }

  previouslyServed(namespace: string, discovery: string): DiscoveredDevice[] {
    return this.#mine()
      .filter((d) => d.metadata.namespace === namespace && d.spec.discovery === discovery)
      .map((d) => ({
        id: d.spec.deviceId,
        properties: d.spec.properties ?? {},
        mounts: (d.spec.mounts ?? []).map((m) => ({ containerPath: m.containerPath, hostPath: m.hostPath, readOnly: m.readOnly ?? false })),
        deviceNodes: (d.spec.deviceNodes ?? []).map((n) => ({
          containerPath: n.containerPath,
          hostPath: n.hostPath,
          permissions: n.permissions ?? 'rw',
        })),
      }));
  }

  serverSlots(device: ServedDevice): Readonly<Record<string, string>> | undefined {
    const object = this.#informer.get(device.namespace, device.name);
    return object === undefined ? undefined : (object.spec.slots ?? {});
  }

  publish(devices: readonly ServedDevice[]): Promise<number> {
    return this.#publisher.sync(new Map(devices.map((d) => [DevicePublisher.key(d.namespace, d.name), d])));
  }

  persistSlots(device: ServedDevice, held: readonly number[]): Promise<void> {
    return this.#publisher.setSlots(device.namespace, device.name, held);
  }

  idle(): Promise<void> {
    return this.#publisher.idle();
  }

  async stop(): Promise<void> {
    await this.#informer.stop();
  }

  /** On a Node change: rejoin every served device the controller released meanwhile. */
  nodeChanged(): void {
    const events = this.#events;
    if (events === undefined || !this.#options.nodeReady()) return;
    for (const device of this.#informer.list()) {
      if (events.served(device.metadata.name ?? '') === undefined) continue;
      if (!(device.spec.nodes ?? []).includes(this.#options.node)) this.#rejoin(device);
    }
  }

  #mine(): Device[] {
    return this.#informer.list().filter((d) => (d.spec.nodes ?? []).includes(this.#options.node));
  }

  #onDevice({ type, object: device }: InformerEvent<Device>): void {
    const events = this.#events;
    if (events === undefined || events.served(device.metadata.name ?? '') === undefined) return;
    if (type === 'deleted') {
      // Someone deleted a device this node still sees: write it again.
      this.#publisher.forget(keyOf(device));
      events.republish();
      return;
    }
    events.slots(device.metadata.name ?? '', device.spec.slots ?? {});
    if (!(device.spec.nodes ?? []).includes(this.#options.node) && this.#options.nodeReady()) this.#rejoin(device);
  }

  /**
   * The controller released this node from a Device it still serves (node loss: the node was
   * NotReady for too long, e.g. cut off from the apiserver). Once the node is Ready again the
   * entry is written anew. Waiting for Ready keeps a live agent on a NotReady node from undoing
   * the release at every reconcile.
   */
  #rejoin(device: Device): void {
    this.#options.log.info({ device: keyOf(device) }, 'Rejoining a device the controller released from this node');
    this.#publisher.forget(keyOf(device));
    this.#events?.republish();
  }
}
