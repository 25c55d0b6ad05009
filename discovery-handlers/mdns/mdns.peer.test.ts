/**
 * The mdns handler against a real avahi-daemon and Tether's mock responder, both publishing
 * from another network namespace joined by a veth pair: every packet crosses a real link.
 * Needs root, `avahi-daemon`, `avahi-utils`, `iproute2`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StandaloneAgent } from '../../agent/standalone.ts';
import { deviceName, deviceResourceName } from '../../api/names.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { fullNameOf, type MockService } from '../../mocks/mdns/responder.ts';
import { startAvahi, type AvahiPeer } from '../../test/peers/avahi.ts';
import { runHandler, type RunningHandler } from '../../test/peers/handler-run.ts';
import { createNetnsLink, type NetnsLink } from '../../test/peers/netns.ts';
import { PeerGroup, type PeerProcess } from '../../test/peers/process.ts';
import { createMdnsHandler } from './mdns.ts';

const peers = new PeerGroup();
const perTest = new PeerGroup();
let link: NetnsLink;
let avahi: AvahiPeer;
let responderLink: NetnsLink;
let responder: PeerProcess;
let commandId = 0;

const PRINTER = {
  name: 'Office Printer',
  type: '_ipp._tcp',
  port: 631,
  txt: ['rp=ipp/print', 'ty=Acme LaserJet 4000', 'UUID=1f6e9a52-8e2b-4a7e-9d1c-2b3c4d5e6f70'],
};

beforeAll(async () => {
  link = await createNetnsLink(peers, 'mdns');
  avahi = await startAvahi(peers, link, { 'printer.service': PRINTER });
  // The mock responder gets a namespace (and link) of its own: it can run beside avahi, but
  // this way each peer owns its port 5353 and nothing depends on socket-sharing rules.
  responderLink = await createNetnsLink(peers, 'mdnsr');
  responder = responderLink.spawn('mdns responder', process.execPath, [
    new URL('../../mocks/mdns/responder.ts', import.meta.url).pathname,
    responderLink.peerAddress,
  ]);
  await responder.waitForOutput(/^ready$/m, 10_000);
});
afterAll(() => peers.close());
afterEach(() => perTest.close());

/** Sends a command to the mock responder and waits until its packets are out. */
async function command(cmd: Record<string, unknown>): Promise<void> {
  const id = ++commandId;
  responder.child.stdin!.write(`${JSON.stringify({ id, ...cmd })}\n`);
  await responder.waitForOutput(new RegExp(`^ok ${id}$`, 'm'), 5_000);
}

function mockService(name: string, extra: Partial<MockService> = {}): MockService {
  return { name, type: '_rtsp._tcp', port: 554, host: 'mock-cam', address: responderLink.peerAddress, txt: { path: '/stream1' }, ...extra };
}

function start(details: Record<string, unknown>): RunningHandler {
  const running = runHandler(createMdnsHandler(), {
    interfaces: [link.hostIf, responderLink.hostAddress],
    discoveryTimeoutSeconds: 1.5,
    ...details,
  });
  perTest.defer('mdns handler', () => running.stop());
  return running;
}

const printerId = 'Office Printer._ipp._tcp.local';
/** Only what the test's avahi publishes (a LAN printer seen through a host avahi must not count). */
const fromAvahi = (): { host: string } => ({ host: `^${avahi.hostName}\\.local$` });

