/**
 * ONVIF through the agent to the (mock) kubelet: a camera appears → allocatable with its
 * stream URI in the container env; the camera says Bye → its slots turn Unhealthy at once.
 */
import { randomInt } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedCamera } from '../../mocks/onvif-camera/camera.ts';
import { startAgentWithHandler } from '../../test/support/handler-kit.ts';
import { createOnvifHandler } from './onvif.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('onvif through the agent', () => {
  it('camera appears → allocatable with stream URI env; Bye → Unhealthy at once; Hello → Healthy again', async () => {
    const port = randomInt(20_000, 30_000);
    const credentials = { username: 'broker', password: 'Sup3r-Secret' };
    const kit = await startAgentWithHandler({
      handler: createOnvifHandler({ port, lookupMac: () => Promise.resolve(undefined) }),
      discovery: 'cameras',
      // Probes are rare here: only Hello/Bye can explain a change within the test.
      details: { interfaces: ['lo'], probeIntervalSeconds: 3600, discoveryTimeoutSeconds: 0.1 },
      capacity: 2,
      properties: { ONVIF_USERNAME: credentials.username, ONVIF_PASSWORD: credentials.password },
    });
    cleanups.push(() => kit.stop());

    const camera = new SimulatedCamera({ address: `127.${randomInt(1, 255)}.${randomInt(1, 255)}.9`, wsDiscoveryPort: port, credentials });
    await camera.start(); // Hello
    cleanups.push(() => camera.stop({ bye: false }));
    const name = kit.deviceName(camera.uuid, 'shared'); // shared: no node in the name
    const resource = kit.deviceResource(camera.uuid, 'shared');
    await kit.waitForSlots(resource, { healthy: 2, total: 2 }, 5_000);

    const response = await kit.allocate('viewer', resource);
    expect(response.envs['ONVIF_STREAM_URI']).toBe(camera.streamUri('profile_main'));
    expect(response.envs['ONVIF_DEVICE_UUID']).toBe(camera.uuid);
    expect(response.envs['ONVIF_DEVICE_SERVICE_URL']).toBe(camera.serviceUrl);
    expect(response.envs[`ONVIF_STREAM_URI_${name.slice(-16).toUpperCase()}`]).toBe(camera.streamUri('profile_main'));
    expect(Object.values(response.envs).some((v) => v.includes(credentials.password))).toBe(false);

    await camera.sendBye();
    await kit.waitForSlots(resource, { healthy: 0, total: 2 }, 3_000);
    await camera.sendHello();
    await kit.waitForSlots(resource, { healthy: 2, total: 2 }, 3_000);
  });
});
