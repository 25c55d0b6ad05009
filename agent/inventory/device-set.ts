/**
 * What one discovery session currently sees, with the offline grace period applied.
 *
 * Implements the handler-facing DeviceSink. A device the handler stops reporting turns
 * offline at once (its slots become Unhealthy) and is forgotten only after `graceMs`;
 * if it comes back first, nothing was lost. Timers are the only I/O, and injectable.
 */
import type { DeviceSink, DiscoveredDevice } from '../../discovery-handlers/contract.ts';

/** A reported device and whether it is online (offline: within its grace period). */
interface TrackedDevice {
  readonly device: DiscoveredDevice;
  readonly online: boolean;
}

export interface DeviceSetOptions {
  /** How long an offline device is kept before it is forgotten. */
  readonly graceMs: number;
  /** Called (synchronously) after every change of the set. */
  readonly onChange: () => void;
  readonly timers?: { set: (fn: () => void, ms: number) => unknown; clear: (handle: unknown) => void };
}

const realTimers = {
  set: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clear: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout),
};

function sameDevice(a: DiscoveredDevice, b: DiscoveredDevice): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class DeviceSet implements DeviceSink {
  readonly #options: DeviceSetOptions;
  readonly #timers: NonNullable<DeviceSetOptions['timers']>;
  readonly #tracked = new Map<string, TrackedDevice>();
  readonly #expiry = new Map<string, unknown>();
  /** Devices known from before a restart that the handler has not confirmed yet. */
  readonly #provisional = new Set<string>();
  /** Whether the handler has reported at least once since the session started. */
  reported = false;

  constructor(options: DeviceSetOptions) {
    this.#options = options;
    this.#timers = options.timers ?? realTimers;
  }

  /**
   * Devices known from before an agent restart (e.g. from Device resources): served as
   * online until the handler's first full report says otherwise, or `expireProvisional`
   * runs — so a restart neither drops nor recreates anything.
   */
  seed(devices: readonly DiscoveredDevice[]): void {
    for (const device of devices) {
      if (this.#tracked.has(device.id)) continue;
      this.#tracked.set(device.id, { device, online: true });
      this.#provisional.add(device.id);
    }
    if (devices.length > 0) this.#options.onChange();
  }

  /** Startup timeout passed: seeded devices the handler never confirmed go offline. */
  expireProvisional(): void {
    let changed = false;
    for (const id of [...this.#provisional]) {
      this.#provisional.delete(id);
      changed = this.#offline(id) || changed;
    }
    if (changed) this.#options.onChange();
  }

  snapshot(): { readonly device: DiscoveredDevice; readonly online: boolean }[] {
    return [...this.#tracked.values()];
  }

  replaceAll(devices: readonly DiscoveredDevice[]): void {
    const ids = new Set(devices.map((d) => d.id));
    this.#provisional.clear();
    let changed = !this.reported;
    this.reported = true;
    for (const device of devices) changed = this.#online(device) || changed;
    for (const id of this.#tracked.keys()) if (!ids.has(id)) changed = this.#offline(id) || changed;
    if (changed) this.#options.onChange();
  }

  upsert(device: DiscoveredDevice): void {
    this.reported = true;
    if (this.#online(device)) this.#options.onChange();
  }

  remove(id: string): void {
    if (this.#offline(id)) this.#options.onChange();
  }

  /** Cancels pending expiry timers (session stopped). */
  close(): void {
    for (const handle of this.#expiry.values()) this.#timers.clear(handle);
    this.#expiry.clear();
  }

  #online(device: DiscoveredDevice): boolean {
    this.#provisional.delete(device.id);
    const current = this.#tracked.get(device.id);
    const handle = this.#expiry.get(device.id);
    if (handle !== undefined) {
      this.#timers.clear(handle);
      this.#expiry.delete(device.id);
    }
    if (current?.online === true && sameDevice(current.device, device)) return false;
    this.#tracked.set(device.id, { device, online: true });
    return true;
  }

  #offline(id: string): boolean {
    const current = this.#tracked.get(id);
    if (current === undefined || !current.online) return false;
    if (this.#options.graceMs <= 0) {
      this.#tracked.delete(id);
      return true;
    }
    this.#tracked.set(id, { device: current.device, online: false });
    this.#expiry.set(
      id,
      this.#timers.set(() => {
        this.#expiry.delete(id);
        this.#tracked.delete(id);
        this.#options.onChange();
      }, this.#options.graceMs),
    );
    return true;
  }
}
