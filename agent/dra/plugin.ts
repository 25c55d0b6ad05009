/**
 * Tether as a kubelet DRA plugin: the gRPC edge around `DraDriver`.
 *
 * Two Unix sockets:
 *   - `<kubeletDir>/plugins_registry/tether.dev-reg.sock` serves `pluginregistration.Registration`;
 *     the kubelet's plugin watcher finds it, calls GetInfo and reports the outcome;
 *   - `<kubeletDir>/plugins/tether.dev/dra.sock` (the endpoint GetInfo names) serves
 *     `DRAPlugin` v1 and v1beta1 and `DRAResourceHealth` v1 and v1alpha1, all advertised in
 *     `supported_versions`; the kubelet picks the newest it knows.
 *
 * A kubelet restart may wipe `plugins_registry`: a watch on that directory (fs events plus a
 * slow poll as a safety net) re-creates a missing socket, so the kubelet registers the plugin
 * again. A refused registration is retried the same way, by re-creating the registration socket
 * after a backoff (the plugin watcher registers a socket again when it is re-created).
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { DRA_DRIVER_NAME } from '../../api/dra-names.ts';
import { loadDraProtos, type DraProtos } from '../../proto/load.ts';
import {
  DRA_PLUGIN_TYPE,
  type DraClaimsRequest,
  type NodePrepareResourcesResponse,
  type NodeUnprepareResourcesResponse,
  type NodeWatchResourcesResponse,
  type PluginInfo,
  type RegistrationStatus,
} from '../../proto/types.ts';
import type { DraDriver } from './driver.ts';
import { healthKey, healthReport } from './health.ts';

/** The services advertised in `supported_versions`, newest first (kubelet v1.37.2 names). */
export const DRA_SUPPORTED_SERVICES = ['v1.DRAPlugin', 'v1beta1.DRAPlugin', 'v1.DRAResourceHealth', 'v1alpha1.DRAResourceHealth'] as const;

export interface DraPluginOptions {
  /** The kubelet's root directory, e.g. /var/lib/kubelet. */
  readonly kubeletDir: string;
  /** This node's name (pools of node-local devices carry it). */
  readonly node: string;
  readonly driver: DraDriver;
  readonly log: Logger;
  /**
   * Safety-net check interval while both socket directories are watched (fs events react
   * first); default 10 s. Without a watch the check runs every UNWATCHED_POLL_MS.
   */
  readonly pollIntervalMs?: number;
}

const MAX_RETRY_MS = 30_000;
/** The check's interval while a socket directory could not be watched. */
const UNWATCHED_POLL_MS = 1_000;

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}

async function bind(socket: string, add: (server: Server) => void): Promise<Server> {
  await rm(socket, { force: true });
  const server = new Server();
  add(server);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) =>
      error ? reject(new Error(`binding ${socket}`, { cause: error })) : resolve(),
    );
  });
  return server;
}

async function shutdown(server: Server | undefined): Promise<void> {
  if (server === undefined) return;
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => server.forceShutdown(), 1_000);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

export class DraPlugin {
  readonly registrationSocket: string;
  readonly endpoint: string;
  readonly #options: DraPluginOptions;
  readonly #log: Logger;
  readonly #protos: DraProtos;
  readonly #streams = new Set<ServerWritableStream<unknown, NodeWatchResourcesResponse>>();
  #registration: Server | undefined;
  #service: Server | undefined;
  #watchers: FSWatcher[] = [];
  #poll: NodeJS.Timeout | undefined;
  #pollMs = 0;
  #retry: NodeJS.Timeout | undefined;
  #retryMs = 1_000;
  #checking: Promise<void> = Promise.resolve();
  #lastHealth = '';
  #unsubscribe: (() => void) | undefined;
  #stopped = true;
  /** Successful registrations the kubelet reported (metrics, tests). */
  registrations = 0;

