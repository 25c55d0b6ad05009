/**
 * Helpers for integration tests against the real test cluster that
 * test/cluster/global-setup.ts brings up: API clients from its kubeconfig, a
 * namespace per test file, deadline-bounded waiting, server-side apply, a
 * watch that survives apiserver restarts, and the built kubectl.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  ApiException,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, inject } from 'vitest';
import { KubeApiError } from '../../kube/client.ts';
import { restartControllers, startApiserver, stopApiserver } from '../cluster/cluster.ts';

/** Tether's API group and version. */
export const GROUP = 'tether.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Path of the cluster's admin kubeconfig (provided by the global setup). */
export function kubeconfigPath(): string {
  return inject('kubeconfig');
}

/** A KubeConfig for the test cluster's admin. */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** Typed API clients for the test cluster, made once per test file. */
export interface Clients {
  kc: KubeConfig;
  core: CoreV1Api;
  batch: BatchV1Api;
  coordination: CoordinationV1Api;
  custom: CustomObjectsApi;
}

let clients: Clients | undefined;

/** API clients for the test cluster (cached per test file). */
export function api(): Clients {
  if (clients !== undefined) return clients;
  const kc = loadKubeConfig();
  clients = {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
  return clients;
}

/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long; default 30 s. */
  timeoutMs?: number;
  /** What is awaited, for the timeout message. */
  description?: string;
}

/**
 * Polls `probe` until it returns something other than undefined, null or
 * false, and returns that. Exceptions from `probe` count as "not yet" (the
 * last one is reported on timeout). Polls fast at first, backing off to 500 ms.
 */
export async function waitFor<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await probe();
      if (result !== undefined && result !== null && result !== false) return result;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const what = options.description ?? 'condition';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await delay(Math.min(25 * 2 ** attempt, 500));
  }
}

/** HTTP status code and the apiserver's Status message of a failed call. */
export interface ApiFailure {
  code: number;
  message: string;
  reason?: string;
  /** The whole Status body as text, for matching field paths. */
  body: string;
}

/** Awaits a call that must fail with an ApiException (client-node) or KubeApiError (kube/) and returns what failed. */
export async function apiFailure(call: Promise<unknown>): Promise<ApiFailure> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof ApiException || error instanceof KubeApiError))
      throw new Error('expected an ApiException or KubeApiError', { cause: error });
    const body = typeof error.body === 'string' ? error.body : JSON.stringify(error.body);
    let status: { message?: string; reason?: string } = {};
    try {
      status = JSON.parse(body) as typeof status;
    } catch {
      // Not a Status object: the raw body is the message.
    }
    return { code: error.code, message: status.message ?? body, reason: status.reason, body };
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** True for an ApiException or KubeApiError with the given HTTP status code. */
export function isApiError(error: unknown, code: number): boolean {
  return (error instanceof ApiException || error instanceof KubeApiError) && error.code === code;
}

/** A namespaced custom object as the tests handle it. */
export interface CustomObject extends KubernetesObject {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** Where a custom object lives. */
export interface ObjectRef {
  plural: string;
  namespace: string;
  name: string;
}

/** Options for {@link serverSideApply}. */
export interface ApplyOptions {
  fieldManager: string;
  /** Take over fields other managers own; default false (conflicts fail with 409). */
  force?: boolean;
  /** Apply to the status subresource. */
  status?: boolean;
}

/** Server-side applies a Tether custom object (its apiVersion/kind/metadata must be set). */
export async function serverSideApply(plural: string, object: CustomObject, options: ApplyOptions): Promise<CustomObject> {
  const { custom } = api();
  const params = {
    group: GROUP,
    version: VERSION,
    plural,
    namespace: object.metadata?.namespace ?? '',
    name: object.metadata?.name ?? '',
    body: object,
    fieldManager: options.fieldManager,
    force: options.force ?? false,
  };
  const contentType = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  const result: unknown = options.status
    ? await custom.patchNamespacedCustomObjectStatus(params, contentType)
    : await custom.patchNamespacedCustomObject(params, contentType);
  return result as CustomObject;
}

/** Reads a Tether custom object. */
export async function getCustom(ref: ObjectRef): Promise<CustomObject> {
  const result: unknown = await api().custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, ...ref });
  return result as CustomObject;
}

/** Creates a Tether custom object in `namespace`. */
export async function createCustom(plural: string, namespace: string, body: CustomObject): Promise<CustomObject> {
  const result: unknown = await api().custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, body });
  return result as CustomObject;
}

/** A short random suffix for object names. */
export function uniqueSuffix(): string {
  return randomBytes(3).toString('hex');
}

/**
 * Creates a namespace and waits for its default ServiceAccount, which
 * kube-controller-manager creates and Pod admission needs.
 */