describe('mdns handler across a veth link', () => {
  it('finds avahi static services in the first report, with host, port, address and TXT', async () => {
    const { sink } = start({ serviceTypes: ['_ipp._tcp'], filters: fromAvahi() });
    await sink.waitFor(() => sink.calls.length > 0, 5_000, 'first report');
    expect(sink.calls[0]).toEqual({ kind: 'replaceAll', ids: [printerId] });
    expect(sink.devices.get(printerId)?.properties).toEqual({
      MDNS_INSTANCE: 'Office Printer',
      MDNS_SERVICE_TYPE: '_ipp._tcp',
      MDNS_FULL_NAME: printerId,
      MDNS_HOST: `${avahi.hostName}.local`,
      MDNS_PORT: '631',
      MDNS_ADDRESS: link.peerAddress,
      MDNS_ADDRESSES: link.peerAddress,
      MDNS_TXT_RP: 'ipp/print',
      MDNS_TXT_TY: 'Acme LaserJet 4000',
      MDNS_TXT_UUID: '1f6e9a52-8e2b-4a7e-9d1c-2b3c4d5e6f70',
    });
  });

  it('avahi-publish-service: appears live; stopping the publisher sends goodbyes → offline at once', async () => {
    const { sink } = start({ serviceTypes: ['_http._tcp'] });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'first report');
    const publisher = await avahi.publish({ name: 'Camera Web UI', type: '_http._tcp', port: 8080, txt: ['path=/index.html'] });
    perTest.defer('publisher', () => publisher.stop());
    const id = 'Camera Web UI._http._tcp.local';
    await sink.waitFor(() => sink.devices.get(id)?.properties['MDNS_TXT_PATH'] === '/index.html', 5_000, 'published service');
    expect(sink.devices.get(id)?.properties['MDNS_ADDRESS']).toBe(link.peerAddress);
    await publisher.stop();
    await sink.waitFor(() => !sink.devices.has(id), 3_000, 'goodbye');
    expect(sink.calls.at(-1)).toEqual({ kind: 'remove', id });
  });

  it('finds a service avahi announced just before the browse started (needs the re-query after 1 s)', async () => {
    const publisher = await avahi.publish({ name: 'Fresh Scanner', type: '_uscan._tcp', port: 9095 });
    perTest.defer('publisher', () => publisher.stop());
    const { sink } = start({ serviceTypes: ['_uscan._tcp'], filters: fromAvahi() });
    await sink.waitFor(() => sink.calls.length > 0, 5_000, 'first report');
    expect(sink.calls[0]).toEqual({ kind: 'replaceAll', ids: ['Fresh Scanner._uscan._tcp.local'] });
  });

  it('static service files: adding one announces it, removing it sends goodbyes', async () => {
    const { sink } = start({ serviceTypes: ['_rtsp._tcp'], filters: fromAvahi() });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'first report');
    await avahi.addServiceFile('door.service', { name: 'Door Cam', type: '_rtsp._tcp', port: 8554, txt: ['path=/live'] });
    const id = 'Door Cam._rtsp._tcp.local';
    await sink.waitFor(() => sink.devices.has(id), 5_000, 'announced from the new file');
    await avahi.removeServiceFile('door.service');
    await sink.waitFor(() => !sink.devices.has(id), 5_000, 'goodbye after the file went');
  });

  it('mock responder: a device that vanishes silently expires with its TTL; one that answers refreshes stays', async () => {
    const { sink } = start({ serviceTypes: ['_rtsp._tcp'], filters: { host: '^mock-cam\\.local$' } });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'first report');
    const cam = mockService('Short TTL Cam', { ttl: 2, ptrTtl: 2 });
    await command({ cmd: 'publish', service: cam });
    const id = fullNameOf(cam);
    await sink.waitFor(() => sink.devices.get(id)?.properties['MDNS_ADDRESS'] === responderLink.peerAddress, 5_000, 'short-TTL service');
    // Refresh queries at 80–95 % of the TTL keep it alive: wait for three answered SRV refreshes.
    const srvAnswers = (): number => responder.output.split('\n').filter((l) => l === `answered SRV ${id}`).length;
    const before = srvAnswers();
    await responder.waitFor(() => srvAnswers() >= before + 3, 10_000, 'three answered SRV refresh queries');
    expect(sink.devices.has(id)).toBe(true);
    expect(sink.calls.filter((c) => c.kind === 'remove')).toEqual([]);
    await command({ cmd: 'silence' });
    const silencedAt = performance.now();
    await sink.waitFor(() => !sink.devices.has(id), 5_000, 'TTL expiry');
    expect(performance.now() - silencedAt).toBeLessThan(2_500);
  });

  it('filters on instance name, TXT keys/values and host', async () => {
    const { sink } = start({
      serviceTypes: ['_rtsp._tcp'],
      filters: { instanceName: '^Yard', txt: { path: '^/main$', vendor: true }, host: '^mock-cam\\.local$' },
    });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'first report');
    await command({ cmd: 'publish', service: mockService('Yard Cam', { txt: { path: '/main', vendor: 'acme' } }) });
    await command({ cmd: 'publish', service: mockService('Yard Cam 2', { txt: { path: '/sub', vendor: 'acme' } }) });
    await command({ cmd: 'publish', service: mockService('Yard Cam 3', { txt: { path: '/main' } }) });
    await command({ cmd: 'publish', service: mockService('Garage Cam', { txt: { path: '/main', vendor: 'acme' } }) });
    await sink.waitFor(() => sink.devices.has('Yard Cam._rtsp._tcp.local'), 5_000, 'matching service');
    // The others were announced in the same burst, before the match; none got in.
    expect(sink.ids()).toEqual(['Yard Cam._rtsp._tcp.local']);
    for (const name of ['Yard Cam', 'Yard Cam 2', 'Yard Cam 3', 'Garage Cam'])
      await command({ cmd: 'unpublish', fullName: `${name}._rtsp._tcp.local` });
    await sink.waitFor(() => sink.ids().length === 0, 5_000, 'goodbyes');
  });

  it('undecodable and hostile packets are counted and never stop discovery; TXT values are sanitised', async () => {
    const { sink, done } = start({ serviceTypes: ['_hostile._tcp'] });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'first report');
    await command({ cmd: 'garbage' });
    await sink.waitFor(() => sink.counted('bad_packet') >= 2, 5_000, 'bad packets counted');
    await command({ cmd: 'hostile', type: '_hostile._tcp', host: 'evil' });
    const id = 'Evil\u0007\n Name._hostile._tcp.local';
    await sink.waitFor(() => sink.devices.has(id), 5_000, 'hostile but decodable service');
    const props = sink.devices.get(id)!.properties;
    expect(props).toMatchObject({
      MDNS_TXT_PATH: `base64:${Buffer.from('/ok\u0000\nx').toString('base64')}`,
      MDNS_TXT_BIN: `base64:${Buffer.from([0xff, 0xfe, 0x00]).toString('base64')}`,
      MDNS_TXT_DUP: 'first',
      MDNS_TXT_FLAG: 'true',
    });
    expect(
      Object.keys(props)
        .filter((k) => k.startsWith('MDNS_TXT_'))
        .sort(),
    ).toEqual(['MDNS_TXT_BIN', 'MDNS_TXT_DUP', 'MDNS_TXT_FLAG', 'MDNS_TXT_PATH']);
    // The 300 unrelated records in the same packet were not even cached as devices.
    expect(sink.ids()).toEqual([id]);
    let settled = false;
    void done.finally(() => (settled = true));
    expect(settled).toBe(false);
  });
});

