/**
 * Keeps this node's part of every Device object equal to what the node serves, with as
 * few writes as possible:
 *   - a new device: one identity apply and one status apply (Online), so a Device never
 *     sits with an empty status — also when it is re-created after going away;
 *   - a changed device: one identity apply;
 *   - online → offline and back: one status apply each, at most one per device every
 *     STATUS_MIN_INTERVAL_MS (a flapping device costs one write per interval with its latest
 *     state, not one per transition; the controller acts on Devices, not on this entry);
 *   - forgotten after the grace period: one departure apply (+ one guarded delete when no
 *     node sees the device any more);
 *   - after a restart, devices whose server state already matches cost nothing.
 * Writes for one device are serialised (a slot claim never overtakes the apply that
 * creates the object); different devices proceed independently.
 */
import type { Logger } from 'pino';
import type { Device } from '../../api/schema.ts';
import { type DevicesApi } from './devices-api.ts';
import {
  departureApply,
  identityApply,
  identityDigest,
  identityManager,
  nodeStateApply,
  serverMatches,
  slotsApply,
  slotsManager,
} from './device-object.ts';
import type { DeviceName } from '../../api/names.ts';
import type { ServedDevice } from '../device.ts';

interface DeviceRecord {
  view?: ServedDevice;
  /** Digest of the identity this node last applied (or found on the server). */
  digest?: string;
  /** Online state last written to (or found in) status; undefined = not written yet. */
  statusState?: 'Online' | 'Offline';
  /** The server object as seen at startup, to skip writes that would change nothing. */
  server?: Device;
  published: boolean;
  /** When this node last wrote the device's status entry (ms). */
  statusWrittenAt?: number;
  /** A status write held back by the interval, due at the end of it. */
  statusTimer?: NodeJS.Timeout;
}

/** Fewest milliseconds between two status writes of one device. */
export const STATUS_MIN_INTERVAL_MS = 2_000;

export interface DevicePublisherOptions {
  readonly node: string;
  readonly api: DevicesApi;
  readonly log: Logger;
  readonly now?: () => Date;
  /**
   * Whether a device this node no longer serves should get a departure write. False when
   * the object is already gone or its DeviceDiscovery was deleted (garbage collection
   * removes it; an apply would re-create it).
   */
  readonly shouldDepart?: (key: string) => boolean;
  /** Most writes in flight at once (the apiserver sheds load beyond its in-flight limit). */
  readonly maxConcurrentWrites?: number;
  /** Fewest milliseconds between two status writes of one device; default STATUS_MIN_INTERVAL_MS. */
  readonly statusMinIntervalMs?: number;
}

export class DevicePublisher {
  readonly #options: DevicePublisherOptions;
  readonly #records = new Map<string, DeviceRecord>();
  readonly #chains = new Map<string, Promise<void>>();
  /** Failed writes are retried on the next sync; this counts them. */
  failures = 0;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(options: DevicePublisherOptions) {
    this.#options = options;
  }

  /** Runs `write` when fewer than maxConcurrentWrites are in flight. */
  async #limited<T>(write: () => Promise<T>): Promise<T> {
    if (this.#inFlight >= (this.#options.maxConcurrentWrites ?? 32)) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#inFlight++;
    try {
      return await write();
    } finally {
      this.#inFlight--;
      this.#waiting.shift()?.();
    }
  }

  static key(namespace: string, name: string): string {
    return `${namespace}/${name}`;
  }