  constructor(options: DraPluginOptions) {
    this.#options = options;
    this.#log = options.log.child({ component: 'dra-plugin' });
    this.registrationSocket = join(options.kubeletDir, 'plugins_registry', `${DRA_DRIVER_NAME}-reg.sock`);
    this.endpoint = join(options.kubeletDir, 'plugins', DRA_DRIVER_NAME, 'dra.sock');
    this.#protos = loadDraProtos();
  }

  /** Serves both sockets and starts watching for them to disappear. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#unsubscribe = this.#options.driver.onChange(() => this.#pushHealth());
    // Bound afresh even when socket files exist: they are stale, from an agent that crashed.
    await this.#ensureSockets(true); // also starts the directory watches and the poll
  }

  /** Stops serving and removes both sockets (the kubelet then deregisters the plugin). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#closeWatchers();
    clearInterval(this.#poll);
    this.#poll = undefined;
    clearTimeout(this.#retry);
    await this.#checking;
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
    await Promise.all([shutdown(this.#registration), shutdown(this.#service)]);
    this.#registration = this.#service = undefined;
    await Promise.all([rm(this.registrationSocket, { force: true }), rm(this.endpoint, { force: true })]);
  }

  /** Coalesced: re-creates whichever socket is missing. */
  #check(): Promise<void> {
    if (this.#stopped) return this.#checking;
    this.#checking = this.#checking
      .then(() => (this.#stopped ? undefined : this.#ensureSockets()))
      .catch((error: unknown) => this.#log.error({ err: error }, 'Failed to serve the DRA plugin sockets'));
    return this.#checking;
  }

  async #ensureSockets(fresh = false): Promise<void> {
    let served = false;
    if (fresh || !(await isSocket(this.endpoint))) {
      await shutdown(this.#service);
      await mkdir(join(this.endpoint, '..'), { recursive: true });
      this.#service = await bind(this.endpoint, (server) => this.#addDraServices(server));
      this.#log.info({ endpoint: this.endpoint }, 'Serving DRA plugin');
      served = true;
    }
    if (fresh || !(await isSocket(this.registrationSocket))) {
      await this.#serveRegistration();
      served = true;
    }
    // New watches: a directory may have been re-created.
    if (served) this.#watchDirs();
  }

  async #serveRegistration(): Promise<void> {
    await shutdown(this.#registration);
    this.#registration = undefined;
    await mkdir(join(this.registrationSocket, '..'), { recursive: true });
    this.#registration = await bind(this.registrationSocket, (server) =>
      server.addService(this.#protos.Registration.service, this.#registrationImpl()),
    );
    this.#log.info({ socket: this.registrationSocket }, 'Offered DRA plugin registration');
  }

  /** Watches both socket directories, so a removed socket is served again at once. */
  #watchDirs(): void {
    // One watch per directory at a time: a leaked watcher would keep the process alive after stop().
    this.#closeWatchers();
    if (this.#stopped) return;
    for (const dir of [dirname(this.registrationSocket), dirname(this.endpoint)]) {
      try {
        const watcher = watch(dir, () => void this.#check());
        watcher.on('error', () => {
          watcher.close();
          this.#watchers = this.#watchers.filter((w) => w !== watcher);
          this.#armPoll();
        });
        this.#watchers.push(watcher);
      } catch {
        // directory missing: the fast poll re-creates it
      }
    }
    this.#armPoll();
  }

  #closeWatchers(): void {
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
  }

  /** The safety-net poll: slow while both directories are watched, fast while one is not. */
  #armPoll(): void {
    if (this.#stopped) return;
    const ms = this.#watchers.length === 2 ? (this.#options.pollIntervalMs ?? 10_000) : UNWATCHED_POLL_MS;
    if (ms === this.#pollMs && this.#poll !== undefined) return;
    clearInterval(this.#poll);
    this.#pollMs = ms;
    this.#poll = setInterval(() => void this.#check(), ms);
    this.#poll.unref();
  }

  #registrationImpl(): UntypedServiceImplementation {
    return {
      GetInfo: (_call: ServerUnaryCall<unknown, PluginInfo>, done: sendUnaryData<PluginInfo>) =>
        done(null, {
          type: DRA_PLUGIN_TYPE,
          name: DRA_DRIVER_NAME,
          endpoint: this.endpoint,
          supported_versions: [...DRA_SUPPORTED_SERVICES],
        }),
      NotifyRegistrationStatus: (call: ServerUnaryCall<RegistrationStatus, unknown>, done: sendUnaryData<unknown>) => {
        done(null, {});
        this.#registered(call.request);
      },
    };
  }

  #registered(status: RegistrationStatus): void {
    clearTimeout(this.#retry);
    if (status.plugin_registered) {
      this.registrations++;
      this.#retryMs = 1_000;
      this.#log.info({ driver: DRA_DRIVER_NAME }, 'Registered DRA plugin with the kubelet');
      return;
    }
    this.#log.error(
      { driver: DRA_DRIVER_NAME, error: status.error, retryInMs: this.#retryMs },
      'Kubelet refused the DRA plugin registration',
    );
    // Offer the registration again later: a re-created socket is a new plugin to the kubelet.
    this.#retry = setTimeout(() => {
      if (this.#stopped) return;
      this.#checking = this.#checking
        .then(() => this.#serveRegistration())
        .catch((error: unknown) => this.#log.error({ err: error }, 'Failed to re-offer DRA plugin registration'));
    }, this.#retryMs);
    this.#retry.unref();
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
  }

  #addDraServices(server: Server): void {
    const driver = this.#options.driver;
    const unary =
      <R>(run: (request: DraClaimsRequest) => Promise<R>, strip: (response: R) => R = (r) => r) =>
      (call: ServerUnaryCall<DraClaimsRequest, R>, done: sendUnaryData<R>) => {
        // The driver answers per claim and never rejects; a rejection is a bug: INTERNAL.
        run(call.request).then(
          (response) => done(null, strip(response)),
          (error: unknown) => done({ code: status.INTERNAL, details: error instanceof Error ? error.message : String(error) }),
        );
      };
    const prepare = (request: DraClaimsRequest): Promise<NodePrepareResourcesResponse> => driver.prepare(request.claims);
    const unprepare = (request: DraClaimsRequest): Promise<NodeUnprepareResourcesResponse> => driver.unprepare(request.claims);
    server.addService(this.#protos.DRAPlugin.v1.service, {
      NodePrepareResources: unary(prepare),
      NodeUnprepareResources: unary(unprepare),
    });
    server.addService(this.#protos.DRAPlugin.v1beta1.service, {
      NodePrepareResources: unary(prepare, withoutShareIds),
      NodeUnprepareResources: unary(unprepare),
    });
    const watchResources = (stream: ServerWritableStream<unknown, NodeWatchResourcesResponse>): void => {
      this.#streams.add(stream);
      const forget = (): void => void this.#streams.delete(stream);
      stream.on('cancelled', forget);
      stream.on('close', forget);
      stream.on('error', forget);
      stream.write(this.#report());
    };
    server.addService(this.#protos.DRAResourceHealth.v1.service, { NodeWatchResources: watchResources });
    server.addService(this.#protos.DRAResourceHealth.v1alpha1.service, { NodeWatchResources: watchResources });
  }

  #report(): NodeWatchResourcesResponse {
    const report = healthReport(this.#options.driver.devices(), this.#options.node, Math.floor(Date.now() / 1000));
    this.#lastHealth = healthKey(report);
    return report;
  }

  /** Pushes the full report to every watcher when health or the device set changed. */
  #pushHealth(): void {
    const report = healthReport(this.#options.driver.devices(), this.#options.node, Math.floor(Date.now() / 1000));
    const key = healthKey(report);
    if (key === this.#lastHealth) return;
    this.#lastHealth = key;
    for (const stream of this.#streams) stream.write(report);
  }
}

/** v1beta1's Device has no share_id. */
function withoutShareIds(response: NodePrepareResourcesResponse): NodePrepareResourcesResponse {
  const claims = Object.fromEntries(
    Object.entries(response.claims).map(([uid, claim]) => [
      uid,
      { ...claim, devices: claim.devices.map(({ share_id: _unused, ...rest }) => rest) },
    ]),
  );
  return { claims };
}