export async function createNamespace(name: string, timeoutMs = 60_000): Promise<void> {
  const { core } = api();
  await core.createNamespace({ body: { metadata: { name, labels: { 'tether.dev/test': 'true' } } } });
  await waitFor(() => core.readNamespacedServiceAccount({ name: 'default', namespace: name }), {
    timeoutMs,
    description: `ServiceAccount default in ${name} (made by kube-controller-manager)`,
  });
}

/** Deletes a namespace (without waiting for its finalization); absent is fine. */
export async function deleteNamespace(name: string): Promise<void> {
  try {
    await api().core.deleteNamespace({ name });
  } catch (error) {
    if (!isApiError(error, 404)) throw error;
  }
}

/**
 * Creates a fresh namespace for the calling test file in `beforeAll` and
 * deletes it in `afterAll`. Read `.name` inside tests and hooks, not at
 * import time.
 */
export function useTestNamespace(prefix: string): { readonly name: string } {
  const namespace = { name: '' };
  beforeAll(async () => {
    namespace.name = `${prefix}-${uniqueSuffix()}`;
    await createNamespace(namespace.name);
  });
  afterAll(async () => {
    if (namespace.name !== '') await deleteNamespace(namespace.name);
  });
  return namespace;
}

/**
 * Stops and restarts kube-apiserver, then restarts kube-controller-manager and
 * kube-scheduler too: after an outage their informers re-list only after a
 * backoff that can exceed 30 s, and the tests that run next must not pay for
 * that. Returns once a new namespace gets its default ServiceAccount (proof
 * that the controllers work again).
 */
export async function restartApiserver(): Promise<void> {
  await stopApiserver();
  await startApiserver();
  await restartControllers();
  const probe = `restart-probe-${uniqueSuffix()}`;
  try {
    await createNamespace(probe);
  } finally {
    await deleteNamespace(probe);
  }
}

const execFileAsync = promisify(execFile);

/** Runs the cluster's own kubectl (built at the pinned version) with the admin kubeconfig. */
export async function kubectl(...args: string[]): Promise<string> {
  const command = join(inject('clusterBinDir'), 'kubectl');
  try {
    const { stdout } = await execFileAsync(command, args, {
      env: { ...process.env, KUBECONFIG: kubeconfigPath(), KUBERC: 'off' },
    });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`kubectl ${args.join(' ')} failed: ${stderr.trim()}`, { cause: error });
  }
}

/** One event a {@link ResilientWatch} saw. */
export interface WatchEvent {
  type: string;
  object: CustomObject;
}

/**
 * A watch that re-establishes itself, from the last resourceVersion it saw,
 * whenever the connection ends (apiserver restart, idle timeout), as an
 * informer's reflector does. Collects every event in `events`.
 */
export class ResilientWatch {
  readonly events: WatchEvent[] = [];
  /** How many times the watch was re-established after it ended. */
  reconnects = 0;
  /** Why the watch last ended (undefined or null for a clean close). */
  lastError: unknown;
  private readonly watch: Watch;
  private readonly path: string;
  private resourceVersion: string | undefined;
  private controller: AbortController | undefined;
  private stopped = false;

  /** `path`: a collection URL, e.g. `/apis/tether.dev/v1alpha1/namespaces/x/devices`. */
  constructor(kc: KubeConfig, path: string) {
    this.watch = new Watch(kc);
    this.path = path;
  }

  /** Starts watching from `resourceVersion` (e.g. from a list), or from now when unset. */
  async start(resourceVersion?: string): Promise<void> {
    this.resourceVersion = resourceVersion;
    await this.connect();
  }

  /** Stops watching for good. */
  stop(): void {
    this.stopped = true;
    this.controller?.abort();
  }

  /** Resolves with the first collected event matching `predicate`. */
  async next(predicate: (event: WatchEvent) => boolean, options: WaitForOptions = {}): Promise<WatchEvent> {
    return waitFor(() => this.events.find(predicate), { description: 'a matching watch event', ...options });
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const query = { allowWatchBookmarks: true, resourceVersion: this.resourceVersion };
    this.controller = await this.watch.watch(
      this.path,
      query,
      (type, object: CustomObject) => this.onEvent(type, object),
      (error: unknown) => this.scheduleReconnect(error),
    );
  }

  private onEvent(type: string, object: CustomObject): void {
    if (type === 'ERROR') {
      // 410 Gone: our resourceVersion is too old; start over from "now".
      this.resourceVersion = undefined;
      return;
    }
    this.resourceVersion = object.metadata?.resourceVersion ?? this.resourceVersion;
    if (type !== 'BOOKMARK') this.events.push({ type, object });
  }

  private scheduleReconnect(error: unknown): void {
    if (this.stopped) return;
    this.lastError = error;
    this.reconnects++;
    // While the apiserver is down every attempt fails at once: back off a little.
    setTimeout(
      () => {
        this.connect().catch((connectError: unknown) => this.scheduleReconnect(connectError));
      },
      Math.min(100 * this.reconnects, 1_000),
    );
  }
}