describe('mdns through the agent, and the CLI', () => {
  const healthy = (kubelet: MockKubelet, resource: string): number =>
    (kubelet.resource(resource)?.devices ?? []).filter((d) => d.health === 'Healthy').length;

  it('a printer published by avahi becomes an allocatable device with its env; its goodbye turns it Unhealthy', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-mdns-agent-'));
    perTest.defer('agent dir', () => rm(dir, { recursive: true, force: true }));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
    await kubelet.start();
    perTest.defer('kubelet', () => kubelet.stop());
    const handler = createMdnsHandler();
    const agent = new StandaloneAgent({
      node: 'edge-1',
      pluginDir: join(dir, 'dp'),
      log: pino({ level: 'silent' }),
      discoveries: [
        {
          namespace: 'default',
          name: 'printers',
          handler,
          details: handler.parseDetails({ serviceTypes: ['_ipp._tcp'], interfaces: [link.hostIf], filters: { instanceName: '^Second' } }),
          capacity: 1,
          offlineGraceMs: 60_000,
          properties: new Map(),
        },
      ],
    });
    agent.start();
    perTest.defer('agent', () => agent.stop());
    const publisher = await avahi.publish({
      name: 'Second Printer',
      type: '_ipp._tcp',
      port: 631,
      txt: ['rp=ipp/print', 'note=2nd floor'],
    });
    perTest.defer('publisher', () => publisher.stop());
    const name = deviceName({ namespace: 'default', discovery: 'printers', deviceId: 'Second Printer._ipp._tcp.local' });
    const resource = deviceResourceName(name);
    await kubelet.waitFor(() => healthy(kubelet, resource) === 1, 10_000, 'allocatable printer');
    const response = await kubelet.allocate({ namespace: 'default', name: 'print-broker' }, resource, 1);
    expect(response.envs).toMatchObject({
      MDNS_INSTANCE: 'Second Printer',
      MDNS_ADDRESS: link.peerAddress,
      MDNS_PORT: '631',
      MDNS_HOST: `${avahi.hostName}.local`,
      MDNS_TXT_RP: 'ipp/print',
      MDNS_TXT_NOTE: '2nd floor',
      TETHER_DEVICES: name,
    });
    await publisher.stop();
    await kubelet.waitFor(
      () => healthy(kubelet, resource) === 0 && (kubelet.resource(resource)?.devices.length ?? 0) === 1,
      5_000,
      'Unhealthy after the goodbye',
    );
  });

  it('tether discover mdns prints the services found in the first browse window', async () => {
    const bin = new URL('../../bin/tether.ts', import.meta.url).pathname;
    const details = JSON.stringify({ serviceTypes: ['_ipp._tcp'], interfaces: [link.hostIf], filters: fromAvahi() });
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'discover', 'mdns', '--details', details, '-o', 'json']);
    const devices = JSON.parse(stdout) as { id: string; properties: Record<string, string> }[];
    expect(devices.map((d) => d.id)).toEqual([printerId]);
    expect(devices[0]?.properties['MDNS_TXT_TY']).toBe('Acme LaserJet 4000');
  });
});
