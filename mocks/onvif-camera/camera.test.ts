/** The simulator holds cameras' strictness: tests against it are only worth what it checks. */
import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { envelope, securityHeader } from '../../discovery-handlers/onvif/soap.ts';
import { buildProbe } from '../../discovery-handlers/onvif/ws-discovery.ts';
import { SimulatedCamera } from './camera.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const address = `127.${randomInt(1, 255)}.${randomInt(1, 255)}.1`;
const CREDS = { username: 'admin', password: 'secret' };

async function camera(options: Partial<ConstructorParameters<typeof SimulatedCamera>[0]> = {}): Promise<SimulatedCamera> {
  const cam = new SimulatedCamera({ address, wsDiscoveryPort: randomInt(20_000, 30_000), helloOnStart: false, ...options });
  await cam.start();
  cleanups.push(() => cam.stop({ bye: false }));
  return cam;
}

async function client(): Promise<{ socket: Socket; next: () => Promise<string> }> {
  const socket = createSocket('udp4');
  const queue: string[] = [];
  const waiters: ((m: string) => void)[] = [];
  socket.on('message', (m) => {
    const w = waiters.shift();
    if (w === undefined) queue.push(m.toString());
    else w(m.toString());
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  cleanups.push(() => void socket.close());
  return { socket, next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiters.push(resolve))) };
}

function post(cam: SimulatedCamera, body: string, header = ''): Promise<Response> {
  return fetch(cam.serviceUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml' },
    body: envelope(body, { tds: 'http://www.onvif.org/ver10/device/wsdl' }, header),
  });
}

describe('simulated ONVIF camera', () => {
  it('answers a Probe whose Types prefix is declared, and ignores one whose prefix is not (Akri #486)', async () => {
    const cam = await camera();
    const { socket, next } = await client();
    const undeclared = buildProbe().replace(' xmlns:dn="http://www.onvif.org/ver10/network/wsdl"', '');
    socket.send(undeclared, cam.wsPort, cam.address);
    socket.send(buildProbe('urn:uuid:11111111-1111-4111-8111-111111111111'), cam.wsPort, cam.address);
    const reply = await next();
    expect(reply).toContain('<a:RelatesTo>urn:uuid:11111111-1111-4111-8111-111111111111</a:RelatesTo>');
    expect(reply).toContain(`urn:uuid:${cam.uuid}`);
    expect(cam.stats).toMatchObject({ probes: 2, ignoredProbes: 1, probeMatches: 1 });
  });

  it('verifies WS-UsernameToken digests: right password, fresh nonce, Created within tolerance of its own clock', async () => {
    const cam = await camera({ credentials: CREDS, clockOffsetMs: 3_600_000 });
    const call = (header: string): Promise<number> => post(cam, '<tds:GetDeviceInformation/>', header).then((r) => r.status);
    const cameraNow = Date.now() + 3_600_000;
    const nonce = Buffer.from('0123456789abcdef');
    expect(await call('')).toBe(400);
    expect(await call(securityHeader({ ...CREDS, password: 'wrong' }, cameraNow))).toBe(400);
    expect(await call(securityHeader(CREDS, Date.now()))).toBe(400); // own clock, not the camera's
    expect(await call(securityHeader(CREDS, cameraNow, nonce))).toBe(200);
    expect(await call(securityHeader(CREDS, cameraNow, nonce))).toBe(400); // replayed nonce
    expect(cam.stats.authFailures).toBe(4);
    // Date and time needs no authentication (it is how clients learn the offset).
    expect((await post(cam, '<tds:GetSystemDateAndTime/>')).status).toBe(200);
  });

  it('goes offline (no probe answers, no SOAP) and comes back with a Hello', async () => {
    const cam = await camera();
    const { socket, next } = await client();
    await cam.goOffline();
    socket.send(buildProbe(), cam.wsPort, cam.address);
    await expect(post(cam, '<tds:GetSystemDateAndTime/>')).rejects.toThrow();
    // The group listener hears the Hello when it comes back.
    const listener = createSocket({ type: 'udp4', reuseAddr: true });
    cleanups.push(() => void listener.close());
    const hello = new Promise<string>((resolve) => listener.on('message', (m) => m.toString().includes('Hello') && resolve(m.toString())));
    await new Promise<void>((resolve) => listener.bind(cam.wsPort, '239.255.255.250', resolve));
    listener.addMembership('239.255.255.250', cam.address);
    await cam.goOnline();
    expect(await hello).toContain(`<d:XAddrs>${cam.serviceUrl}</d:XAddrs>`);
    socket.send(buildProbe(), cam.wsPort, cam.address);
    expect(await next()).toContain('ProbeMatches');
    expect(cam.stats.probes).toBe(1); // the offline Probe was not even read
  });
});
