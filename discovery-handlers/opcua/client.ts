/**
 * The OPC UA discovery services Tether calls — FindServers, FindServersOnNetwork,
 * GetEndpoints — over a secure channel with security policy None and no session (the spec
 * requires discovery endpoints to allow that, so even a server that only offers
 * SignAndEncrypt endpoints describes itself this way).
 *
 * I/O edge over node-opcua-client. WARNING: node-opcua costs ~85 MiB of RSS once loaded, so it
 * is imported here, inside `createNodeOpcuaClient`, which the handler calls only when an OPC UA
 * discovery runs: the idle agent never loads it.
 *
 * Bounds: every connection and request has `timeoutMs`; messages above `maxResponseBytes` fail
 * in the transport; lists and strings are cut here (`MAX_*`) so what the pure code sees is
 * small. node-opcua's client certificate (created once, needed even for policy None) lives in
 * a temp dir of the run's own, removed by `close()`.
 *
 * Secure sessions (`openSession`) use the operator's certificate and key from memory (no file)
 * and a trust store of their own that accepts exactly the one server certificate Tether has
 * already verified (trust.ts) and nothing else: node-opcua never auto-accepts, never writes a
 * PKI folder, never reads the default one in the home directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type * as NodeOpcuaClient from 'node-opcua-client';
import type { UserIdentityInfo } from 'node-opcua-client';
import type { ApplicationType, SecurityMode } from './details.ts';
import type { ClientIdentity, UserIdentity } from './security.ts';
import type { EndpointInfo } from './servers.ts';
import { splitDerChain } from './trust.ts';

/** A server as FindServers lists it. */
export interface ApplicationInfo {
  readonly applicationUri: string;
  readonly applicationName: string;
  readonly applicationType: ApplicationType;
  readonly productUri: string;
  readonly discoveryUrls: readonly string[];
}

/** A server as FindServersOnNetwork lists it. */
export interface NetworkServerInfo {
  readonly serverName: string;
  readonly discoveryUrl: string;
}

/** What an LDS answered on one connection. */
export interface LdsAnswer {
  readonly servers: readonly ApplicationInfo[];
  /** Undefined when not asked; `unsupported` when the LDS refused the service. */
  readonly network?: readonly NetworkServerInfo[] | 'unsupported';
  /** Entries dropped for oversized strings or counts. */
  readonly dropped: number;
}

/**
 * One run's client. Called by the handler's query rounds, at most `maxConcurrentRequests` at
 * once; every method rejects on connection failure, timeout or a service fault.
 */
export interface OpcuaDiscoveryClient {
  /** FindServers (and FindServersOnNetwork when `network`) on one connection to `url`. */
  queryLds(url: string, network: boolean): Promise<LdsAnswer>;
  getEndpoints(url: string): Promise<{ endpoints: readonly EndpointInfo[]; dropped: number }>;
  /**
   * Opens a channel to `request.url` with the request's mode and policy, trusting only
   * `request.serverCertificate`, activates a session as `request.user`, then closes both.
   * Resolves when the session was activated; rejects with node-opcua's error otherwise.
   * Needs `identity` in the options unless the mode is None.
   */
  openSession(request: SessionRequest): Promise<void>;
  close(): Promise<void>;
}

export interface SessionRequest {
  readonly url: string;
  readonly securityMode: SecurityMode;
  readonly securityPolicyUri: string;
  /** As GetEndpoints sent it (one DER certificate or a chain); already verified by the caller. */
  readonly serverCertificate?: Uint8Array;
  readonly user: UserIdentity;
  readonly timeoutMs: number;
}

export interface ClientOptions {
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  /** Most servers or endpoints kept from one answer. */
  readonly maxEntries: number;
  /** Where node-opcua's own warnings and errors go (it prints them to stdout otherwise). */
  readonly log: (message: string) => void;
  /** The application instance for secure sessions (from the operator's Secret). */
  readonly identity?: ClientIdentity;
}

export type OpcuaClientFactory = (options: ClientOptions) => Promise<OpcuaDiscoveryClient>;

const MAX_STRING = 1024;
const MAX_URLS = 8;
const APPLICATION_TYPES: readonly ApplicationType[] = ['Server', 'Client', 'ClientAndServer', 'DiscoveryServer'];
const SECURITY_MODES: readonly (SecurityMode | 'Invalid')[] = ['Invalid', 'None', 'Sign', 'SignAndEncrypt'];
const TOKEN_TYPES = ['Anonymous', 'UserName', 'Certificate', 'IssuedToken'];

/** A string from the wire, or undefined when missing or too long. */
function text(value: unknown): string | undefined {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' && value.length <= MAX_STRING ? value : undefined;
}

interface WireApplication {
  applicationUri?: unknown;
  applicationName?: { text?: unknown } | null;
  applicationType?: unknown;
  productUri?: unknown;
  discoveryUrls?: unknown;
}

