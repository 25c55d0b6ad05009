/**
 * ONVIF through the agent to the (mock) kubelet: a camera appears → allocatable with its
 * stream URI in the container env; the camera says Bye → its slots turn Unhealthy at once.
 */
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StandaloneAgent } from '../../agent/standalone.ts';
import { deviceName, deviceResourceName } from '../../api/names.ts';
import { SimulatedCamera } from '../../mocks/onvif-camera/camera.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { createOnvifHandler } from './onvif.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const health = (kubelet: MockKubelet, resource: string): string[] => (kubelet.resource(resource)?.devices ?? []).map((d) => d.health);

describe('onvif through the agent', () => {
  it('camera appears → allocatable with stream URI env; Bye → Unhealthy at once; Hello → Healthy again', async () => {
    const port = randomInt(20_000, 30_000);
    const dir = await mkdtemp(join(tmpdir(), 'to-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
    await kubelet.start();
    cleanups.push(() => kubelet.stop());
    const handler = createOnvifHandler({ port, lookupMac: () => Promise.resolve(undefined) });
    const credentials = { username: 'broker', password: 'Sup3r-Secret' };
    const agent = new StandaloneAgent({
      node: 'edge-1',
      pluginDir: join(dir, 'dp'),
      log: pino({ level: 'silent' }),
      discoveries: [
        {
          namespace: 'default',
          name: 'cameras',
          handler,
          // Probes are rare here: only Hello/Bye can explain a change within the test.
          details: handler.parseDetails({ interfaces: ['lo'], probeIntervalSeconds: 3600, discoveryTimeoutSeconds: 0.1 }),
          capacity: 2,
          offlineGraceMs: 60_000,
          properties: new Map([
            ['ONVIF_USERNAME', credentials.username],
            ['ONVIF_PASSWORD', credentials.password],
          ]),
        },
      ],
    });
    agent.start();
    cleanups.push(() => agent.stop());

    const camera = new SimulatedCamera({ address: `127.${randomInt(1, 255)}.${randomInt(1, 255)}.9`, wsDiscoveryPort: port, credentials });
    await agent.settled();
    await camera.start(); // Hello
    cleanups.push(() => camera.stop({ bye: false }));
    const name = deviceName({ namespace: 'default', discovery: 'cameras', deviceId: camera.uuid }); // shared: no node in the name
    const resource = deviceResourceName(name);
    await kubelet.waitFor(() => health(kubelet, resource).join() === 'Healthy,Healthy', 5_000, 'camera allocatable');

    const response = await kubelet.allocate({ namespace: 'default', name: 'viewer' }, resource, 1);
    expect(response.envs['ONVIF_STREAM_URI']).toBe(camera.streamUri('profile_main'));
    expect(response.envs['ONVIF_DEVICE_UUID']).toBe(camera.uuid);
    expect(response.envs['ONVIF_DEVICE_SERVICE_URL']).toBe(camera.serviceUrl);
    expect(response.envs[`ONVIF_STREAM_URI_${name.slice(-16).toUpperCase()}`]).toBe(camera.streamUri('profile_main'));
    expect(Object.values(response.envs).some((v) => v.includes(credentials.password))).toBe(false);

    await camera.sendBye();
    await kubelet.waitFor(() => health(kubelet, resource).join() === 'Unhealthy,Unhealthy', 3_000, 'Unhealthy after Bye');
    await camera.sendHello();
    await kubelet.waitFor(() => health(kubelet, resource).join() === 'Healthy,Healthy', 3_000, 'Healthy after Hello');
  });
});