  /** Records what the server already holds for this node (call before the first sync). */
  seed(devices: readonly Device[]): void {
    const node = this.#options.node;
    for (const device of devices) {
      if (!(device.spec.nodes ?? []).includes(node)) continue;
      const state = device.status?.nodeStates?.find((s) => s.node === node)?.state;
      this.#records.set(DevicePublisher.key(device.metadata.namespace ?? '', device.metadata.name ?? ''), {
        server: device,
        published: true,
        ...(state === undefined ? {} : { statusState: state }),
      });
    }
  }

  /**
   * Makes the server reflect `devices` (keyed by namespace/name). Returns when all writes
   * settled, with the number that failed (the caller retries with backoff).
   */
  async sync(devices: ReadonlyMap<string, ServedDevice>): Promise<number> {
    const failuresBefore = this.failures;
    const work: Promise<void>[] = [];
    for (const [key, device] of devices) work.push(this.#enqueue(key, () => this.#publish(key, device)));
    for (const [key, record] of this.#records) {
      if (!devices.has(key) && record.published) work.push(this.#enqueue(key, () => this.#depart(key)));
    }
    await Promise.all(work);
    return this.failures - failuresBefore;
  }

  /**
   * Claims (or releases) slots: `held` are ALL slot indexes this node holds on the device
   * after the change. Throws ApplyConflictError when another node holds one of them.
   */
  setSlots(namespace: string, name: string, held: readonly number[]): Promise<void> {
    const key = DevicePublisher.key(namespace, name);
    return this.#enqueue(
      key,
      async () => {
        await this.#limited(() =>
          this.#options.api.apply(slotsApply(name, namespace, held, this.#options.node), slotsManager(this.#options.node), false),
        );
      },
      true,
    );
  }

  /** Forgets what was written for a device (its object was deleted): the next sync re-applies. */
  forget(key: string): void {
    this.#records.delete(key);
  }

  /** Resolves when every queued write has settled. */
  async idle(): Promise<void> {
    while (this.#chains.size > 0) await Promise.all(this.#chains.values());
  }

  #enqueue(key: string, task: () => Promise<void>, propagate = false): Promise<void> {
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const run = previous.then(task);
    const settled = run.catch((error: unknown) => {
      if (propagate) return;
      this.failures++;
      this.#options.log.warn({ err: error, device: key }, 'Failed to publish device');
    });
    this.#chains.set(key, settled);
    void settled.then(() => {
      if (this.#chains.get(key) === settled) this.#chains.delete(key);
    });
    return propagate ? run : settled;
  }

  async #publish(key: string, view: ServedDevice): Promise<void> {
    const { api, node } = this.#options;
    const record = this.#records.get(key) ?? { published: false };
    this.#records.set(key, record);
    record.view = view;
    const digest = identityDigest(view);
    if (record.digest === undefined && record.server !== undefined && serverMatches(record.server, view, node)) {
      record.digest = digest; // restart: the server already says this
    }
    if (record.digest !== digest) {
      await this.#limited(() => api.apply(identityApply(view, node), identityManager(node), true));
      record.digest = digest;
      record.published = true;
    }
    await this.#writeStatus(key, record);
  }

  /**
   * Writes the device's status entry if it changed: now, or at the end of the interval (a
   * record dropped meanwhile is not written).
   */
  async #writeStatus(key: string, record: DeviceRecord): Promise<void> {
    const view = record.view;
    if (view === undefined || this.#records.get(key) !== record) return;
    const wanted = view.online ? 'Online' : 'Offline';
    if (wanted === record.statusState || record.statusTimer !== undefined) return;
    const now = this.#now().getTime();
    const wait = (record.statusWrittenAt ?? -Infinity) + (this.#options.statusMinIntervalMs ?? STATUS_MIN_INTERVAL_MS) - now;
    if (wait > 0) {
      record.statusTimer = setTimeout(() => {
        record.statusTimer = undefined;
        void this.#enqueue(key, () => this.#writeStatus(key, record));
      }, wait);
      record.statusTimer.unref();
      return;
    }
    const { api, node } = this.#options;
    await this.#limited(() =>
      api.applyStatus(nodeStateApply(view.name, view.namespace, node, wanted, new Date(now)), identityManager(node)),
    );
    record.statusState = wanted;
    record.statusWrittenAt = now;
  }

  async #depart(key: string): Promise<void> {
    const record = this.#records.get(key);
    if (record === undefined || !record.published) return;
    if (this.#options.shouldDepart?.(key) === false) {
      this.#records.delete(key);
      return;
    }
    const view = record.view ?? viewOfServer(record.server);
    if (view === undefined) return;
    const after = await this.#limited(() => this.#options.api.apply(departureApply(view), identityManager(this.#options.node), true));
    this.#records.delete(key);
    // Delete only while no node sees it. The precondition refuses a delete racing a node that
    // just joined; any other change in between (e.g. a status write) gets a fresh look.
    let current: Device | undefined = after;
    for (let attempt = 0; attempt < 3 && current !== undefined; attempt++) {
      const resourceVersion = current.metadata.resourceVersion;
      if ((current.spec.nodes ?? []).length > 0 || resourceVersion === undefined) return;
      if (await this.#limited(() => this.#options.api.deleteIfUnchanged(view.namespace, view.name, resourceVersion))) {
        this.#options.log.info({ device: key }, 'Deleted device no node sees');
        return;
      }
      current = await this.#options.api.get(view.namespace, view.name);
    }
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }
}

/** The view a seeded server object implies, for departing a device never re-reported. */
function viewOfServer(device: Device | undefined): ServedDevice | undefined {
  if (device === undefined) return undefined;
  const owner = device.metadata.ownerReferences?.find((o) => o.kind === 'DeviceDiscovery');
  return {
    name: (device.metadata.name ?? '') as DeviceName,
    namespace: device.metadata.namespace ?? '',
    discovery: device.spec.discovery,
    ...(owner === undefined ? {} : { discoveryUid: owner.uid }),
    deviceId: device.spec.deviceId,
    shared: device.spec.shared,
    capacity: device.spec.capacity,
    properties: device.spec.properties ?? {},
    mounts: (device.spec.mounts ?? []).map((m) => ({
      containerPath: m.containerPath,
      hostPath: m.hostPath,
      readOnly: m.readOnly ?? false,
    })),
    deviceNodes: (device.spec.deviceNodes ?? []).map((n) => ({
      containerPath: n.containerPath,
      hostPath: n.hostPath,
      permissions: n.permissions ?? 'rw',
    })),
    online: false,
  };
}