/** Narrows a decoded ApplicationDescription, or undefined when a field is out of bounds. */
export function toApplication(wire: WireApplication): ApplicationInfo | undefined {
  const applicationUri = text(wire.applicationUri);
  const applicationName = text(wire.applicationName?.text);
  const productUri = text(wire.productUri);
  const type = typeof wire.applicationType === 'number' ? APPLICATION_TYPES[wire.applicationType] : undefined;
  const urls = Array.isArray(wire.discoveryUrls) ? wire.discoveryUrls.slice(0, MAX_URLS).map(text) : [];
  if (applicationUri === undefined || applicationUri === '' || applicationName === undefined || productUri === undefined) return undefined;
  if (type === undefined || urls.some((u) => u === undefined)) return undefined;
  return { applicationUri, applicationName, applicationType: type, productUri, discoveryUrls: urls as string[] };
}

interface WireEndpoint {
  endpointUrl?: unknown;
  securityMode?: unknown;
  securityPolicyUri?: unknown;
  serverCertificate?: unknown;
  userIdentityTokens?: unknown;
  server?: WireApplication | null;
}

/** Narrows a decoded EndpointDescription, or undefined when a field is out of bounds. */
export function toEndpoint(wire: WireEndpoint): EndpointInfo | undefined {
  const application = wire.server === null || wire.server === undefined ? undefined : toApplication(wire.server);
  const endpointUrl = text(wire.endpointUrl);
  const securityPolicyUri = text(wire.securityPolicyUri);
  const mode = typeof wire.securityMode === 'number' ? SECURITY_MODES[wire.securityMode] : undefined;
  if (application === undefined || endpointUrl === undefined || securityPolicyUri === undefined || mode === undefined) return undefined;
  const tokens = Array.isArray(wire.userIdentityTokens) ? wire.userIdentityTokens.slice(0, 16) : [];
  const userTokenTypes = tokens
    .map((t: { tokenType?: unknown } | null) => (typeof t?.tokenType === 'number' ? TOKEN_TYPES[t.tokenType] : undefined))
    .filter((t): t is string => t !== undefined);
  const certificate =
    wire.serverCertificate instanceof Uint8Array && wire.serverCertificate.length <= 64 * 1024 ? wire.serverCertificate : undefined;
  return {
    endpointUrl,
    securityMode: mode,
    securityPolicyUri,
    userTokenTypes,
    ...(certificate === undefined || certificate.length === 0 ? {} : { serverCertificate: new Uint8Array(certificate) }),
    applicationUri: application.applicationUri,
    applicationName: application.applicationName,
    applicationType: application.applicationType,
    productUri: application.productUri,
  };
}

function narrowAll<W, T>(list: unknown, narrow: (w: W) => T | undefined, max: number): { items: T[]; dropped: number } {
  const all = Array.isArray(list) ? (list as W[]) : [];
  const items = all.slice(0, max).map(narrow);
  const kept = items.filter((i): i is T => i !== undefined);
  return { items: kept, dropped: all.length - kept.length };
}

/** Rejects after `ms` (running `onTimeout`), or settles with `work`. */
async function withTimeout<T>(work: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type OpcuaModule = typeof NodeOpcuaClient;

/**
 * A trust store that accepts one certificate (by the SHA-1 of the leaf), for one session.
 * Shaped as node-opcua's ICertificateStore (a transitive package, so not imported by type).
 */
function soleTrust(opcua: OpcuaModule, accepted: Uint8Array | undefined): object {
  const leafPrint = (der: Uint8Array): string =>
    createHash('sha1')
      .update((splitDerChain(der) ?? [der])[0]!)
      .digest('hex');
  const expected = accepted === undefined ? undefined : leafPrint(accepted);
  const first = (c: Uint8Array | Uint8Array[]): Uint8Array => (Array.isArray(c) ? c[0]! : c);
  const isAccepted = (c: Uint8Array | Uint8Array[]): boolean => expected !== undefined && leafPrint(first(c)) === expected;
  return {
    referenceCounter: 0,
    initialize: () => Promise.resolve(),
    dispose: () => Promise.resolve(),
    checkCertificate: (c: Uint8Array | Uint8Array[]) =>
      Promise.resolve(isAccepted(c) ? opcua.StatusCodes.Good : opcua.StatusCodes.BadCertificateUntrusted),
    verifyCertificate: (c: Uint8Array | Uint8Array[]) => Promise.resolve(isAccepted(c) ? 'Good' : 'BadCertificateUntrusted'),
    getTrustStatus: (c: Uint8Array) => Promise.resolve(isAccepted(c) ? opcua.StatusCodes.Good : opcua.StatusCodes.BadCertificateUntrusted),
    trustCertificate: () => Promise.resolve(),
    rejectCertificate: () => Promise.resolve(),
    addIssuer: () => Promise.resolve(),
    addRevocationList: () => Promise.resolve(),
  };
}

/** One secure session, opened and closed (see OpcuaDiscoveryClient.openSession). */
async function openSession(opcua: OpcuaModule, options: ClientOptions, request: SessionRequest): Promise<void> {
  const identity = options.identity;
  const secure = request.securityMode !== 'None';
  if (secure && (identity === undefined || request.serverCertificate === undefined))
    throw new Error('a secure session needs a client identity and the server certificate');
  const chain = identity?.certificateChain.map((c) => Buffer.from(c)) ?? [];
  const client = opcua.OPCUAClient.create({
    applicationName: 'Tether',
    ...(identity === undefined ? {} : { applicationUri: identity.applicationUri }),
    endpointMustExist: false,
    keepSessionAlive: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 100 },
    transportTimeout: request.timeoutMs,
    requestedSessionTimeout: Math.max(request.timeoutMs * 2, 10_000),
    securityMode: opcua.MessageSecurityMode[request.securityMode],
    securityPolicy: request.securityPolicyUri,
    ...(request.serverCertificate === undefined ? {} : { serverCertificate: Buffer.from(request.serverCertificate) }),
    clientCertificateManager: soleTrust(opcua, request.serverCertificate) as never,
    ...(identity === undefined
      ? {}
      : {
          certificateKeyPairProvider: {
            getCertificate: () => chain[0]!,
            getCertificateChain: () => chain,
            getPrivateKey: () => ({ hidden: identity.privateKey }),
          },
        }),
    transportSettings: { maxMessageSize: options.maxResponseBytes, maxChunkCount: Math.ceil(options.maxResponseBytes / 8192) + 1 },
  });
  const user: UserIdentityInfo =
    request.user.kind === 'UserName'
      ? { type: opcua.UserTokenType.UserName, userName: request.user.userName, password: request.user.password }
      : { type: opcua.UserTokenType.Anonymous };
  const disconnect = (): void => void client.disconnect().catch(() => undefined);
  try {
    await withTimeout(
      (async () => {
        await client.connect(request.url);
        const session = await client.createSession(user);
        await session.close(false).catch(() => undefined);
      })(),
      request.timeoutMs,
      request.url,
      disconnect,
    );
  } finally {
    await client.disconnect().catch(() => undefined);
  }
}

