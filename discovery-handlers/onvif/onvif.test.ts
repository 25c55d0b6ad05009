/**
 * The onvif handler against simulated cameras on loopback (real UDP multicast on `lo`,
 * real HTTP/SOAP). Every test uses its own WS-Discovery port and 127.x.y.z addresses.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomInt, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedCamera, type SimulatedCameraOptions } from '../../mocks/onvif-camera/camera.ts';
import { onvifCalls } from './device-client.ts';
import { SoapError } from './soap.ts';
import { createOnvifHandler, type OnvifHandlerOptions } from './onvif.ts';
import { RecordingSink } from '../../test/support/recording-sink.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const net = `127.${randomInt(1, 255)}.${randomInt(1, 255)}`;
let nextHost = 1;
const freshAddress = (): string => `${net}.${nextHost++}`;

interface Rig {
  port: number;
  sink: RecordingSink;
  camera(options?: Partial<SimulatedCameraOptions>): Promise<SimulatedCamera>;
  start(details: Record<string, unknown>, properties?: Record<string, string>, options?: OnvifHandlerOptions): Promise<void>;
}

function rig(): Rig {
  const port = randomInt(20_000, 30_000);
  const sink = new RecordingSink();
  return {
    port,
    sink,
    async camera(options = {}) {
      const camera = new SimulatedCamera({ address: freshAddress(), wsDiscoveryPort: port, ...options });
      await camera.start();
      cleanups.push(() => camera.stop({ bye: false }));
      return camera;
    },
    async start(details, properties = {}, options = {}) {
      const handler = createOnvifHandler({ port, lookupMac: () => Promise.resolve(undefined), ...options });
      const parsed = handler.parseDetails({ interfaces: ['lo'], discoveryTimeoutSeconds: 0.2, ...details });
      const abort = new AbortController();
      const running = handler.run(parsed, sink.context(abort.signal, new Map(Object.entries(properties))));
      cleanups.push(async () => {
        abort.abort();
        await running;
      });
      await sink.waitFor(() => sink.replaceAlls > 0, 5_000, 'first full report');
    },
  };
}

const CREDENTIALS = { username: 'operator', password: 'pa55-w0rd!' };

/** An HTTP server on `address` (all addresses when omitted) recording what reaches it. */
async function httpServer(
  address: string | undefined,
  answer: (req: IncomingMessage, res: ServerResponse) => void = (_q, res) => res.end(),
) {
  const requests: { url: string; authorized: boolean; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ url: req.url ?? '', authorized: body.includes('UsernameToken') || req.headers.authorization !== undefined, body });
      answer(req, res);
    });
  });
  server.listen(0, address);
  await once(server, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as AddressInfo).port, requests };
}

/**
 * Something on the LAN answering Probes from `address` with a ProbeMatch whose XAddrs it
 * chooses — a camera nobody here wrote.
 */
