/**
 * The opcua handler's security block against Python asyncua across a veth link: servers that
 * offer only Basic256Sha256 SignAndEncrypt and take only user names from a table, their
 * certificates signed by a CA made here (openssl, temp dir) or by one Tether does not know.
 * Tether presents a client certificate from the same CA and credentials as the agent would
 * hand them over from Secrets (the discovery's resolved properties).
 * Needs root, iproute2, openssl, python3 (venv) and PyPI for asyncua.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServers } from '../../test/peers/asyncua.ts';
import { runHandler, type RunningHandler } from '../../test/peers/handler-run.ts';
import { createNetnsLink, type NetnsLink } from '../../test/peers/netns.ts';
import { createOpcuaPki, type Issued } from '../../test/peers/opcua/pki.ts';
import { PeerGroup } from '../../test/peers/process.ts';
import { createOpcuaHandler } from './opcua.ts';

const peers = new PeerGroup();
const perTest = new PeerGroup();
let link: NetnsLink;
let ca: Issued;
let client: Issued;
const GOOD = 'urn:tether-test:press-secure';
const ROGUE = 'urn:tether-test:press-rogue';
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  link = await createNetnsLink(peers, 'opcuasec');
  const pki = await createOpcuaPki(peers);
  ca = await pki.ca('tether-test-ca');
  const unknownCa = await pki.ca('someone-elses-ca');
  const good = await pki.issue(ca, 'press-secure', { uri: GOOD, ip: link.peerAddress });
  const rogue = await pki.issue(unknownCa, 'press-rogue', { uri: ROGUE, ip: link.peerAddress });
  client = await pki.issue(ca, 'tether-client', { uri: 'urn:tether-test:client' });
  const users = { operator: PASSWORD };
  await startServers(
    link,
    [
      { port: 4861, uri: GOOD, name: 'Secure Press', secure: true, certFile: good.cert, keyFile: good.key, users },
      { port: 4862, uri: ROGUE, name: 'Rogue Press', secure: true, certFile: rogue.cert, keyFile: rogue.key, users },
    ],
    'secure servers',
  );
}, 120_000);
afterAll(() => peers.close());
afterEach(() => perTest.close());

function start(security: Record<string, unknown>, properties: Record<string, string>, extra: Record<string, unknown> = {}): RunningHandler {
  const running = runHandler(
    createOpcuaHandler(),
    {
      endpointUrls: [`opc.tcp://${link.peerAddress}:4861`, `opc.tcp://${link.peerAddress}:4862`],
      requestTimeoutSeconds: 5,
      queryIntervalSeconds: 30,
      security,
      ...extra,
    },
    { properties: new Map(Object.entries(properties)) },
  );
  perTest.defer('opcua handler', () => running.stop());
  return running;
}

const credentials = (password: string): Record<string, string> => ({
  OPCUA_CLIENT_CERTIFICATE: client.certPem,
  OPCUA_CLIENT_PRIVATE_KEY: client.keyPem,
  OPCUA_USERNAME: 'operator',
  OPCUA_PASSWORD: password,
  OPCUA_TRUSTED_CERTIFICATES: ca.certPem,
});

/** No property holds key, password or certificate material. */
function expectNoSecrets(properties: Readonly<Record<string, string>>): void {
  for (const value of Object.values(properties)) {
    expect(value).not.toContain('-----BEGIN');
    expect(value).not.toContain(PASSWORD);
    expect(value).not.toContain('wrong-password');
    expect(value.length).toBeLessThan(256);
  }
}

