/**
 * The opcua handler's secure sessions, pure: the client credentials read from the discovery's
 * resolved properties (Secret values, read by the agent), the endpoint a session uses, and
 * the failure categories that become OPCUA_SESSION.
 *
 * WARNING: the values read here are secrets. Errors name the property, never its value, and
 * `secretValues` lists every one so the handler can keep them out of device properties.
 */
import { createPrivateKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { DetailsError } from '../contract.ts';
import { POLICY_URI_PREFIX, type OpcuaDetails } from './details.ts';
import { SECURITY_PROPERTIES } from './constants.ts';
import type { EndpointInfo } from './servers.ts';
import { certificateUris, parsePemCertificates, trustAnchors, type TrustAnchors } from './trust.ts';

/** The application instance Tether presents on a secure channel. */
export interface ClientIdentity {
  /** DER of the client certificate, then any intermediates (as OPC UA sends a chain). */
  readonly certificateChain: readonly Uint8Array[];
  readonly privateKey: KeyObject;
  /** From the certificate's subjectAltName: servers check that the session names it. */
  readonly applicationUri: string;
}

export type UserIdentity =
  { readonly kind: 'Anonymous' } | { readonly kind: 'UserName'; readonly userName: string; readonly password: string };

/** What the security block and the properties resolve to, for one run. */
export interface SecurityConfig {
  readonly verify: 'Off' | 'Report' | 'Require';
  readonly sessions: 'Off' | 'WhenRequired' | 'Always';
  readonly sessionTimeoutMs: number;
  readonly sessionIntervalMs: number;
  readonly maxConcurrentSessions: number;
  readonly anchors: TrustAnchors;
  /** Undefined when sessions are Off. */
  readonly client?: ClientIdentity;
  readonly user: UserIdentity;
  /** Every secret value configured (password, key), to keep out of device properties. */
  readonly secretValues: readonly string[];
}

/** Failure categories of a session attempt (OPCUA_SESSION); `ok` when it was activated. */
export type SessionResult =
  'ok' | 'access-denied' | 'channel-rejected' | 'no-secure-endpoint' | 'no-usable-token' | 'timeout' | 'unreachable' | 'failed';

const MAX_PEM = 256 * 1024;
const MAX_CREDENTIAL = 1024;

function property(properties: ReadonlyMap<string, string>, name: string, max: number): string | undefined {
  const value = properties.get(name);
  if (value === undefined || value.trim() === '') return undefined;
  if (value.length > max) throw new DetailsError(`properties.${name}`, `longer than ${max} characters`);
  return value;
}

function clientIdentity(properties: ReadonlyMap<string, string>): ClientIdentity {
  const certName = SECURITY_PROPERTIES.certificate;
  const keyName = SECURITY_PROPERTIES.privateKey;
  const certPem = property(properties, certName, MAX_PEM);
  const keyPem = property(properties, keyName, MAX_PEM);
  const sessions = 'details.security.sessions is not Off';
  if (certPem === undefined) throw new DetailsError(`properties.${certName}`, `missing: a PEM client certificate is needed (${sessions})`);
  if (keyPem === undefined)
    throw new DetailsError(`properties.${keyName}`, `missing: the PEM private key of ${certName} is needed (${sessions})`);
  let chain: X509Certificate[];
  try {
    chain = parsePemCertificates(certPem, `properties.${certName}`);
  } catch (error) {
    throw new DetailsError(`properties.${certName}`, (error as Error).message.replace(/^[^:]*: /, ''));
  }
  if (chain.length === 0) throw new DetailsError(`properties.${certName}`, 'holds no PEM certificate');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch {
    // The cause would quote the input: leave it out.
    throw new DetailsError(`properties.${keyName}`, 'not an unencrypted PEM private key');
  }
  const leaf = chain[0]!;
  if (privateKey.asymmetricKeyType !== 'rsa' || !leaf.checkPrivateKey(privateKey))
    throw new DetailsError(`properties.${keyName}`, `not the RSA private key of ${certName}`);
  const applicationUri = certificateUris(leaf)[0];
  if (applicationUri === undefined)
    throw new DetailsError(`properties.${certName}`, 'has no application URI (subjectAltName URI:…), which OPC UA requires');
  return { certificateChain: chain.map((c) => new Uint8Array(c.raw)), privateKey, applicationUri };
}

/** The run's security configuration, or undefined when the details have no security block. */
export function securityConfig(details: OpcuaDetails, properties: ReadonlyMap<string, string>): SecurityConfig | undefined {
  const block = details.security;
  if (block === undefined) return undefined;
  const trustedName = SECURITY_PROPERTIES.trusted;
  const trustedPem = property(properties, trustedName, MAX_PEM);
  let anchors: TrustAnchors;
  try {
    anchors = trustAnchors(trustedPem === undefined ? [] : parsePemCertificates(trustedPem, 'bundle'), details.trustedThumbprints);
  } catch (error) {
    throw new DetailsError(`properties.${trustedName}`, (error as Error).message.replace(/^bundle: /, ''));
  }
  const userName = property(properties, SECURITY_PROPERTIES.username, MAX_CREDENTIAL);
  const password = property(properties, SECURITY_PROPERTIES.password, MAX_CREDENTIAL) ?? '';
  if (userName === undefined && password !== '')
    throw new DetailsError(`properties.${SECURITY_PROPERTIES.username}`, `missing while ${SECURITY_PROPERTIES.password} is set`);
  const client = block.sessions === 'Off' ? undefined : clientIdentity(properties);
  const keyPem = properties.get(SECURITY_PROPERTIES.privateKey);
  return {
    ...block,
    anchors,
    ...(client === undefined ? {} : { client }),
    user: userName === undefined ? { kind: 'Anonymous' } : { kind: 'UserName', userName, password },
    secretValues: [password, keyPem ?? ''].filter((s) => s.trim() !== ''),
  };
}

/** Policies Tether opens channels with, best first. Basic128Rsa15 and Basic256 are deprecated (SHA-1): never used. */
export const SUPPORTED_POLICIES = ['Aes256_Sha256_RsaPss', 'Aes128_Sha256_RsaOaep', 'Basic256Sha256'].map(
  (p) => `${POLICY_URI_PREFIX}${p}`,
);

export interface ChosenEndpoint {
  readonly endpoint: EndpointInfo & { readonly url: string };
  readonly user: UserIdentity;
}

function usableUser(endpoint: EndpointInfo, user: UserIdentity): UserIdentity | undefined {
  if (user.kind === 'UserName') return endpoint.userTokenTypes.includes('UserName') ? user : undefined;
  return endpoint.userTokenTypes.includes('Anonymous') ? user : undefined;
}

/**
 * The endpoint a session goes to: SignAndEncrypt before Sign, then the best supported policy,
 * among those that accept the configured user (a user name, else Anonymous). With `always`, a
 * server without secure endpoints gets a None session, Anonymous only: a password never
 * crosses an unencrypted channel.
 */
export function chooseEndpoint(
  endpoints: readonly (EndpointInfo & { readonly url: string })[],
  user: UserIdentity,
  always: boolean,
): ChosenEndpoint | Exclude<SessionResult, 'ok'> {
  const secure = endpoints.filter((e) => e.securityMode === 'SignAndEncrypt' || e.securityMode === 'Sign');
  const supported = secure.filter((e) => SUPPORTED_POLICIES.includes(e.securityPolicyUri));
  const rank = (e: EndpointInfo): number =>
    (e.securityMode === 'SignAndEncrypt' ? 0 : 100) + SUPPORTED_POLICIES.indexOf(e.securityPolicyUri);
  const ranked = [...supported].sort((a, b) => rank(a) - rank(b));
  for (const endpoint of ranked) {
    const usable = usableUser(endpoint, user);
    if (usable !== undefined) return { endpoint, user: usable };
  }
  if (ranked.length > 0) return 'no-usable-token';
  if (always) {
    const open = endpoints.find((e) => e.securityMode === 'None' && e.userTokenTypes.includes('Anonymous'));
    if (open !== undefined) return { endpoint: open, user: { kind: 'Anonymous' } };
  }
  return 'no-secure-endpoint';
}

/** Whether a server needs a session under `sessions`: WhenRequired = it offers no None endpoint. */
export function wantsSession(sessions: SecurityConfig['sessions'], endpoints: readonly EndpointInfo[]): boolean {
  if (sessions === 'Off') return false;
  return sessions === 'Always' || !endpoints.some((e) => e.securityMode === 'None');
}

const ACCESS_DENIED = /BadUserAccessDenied|BadIdentityToken(?:Invalid|Rejected)|BadUserSignatureInvalid/;
const CHANNEL_REJECTED =
  /BadSecurityChecksFailed|BadCertificate\w*|BadSecurityPolicyRejected|BadSecurityModeRejected|BadNonceInvalid|BadApplicationSignatureInvalid/;

/** A session failure, from node-opcua's error text, as one of the fixed categories. */
export function sessionFailure(error: unknown): Exclude<SessionResult, 'ok'> {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : '';
  const text = error instanceof Error ? `${error.message} ${cause}` : String(error);
  if (ACCESS_DENIED.test(text)) return 'access-denied';
  if (CHANNEL_REJECTED.test(text)) return 'channel-rejected';
  if (/no answer within|timeout|timed out/i.test(text)) return 'timeout';
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ECONNRESET|socket has been disconnected|closed by server/i.test(text)) return 'unreachable';
  return 'failed';
}
