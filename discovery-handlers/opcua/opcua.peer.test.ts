/**
 * The opcua handler against Python asyncua (an OPC UA stack Tether does not use): an LDS and
 * servers in another network namespace joined by a veth pair, so every request crosses a real
 * link. Register, unregister, kill, restart; a server with only SignAndEncrypt endpoints; one
 * with an unexpected endpoint list; one registered with a URL that points at this node; DNS-SD
 * through avahi; the `tether discover` CLI; the agent and the (mock) kubelet.
 * Needs root, iproute2, python3 (venv) and PyPI for asyncua (test/peers/asyncua.ts installs it).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgentWithHandler } from '../../test/support/handler-kit.ts';
import { startLds, startServers, type ServerSpec } from '../../test/peers/asyncua.ts';
import { startAvahi } from '../../test/peers/avahi.ts';
import { runHandler, type RunningHandler } from '../../test/peers/handler-run.ts';
import { createNetnsLink, type NetnsLink } from '../../test/peers/netns.ts';
import { PeerGroup, startPeer } from '../../test/peers/process.ts';
import { createMdnsHandler } from '../mdns/mdns.ts';
import { createOpcuaHandler } from './opcua.ts';

const REPO = new URL('../..', import.meta.url).pathname;
const peers = new PeerGroup();
const perTest = new PeerGroup();
let link: NetnsLink;
let ldsUrl: string;

const spec = (port: number, uri: string, name: string, extra: Partial<ServerSpec> = {}): ServerSpec => ({
  port,
  uri,
  name,
  lds: ldsUrl,
  ...extra,
});

beforeAll(async () => {
  link = await createNetnsLink(peers, 'opcua');
  ldsUrl = `opc.tcp://${link.peerAddress}:4840`;
  // Both live until afterAll (the PeerGroup stops them); tests start and kill their own servers.
  await startLds(link);
  await startServers(
    link,
    [
      spec(4841, 'urn:tether-test:press-a', 'Press A', { product: 'urn:acme:press' }),
      spec(4842, 'urn:tether-test:secure', 'Secure Cell', { secure: true }),
      // Endpoints: another host, loopback, a host name — only the last two mean "this server".
      spec(4843, 'urn:tether-test:odd', 'Odd Gateway', {
        endpoints: ['opc.tcp://10.99.99.99:4843/', 'opc.tcp://127.0.0.1:4843/', 'opc.tcp://odd-gateway.local:4843/ua'],
      }),
      // Registered with a discovery URL on this node's side of the link: must never be asked.
      spec(4844, 'urn:tether-test:steer', 'Steering', { advertise: `opc.tcp://${link.hostAddress}:4844` }),
    ],
    'fixed servers',
  );
}, 120_000);
afterAll(() => peers.close());
afterEach(() => perTest.close());

const FAST = { requestTimeoutSeconds: 3, queryIntervalSeconds: 0.5, offlineAfterFailedQueries: 1, maxBackoffSeconds: 1 };

function start(details: Record<string, unknown>): RunningHandler {
  const running = runHandler(createOpcuaHandler({ dnsSdBrowser: createMdnsHandler() }), { ...FAST, ...details });
  perTest.defer('opcua handler', () => running.stop());
  return running;
}

const akri = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  opcuaDiscoveryMethod: { standard: { discoveryUrls: [`${ldsUrl}/`] } },
  ...extra,
});
const FIXED_IDS = ['urn:tether-test:odd', 'urn:tether-test:press-a', 'urn:tether-test:secure'];

describe('opcua handler against asyncua across a veth link', () => {
  it('first report: every registered server with its properties; the LDS itself, and the server steering to this node, left out', async () => {
    const { sink } = start(akri());
    await sink.waitFor(() => sink.calls.length > 0, 20_000, 'first report');
    expect(sink.calls[0]).toEqual({ kind: 'replaceAll', ids: expect.arrayContaining(FIXED_IDS) as unknown });
    expect(sink.ids()).toEqual(FIXED_IDS);
    const at = link.peerAddress;
    expect(sink.devices.get('urn:tether-test:press-a')!.properties).toEqual({
      OPCUA_DISCOVERY_URL: `opc.tcp://${at}:4841`,
      OPCUA_APPLICATION_URI: 'urn:tether-test:press-a',
      OPCUA_APPLICATION_NAME: 'Press A',
      OPCUA_APPLICATION_TYPE: 'Server',
      OPCUA_PRODUCT_URI: 'urn:acme:press',
      OPCUA_ENDPOINT_URL: `opc.tcp://${at}:4841`,
      OPCUA_ENDPOINT_URLS: `opc.tcp://${at}:4841`,
      OPCUA_SECURITY_MODES: 'None',
      OPCUA_SECURITY_POLICIES: 'None',
      OPCUA_USER_TOKEN_TYPES: 'Anonymous,UserName',
      OPCUA_DISCOVERED_VIA: 'lds',
      OPCUA_LDS_URL: `${ldsUrl}/`,
    });
    // Found over a None channel although it offers only SignAndEncrypt; a thumbprint, never the certificate.
    const secure = sink.devices.get('urn:tether-test:secure')!.properties;
    expect(secure).toMatchObject({ OPCUA_SECURITY_MODES: 'SignAndEncrypt', OPCUA_SECURITY_POLICIES: 'Basic256Sha256' });
    expect(secure['OPCUA_SERVER_CERT_THUMBPRINT']).toMatch(/^[0-9a-f]{40}$/);
    expect(Object.values(secure).every((v) => v.length < 256)).toBe(true);
    // The unexpected endpoint list: 10.99.99.99 refused; loopback and the host name mean the server's own address.
    expect(sink.devices.get('urn:tether-test:odd')!.properties['OPCUA_ENDPOINT_URLS']).toBe(
      `opc.tcp://${at}:4843/,opc.tcp://${at}:4843/ua`,
    );
    expect(sink.counted('unsafe_endpoint_url')).toBeGreaterThanOrEqual(2);
    expect(sink.counted('lds_me_unsupported')).toBe(1);
  });

  it('register → appears; unregister → gone at once; register again → back; kill → gone; restart → back', async () => {
    const { sink } = start(akri({ applicationNames: { action: 'Include', items: ['Line B'] } }));
    await sink.waitFor(() => sink.calls.length > 0, 20_000, 'first report');
    expect(sink.ids()).toEqual([]);
    const b = spec(4850, 'urn:tether-test:line-b', 'Line B');
    let line = await startServers(link, [b], 'line B');
    perTest.defer('line B', () => line.kill());
    await sink.waitFor(() => sink.devices.has(b.uri), 15_000, 'line B after it registered');
    await line.command('unregister', b.uri);
    await sink.waitFor(() => !sink.devices.has(b.uri), 5_000, 'line B gone after unregistering');
    expect(sink.calls.at(-1)).toEqual({ kind: 'remove', id: b.uri });
    await line.command('register', b.uri);
    await sink.waitFor(() => sink.devices.has(b.uri), 5_000, 'line B back after registering again');
    await line.kill();
    await sink.waitFor(() => !sink.devices.has(b.uri), 10_000, 'line B gone after it was killed (still listed by the LDS)');
    expect(sink.counted('server_unreachable')).toBeGreaterThan(0);
    line = await startServers(link, [b], 'line B again');
    await sink.waitFor(() => sink.devices.has(b.uri), 15_000, 'line B back after a restart');
  });

  it('filters: Akri applicationNames Exclude, securityModes, applicationUris', async () => {
    const excluded = start(akri({ applicationNames: { action: 'Exclude', items: ['Press A'] } }));
    const secureOnly = start(akri({ securityModes: ['SignAndEncrypt'] }));
    const byUri = start(akri({ applicationUris: { include: ['urn:tether-test:odd'] } }));
    for (const { sink } of [excluded, secureOnly, byUri]) await sink.waitFor(() => sink.calls.length > 0, 20_000, 'first report');
    expect(excluded.sink.ids()).toEqual(['urn:tether-test:odd', 'urn:tether-test:secure']);
    expect(secureOnly.sink.ids()).toEqual(['urn:tether-test:secure']);
    expect(byUri.sink.ids()).toEqual(['urn:tether-test:odd']);
  });

  it('a listed endpoint URL is asked directly; an untrusted certificate is reported, not trusted', async () => {
    const { sink } = start({ endpointUrls: [`opc.tcp://${link.peerAddress}:4842`], trustedCertificateThumbprints: ['00'.repeat(20)] });
    await sink.waitFor(() => sink.calls.length > 0, 20_000, 'first report');
    expect(sink.ids()).toEqual(['urn:tether-test:secure']);
    expect(sink.devices.get('urn:tether-test:secure')!.properties).toMatchObject({
      OPCUA_DISCOVERED_VIA: 'endpoint',
      OPCUA_SERVER_CERT_TRUSTED: 'false',
    });
    expect(sink.counted('untrusted_certificate')).toBeGreaterThan(0);
  });

  it('DNS-SD _opcua-tcp._tcp through the mdns browser: announced → found; withdrawn (goodbyes) → gone at once', async () => {
    const avahi = await startAvahi(perTest, link, {});
    const { sink } = start({ dnsSd: true, dnsSdInterfaces: [link.hostIf], queryIntervalSeconds: 30 });
    await sink.waitFor(() => sink.calls.length > 0, 20_000, 'first report');
    await avahi.addServiceFile('press.service', { name: 'Press A', type: '_opcua-tcp._tcp', port: 4841, txt: ['path=/'] });
    await sink
      .waitFor(() => sink.devices.has('urn:tether-test:press-a'), 15_000, 'the announced server')
      .catch((error: unknown) => {
        throw new Error(`${String(error)}\navahi said:\n${avahi.daemon.output.slice(-3000)}`);
      });
    expect(sink.devices.get('urn:tether-test:press-a')!.properties).toMatchObject({
      OPCUA_DISCOVERED_VIA: 'dns-sd',
      OPCUA_DISCOVERY_URL: `opc.tcp://${link.peerAddress}:4841/`,
    });
    await avahi.removeServiceFile('press.service');
    // queryIntervalSeconds is 30: only the goodbye can take it away this fast.
    await sink.waitFor(() => !sink.devices.has('urn:tether-test:press-a'), 8_000, 'gone on the goodbye');
  });
});

const exec = promisify(execFile);

/** The complete JSON snapshots a `discover --watch -o json` printed so far (each a pretty-printed array). */
function snapshots(output: string): { id: string; online?: boolean }[][] {
  const done: { id: string; online?: boolean }[][] = [];
  let open: string[] | undefined;
  for (const line of output.split('\n')) {
    if (line === '[]') done.push([]);
    else if (line === '[') open = [line];
    else if (open !== undefined) open.push(line);
    if (line === ']' && open !== undefined) {
      done.push(JSON.parse(open.join('\n')) as { id: string; online?: boolean }[]);
      open = undefined;
    }
  }
  return done;
}
const tether = (args: readonly string[]): string[] => ['bin/tether.ts', ...args];

