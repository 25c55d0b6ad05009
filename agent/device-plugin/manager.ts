/**
 * Runs the set of device-plugin servers for this node and keeps them registered.
 *
 * The caller states the whole desired set of resources (`sync`); the manager diffs it,
 * starts and stops servers, and pushes device lists. It watches the device-plugins
 * directory: when the kubelet restarts it wipes the plugin sockets and re-creates
 * kubelet.sock, and every plugin is re-served and re-registered at once. The directory
 * watch reacts first; a poll is the safety net: every 10 s while the directory is watched
 * (for filesystems whose watch misses events), every 500 ms while it is not (missing, or
 * being replaced). With no plugin to keep registered there is nothing to poll for, so an
 * agent serving no device never wakes for it (issue 15); the first plugin's check watches
 * the directory again if it has to.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { credentials, type Client } from '@grpc/grpc-js';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadDevicePluginProtos, type DevicePluginProtos } from '../../proto/load.ts';
import type { PluginDevice } from '../../proto/types.ts';
import { DevicePluginServer, type PluginBackend } from './server.ts';
import { KUBELET_CHANNEL_OPTIONS } from '../kubelet/channel-options.ts';

export interface DevicePluginManagerOptions {
  /** The kubelet's device-plugins directory, e.g. /var/lib/kubelet/device-plugins. */
  readonly pluginDir: string;
  readonly backend: PluginBackend;
  readonly log: Logger;
  /** Safety-net check interval while the directory is watched (fs events normally react first). Default 10 s. */
  readonly pollIntervalMs?: number;
  /** Check interval while the directory cannot be watched (missing or replaced). Default 500 ms. */
  readonly unwatchedPollIntervalMs?: number;
  /** Called after each successful registration with the kubelet (metrics). */
  readonly onRegistration?: () => void;
}

const KUBELET_SOCKET = 'kubelet.sock';
const MAX_RETRY_MS = 1_000;
/** Plugins checked and registered at once (the kubelet handles registrations one by one anyway). */
const REGISTER_CONCURRENCY = 16;

/** Runs `work` on every item, at most `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Identity of a socket file; inode numbers are reused, so the change time is part of it. */
async function socketIdentity(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return s.isSocket() ? `${s.ino}:${s.ctimeMs}` : undefined;
  } catch {
    return undefined;
  }
}

interface Entry {
  readonly server: DevicePluginServer;
  /** Identity of the kubelet.sock this plugin registered with; undefined = needs registration. */
  registeredWith: string | undefined;
}

export class DevicePluginManager {
  readonly #options: DevicePluginManagerOptions;
  readonly #protos: DevicePluginProtos;
  readonly #entries = new Map<string, Entry>();
  #watcher: FSWatcher | undefined;
  /** Identity (inode) of the directory #watcher watches: a replaced directory needs a new watch. */
  #watchedDir: number | undefined;
  #poll: NodeJS.Timeout | undefined;
  #pollMs: number | undefined;
  #retry: NodeJS.Timeout | undefined;
  #retryDelayMs = 50;
  #checking: Promise<void> = Promise.resolve();
  #checkQueued = false;
  /** Set by fs events and new plugins: the next check must stat every plugin socket. */
  #fullCheck = true;
  #lastKubelet: string | undefined;
  /** One Registration client per kubelet.sock identity, shared by every plugin's registration. */
  #registration: { readonly kubelet: string; readonly client: Client } | undefined;
  #stopped = false;
  /** Registrations completed (for metrics and tests). */
  registrations = 0;

  constructor(options: DevicePluginManagerOptions) {
    this.#options = options;
    this.#protos = loadDevicePluginProtos();
  }

