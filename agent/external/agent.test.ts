/**
 * An SDK-served external handler through the agent to the (mock) kubelet: the device
 * becomes an allocatable extended resource whose Allocate returns its properties as env
 * vars; a handler that goes away turns it Unhealthy (grace period), and back; an idle
 * handler that does not register again is found by a restarted agent (remembered endpoints).
 */
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { serveDiscoveryHandler, type DiscoveryHandlerDefinition, type ServedDiscoveryHandler } from '../../discovery-handlers/sdk/index.ts';
import { startAgentWithHandler, startHandlerRegistry, waitForRegistered, type AgentWithHandler } from '../../test/support/handler-kit.ts';
import { endpointsFile } from './endpoint-store.ts';
import { ExternalHandlerRegistry } from './registry.ts';

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
    const registry = await startHandlerRegistry(join(dir, 'agent.sock'), log);
    const serve = (): Promise<ServedDiscoveryHandler<{ cameras: string[] }>> =>
      serveDiscoveryHandler({ ...cameras, agentSocket: registry.socketPath, listen: { socket: join(dir, 'cam.sock') }, log });
    let served = await serve();
    const running: { kit?: AgentWithHandler } = {};
    cleanups.push(async () => {
      await running.kit?.stop();
      await served.stop();
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    });
    await waitForRegistered(registry, 'sdkCam');

    const kit = await startAgentWithHandler({
      handler: registry.handler('sdkCam')!,
      node: NODE,
      discovery: 'cams',
      details: { cameras: ['door', 'yard'] },
      capacity: 2,
      properties: { SITE: 'plant-7' },
    });
    running.kit = kit;

    const door = kit.deviceName('door', 'node');
    const resource = kit.deviceResource('door', 'node');
    await kit.waitForSlots(resource, { healthy: 2 });
    await kit.waitForSlots(kit.discoveryResource, { healthy: 4 });

    const response = await kit.allocate('viewer', resource);
    expect(response.envs['CAM_URL']).toBe('rtsp://door.local/live');
    expect(response.envs['SITE']).toBe('plant-7');
    expect(response.envs['TETHER_DEVICES']).toBe(door);

    // The handler goes away: its devices stay known but Unhealthy (grace period)...
    await served.stop();
    await kit.waitForSlots(resource, { healthy: 0, total: 2 });
    // ...and are Healthy again once it is back and registered; the allocated slot stays
    // hidden from the discovery resource.
    served = await serve();
    await kit.waitForSlots(resource, { healthy: 2 });
    await kit.waitForSlots(kit.discoveryResource, { healthy: 3 });
  });

  it('an idle handler that does not register again serves a restarted agent: its endpoint is remembered', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tx-'));
    const socket = join(dir, 'agent-registration.sock');
    // The handler reaches the agent through a link the test removes: after its first
    // registration it cannot register again, like an Akri handler that has no stream to
    // lose (the SDK alone would notice the restart and register again).
    const link = join(dir, 'registration-link.sock');
    await symlink(socket, link);
    const agentOn = async (): Promise<ExternalHandlerRegistry> => {
      const registry = new ExternalHandlerRegistry({ socketPath: socket, log, connectTimeoutMs: 1_000, stateFile: endpointsFile(dir) });
      await registry.start();
      return registry;
    };
    const running: { kit?: AgentWithHandler; registry?: ExternalHandlerRegistry } = {};
    const served = await serveDiscoveryHandler({ ...cameras, agentSocket: link, listen: { socket: join(dir, 'cam.sock') }, log });
    cleanups.push(async () => {
      await running.kit?.stop();
      await running.registry?.stop();
      await served.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const start = async (registry: ExternalHandlerRegistry): Promise<AgentWithHandler> => {
      const handler = registry.handler('sdkCam');
      if (handler === undefined) throw new Error(`sdkCam is not registered with the agent (names: [${registry.names().join(', ')}])`);
      running.kit = await startAgentWithHandler({ handler, node: NODE, discovery: 'cams', details: { cameras: ['door'] } });
      return running.kit;
    };

    running.registry = await agentOn();
    await waitForRegistered(running.registry, 'sdkCam');
    const before = await start(running.registry);
    const resource = before.deviceResource('door', 'node');
    await before.waitForSlots(resource, { healthy: 1 });

    await rm(link);
    await before.stop();
    await running.registry.stop();
    delete running.kit;
    // (Its stream's cancellation may have made it register again with the old agent, over the
    // connection it still had; from now on it cannot reach any agent.)
    const registrations = served.registrations;

    // A new agent on the same state dir and socket; the handler stays idle.
    running.registry = await agentOn();
    const after = await start(running.registry);
    await after.waitForSlots(resource, { healthy: 1 });
    expect(served.registrations).toBe(registrations);
  });
});