describe('tether discover opcua', () => {
  it('one-shot -o json lists the servers; --watch shows a started server appear and a killed one go', async () => {
    const details = JSON.stringify(akri(FAST));
    const { stdout } = await exec(process.execPath, tether(['discover', 'opcua', '--details', details, '-o', 'json']), {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect((JSON.parse(stdout) as { id: string }[]).map((d) => d.id).sort()).toEqual(FIXED_IDS);

    const c = spec(4851, 'urn:tether-test:line-c', 'Line C');
    const line = await startServers(link, [c], 'line C');
    perTest.defer('line C', () => line.kill());
    const watch = startPeer(
      perTest,
      'tether discover opcua --watch',
      process.execPath,
      tether(['discover', 'opcua', '--watch', '-o', 'json', '--details', details]),
      { cwd: REPO },
    );
    const hasC = (output: string): boolean | undefined =>
      snapshots(output)
        .at(-1)
        ?.some((d) => d.id === c.uri && d.online !== false);
    await watch.waitFor((output) => hasC(output) === true, 30_000, 'line C listed');
    await line.kill();
    await watch.waitFor((output) => hasC(output) === false, 15_000, 'line C gone or offline');
  });
});

describe('opcua through the agent to the kubelet', () => {
  it('registered → allocatable with OPCUA_DISCOVERY_URL; killed → Unhealthy, then gone after the grace', async () => {
    const d = spec(4852, 'urn:tether-test:line-d', 'Line D');
    const kit = await startAgentWithHandler({
      handler: createOpcuaHandler(),
      discovery: 'plcs',
      details: `opcuaDiscoveryMethod:\n  standard:\n    discoveryUrls: ['${ldsUrl}/']\napplicationNames:\n  action: Include\n  items: ['Line D']\nqueryIntervalSeconds: 0.5\nrequestTimeoutSeconds: 3\nofflineAfterFailedQueries: 1\n`,
      offlineGraceMs: 1_000,
    });
    perTest.defer('agent', () => kit.stop());
    const line = await startServers(link, [d], 'line D');
    perTest.defer('line D', () => line.kill());
    const resource = kit.deviceResource(d.uri, 'shared');
    await kit.waitForSlots(resource, { healthy: 1, total: 1 }, 20_000);
    const allocation = await kit.allocate('broker', resource);
    expect(allocation.envs['OPCUA_DISCOVERY_URL']).toBe(`opc.tcp://${link.peerAddress}:4852`);
    expect(allocation.envs['OPCUA_APPLICATION_URI']).toBe(d.uri);
    await line.kill();
    await kit.waitForSlots(resource, { healthy: 0, total: 1 }, 10_000);
    await kit.waitForResourceGone(resource, 10_000);
  });
});