describe('opcua security against asyncua (Basic256Sha256 SignAndEncrypt, user names, test CA)', () => {
  it('right certificate and password: session ok, certificate trusted; the unknown CA reported untrusted, no session tried', async () => {
    const { sink } = start({}, credentials(PASSWORD));
    await sink.waitFor(() => sink.calls.length > 0, 30_000, 'first report');
    expect(sink.ids()).toEqual([ROGUE, GOOD].sort());
    const good = sink.devices.get(GOOD)!.properties;
    expect(good).toMatchObject({
      OPCUA_SERVER_CERT_TRUST: 'trusted',
      OPCUA_SERVER_CERT_TRUSTED: 'true',
      OPCUA_SESSION: 'ok',
      OPCUA_SESSION_SECURITY_MODE: 'SignAndEncrypt',
      OPCUA_SESSION_SECURITY_POLICY: 'Basic256Sha256',
      OPCUA_SESSION_USER_TOKEN: 'UserName',
      OPCUA_SECURITY_MODES: 'SignAndEncrypt',
    });
    expect(good['OPCUA_SERVER_CERT_THUMBPRINT']).toMatch(/^[0-9a-f]{40}$/);
    const rogue = sink.devices.get(ROGUE)!.properties;
    expect(rogue).toMatchObject({
      OPCUA_SERVER_CERT_TRUST: 'untrusted',
      OPCUA_SERVER_CERT_TRUSTED: 'false',
      OPCUA_SESSION: 'untrusted-server',
    });
    expect(rogue['OPCUA_SESSION_SECURITY_MODE']).toBeUndefined();
    expect(sink.counted('session_ok')).toBe(1);
    expect(sink.counted('untrusted_certificate')).toBe(1);
    for (const device of sink.devices.values()) expectNoSecrets(device.properties);
  });

  it('wrong password: access-denied, the device still reported; verify=Require withholds the untrusted server', async () => {
    const { sink } = start({ verify: 'Require' }, credentials('wrong-password'));
    await sink.waitFor(() => sink.calls.length > 0, 30_000, 'first report');
    expect(sink.ids()).toEqual([GOOD]);
    expect(sink.devices.get(GOOD)!.properties).toMatchObject({ OPCUA_SERVER_CERT_TRUST: 'trusted', OPCUA_SESSION: 'access-denied' });
    expect(sink.counted('session_access-denied')).toBe(1);
    expect(sink.counted('withheld_untrusted')).toBe(1);
    expectNoSecrets(sink.devices.get(GOOD)!.properties);
  });

  it('the server CA not configured: both untrusted, no credentials sent; pinning the rogue thumbprint makes it trusted', async () => {
    const noCa = { ...credentials(PASSWORD), OPCUA_TRUSTED_CERTIFICATES: '' };
    const { sink } = start({}, noCa);
    await sink.waitFor(() => sink.calls.length > 0, 30_000, 'first report');
    for (const id of [GOOD, ROGUE])
      expect(sink.devices.get(id)!.properties).toMatchObject({ OPCUA_SERVER_CERT_TRUST: 'untrusted', OPCUA_SESSION: 'untrusted-server' });
    expect(sink.counted('session_ok')).toBe(0);
    const rogueThumbprint = sink.devices.get(ROGUE)!.properties['OPCUA_SERVER_CERT_THUMBPRINT']!;
    const pinned = start({}, noCa, { trustedCertificateThumbprints: [rogueThumbprint] });
    await pinned.sink.waitFor(() => pinned.sink.calls.length > 0, 30_000, 'first report, rogue pinned');
    expect(pinned.sink.devices.get(ROGUE)!.properties).toMatchObject({ OPCUA_SERVER_CERT_TRUST: 'trusted', OPCUA_SESSION: 'ok' });
    expect(pinned.sink.devices.get(GOOD)!.properties['OPCUA_SERVER_CERT_TRUST']).toBe('untrusted');
  });

  it('secure session time against asyncua (figure)', async () => {
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const running = start({}, credentials(PASSWORD));
      const { sink } = running;
      const t0 = performance.now();
      await sink.waitFor(() => sink.calls.length > 0, 30_000, 'first report');
      times.push(performance.now() - t0);
      expect(sink.devices.get(GOOD)!.properties['OPCUA_SESSION']).toBe('ok');
      await running.stop();
    }
    times.sort((a, b) => a - b);
    const at = (q: number): string => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(0);
    console.log(
      `opcua first round with a secure session (GetEndpoints ×2 + Basic256Sha256 session): p50 ${at(0.5)} ms, p99 ${at(0.99)} ms`,
    );
  });
});