/** The node-opcua-backed client (loads node-opcua on first call). */
export const createNodeOpcuaClient: OpcuaClientFactory = async (options) => {
  const opcua = await import('node-opcua-client');
  // WARNING: process-wide in node-opcua; the latest run's logger wins. Without this, node-opcua
  // writes to stdout, which `tether discover -o json` keeps for JSON.
  const forward = (...args: unknown[]): void => options.log(args.filter((a) => typeof a === 'string').join(' '));
  opcua.setWarningLogger(forward);
  opcua.setErrorLogger(forward);
  const { OPCUACertificateManager } = await import('node-opcua-certificate-manager');
  const pki = await mkdtemp(join(tmpdir(), 'tether-opcua-pki-'));
  const certificateManager = new OPCUACertificateManager({ rootFolder: pki, automaticallyAcceptUnknownCertificate: false });
  // Once, before any connection: clients started together would otherwise race to create the
  // key pair (one found no private key yet and failed its first GetEndpoints).
  await certificateManager.initialize();

  async function session<T>(url: string, body: (client: InstanceType<typeof opcua.OPCUAClient>) => Promise<T>): Promise<T> {
    const client = opcua.OPCUAClient.create({
      applicationName: 'Tether',
      endpointMustExist: false,
      connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 100 },
      transportTimeout: options.timeoutMs,
      securityMode: opcua.MessageSecurityMode.None,
      securityPolicy: opcua.SecurityPolicy.None,
      clientCertificateManager: certificateManager,
      transportSettings: { maxMessageSize: options.maxResponseBytes, maxChunkCount: Math.ceil(options.maxResponseBytes / 8192) + 1 },
    });
    const disconnect = (): void => void client.disconnect().catch(() => undefined);
    try {
      return await withTimeout(
        (async () => {
          await client.connect(url);
          return body(client);
        })(),
        options.timeoutMs * 2,
        url,
        disconnect,
      );
    } finally {
      await client.disconnect().catch(() => undefined);
    }
  }

  return {
    openSession: (request) => openSession(opcua, options, request),
    queryLds: (url, network) =>
      session(url, async (client) => {
        const servers = narrowAll(await client.findServers(), toApplication, options.maxEntries);
        if (!network) return { servers: servers.items, dropped: servers.dropped };
        let onNetwork: readonly NetworkServerInfo[] | 'unsupported';
        try {
          const found = (await client.findServersOnNetwork()) as unknown[];
          onNetwork = found
            .slice(0, options.maxEntries)
            .map((s) => s as { serverName?: unknown; discoveryUrl?: unknown })
            .flatMap((s) => {
              const serverName = text(s.serverName);
              const discoveryUrl = text(s.discoveryUrl);
              return serverName === undefined || discoveryUrl === undefined || discoveryUrl === '' ? [] : [{ serverName, discoveryUrl }];
            });
        } catch {
          onNetwork = 'unsupported';
        }
        return { servers: servers.items, network: onNetwork, dropped: servers.dropped };
      }),
    getEndpoints: (url) =>
      session(url, async (client) => {
        const endpoints = narrowAll(await client.getEndpoints(), toEndpoint, options.maxEntries);
        return { endpoints: endpoints.items, dropped: endpoints.dropped };
      }),
    close: async () => {
      await certificateManager.dispose().catch(() => undefined);
      await rm(pki, { recursive: true, force: true });
    },
  };
};
