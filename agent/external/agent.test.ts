/**
 * An SDK-served external handler through the agent to the (mock) kubelet: the device
 * becomes an allocatable extended resource whose Allocate returns its properties as env
 * vars; a handler that goes away turns it Unhealthy (grace period), and back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceName, deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import { serveDiscoveryHandler, type DiscoveryHandlerDefinition, type ServedDiscoveryHandler } from '../../discovery-handlers/sdk/index.ts';
import { MockKubelet } from '../kubelet/mock-kubelet.ts';
import { StandaloneAgent } from '../standalone.ts';
import { ExternalHandlerRegistry } from './registry.ts';
import { waitUntil } from '../../test/support/external-handler.ts';

const log = pino({ level: 'silent' });
const NODE = 'node-x';
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Reports one camera per name in details.cameras, with its URL and the SITE property. */
const cameras: DiscoveryHandlerDefinition<{ cameras: string[] }> = {
  name: 'sdkCam',
  shared: false,
  parseDetails(raw) {
    const list = (raw as { cameras?: unknown } | null)?.cameras;
    if (!Array.isArray(list) || !list.every((c) => typeof c === 'string')) throw new Error('cameras must be a list of names');
    return { cameras: list };
  },
  async discover(details, properties, emit, signal) {
    emit(details.cameras.map((c) => ({ id: c, properties: { CAM_URL: `rtsp://${c}.local/live`, SITE: properties.get('SITE') ?? '' } })));
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  },
};

describe('external handler → agent → kubelet', () => {
  it('an SDK-served device is an allocatable kubelet resource with its properties as env vars', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tx-'));
    const pluginDir = join(dir, 'dp');
    const kubelet = new MockKubelet({ pluginDir });
    await kubelet.start();
    const registry = new ExternalHandlerRegistry({ socketPath: join(dir, 'agent.sock'), log, connectTimeoutMs: 1_000 });
    await registry.start();
    const serve = (): Promise<ServedDiscoveryHandler<{ cameras: string[] }>> =>
      serveDiscoveryHandler({ ...cameras, agentSocket: registry.socketPath, listen: { socket: join(dir, 'cam.sock') }, log });
    let served = await serve();
    const running: { agent?: StandaloneAgent } = {};
    cleanups.push(async () => {
      await running.agent?.stop();
      await served.stop();
      await registry.stop();
      await kubelet.stop();
      await rm(dir, { recursive: true, force: true });
    });
    await waitUntil(registry, 'registered', () => registry.names().includes('sdkCam'), 5_000, 'sdkCam registered');

    const handler = registry.handler('sdkCam')!;
    const agent = new StandaloneAgent({
      node: NODE,
      pluginDir,
      log,
      discoveries: [
        {
          namespace: 'default',
          name: 'cams',
          handler,
          details: handler.parseDetails({ cameras: ['door', 'yard'] }),
          capacity: 2,
          offlineGraceMs: 60_000,
          properties: new Map([['SITE', 'plant-7']]),
        },
      ],
    });
    running.agent = agent;
    agent.start();

    const door = deviceName({ namespace: 'default', discovery: 'cams', deviceId: 'door', node: NODE });
    const resource = deviceResourceName(door);
    const healthy = (r: string): string[] => (kubelet.resource(r)?.devices ?? []).filter((d) => d.health === 'Healthy').map((d) => d.ID);
    await kubelet.waitFor(() => healthy(resource).length === 2 && healthy(discoveryResourceName('cams')).length === 4, 5_000, 'resources');

    const response = await kubelet.allocate({ namespace: 'default', name: 'viewer' }, resource, 1);
    expect(response.envs['CAM_URL']).toBe('rtsp://door.local/live');
    expect(response.envs['SITE']).toBe('plant-7');
    expect(response.envs['TETHER_DEVICES']).toBe(door);

    // The handler goes away: its devices stay known but Unhealthy (grace period)...
    await served.stop();
    await kubelet.waitFor(() => healthy(resource).length === 0 && (kubelet.resource(resource)?.devices.length ?? 0) === 2, 5_000, 'unhealthy');
    // ...and are Healthy again once it is back and registered.
    served = await serve();
    await kubelet.waitFor(
      () => healthy(resource).length === 2 && healthy(discoveryResourceName('cams')).length === 3,
      5_000,
      'healthy again (the allocated slot stays hidden from the discovery resource)',
    );
  });
});
