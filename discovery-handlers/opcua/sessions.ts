/**
 * The security step of the opcua handler, run on every described server when the details have
 * a `security` block: the server certificate's trust (trust.ts), the device withheld under
 * verify=Require, and a secure session opened (and closed) where the server needs one, its
 * outcome in OPCUA_SESSION. Called by the handler's round workers; at most
 * `maxConcurrentSessions` sessions are being opened at once, and a server's outcome is reused
 * until its certificate or chosen endpoint changes or `sessionIntervalSeconds` pass (a wrong
 * password is not tried every round: servers lock accounts out).
 *
 * Never a device property: a certificate, a key, a password (any property whose value holds a
 * configured secret is dropped and counted as credential_in_property).
 */
import type { DiscoveredDevice } from '../contract.ts';
import type { OpcuaDiscoveryClient } from './client.ts';
import { chooseEndpoint, sessionFailure, wantsSession, type SecurityConfig, type SessionResult } from './security.ts';
import { thumbprint, type Described } from './servers.ts';
import { evaluateServerCertificate, type TrustState } from './trust.ts';
import { POLICY_URI_PREFIX } from './details.ts';

/** A session outcome plus "not attempted because the certificate is untrusted". */
export type SessionState = SessionResult | 'untrusted-server';

/** How the handler reports: a counted event, logged once per server and kind. */
export type Report = (event: string, key: string, error?: unknown) => void;

interface Remembered {
  readonly signature: string;
  readonly at: number;
  readonly properties: Readonly<Record<string, string>>;
}

/** A counting semaphore: at most `limit` holders. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(limit: number) {
    this.#free = limit;
  }
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#free++;
      else next();
    }
  }
}

const policyName = (uri: string): string => (uri.startsWith(POLICY_URI_PREFIX) ? uri.slice(POLICY_URI_PREFIX.length) : uri);

/** Drops every property whose value holds a secret or a PEM block. */
export function withoutSecrets(
  properties: Readonly<Record<string, string>>,
  secrets: readonly string[],
): { properties: Record<string, string>; dropped: number } {
  const live = secrets.filter((s) => s.length >= 3);
  const entries = Object.entries(properties);
  const kept = entries.filter(([, value]) => !value.includes('-----BEGIN') && !live.some((s) => value.includes(s)));
  return { properties: Object.fromEntries(kept), dropped: entries.length - kept.length };
}

export class SecurityChecks {
  readonly #config: SecurityConfig;
  readonly #report: Report;
  readonly #count: (event: string) => void;
  readonly #slots: Slots;
  readonly #remembered = new Map<string, Remembered>();
  readonly #now: () => number;
  /** Session times in ms, for figures (the bench and the peer tests read them). */
  readonly sessionTimes: number[] = [];

  constructor(config: SecurityConfig, report: Report, count: (event: string) => void, now: () => number = Date.now) {
    this.#config = config;
    this.#report = report;
    this.#count = count;
    this.#slots = new Slots(config.maxConcurrentSessions);
    this.#now = now;
  }

  /** Forgets servers no longer listed. */
  keepOnly(keys: ReadonlySet<string>): void {
    for (const key of this.#remembered.keys()) if (!keys.has(key)) this.#remembered.delete(key);
  }

  /** The device `described` became at `key`, with trust and session properties; undefined = withheld. */
  async apply(client: OpcuaDiscoveryClient, key: string, described: Described): Promise<DiscoveredDevice | undefined> {
    const device = described.device;
    if (device === undefined) return undefined;
    const config = this.#config;
    const properties: Record<string, string> = { ...device.properties };
    const trust = this.#trust(key, device.id, described.certificate);
    if (trust !== undefined) {
      properties['OPCUA_SERVER_CERT_TRUST'] = trust;
      properties['OPCUA_SERVER_CERT_TRUSTED'] = String(trust === 'trusted');
      if (trust !== 'trusted' && config.verify === 'Require') {
        this.#report('withheld_untrusted', `${key} ${trust}`);
        return undefined;
      }
    }
    Object.assign(properties, await this.#session(client, key, described, trust));
    const clean = withoutSecrets(properties, config.secretValues);
    if (clean.dropped > 0) this.#count('credential_in_property');
    return { ...device, properties: clean.properties };
  }

  #trust(key: string, applicationUri: string, certificate: Uint8Array | undefined): TrustState | undefined {
    if (this.#config.verify === 'Off' || certificate === undefined) return undefined;
    const trust = evaluateServerCertificate(certificate, applicationUri, this.#config.anchors, new Date(this.#now()));
    if (trust !== 'trusted') this.#report('untrusted_certificate', `${key} ${trust}`);
    return trust;
  }

  async #session(
    client: OpcuaDiscoveryClient,
    key: string,
    described: Described,
    trust: TrustState | undefined,
  ): Promise<Record<string, string>> {
    const config = this.#config;
    const endpoints = described.endpoints ?? [];
    if (!wantsSession(config.sessions, endpoints)) return {};
    if (trust !== undefined && trust !== 'trusted') return { OPCUA_SESSION: 'untrusted-server' };
    const chosen = chooseEndpoint(endpoints, config.user, config.sessions === 'Always');
    if (typeof chosen === 'string') {
      this.#report(`session_${chosen}`, key);
      return { OPCUA_SESSION: chosen };
    }
    const { endpoint, user } = chosen;
    const print = described.certificate === undefined ? '' : thumbprint(described.certificate);
    const signature = [print, endpoint.url, endpoint.securityMode, endpoint.securityPolicyUri, user.kind].join('|');
    const remembered = this.#remembered.get(key);
    if (remembered?.signature === signature && this.#now() - remembered.at < config.sessionIntervalMs) return remembered.properties;
    const result = await this.#slots.run(() => this.#open(client, key, described, chosen));
    const properties: Record<string, string> = {
      OPCUA_SESSION: result,
      OPCUA_SESSION_SECURITY_MODE: endpoint.securityMode,
      OPCUA_SESSION_SECURITY_POLICY: policyName(endpoint.securityPolicyUri),
      OPCUA_SESSION_USER_TOKEN: user.kind,
    };
    this.#remembered.set(key, { signature, at: this.#now(), properties });
    return properties;
  }

  async #open(
    client: OpcuaDiscoveryClient,
    key: string,
    described: Described,
    { endpoint, user }: Exclude<ReturnType<typeof chooseEndpoint>, string>,
  ): Promise<SessionResult> {
    const started = performance.now();
    try {
      await client.openSession({
        url: endpoint.url,
        securityMode: endpoint.securityMode as 'None' | 'Sign' | 'SignAndEncrypt',
        securityPolicyUri: endpoint.securityPolicyUri,
        ...(described.certificate === undefined ? {} : { serverCertificate: described.certificate }),
        user,
        timeoutMs: this.#config.sessionTimeoutMs,
      });
      this.sessionTimes.push(performance.now() - started);
      this.#count('session_ok');
      return 'ok';
    } catch (error) {
      const failure = sessionFailure(error);
      this.#report(`session_${failure}`, key, error);
      return failure;
    }
  }
}
