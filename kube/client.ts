/**
 * The controller's only door to the apiserver: plain-JSON requests and watches, counted.
 *
 * Why not the generated clients: they deserialise lists into classes (timestamps become Date)
 * while watch events stay plain JSON, so an informer built on both holds two shapes of the
 * same object; and each generated call builds a new TLS dispatcher (no connection reuse).
 * Here every object is the apiserver's JSON, one keep-alive connection pool is reused (its
 * credentials refreshed every minute so rotated tokens are picked up), and every request is
 * counted by verb and resource — the benchmark reports those counts and `/metrics` exports them.
 *
 * It speaks HTTP/1.1 through node:http(s) (client-node costs ~80 MiB to import, issue 15; its
 * undici HTTP/2 sessions also raised unhandled rejections after aborted watches).
 *
 * Errors are {@link KubeApiError}s with the numeric HTTP `code` and the Status body.
 */
import { withDeadline } from './deadline.ts';
import type { IncomingMessage } from 'node:http';
import { request as httpRequest, Agent as HttpAgent } from './node-http.ts';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import type { ExecConfig, KubeConfigSource, KubeCluster, KubeUser } from './kubeconfig.ts';

/** A Kubernetes resource type: where its objects live. */
export interface ResourceType {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

/** apiVersion string of a resource type (`v1`, `batch/v1`, `tether.dev/v1alpha1`). */
export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/** Collection URL path; `namespace` undefined means all namespaces (or a cluster-scoped type). */
export function collectionPath(type: ResourceType, namespace?: string): string {
  const base = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  const ns = type.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${type.plural}`;
}

/** Object URL path, optionally of a subresource (`status`, `eviction`). */
export function objectPath(type: ResourceType, namespace: string | undefined, name: string, subresource?: string): string {
  const sub = subresource === undefined ? '' : `/${subresource}`;
  return `${collectionPath(type, namespace)}/${encodeURIComponent(name)}${sub}`;
}

/** Minimal object shape every Kubernetes object has. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
    creationTimestamp?: unknown;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
    managedFields?: { manager?: string; operation?: string; subresource?: string; fieldsV1?: object }[];
  };
}

/** A list response. */
export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** Verb label for request counting. */
export type Verb = 'list' | 'watch' | 'get' | 'create' | 'update' | 'patch' | 'apply' | 'delete';

/** Counts of requests issued, by `verb resource` (e.g. `create pods`). */
export class RequestCounter {
  readonly #counts = new Map<string, number>();
  #listeners: ((verb: Verb, resource: string) => void)[] = [];

  record(verb: Verb, resource: string): void {
    const key = `${verb} ${resource}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    for (const listener of this.#listeners) listener(verb, resource);
  }

  /** Called on every request (metrics hook). */
  onRequest(listener: (verb: Verb, resource: string) => void): void {
    this.#listeners.push(listener);
  }

  total(): number {
    let sum = 0;
    for (const n of this.#counts.values()) sum += n;
    return sum;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  reset(): void {
    this.#counts.clear();
  }
}

/** Options of one request. */
export interface RequestOptions {
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** For counting; defaults from the method. */
  readonly verb: Verb;
  /** For counting: the resource plural (and subresource). */
  readonly resource: string;
}

/** One watch event as the apiserver sends it. */
export interface RawWatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: KubeObject & { code?: number; message?: string };
}

const AUTH_REFRESH_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** A pooled connection idle this long is closed (an open watch is not: only free sockets are). */
const IDLE_SOCKET_TIMEOUT_MS = 60_000;

/** An HTTP error answer of the apiserver: `code` is the status, `body` the Status object as text. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly code: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;

  constructor(code: number, message: string, body: string, headers: Readonly<Record<string, string | string[] | undefined>>) {
    super(message);
    this.code = code;
    this.body = body;
    this.headers = headers;
  }
}

interface Auth {
  readonly headers: Readonly<Record<string, string>>;
  readonly agent: InstanceType<typeof HttpAgent>;
  /** The TLS material the agent was made with: an unchanged one keeps its pooled connections. */
  readonly tlsKey: string;
  readonly at: number;
}

interface ExecCredential {
  readonly token?: string;
  readonly cert?: string;
  readonly key?: string;
  /** ms since the epoch; undefined: valid until the process ends. */
  readonly expires?: number;
}

/**
 * JSON requests against one apiserver. Safe for concurrent use. `close()` releases pooled
 * connections.
 */
export class KubeClient {
  readonly counter: RequestCounter;
  readonly #cluster: KubeCluster;
  readonly #user: KubeUser;
  readonly #server: string;
  readonly #secure: boolean;
  #auth: Promise<Auth> | undefined;
  #exec: ExecCredential | undefined;
  readonly #requestTimeoutMs: number;

