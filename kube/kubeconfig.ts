/**
 * Where the apiserver is and who we are to it: a kubeconfig file, the pod's service account
 * (in-cluster), or the default search ($KUBECONFIG, ~/.kube/config, in-cluster).
 *
 * Why not @kubernetes/client-node's KubeConfig: importing that package costs ~80 MiB of RSS
 * (issue 15), for a job that is reading one YAML file. {@link KubeConfigSource} is the part
 * {@link KubeClient} reads; client-node's KubeConfig has the same shape, so tests may still
 * pass one.
 *
 * Supported credentials: client certificates (file or data), bearer tokens (inline, `token-file`,
 * the service account's token file — re-read on every refresh, so rotated tokens are picked up),
 * basic auth, and exec plugins (client.authentication.k8s.io ExecCredential). Not supported:
 * the deprecated auth-provider plugins (gcp, azure, oidc) and `proxy-url`: loading such a
 * kubeconfig fails with a message saying so.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isIPv6 } from 'node:net';
import type * as Yaml from 'yaml';

/** The current cluster's entry, in client-node's field names. Data fields are base64. */
export interface KubeCluster {
  readonly server: string;
  readonly caData?: string;
  readonly caFile?: string;
  readonly skipTLSVerify: boolean;
  readonly tlsServerName?: string;
  readonly proxyUrl?: string;
}

/** An exec credential plugin, as a kubeconfig's `users[].user.exec` describes it. */
export interface ExecConfig {
  readonly command: string;
  readonly args?: readonly string[];
  readonly env?: readonly { name: string; value: string }[];
}

/** The current user's entry, in client-node's field names. Data fields are base64. */
export interface KubeUser {
  readonly name?: string;
  readonly certData?: string | null;
  readonly certFile?: string | null;
  readonly keyData?: string | null;
  readonly keyFile?: string | null;
  readonly token?: string | null;
  readonly username?: string | null;
  readonly password?: string | null;
  // client-node types these two as `any`.
  readonly exec?: unknown;
  readonly authProvider?: unknown;
}

/**
 * What a {@link KubeClient} needs from a kubeconfig. Read once when the client is made.
 * client-node's KubeConfig satisfies it.
 */
export interface KubeConfigSource {
  getCurrentCluster(): KubeCluster | null;
  getCurrentUser(): KubeUser | null;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** Parses a kubeconfig's text: JSON as is, YAML with the `yaml` package (loaded only then). */
function parseKubeconfigText(text: string, path: string): Json {
  let parsed: unknown;
  try {
    parsed = text.trimStart().startsWith('{') ? JSON.parse(text) : (createRequire(import.meta.url)('yaml') as typeof Yaml).parse(text);
  } catch (error) {
    throw new Error(`kubeconfig ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (!isObject(parsed)) throw new Error(`kubeconfig ${path}: not a kubeconfig (no top-level mapping)`);
  return parsed;
}

function named(list: unknown, name: string, kind: string, path: string): Json {
  const entry = (Array.isArray(list) ? list : []).find((e): e is Json => isObject(e) && e['name'] === name);
  if (entry === undefined) throw new Error(`kubeconfig ${path}: no ${kind} named "${name}"`);
  const body = entry[kind];
  return isObject(body) ? body : {};
}

/** A kubeconfig, or the pod's service account, resolved to one cluster and one user. */
export class KubeConfig implements KubeConfigSource {
  #cluster: KubeCluster | null = null;
  #user: KubeUser | null = null;
  #namespace: string | undefined;

  /** Loads the current context of a kubeconfig file; relative file paths are relative to it. */
  loadFromFile(path: string, context?: string): void {
    const config = parseKubeconfigText(readFileSync(path, 'utf8'), path);
    const contextName = context ?? str(config['current-context']);
    if (contextName === undefined) throw new Error(`kubeconfig ${path}: no current-context`);
    const ctx = named(config['contexts'], contextName, 'context', path);
    const clusterName = str(ctx['cluster']) ?? '';
    const userName = str(ctx['user']);
    const cluster = named(config['clusters'], clusterName, 'cluster', path);
    const user = userName === undefined ? {} : named(config['users'], userName, 'user', path);
    const base = dirname(resolve(path));
    const file = (value: unknown): string | undefined => {
      const p = str(value);
      return p === undefined ? undefined : isAbsolute(p) ? p : join(base, p);
    };
    const server = str(cluster['server']);
    if (server === undefined) throw new Error(`kubeconfig ${path}: cluster "${clusterName}" has no server`);
    if (user['auth-provider'] !== undefined)
      throw new Error(`kubeconfig ${path}: auth-provider plugins are not supported (use an exec plugin or a token)`);
    const proxyUrl = str(cluster['proxy-url']);
    this.#cluster = {
      server: server.replace(/\/+$/, ''),
      ...optional('caData', str(cluster['certificate-authority-data'])),
      ...optional('caFile', file(cluster['certificate-authority'])),
      skipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
      ...optional('tlsServerName', str(cluster['tls-server-name'])),
      ...optional('proxyUrl', proxyUrl),
    };
    const tokenFile = file(user['tokenFile'] ?? user['token-file']);
    this.#user = {
      name: userName ?? '',
      ...optional('certData', str(user['client-certificate-data'])),
      ...optional('certFile', file(user['client-certificate'])),
      ...optional('keyData', str(user['client-key-data'])),
      ...optional('keyFile', file(user['client-key'])),
      ...optional('token', str(user['token'])),
      ...optional('username', str(user['username'])),
      ...optional('password', str(user['password'])),
      ...(isObject(user['exec']) ? { exec: user['exec'] } : {}),
      ...(tokenFile === undefined ? {} : { authProvider: { name: 'tokenFile', config: { tokenFile } } }),
    };
    this.#namespace = str(ctx['namespace']);
  }

  /** The pod's service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, its CA and rotating token. */
  loadFromCluster(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): void {
    const host = env['KUBERNETES_SERVICE_HOST'];
    const port = env['KUBERNETES_SERVICE_PORT'];
    if (host === undefined || host === '' || port === undefined || port === '')
      throw new Error('not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (pass --kubeconfig)');
    const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
    this.#cluster = {
      server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
      caFile: join(dir, 'ca.crt'),
      skipTLSVerify: false,
    };
    this.#user = { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } };
    try {
      this.#namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim();
    } catch {
      this.#namespace = undefined;
    }
  }

  /** `$KUBECONFIG` (its first file), else `~/.kube/config`, else the pod's service account. */
  loadFromDefault(env: NodeJS.ProcessEnv = process.env): void {
    const fromEnv = (env['KUBECONFIG'] ?? '').split(':').find((p) => p !== '');
    if (fromEnv !== undefined) return this.loadFromFile(fromEnv);
    const home = join(env['HOME'] ?? homedir(), '.kube', 'config');
    try {
      readFileSync(home);
    } catch {
      return this.loadFromCluster(env);
    }
    this.loadFromFile(home);
  }

  getCurrentCluster(): KubeCluster | null {
    return this.#cluster;
  }

  getCurrentUser(): KubeUser | null {
    return this.#user;
  }

  /** The current context's namespace (or the service account's), if any. */
  get namespace(): string | undefined {
    return this.#namespace;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}