  get kubeletSocket(): string {
    return join(this.#options.pluginDir, KUBELET_SOCKET);
  }

  /** The running servers by resource name (read-only view for callers and tests). */
  servers(): ReadonlyMap<string, DevicePluginServer> {
    return new Map([...this.#entries].map(([name, e]) => [name, e.server]));
  }

  start(): void {
    this.#stopped = false;
    this.#watchDir();
  }

  /**
   * Updates the devices of running plugins only (the set of plugins stays). False, with
   * nothing changed, when one of `resources` is not running: the caller syncs instead.
   */
  update(resources: ReadonlyMap<string, readonly PluginDevice[]>): boolean {
    if (this.#stopped) return true;
    for (const name of resources.keys()) if (!this.#entries.has(name)) return false;
    for (const [name, devices] of resources) this.#entries.get(name)!.server.setDevices(devices);
    return true;
  }

  /** Makes the running set equal `resources` (resource name → devices). */
  async sync(resources: ReadonlyMap<string, readonly PluginDevice[]>): Promise<void> {
    if (this.#stopped) return; // a late sync after stop() must not open new sockets
    const starting: Promise<void>[] = [];
    for (const [name, devices] of resources) {
      const entry = this.#entries.get(name);
      if (entry !== undefined) {
        entry.server.setDevices(devices);
        continue;
      }
      const server = new DevicePluginServer({
        resourceName: name,
        pluginDir: this.#options.pluginDir,
        backend: this.#options.backend,
        log: this.#options.log,
        protos: this.#protos,
      });
      server.setDevices(devices);
      this.#entries.set(name, { server, registeredWith: undefined });
      starting.push(server.serve());
    }
    const stopping = [...this.#entries]
      .filter(([name]) => !resources.has(name))
      .map(([name, entry]) => {
        this.#entries.delete(name);
        return entry.server.stop();
      });
    this.#armPoll();
    // One plugin that cannot serve must not hold up the others: the check retries it.
    const started = await Promise.allSettled(starting);
    for (const result of started) {
      if (result.status === 'rejected') this.#options.log.error({ err: result.reason as unknown }, 'Cannot serve device plugin');
    }
    await Promise.all(stopping);
    if (this.#stopped) {
      // stop() ran while these servers were starting: close them too.
      await Promise.all([...this.#entries.values()].map((e) => e.server.stop()));
      this.#entries.clear();
      return;
    }
    if (starting.length > 0) {
      this.#fullCheck = true;
      await this.#requestCheck();
    }
  }

  /** Stops every server and removes its socket. Nothing else is touched. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwatch();
    clearInterval(this.#poll);
    this.#poll = undefined;
    clearTimeout(this.#retry);
    await this.#checking;
    this.#registration?.client.close();
    this.#registration = undefined;
    await Promise.all([...this.#entries.values()].map((e) => e.server.stop()));
    this.#entries.clear();
  }

  #watchDir(): void {
    try {
      this.#watchedDir = statSync(this.#options.pluginDir).ino;
      this.#watcher = watch(this.#options.pluginDir, () => {
        this.#fullCheck = true;
        void this.#requestCheck();
      });
      this.#watcher.on('error', () => {
        this.#unwatch();
        void this.#requestCheck();
      });
    } catch {
      this.#unwatch(); // directory missing; the fast poll re-creates the watch later
    }
    this.#armPoll();
  }

  #unwatch(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#watchedDir = undefined;
    this.#armPoll();
  }

  /** The safety-net poll's interval now: undefined while no plugin runs (nothing to keep registered). */
  get pollIntervalMs(): number | undefined {
    return this.#poll === undefined ? undefined : this.#pollMs;
  }

  /** The safety-net poll: slow while the directory is watched, fast while it is not, off with no plugin. */
  #armPoll(): void {
    const ms =
      this.#stopped || this.#entries.size === 0
        ? undefined
        : this.#watcher === undefined
          ? (this.#options.unwatchedPollIntervalMs ?? 500)
          : (this.#options.pollIntervalMs ?? 10_000);
    if (ms === this.#pollMs && (this.#poll !== undefined) === (ms !== undefined)) return;
    clearInterval(this.#poll);
    this.#poll = undefined;
    this.#pollMs = ms;
    if (ms === undefined) return;
    this.#poll = setInterval(() => void this.#requestCheck(), ms);
    this.#poll.unref();
  }

  /** Drops the watch when its directory was removed or replaced (a watch follows the inode, not the path). */
  async #checkWatchedDir(): Promise<void> {
    if (this.#watcher === undefined) return;
    const ino = await stat(this.#options.pluginDir).then(
      (s) => s.ino,
      () => undefined,
    );
    if (ino !== this.#watchedDir) this.#unwatch();
  }

  /** Coalesces bursts of fs events into one check at a time. */
  #requestCheck(): Promise<void> {
    if (this.#stopped) return this.#checking;
    if (this.#checkQueued) return this.#checking;
    this.#checkQueued = true;
    this.#checking = this.#checking
      .then(async () => {
        this.#checkQueued = false;
        if (!this.#stopped) await this.#check();
      })
      // A failed check must neither crash the agent (nobody awaits the poll) nor leave the
      // chain rejected for every later check: log it and try again with backoff.
      .catch((error: unknown) => {
        this.#options.log.error({ err: error }, 'Device plugin check failed');
        this.#scheduleRetry(true);
      });
    return this.#checking;
  }

  /**
   * The poll only stats kubelet.sock (cheap with thousands of plugins); every plugin socket
   * is checked when an fs event arrived, kubelet.sock changed, or a registration is pending.
   */
  async #check(): Promise<void> {
    await this.#checkWatchedDir();
    if (this.#watcher === undefined) {
      this.#watchDir();
      this.#fullCheck = true;
    }
    const kubelet = await socketIdentity(this.kubeletSocket);
    const pending = [...this.#entries.values()].some((e) => e.registeredWith !== kubelet);
    if (!this.#fullCheck && kubelet === this.#lastKubelet && !pending) return;
    this.#fullCheck = false;
    this.#lastKubelet = kubelet;
    let failed = false;
    // Bounded parallelism: one at a time, 1 000 per-device plugins took minutes to register
    // (each a socket check, a connection to kubelet.sock and the kubelet dialling back).
    await forEachLimited([...this.#entries.values()], REGISTER_CONCURRENCY, async (entry) => {
      if (!(await this.#checkEntry(entry, kubelet))) failed = true;
    });
    this.#scheduleRetry(failed);
  }

  /** Serves `entry` again if its socket was wiped, and registers it with `kubelet`. False when either failed. */
  async #checkEntry(entry: Entry, kubelet: string | undefined): Promise<boolean> {
    if (this.#stopped) return true;
    if ((await socketIdentity(entry.server.socketPath)) === undefined) {
      // Our socket was wiped (kubelet restart): serve again and re-register. A socket that
      // cannot be bound (read-only dir) costs this resource, never the agent: retried later.
      try {
        await entry.server.serve();
      } catch (error) {
        this.#options.log.error(
          { err: error, resource: entry.server.resourceName, socket: entry.server.socketPath },
          'Cannot serve device plugin',
        );
        return false;
      }
      entry.registeredWith = undefined;
    }
    if (kubelet === undefined || entry.registeredWith === kubelet) return true;
    try {
      await entry.server.register(this.kubeletSocket, undefined, this.#registrationClient(kubelet));
      entry.registeredWith = kubelet;
      this.registrations++;
      this.#options.onRegistration?.();
      return true;
    } catch (error) {
      // A channel that failed reconnects with gRPC's backoff (up to minutes): start afresh.
      this.#registration?.client.close();
      this.#registration = undefined;
      this.#options.log.warn({ err: error, resource: entry.server.resourceName }, 'Failed to register device plugin');
      return false;
    }
  }

  /** The shared Registration client for this kubelet.sock; a new kubelet (restart) gets a new one. */
  #registrationClient(kubelet: string): Client {
    if (this.#registration?.kubelet !== kubelet) {
      this.#registration?.client.close();
      const client = new this.#protos.Registration(`unix://${this.kubeletSocket}`, credentials.createInsecure(), KUBELET_CHANNEL_OPTIONS);
      this.#registration = { kubelet, client };
    }
    return this.#registration.client;
  }

  #scheduleRetry(failed: boolean): void {
    clearTimeout(this.#retry);
    if (!failed) {
      this.#retryDelayMs = 50;
      return;
    }
    this.#retry = setTimeout(() => void this.#requestCheck(), this.#retryDelayMs);
    this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, MAX_RETRY_MS);
  }
}