  /** `requestTimeoutMs` bounds each request, answer included (not watches). */
  constructor(kc: KubeConfigSource, counter: RequestCounter = new RequestCounter(), requestTimeoutMs = REQUEST_TIMEOUT_MS) {
    this.#requestTimeoutMs = requestTimeoutMs;
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    if (cluster.proxyUrl !== undefined && cluster.proxyUrl !== null) throw new Error("the kubeconfig's proxy-url is not supported");
    this.#cluster = cluster;
    this.#user = kc.getCurrentUser() ?? {};
    this.#server = cluster.server.replace(/\/+$/, '');
    this.#secure = this.#server.startsWith('https:');
    this.counter = counter;
  }

  /** Performs a request and returns the parsed JSON body (undefined for an empty body). */
  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, options: RequestOptions): Promise<T> {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = body === undefined ? {} : { 'Content-Type': options.contentType ?? 'application/json' };
    this.counter.record(options.verb, options.resource);
    return withDeadline(
      options.signal,
      this.#requestTimeoutMs,
      `${method} ${path}: no answer within ${this.#requestTimeoutMs} ms`,
      async (signal) => {
        const response = await this.#send(method, path, options.query, headers, body, signal);
        const text = await readText(response);
        const status = response.statusCode ?? 0;
        if (status < 200 || status > 299)
          throw new KubeApiError(status, `${method} ${path}: HTTP ${status}: ${statusMessage(text)}`, text, response.headers);
        return (text === '' ? undefined : JSON.parse(text)) as T;
      },
    );
  }

  /**
   * Opens a watch and calls `onEvent` per event until the stream ends; resolves then (clean
   * end) or rejects (HTTP error, network error, `inactivityMs` without a byte). The caller
   * reconnects. `signal` aborts it (resolves).
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    resource: string,
    onEvent: (event: RawWatchEvent) => void,
    signal: AbortSignal,
    inactivityMs: number,
  ): Promise<void> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, inactivityMs);
      timer.unref();
    };
    this.counter.record('watch', resource);
    try {
      arm();
      const response = await this.#send('GET', path, { ...query, watch: true }, {}, undefined, controller.signal);
      if (response.statusCode !== 200) {
        const text = await readText(response);
        const status = response.statusCode ?? 0;
        throw new KubeApiError(status, `watch ${path}: HTTP ${status}: ${statusMessage(text)}`, text, response.headers);
      }
      // The pool's idle-socket timeout would fire on a quiet watch about once a minute, for
      // nothing: the inactivity timer above is what ends a dead watch (the pool restores its
      // timeout if the socket is reused).
      response.socket.setTimeout(0);
      response.setEncoding('utf8');
      let buffered = '';
      for await (const chunk of response as AsyncIterable<string>) {
        arm();
        buffered += chunk;
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== '') onEvent(JSON.parse(line) as RawWatchEvent);
          newline = buffered.indexOf('\n');
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (timedOut) throw new Error(`watch ${path}: no data for ${inactivityMs} ms`, { cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }

  /** Releases pooled connections (in-flight requests end with an error). */
  close(): void {
    void this.#auth?.then((auth) => auth.agent.destroy()).catch(() => undefined);
  }

  async #send(
    method: string,
    path: string,
    query: Record<string, string | number | boolean | undefined> | undefined,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    const url = new URL(this.#server + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const auth = await this.#currentAuth();
    if (signal.aborted) throw abortError(signal);
    const send = this.#secure ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      // The signal is followed here rather than passed as `signal`: node's own handling adds
      // an end-of-stream watcher per request, which an idle process pays for on every call.
      const req = send(url, {
        method,
        agent: auth.agent,
        headers: {
          Accept: 'application/json',
          'User-Agent': 'tether',
          ...auth.headers,
          ...headers,
          ...(body === undefined ? {} : { 'Content-Length': Buffer.byteLength(body) }),
        },
      });
      const onAbort = (): void => void req.destroy(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      req.once('close', () => signal.removeEventListener('abort', onAbort));
      req.once('response', resolve);
      req.once('error', reject);
      req.end(body);
    });
  }

  async #currentAuth(): Promise<Auth> {
    const current = this.#auth;
    if (current !== undefined) {
      const auth = await current.catch(() => undefined);
      if (auth !== undefined && Date.now() - auth.at < AUTH_REFRESH_MS) return auth;
    }
    const next = this.#authenticate(await current?.catch(() => undefined));
    this.#auth = next;
    return next;
  }

  /** Reads the credentials again (files may have rotated); keeps the previous pool when TLS is unchanged. */
  async #authenticate(previous: Auth | undefined): Promise<Auth> {
    const exec = execConfigOf(this.#user);
    const credential = exec === undefined ? undefined : await this.#execCredential(exec);
    const tls = tlsMaterial(this.#cluster, this.#user, credential);
    const tlsKey = JSON.stringify(tls);
    let agent = previous?.tlsKey === tlsKey ? previous.agent : undefined;
    // A replaced pool's connections (a watch may still use one) close when they end.
    agent ??= this.#secure
      ? new HttpsAgent({ keepAlive: true, timeout: IDLE_SOCKET_TIMEOUT_MS, ...tls })
      : new HttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_TIMEOUT_MS });
    return { headers: authHeaders(this.#user, credential), agent, tlsKey, at: Date.now() };
  }

  async #execCredential(exec: ExecConfig): Promise<ExecCredential> {
    const cached = this.#exec;
    if (cached !== undefined && (cached.expires === undefined || cached.expires > Date.now() + 10_000)) return cached;
    this.#exec = await runExecPlugin(exec);
    return this.#exec;
  }
}

interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** Trust and client certificate for the connection pool, read now (files may have rotated). */
function tlsMaterial(cluster: KubeCluster, user: KubeUser, credential: ExecCredential | undefined): TlsMaterial {
  // Credential files are a few KiB on local volumes (tmpfs in a pod), read once a minute: a
  // synchronous read takes microseconds, where fs/promises made four thread-pool round trips
  // per file, each waking the event loop (issue 15).
  const pem = (file: string | null | undefined, data: string | null | undefined): string | undefined =>
    file ? readFileSync(file, 'utf8') : data ? base64(data) : undefined;
  const ca = pem(cluster.caFile, cluster.caData);
  const cert = credential?.cert ?? pem(user.certFile, user.certData);
  const key = credential?.key ?? pem(user.keyFile, user.keyData);
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    rejectUnauthorized: !cluster.skipTLSVerify,
    ...(cluster.tlsServerName ? { servername: cluster.tlsServerName } : {}),
  };
}

/** The Authorization header: a bearer token (exec plugin, inline or file) or basic auth. */
function authHeaders(user: KubeUser, credential: ExecCredential | undefined): Record<string, string> {
  const token = credential?.token ?? tokenOf(user);
  if (token !== undefined) return { Authorization: `Bearer ${token}` };
  if (user.username && user.password)
    return { Authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}` };
  return {};
}

function base64(data: string): string {
  return Buffer.from(data, 'base64').toString('utf8');
}

/** The error an aborted request ends with: the abort's reason when it is an Error. */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('the request was aborted', { cause: reason });
}

function readText(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.once('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    response.once('error', reject);
    // An aborted request may close its response without an error event.
    response.once('close', () => {
      if (!ended) reject(new Error('the response closed before its end'));
    });
  });
}

/** The user's bearer token: inline, or read now from its token file (service account tokens rotate). */
function tokenOf(user: KubeUser): string | undefined {
  if (user.token) return user.token;
  const provider = user.authProvider as { name?: string; config?: { tokenFile?: string } } | undefined;
  if (provider === undefined || provider === null) return undefined;
  if (provider.name === 'tokenFile' && typeof provider.config?.tokenFile === 'string')
    return readFileSync(provider.config.tokenFile, 'utf8').trim();
  if (execConfigOf(user) !== undefined) return undefined;
  throw new Error(`auth-provider "${String(provider.name)}" is not supported (use an exec plugin or a token)`);
}

function execConfigOf(user: KubeUser): ExecConfig | undefined {
  const provider = user.authProvider as { config?: { exec?: ExecConfig } } | undefined;
  const exec = (user.exec ?? provider?.config?.exec) as ExecConfig | undefined | null;
  return exec === undefined || exec === null ? undefined : exec;
}

/** Runs an exec credential plugin (client.authentication.k8s.io ExecCredential on stdout). */
async function runExecPlugin(exec: ExecConfig): Promise<ExecCredential> {
  if (typeof exec.command !== 'string' || exec.command === '') throw new Error("the kubeconfig's exec plugin has no command");
  const env = { ...process.env };
  for (const { name, value } of exec.env ?? []) env[name] = value;
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(exec.command, [...(exec.args ?? [])], { env, timeout: REQUEST_TIMEOUT_MS, maxBuffer: 1 << 20 }, (error, out) => {
      if (error !== null) reject(new Error(`exec plugin ${exec.command}: ${error.message}`, { cause: error }));
      else resolve(out);
    });
  });
  const status = (JSON.parse(stdout) as { status?: Record<string, string | undefined> }).status ?? {};
  const expires = status['expirationTimestamp'] === undefined ? undefined : Date.parse(status['expirationTimestamp']);
  return {
    ...(status['token'] === undefined ? {} : { token: status['token'] }),
    ...(status['clientCertificateData'] === undefined ? {} : { cert: status['clientCertificateData'] }),
    ...(status['clientKeyData'] === undefined ? {} : { key: status['clientKeyData'] }),
    ...(expires === undefined || Number.isNaN(expires) ? {} : { expires }),
  };
}

function statusMessage(text: string): string {
  try {
    const status = JSON.parse(text) as { message?: string };
    return status.message ?? text.slice(0, 500);
  } catch {
    return text.slice(0, 500);
  }
}

/**
 * HTTP status code of an apiserver error answer, else undefined. Also reads client-node's
 * ApiException (same `code` and `body` fields), which tests' fakes throw.
 */
export function errorCode(error: unknown): number | undefined {
  if (error instanceof KubeApiError) return error.code;
  const code = error instanceof Error && 'body' in error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

/** True for an apiserver error answer with one of `codes`. */
export function isApiError(error: unknown, ...codes: number[]): boolean {
  const code = errorCode(error);
  return code !== undefined && codes.includes(code);
}
