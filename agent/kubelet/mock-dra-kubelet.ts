/**
 * The kubelet's DRA side, played for fast tests over the real wire protocols: it watches
 * `plugins_registry` like the kubelet's plugin watcher (any `*.sock` that is new or re-created),
 * calls GetInfo, checks the plugin type and picks the newest DRAPlugin and DRAResourceHealth
 * services it knows from `supported_versions` (as kubelet v1.37.2 does), answers
 * NotifyRegistrationStatus, then dials the endpoint for NodePrepareResources,
 * NodeUnprepareResources and NodeWatchResources. `restart()` wipes `plugins_registry` and
 * forgets every registration, as a kubelet restart does.
 */
import { EventEmitter } from 'node:events';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { credentials, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { loadDraProtos } from '../../proto/load.ts';
import type {
  DraClaim,
  NodePrepareResourcesResponse,
  NodeUnprepareResourcesResponse,
  NodeWatchResourcesResponse,
  PluginInfo,
} from '../../proto/types.ts';

const DRA_SERVICES = ['v1.DRAPlugin', 'v1beta1.DRAPlugin'] as const;
const HEALTH_SERVICES = ['v1.DRAResourceHealth', 'v1alpha1.DRAResourceHealth'] as const;

type Rpc = (request: unknown, options: unknown, callback?: unknown) => unknown;

/** A DRA plugin the mock registered. */
export interface RegisteredDraPlugin {
  readonly info: PluginInfo;
  /** Chosen DRAPlugin version (`v1` or `v1beta1`). */
  readonly version: 'v1' | 'v1beta1';
  /** Chosen DRAResourceHealth version, if the plugin advertises one. */
  readonly healthVersion: 'v1' | 'v1alpha1' | undefined;
  /** Identity of the registration socket it came from. */
  readonly socket: string;
}

/** A NodeWatchResources stream the mock holds open. */
export interface HealthWatch {
  readonly messages: NodeWatchResourcesResponse[];
  close(): void;
}

export interface MockDraKubeletOptions {
  /** The kubelet's root dir: `plugins_registry` is watched inside it. */
  readonly kubeletDir: string;
  /** Refuse registrations with this error (NotifyRegistrationStatus false) while set. */
  refuse?: string | undefined;
  readonly pollIntervalMs?: number;
  /**
   * The services this kubelet knows, newest first (default: what kubelet v1.37.2 knows). An
   * older kubelet, e.g. `['v1beta1.DRAPlugin', 'v1alpha1.DRAResourceHealth']`, proves the
   * plugin's older versions.
   */
  readonly knownServices?: readonly string[];
}

/** Events: 'registered' (name), 'refused' (name), 'health' (name, message), 'restarted'. */
export class MockDraKubelet extends EventEmitter {
  readonly #options: MockDraKubeletOptions;
  readonly #protos = loadDraProtos();
  readonly #plugins = new Map<string, RegisteredDraPlugin>();
  /** socket path → identity last handled */
  readonly #seen = new Map<string, string>();
  readonly #clients = new Set<Client>();
  #poll: NodeJS.Timeout | undefined;
  #scanning = false;
  /** GetInfo calls made. */
  registrations = 0;

  constructor(options: MockDraKubeletOptions) {
    super();
    this.#options = options;
  }

  get registryDir(): string {
    return join(this.#options.kubeletDir, 'plugins_registry');
  }

  /** Refuse (or, with undefined, accept) later registrations. */
  set refuse(error: string | undefined) {
    this.#options.refuse = error;
  }

  async start(): Promise<void> {
    await mkdir(this.registryDir, { recursive: true });
    this.#poll = setInterval(() => void this.#scan(), this.#options.pollIntervalMs ?? 25);
  }

  stop(): void {
    clearInterval(this.#poll);
    for (const client of this.#clients) client.close();
    this.#clients.clear();
  }

  /** A kubelet restart: registrations forgotten, `plugins_registry` emptied. */
  async restart(): Promise<void> {
    this.stop();
    this.#plugins.clear();
    this.#seen.clear();
    for (const name of await readdir(this.registryDir)) await rm(join(this.registryDir, name), { force: true, recursive: true });
    this.emit('restarted');
    await this.start();
  }

  plugin(name: string): RegisteredDraPlugin | undefined {
    return this.#plugins.get(name);
  }

  prepare(driver: string, claims: readonly DraClaim[]): Promise<NodePrepareResourcesResponse> {
    return this.#call(driver, 'NodePrepareResources', { claims });
  }

  unprepare(driver: string, claims: readonly DraClaim[]): Promise<NodeUnprepareResourcesResponse> {
    return this.#call(driver, 'NodeUnprepareResources', { claims });
  }

  /** Opens NodeWatchResources with the negotiated health version; messages collect in order. */
  watchHealth(driver: string): HealthWatch {
    const plugin = this.#plugins.get(driver);
    if (plugin?.healthVersion === undefined) throw new Error(`${driver} is not registered with a health service`);
    const client = new this.#protos.DRAResourceHealth[plugin.healthVersion](`unix://${plugin.info.endpoint}`, credentials.createInsecure());
    this.#clients.add(client);
    const messages: NodeWatchResourcesResponse[] = [];
    const stream = (client as unknown as Record<string, (r: unknown) => ClientReadableStream<NodeWatchResourcesResponse>>)[
      'NodeWatchResources'
    ]!.call(client, {});
    stream.on('data', (message: NodeWatchResourcesResponse) => {
      messages.push(message);
      this.emit('health', driver, message);
    });
    stream.on('error', () => undefined); // cancelled on close
    return {
      messages,
      close: () => {
        stream.cancel();
        client.close();
        this.#clients.delete(client);
      },
    };
  }

  /** Resolves once `predicate` holds (checked on every event and every 25 ms). */
  async waitFor(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`mock DRA kubelet: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async #scan(): Promise<void> {
    if (this.#scanning) return;
    this.#scanning = true;
    try {
      for (const name of await readdir(this.registryDir).catch(() => [])) {
        if (!name.endsWith('.sock')) continue;
        const socket = join(this.registryDir, name);
        const s = await stat(socket).catch(() => undefined);
        if (s === undefined || !s.isSocket()) continue;
        const identity = `${s.ino}:${s.ctimeMs}`;
        if (this.#seen.get(socket) === identity) continue;
        this.#seen.set(socket, identity);
        await this.#register(socket).catch((error: unknown) => this.emit('error-registering', socket, error));
      }
    } finally {
      this.#scanning = false;
    }
  }

  async #register(socket: string): Promise<void> {
    const client = new this.#protos.Registration(`unix://${socket}`, credentials.createInsecure());
    try {
      this.registrations++;
      const info = await unary<PluginInfo>(client, 'GetInfo', {});
      const known = this.#options.knownServices ?? [...DRA_SERVICES, ...HEALTH_SERVICES];
      const pick = (services: readonly string[]): string | undefined =>
        services.find((s) => known.includes(s) && info.supported_versions.includes(s))?.split('.')[0];
      const version = pick(DRA_SERVICES) as 'v1' | 'v1beta1' | undefined;
      const healthVersion = pick(HEALTH_SERVICES) as 'v1' | 'v1alpha1' | undefined;
      let error = this.#options.refuse ?? '';
      if (info.type !== 'DRAPlugin') error = `unexpected plugin type ${info.type}`;
      else if (version === undefined) error = `none of ${info.supported_versions.join(', ')} is supported`;
      await unary(client, 'NotifyRegistrationStatus', { plugin_registered: error === '', error });
      if (error !== '' || version === undefined) {
        this.emit('refused', info.name);
        return;
      }
      this.#plugins.set(info.name, { info, version, healthVersion, socket });
      this.emit('registered', info.name);
    } finally {
      client.close();
    }
  }

  async #call<T>(driver: string, method: string, request: unknown): Promise<T> {
    const plugin = this.#plugins.get(driver);
    if (plugin === undefined) throw new Error(`DRA driver ${driver} is not registered`);
    const client = new this.#protos.DRAPlugin[plugin.version](`unix://${plugin.info.endpoint}`, credentials.createInsecure());
    try {
      return await unary<T>(client, method, request);
    } finally {
      client.close();
    }
  }
}

function unary<T>(client: Client, method: string, request: unknown): Promise<T> {
  const rpc = (client as unknown as Record<string, Rpc>)[method]!;
  return new Promise<T>((resolve, reject) => {
    rpc.call(client, request, { deadline: new Date(Date.now() + 5_000) }, (error: ServiceError | null, response: T) =>
      error ? reject(error) : resolve(response),
    );
  });
}