async function probeResponder(r: Rig, address: string, xaddrs: string): Promise<{ uuid: string }> {
  const uuid = randomUUID();
  const match =
    '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">' +
    `<e:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:${uuid}</a:Address></a:EndpointReference>` +
    `<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/name/Stranger</d:Scopes><d:XAddrs>${xaddrs}</d:XAddrs>` +
    '<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>';
  const listener: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  const replier: Socket = createSocket({ type: 'udp4' });
  cleanups.push(() => {
    listener.close();
    replier.close();
  });
  await new Promise<void>((resolve) => replier.bind(0, address, resolve));
  listener.on('message', (message, remote) => {
    if (message.toString().includes('Probe<')) replier.send(match, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => listener.bind(r.port, '239.255.255.250', resolve));
  listener.addMembership('239.255.255.250', '127.0.0.1');
  return { uuid };
}

describe('onvif handler with simulated cameras', () => {
  it('finds cameras by multicast Probe and reports identity, MAC and stream URIs — without credentials', async () => {
    const r = rig();
    // A camera whose clock is 2 h ahead only accepts tokens stamped with its own time.
    const skewed = await r.camera({
      credentials: CREDENTIALS,
      clockOffsetMs: 2 * 3_600_000,
      identity: { manufacturer: 'ACME', model: 'Eye 2' },
    });
    const legacy = await r.camera({ credentials: CREDENTIALS, legacy: true, auth: 'http-digest', credentialsInStreamUri: true });
    await r.start({ probeIntervalSeconds: 30 }, { ONVIF_USERNAME: CREDENTIALS.username, ONVIF_PASSWORD: CREDENTIALS.password });
    await r.sink.waitFor(() => r.sink.current.size === 2, 5_000, 'both cameras');
    expect(r.sink.current.get(skewed.uuid)?.properties).toEqual({
      ONVIF_DEVICE_UUID: skewed.uuid,
      ONVIF_DEVICE_SERVICE_URL: skewed.serviceUrl,
      ONVIF_DEVICE_IP_ADDRESS: skewed.address,
      ONVIF_DEVICE_MAC_ADDRESS: skewed.identity.mac,
      ONVIF_DEVICE_NAME: `SimCam ${skewed.uuid.slice(0, 8)}`,
      ONVIF_DEVICE_LOCATION: 'lab',
      ONVIF_DEVICE_SCOPES: skewed.scopes.join(' '),
      ONVIF_DEVICE_MANUFACTURER: 'ACME',
      ONVIF_DEVICE_MODEL: 'Eye 2',
      ONVIF_DEVICE_FIRMWARE_VERSION: '1.0.0',
      ONVIF_DEVICE_SERIAL_NUMBER: skewed.identity.serialNumber,
      ONVIF_DEVICE_HARDWARE_ID: 'HW-1',
      ONVIF_MEDIA_SERVICE_URL: skewed.mediaUrl,
      ONVIF_STREAM_URI: skewed.streamUri('profile_main'),
      ONVIF_PROFILE_TOKEN: 'profile_main',
      ONVIF_PROFILE_0_TOKEN: 'profile_main',
      ONVIF_PROFILE_0_NAME: 'Main',
      ONVIF_PROFILE_0_ENCODING: 'H264',
      ONVIF_PROFILE_0_RESOLUTION: '1920x1080',
      ONVIF_PROFILE_0_STREAM_URI: skewed.streamUri('profile_main'),
      ONVIF_PROFILE_1_TOKEN: 'profile_sub',
      ONVIF_PROFILE_1_NAME: 'Sub',
      ONVIF_PROFILE_1_ENCODING: 'H264',
      ONVIF_PROFILE_1_RESOLUTION: '640x360',
      ONVIF_PROFILE_1_STREAM_URI: skewed.streamUri('profile_sub'),
    });
    expect(skewed.stats.authFailures).toBe(0);
    // Pre-2.0 camera (GetCapabilities), HTTP Digest, stream URI with userinfo: stripped.
    const props = r.sink.current.get(legacy.uuid)!.properties;
    expect(props['ONVIF_STREAM_URI']).toBe(`rtsp://${legacy.address}:554/stream/profile_main`);
    expect(legacy.stats.soap.get('GetServices')).toBe(2); // 401 challenge, then a fault: not a 2.0 device
    expect(legacy.stats.soap.get('GetCapabilities')).toBe(2);
    expect(legacy.stats.authFailures).toBe(0);
    for (const device of r.sink.current.values()) {
      for (const value of Object.values(device.properties)) expect(value).not.toContain(CREDENTIALS.password);
    }
    expect(r.sink.logText).not.toContain(CREDENTIALS.password);
  });

  it('Hello reports a new camera at once and Bye removes it at once, without waiting for a probe', async () => {
    const r = rig();
    await r.start({ probeIntervalSeconds: 3600 });
    expect(r.sink.current.size).toBe(0);
    const camera = await r.camera(); // multicasts Hello when it starts
    await r.sink.waitFor(() => r.sink.current.has(camera.uuid), 3_000, 'camera from Hello');
    expect(r.sink.calls.at(-1)).toMatchObject({ op: 'upsert', device: { id: camera.uuid } });
    expect(camera.stats.probes).toBe(0); // nobody probed it: the Hello did it
    await camera.sendBye();
    await r.sink.waitFor(() => !r.sink.current.has(camera.uuid), 3_000, 'removal on Bye');
    expect(r.sink.calls.at(-1)).toEqual({ op: 'remove', id: camera.uuid, at: expect.any(Number) });
    expect(r.sink.counts.get('hello')).toBe(1);
    expect(r.sink.counts.get('bye')).toBe(1);
  });

  it('a camera that goes silent stays reported until it has missed `offlineAfterMissedProbes` probes', async () => {
    const r = rig();
    const camera = await r.camera({ helloOnStart: false });
    await r.start({ probeIntervalSeconds: 0.1, discoveryTimeoutSeconds: 0.05, offlineAfterMissedProbes: 3 });
    await r.sink.waitFor(() => r.sink.current.has(camera.uuid), 3_000, 'camera found');
    await camera.goOffline(); // no Bye: unplugged
    const roundsAtSilence = r.sink.replaceAlls;
    await r.sink.waitFor(() => !r.sink.current.has(camera.uuid), 5_000, 'camera expired');
    const fullReports = r.sink.calls.filter((c) => c.op === 'replaceAll').slice(roundsAtSilence - 1);
    const withCamera = fullReports.filter((c) => c.op === 'replaceAll' && c.devices.some((d) => d.id === camera.uuid));
    // Reported through at least two more rounds (missed 1 and 2), removed at the third miss.
    expect(withCamera.length).toBeGreaterThanOrEqual(3);
    expect(r.sink.calls.some((c) => c.op === 'remove' && c.id === camera.uuid)).toBe(true);
    await camera.goOnline(); // Hello again
    await r.sink.waitFor(() => r.sink.current.has(camera.uuid), 3_000, 'camera back');
  });

  it('finds cameras by unicast Probe to a CIDR block when multicast is off', async () => {
    const r = rig();
    const cameras = [await r.camera({ helloOnStart: false }), await r.camera({ helloOnStart: false })];
    const first = cameras[0]!.address.split('.').map(Number);
    await r.start({
      multicast: false,
      unicastTargets: [`${first.slice(0, 3).join('.')}.${first[3]! & ~7}/29:${r.port}`],
      probeIntervalSeconds: 30,
    });
    await r.sink.waitFor(() => cameras.every((c) => r.sink.current.has(c.uuid)), 5_000, 'cameras by unicast');
    expect(r.sink.calls.find((c) => c.op === 'replaceAll')).toBeDefined();
  });

  it('filters: uuid/IP/scope before contacting the camera, manufacturer/model after', async () => {
    const r = rig();
    const wanted = await r.camera({ helloOnStart: false, identity: { manufacturer: 'ACME', model: 'Eye 2' } });
    const otherVendor = await r.camera({ helloOnStart: false, identity: { manufacturer: 'Globex', model: 'Eye 2' } });
    const excluded = await r.camera({ helloOnStart: false });
    const elsewhere = await r.camera({ helloOnStart: false, scopes: ['onvif://www.onvif.org/location/garage'] });
    await r.start({
      probeIntervalSeconds: 30,
      uuids: { exclude: [excluded.uuid] },
      scopes: { include: ['onvif://www.onvif.org/location/lab'] },
      manufacturers: { include: ['acme*'] },
    });
    await r.sink.waitFor(() => r.sink.current.has(wanted.uuid), 5_000, 'wanted camera');
    expect([...r.sink.current.keys()]).toEqual([wanted.uuid]);
    expect(otherVendor.stats.soap.get('GetDeviceInformation')).toBe(1); // asked, then filtered out
    expect(excluded.stats.soap.size).toBe(0); // never contacted
    expect(elsewhere.stats.soap.size).toBe(0);
  });

  it('uses per-camera credentials by uuid over the defaults', async () => {
    const r = rig();
    const a = await r.camera({ helloOnStart: false, credentials: { username: 'admin', password: 'alpha-123' } });
    const b = await r.camera({ helloOnStart: false, credentials: { username: 'root', password: 'bravo-456' } });
    await r.start(
      { probeIntervalSeconds: 30 },
      {
        ONVIF_USERNAME: 'admin',
        ONVIF_PASSWORD: 'alpha-123',
        [`ONVIF_USERNAME_${b.uuid.toUpperCase()}`]: 'root',
        [`ONVIF_PASSWORD_urn:uuid:${b.uuid}`]: 'bravo-456',
      },
    );
    await r.sink.waitFor(
      () => [a, b].every((c) => r.sink.current.get(c.uuid)?.properties['ONVIF_STREAM_URI'] !== undefined),
      5_000,
      'both with streams',
    );
    expect(a.stats.authFailures + b.stats.authFailures).toBe(0);
  });

  it('wrong credentials: the camera is reported from WS-Discovery alone, the failure is counted, the password never logged', async () => {
    const r = rig();
    const camera = await r.camera({ helloOnStart: false, credentials: CREDENTIALS });
    await r.start({ probeIntervalSeconds: 30 }, { ONVIF_USERNAME: 'operator', ONVIF_PASSWORD: 'not-the-password' });
    await r.sink.waitFor(() => r.sink.current.has(camera.uuid), 5_000, 'camera');
    const props = r.sink.current.get(camera.uuid)!.properties;
    expect(props['ONVIF_DEVICE_SERVICE_URL']).toBe(camera.serviceUrl);
    expect(props['ONVIF_STREAM_URI']).toBeUndefined();
    expect(r.sink.counts.get('soap_auth_failed')).toBe(1);
    expect(camera.stats.authFailures).toBe(1);
    expect(r.sink.logText).not.toContain('not-the-password');
    expect(r.sink.logText).toContain('Camera SOAP calls failed');
  });

  it('ignores and counts malformed or hostile ProbeMatches, and still finds the real camera', async () => {
    const r = rig();
    const camera = await r.camera({ helloOnStart: false });
    const hostile: Socket = createSocket({ type: 'udp4', reuseAddr: true });
    cleanups.push(() => void hostile.close());
    const replies = [
      '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;</x>',
      'not xml at all',
      '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><d:ProbeMatches xmlns:d="x"><d:ProbeMatch><d:XAddrs>http://10.9.9.9/</d:XAddrs></d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>',
      '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><d:ProbeMatches xmlns:d="x"><d:ProbeMatch><a:EndpointReference xmlns:a="y"><a:Address>urn:uuid:x</a:Address></a:EndpointReference><d:XAddrs>gopher://x/</d:XAddrs></d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>',
      `<x>${'y'.repeat(40_000)}</x>`,
    ];
    hostile.on('message', (message, remote) => {
      if (!message.toString().includes('Probe<')) return;
      for (const reply of replies) hostile.send(reply, remote.port, remote.address);
    });
    await new Promise<void>((resolve) => hostile.bind(r.port, '239.255.255.250', resolve));
    hostile.addMembership('239.255.255.250', '127.0.0.1');
    await r.start({ probeIntervalSeconds: 30 });
    await r.sink.waitFor(() => (r.sink.counts.get('malformed_probe_match') ?? 0) >= replies.length, 5_000, 'malformed counted');
    await r.sink.waitFor(() => r.sink.current.has(camera.uuid), 5_000, 'real camera');
    expect([...r.sink.current.keys()]).toEqual([camera.uuid]);
  });

  it('re-reads a camera whose MetadataVersion changed (Hello after a reconfiguration)', async () => {
    const r = rig();
    const camera = await r.camera({ helloOnStart: false });
    await r.start({ probeIntervalSeconds: 3600 });
    await r.sink.waitFor(() => r.sink.current.has(camera.uuid), 5_000, 'camera');
    expect(camera.stats.soap.get('GetDeviceInformation')).toBe(1);
    await camera.goOnline({ changed: true });
    await r.sink.waitFor(() => camera.stats.soap.get('GetStreamUri') === 4, 5_000, 'second interrogation');
    expect(camera.stats.soap.get('GetDeviceInformation')).toBe(2);
  });

  it('returns when stopped from inside the first report (as `tether discover` does)', async () => {
    const r = rig();
    await r.camera({ helloOnStart: false });
    const handler = createOnvifHandler({ port: r.port, lookupMac: () => Promise.resolve(undefined) });
    const abort = new AbortController();
    const context = r.sink.context(abort.signal);
    const sink = { replaceAll: () => abort.abort(), upsert: () => undefined, remove: () => undefined };
    const running = handler.run(handler.parseDetails({ interfaces: ['lo'], discoveryTimeoutSeconds: 0.1, probeIntervalSeconds: 3600 }), {
      ...context,
      sink,
    });
    await expect(running).resolves.toBeUndefined();
  });

  it('caps the number of tracked cameras', async () => {
    const r = rig();
    await r.camera({ helloOnStart: false });
    await r.camera({ helloOnStart: false });
    await r.start({ probeIntervalSeconds: 30, maxCameras: 1 });
    await r.sink.waitFor(() => (r.sink.counts.get('camera_limit') ?? 0) >= 1, 5_000, 'limit counted');
    await r.sink.waitFor(() => r.sink.current.size === 1, 5_000, 'one camera');
  });

  describe('issue 13: a device never steers Tether (or its credentials) to an address it did not answer from', () => {
    it('a ProbeMatch whose XAddrs point elsewhere (another host, the node loopback) is ignored and counted; nothing is sent there', async () => {
      const r = rig();
      const victim = await httpServer(undefined); // every local address, 127.0.0.1 included
      const elsewhere = freshAddress();
      const stranger = await probeResponder(
        r,
        freshAddress(),
        `http://${elsewhere}:${victim.port}/onvif/device_service http://127.0.0.1:${victim.port}/onvif/device_service`,
      );
      const camera = await r.camera({ helloOnStart: false, credentials: CREDENTIALS });
      await r.start({ probeIntervalSeconds: 30 }, { ONVIF_USERNAME: 'admin', ONVIF_PASSWORD: CREDENTIALS.password });
      await r.sink.waitFor(() => (r.sink.counts.get('unsafe_service_url') ?? 0) >= 1, 5_000, 'refusal counted');
      await r.sink.waitFor(() => r.sink.current.has(camera.uuid), 5_000, 'the real camera');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(victim.requests).toEqual([]);
      expect(r.sink.current.has(stranger.uuid)).toBe(false);
      expect(r.sink.logText).toContain('Ignored a camera whose service URLs do not point at the address it answered from');
    });

    it('a media service or stream URI pointing elsewhere is neither called nor published', async () => {
      const r = rig();
      const victim = await httpServer(undefined);
      const camera = await r.camera({ helloOnStart: false, credentials: CREDENTIALS });
      const steered = (host: string) => `http://${host}:${victim.port}/onvif/media_service`;
      let call = 0;
      const calls: typeof onvifCalls = {
        ...onvifCalls,
        // First round: Media on the node loopback; later rounds: Media on the camera, streams elsewhere.
        mediaService: async (url, options) => (call++ === 0 ? steered('127.0.0.1') : onvifCalls.mediaService(url, options)),
        streamUri: async (url, token, options) =>
          token === 'profile_main' ? `rtsp://169.254.169.254:554/${token}` : onvifCalls.streamUri(url, token, options),
      };
      await r.start(
        { probeIntervalSeconds: 0.3, discoveryTimeoutSeconds: 0.05 },
        { ONVIF_USERNAME: CREDENTIALS.username, ONVIF_PASSWORD: CREDENTIALS.password },
        { calls },
      );
      await r.sink.waitFor(
        () => r.sink.current.get(camera.uuid)?.properties['ONVIF_DEVICE_MANUFACTURER'] !== undefined,
        5_000,
        'camera with identity',
      );
      expect(r.sink.current.get(camera.uuid)?.properties['ONVIF_MEDIA_SERVICE_URL']).toBeUndefined();
      await r.sink.waitFor(
        () => r.sink.current.get(camera.uuid)?.properties['ONVIF_MEDIA_SERVICE_URL'] === camera.mediaUrl,
        5_000,
        'retried with the real media service',
      );
      const props = r.sink.current.get(camera.uuid)!.properties;
      expect(props['ONVIF_PROFILE_0_TOKEN']).toBe('profile_main');
      expect(props['ONVIF_PROFILE_0_STREAM_URI']).toBeUndefined();
      expect(props['ONVIF_STREAM_URI']).toBe(camera.streamUri('profile_sub'));
      expect(Object.values(props).some((v) => v.includes('169.254') || v.includes('127.0.0.1'))).toBe(false);
      expect(victim.requests).toEqual([]);
      expect(r.sink.counts.get('unsafe_service_url')).toBeGreaterThanOrEqual(2);
    });
  });

  it('issue 13: a 1 MiB SOAP answer is refused while it streams, quickly, and the camera is reported with a clear warning', async () => {
    const r = rig();
    const address = freshAddress();
    let written = 0;
    let firstRequestAt = 0;
    const huge = await httpServer(address, (_req, res) => {
      firstRequestAt ||= performance.now();
      res.writeHead(200, { 'content-type': 'application/soap+xml' }); // no Content-Length: must be cut while streaming
      res.write('<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>');
      const chunk = `<x>${'y'.repeat(16 * 1024 - 7)}</x>`;
      // One chunk per turn of the event loop, so the client (same process) reads as it comes.
      const pump = (): void => {
        if (res.destroyed) return;
        if (written >= 1024 * 1024) return void res.end('</e:Body></e:Envelope>');
        written += chunk.length;
        res.write(chunk);
        setImmediate(pump);
      };
      pump();
    });
    const stranger = await probeResponder(r, address, `http://${address}:${huge.port}/onvif/device_service`);
    await r.start({ probeIntervalSeconds: 30 });
    await r.sink.waitFor(() => r.sink.current.has(stranger.uuid), 5_000, 'camera from WS-Discovery facts');
    const elapsed = performance.now() - firstRequestAt;
    expect(r.sink.current.get(stranger.uuid)!.properties['ONVIF_DEVICE_SERVICE_URL']).toBe(
      `http://${address}:${huge.port}/onvif/device_service`,
    );
    expect(r.sink.counts.get('soap_response_too_large')).toBe(1);
    expect(r.sink.logText).toContain('an answer was larger than maxResponseBytes and was refused unread');
    // The default cap (64 KiB) stops reading long before the megabyte: no parse, no 1 MiB buffer.
    expect(written).toBeLessThan(1024 * 1024);
    expect(elapsed).toBeLessThan(1_000);
  });

  it('issue 13: a camera whose login fails keeps the MAC Tether knows from ARP, and passes an exclude-only manufacturer filter', async () => {
    const r = rig();
    const camera = await r.camera({ helloOnStart: false, credentials: CREDENTIALS, identity: { manufacturer: 'ACME' } });
    await r.start(
      { probeIntervalSeconds: 30, manufacturers: { exclude: ['Globex*'] } },
      { ONVIF_USERNAME: 'operator', ONVIF_PASSWORD: 'not-the-password' },
      { lookupMac: (ip) => Promise.resolve(ip === camera.address ? '02:00:00:00:be:ef' : undefined) },
    );
    await r.sink.waitFor(() => r.sink.current.has(camera.uuid), 5_000, 'camera despite its unknown manufacturer');
    expect(r.sink.counts.get('soap_auth_failed')).toBe(1);
    expect(r.sink.current.get(camera.uuid)!.properties['ONVIF_DEVICE_MAC_ADDRESS']).toBe('02:00:00:00:be:ef');
    expect(r.sink.current.get(camera.uuid)!.properties['ONVIF_DEVICE_MANUFACTURER']).toBeUndefined();
  });

  it('issue 13: a camera whose login starts failing keeps the MAC it told before (same address)', async () => {
    const r = rig();
    const camera = await r.camera({ helloOnStart: false });
    let locked = false;
    const calls: typeof onvifCalls = {
      ...onvifCalls,
      deviceInformation: async (url, options) => {
        if (locked) throw new SoapError('auth', 'HTTP 401');
        return onvifCalls.deviceInformation(url, options);
      },
    };
    await r.start({ probeIntervalSeconds: 3600 }, {}, { calls });
    await r.sink.waitFor(
      () => r.sink.current.get(camera.uuid)?.properties['ONVIF_DEVICE_MAC_ADDRESS'] === camera.identity.mac,
      5_000,
      'camera with its MAC',
    );
    locked = true; // e.g. its password was changed
    await camera.goOnline({ changed: true }); // a Hello with a new MetadataVersion: asked again
    await r.sink.waitFor(() => (r.sink.counts.get('soap_auth_failed') ?? 0) >= 1, 5_000, 'failed login');
    await r.sink.waitFor(
      () => r.sink.current.get(camera.uuid)?.properties['ONVIF_DEVICE_MANUFACTURER'] === undefined,
      5_000,
      'device information gone',
    );
    expect(r.sink.current.get(camera.uuid)?.properties['ONVIF_DEVICE_MAC_ADDRESS']).toBe(camera.identity.mac);
  });
});
