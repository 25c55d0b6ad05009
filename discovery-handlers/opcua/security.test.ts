/**
 * The security step's pure parts and its bookkeeping with a fake client: endpoint choice,
 * failure categories, secrets kept out of properties, credential errors that name the
 * property but never the value, verify=Require, and sessions not retried every round.
 * Real certificates and sessions: security.peer.test.ts (asyncua).
 */
import { describe, expect, it } from 'vitest';
import { DetailsError } from '../contract.ts';
import type { OpcuaDiscoveryClient, SessionRequest } from './client.ts';
import { parseOpcuaDetails } from './details.ts';
import { chooseEndpoint, securityConfig, sessionFailure, wantsSession, type SecurityConfig } from './security.ts';
import type { CheckedEndpoint, Described } from './servers.ts';
import { SecurityChecks, withoutSecrets } from './sessions.ts';
import { splitDerChain } from './trust.ts';

const P = 'http://opcfoundation.org/UA/SecurityPolicy#';
function ep(mode: CheckedEndpoint['securityMode'], policy: string, tokens: string[] = ['Anonymous', 'UserName']): CheckedEndpoint {
  return {
    endpointUrl: 'opc.tcp://10.0.0.7:4840',
    url: `opc.tcp://10.0.0.7:4840/${mode}/${policy}`,
    securityMode: mode,
    securityPolicyUri: `${P}${policy}`,
    userTokenTypes: tokens,
    applicationUri: 'urn:a',
    applicationName: 'A',
    applicationType: 'Server',
    productUri: 'urn:p',
  };
}
const USER = { kind: 'UserName', userName: 'op', password: 'secret-pw' } as const;

describe('chooseEndpoint', () => {
  it.each([
    [
      'SignAndEncrypt before Sign',
      [ep('Sign', 'Aes256_Sha256_RsaPss'), ep('SignAndEncrypt', 'Basic256Sha256')],
      'SignAndEncrypt/Basic256Sha256',
    ],
    [
      'best policy first',
      [ep('SignAndEncrypt', 'Basic256Sha256'), ep('SignAndEncrypt', 'Aes256_Sha256_RsaPss')],
      'SignAndEncrypt/Aes256_Sha256_RsaPss',
    ],
    ['deprecated policies never', [ep('SignAndEncrypt', 'Basic128Rsa15'), ep('Sign', 'Basic256')], 'no-secure-endpoint'],
    [
      'an endpoint that takes the user',
      [ep('SignAndEncrypt', 'Aes256_Sha256_RsaPss', ['Anonymous']), ep('Sign', 'Basic256Sha256')],
      'Sign/Basic256Sha256',
    ],
    ['no secure endpoint takes the user', [ep('SignAndEncrypt', 'Basic256Sha256', ['Anonymous'])], 'no-usable-token'],
    ['None only', [ep('None', 'None')], 'no-secure-endpoint'],
  ])('%s', (_, endpoints, expected) => {
    const chosen = chooseEndpoint(endpoints, USER, false);
    expect(
      typeof chosen === 'string' ? chosen : `${chosen.endpoint.securityMode}/${chosen.endpoint.securityPolicyUri.slice(P.length)}`,
    ).toBe(expected);
  });

  it('Always on a None-only server: a None session, Anonymous — the password never crosses it', () => {
    const chosen = chooseEndpoint([ep('None', 'None')], USER, true);
    expect(chosen).toMatchObject({ endpoint: { securityMode: 'None' }, user: { kind: 'Anonymous' } });
    expect(chooseEndpoint([ep('None', 'None', ['UserName'])], USER, true)).toBe('no-secure-endpoint');
  });

  it('WhenRequired: only servers without a None endpoint', () => {
    expect(wantsSession('WhenRequired', [ep('None', 'None'), ep('SignAndEncrypt', 'Basic256Sha256')])).toBe(false);
    expect(wantsSession('WhenRequired', [ep('SignAndEncrypt', 'Basic256Sha256')])).toBe(true);
    expect(wantsSession('Always', [ep('None', 'None')])).toBe(true);
    expect(wantsSession('Off', [ep('SignAndEncrypt', 'Basic256Sha256')])).toBe(false);
  });
});

describe('sessionFailure', () => {
  it.each([
    [' serviceResult = BadUserAccessDenied (0x801f0000)', 'access-denied'],
    ['BadIdentityTokenRejected', 'access-denied'],
    ['BadSecurityChecksFailed', 'channel-rejected'],
    ['BadCertificateUntrusted', 'channel-rejected'],
    ['opc.tcp://x: no answer within 100 ms', 'timeout'],
    ['connect ECONNREFUSED 10.0.0.7:4840', 'unreachable'],
    ['something else', 'failed'],
  ])('%s → %s', (message, expected) => {
    expect(sessionFailure(new Error(message))).toBe(expected);
  });
});

describe('secrets', () => {
  it('a property holding the password, the key or a PEM block is dropped', () => {
    const { properties, dropped } = withoutSecrets({ A: 'fine', B: 'x secret-pw y', C: '-----BEGIN CERTIFICATE-----\nMII…', D: 'ab' }, [
      'secret-pw',
      'ab',
    ]);
    // Secrets shorter than 3 characters would match everything: not used for matching.
    expect(properties).toEqual({ A: 'fine', D: 'ab' });
    expect(dropped).toBe(2);
  });

  it.each([
    [{}, 'properties.OPCUA_CLIENT_CERTIFICATE'],
    [{ OPCUA_CLIENT_CERTIFICATE: 'not a pem', OPCUA_CLIENT_PRIVATE_KEY: 'hunter2-secret' }, 'properties.OPCUA_CLIENT_CERTIFICATE'],
    [{ OPCUA_CLIENT_CERTIFICATE: 'hunter2-secret' }, 'properties.OPCUA_CLIENT_PRIVATE_KEY'],
    [{ OPCUA_PASSWORD: 'hunter2-secret' }, 'properties.OPCUA_USERNAME'],
    [
      { OPCUA_TRUSTED_CERTIFICATES: '-----BEGIN CERTIFICATE-----\nhunter2-secret\n-----END CERTIFICATE-----' },
      'properties.OPCUA_TRUSTED_CERTIFICATES',
    ],
  ])('bad credentials %# → DetailsError naming the property, never the value', (properties, path) => {
    const details = parseOpcuaDetails({ endpointUrls: ['opc.tcp://10.0.0.7:4840'], security: {} });
    let error: unknown;
    try {
      securityConfig(details, new Map(Object.entries(properties)));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DetailsError);
    expect((error as DetailsError).path).toBe(path);
    expect(String(error)).not.toContain('hunter2');
  });

  it('no security block: nothing read, nothing checked', () => {
    expect(securityConfig(parseOpcuaDetails({ endpointUrls: ['opc.tcp://10.0.0.7:4840'] }), new Map())).toBeUndefined();
  });
});

it('splitDerChain: concatenated DER certificates; anything malformed is undefined', () => {
  const a = Uint8Array.from([0x30, 0x03, 1, 2, 3]);
  const b = Uint8Array.from([0x30, 0x81, 0x02, 9, 9]);
  expect(splitDerChain(Uint8Array.from([...a, ...b]))?.map((c) => c.length)).toEqual([5, 5]);
  expect(splitDerChain(Uint8Array.from([0x30, 0x05, 1]))).toBeUndefined();
  expect(splitDerChain(Uint8Array.from([0x31, 0x00]))).toBeUndefined();
});

describe('SecurityChecks with a fake client', () => {
  const config = (extra: Partial<SecurityConfig>): SecurityConfig => ({
    verify: 'Off',
    sessions: 'WhenRequired',
    sessionTimeoutMs: 1000,
    sessionIntervalMs: 60_000,
    maxConcurrentSessions: 1,
    anchors: { certificates: [], thumbprints: new Set() },
    user: USER,
    secretValues: ['secret-pw'],
    ...extra,
  });
  const described = (certificate: Uint8Array): Described => ({
    device: { id: 'urn:a', properties: { OPCUA_APPLICATION_URI: 'urn:a' } },
    refusedUrls: [],
    untrusted: false,
    endpoints: [ep('SignAndEncrypt', 'Basic256Sha256')],
    certificate,
  });
  function fake(fail?: string): { client: OpcuaDiscoveryClient; requests: SessionRequest[] } {
    const requests: SessionRequest[] = [];
    const client = {
      openSession: (request: SessionRequest) => {
        requests.push(request);
        return fail === undefined ? Promise.resolve() : Promise.reject(new Error(fail));
      },
    } as unknown as OpcuaDiscoveryClient;
    return { client, requests };
  }

  it('a failed session is not retried every round, only after the interval or when the certificate changes', async () => {
    let now = 0;
    const counts: string[] = [];
    const checks = new SecurityChecks(
      config({}),
      (e) => counts.push(e),
      (e) => counts.push(e),
      () => now,
    );
    const { client, requests } = fake('BadUserAccessDenied');
    const cert = Uint8Array.from([0x30, 0x01, 1]);
    const first = await checks.apply(client, 'k', described(cert));
    expect(first?.properties).toMatchObject({ OPCUA_SESSION: 'access-denied', OPCUA_SESSION_USER_TOKEN: 'UserName' });
    await checks.apply(client, 'k', described(cert));
    expect(requests).toHaveLength(1);
    await checks.apply(client, 'k', described(Uint8Array.from([0x30, 0x01, 2])));
    expect(requests).toHaveLength(2);
    now = 60_001;
    await checks.apply(client, 'k', described(Uint8Array.from([0x30, 0x01, 2])));
    expect(requests).toHaveLength(3);
    expect(requests[0]).toMatchObject({ securityMode: 'SignAndEncrypt', user: USER, serverCertificate: cert });
    expect(counts.filter((c) => c === 'session_access-denied')).toHaveLength(3);
  });

  it('verify=Require withholds a server whose certificate is not trusted; Report keeps it without a session', async () => {
    const { client, requests } = fake();
    const garbage = Uint8Array.from([0x30, 0x01, 1]);
    const counts: string[] = [];
    const require = new SecurityChecks(
      config({ verify: 'Require' }),
      (e) => counts.push(e),
      () => undefined,
    );
    expect(await require.apply(client, 'k', described(garbage))).toBeUndefined();
    expect(counts).toEqual(['untrusted_certificate', 'withheld_untrusted']);
    const report = new SecurityChecks(
      config({ verify: 'Report' }),
      () => undefined,
      () => undefined,
    );
    expect((await report.apply(client, 'k', described(garbage)))?.properties).toMatchObject({
      OPCUA_SERVER_CERT_TRUST: 'invalid',
      OPCUA_SERVER_CERT_TRUSTED: 'false',
      OPCUA_SESSION: 'untrusted-server',
    });
    expect(requests).toHaveLength(0);
  });
});
