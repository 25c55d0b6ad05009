/**
 * The node runtime with a DRA routing: the devices of DRA discoveries reach the DRA backend,
 * including their online/offline changes, and none of their resources reach the device plugins.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { AnyDiscoveryHandler, DeviceSink } from '../../discovery-handlers/contract.ts';
import type { ServedDevice } from '../device.ts';
import { noPublication, staticDiscoveries } from '../runtime/adapters.ts';
import { NodeRuntime } from '../runtime/node-runtime.ts';

const sinks = new Map<string, DeviceSink>();
const handler: AnyDiscoveryHandler = {
  name: 'driven',
  parseDetails: (raw) => raw,
  isShared: () => false,
  run: async (details, { sink, signal }) => {
    sinks.set((details as { name: string }).name, sink);
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  },
};

const spec = (name: string) => ({
  namespace: 'ns',
  name,
  handler,
  details: { name },
  capacity: 1,
  offlineGraceMs: 60_000,
  properties: new Map<string, string>(),
});

let dir: string;
let runtime: NodeRuntime;
let routed: readonly ServedDevice[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tdr-'));
  runtime = new NodeRuntime({
    node: 'n1',
    log: pino({ level: 'silent' }),
    pluginDir: dir,
    source: staticDiscoveries([spec('cams'), spec('lamps')]),
    publication: noPublication(),
    dra: { isDra: (_ns, discovery) => discovery === 'cams', setDevices: (devices) => (routed = devices) },
  });
  await runtime.start();
});

afterEach(async () => {
  await runtime.stop();
  await rm(dir, { recursive: true, force: true });
  sinks.clear();
});

async function until(test: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

it('routes DRA discoveries to the DRA backend and keeps them away from the device plugins', async () => {
  await until(() => sinks.size === 2, 'both sessions');
  sinks.get('cams')!.replaceAll([{ id: 'cam-1', properties: { ip: '10.0.0.1' } }]);
  sinks.get('lamps')!.replaceAll([{ id: 'lamp-1', properties: {} }]);
  await until(() => routed.length === 1 && runtime.plugins.servers().size === 2, 'routing');
  await runtime.settled();
  expect(routed.map((d) => [d.discovery, d.deviceId, d.online])).toEqual([['cams', 'cam-1', true]]);
  const resources = [...runtime.plugins.servers().keys()];
  expect(resources).toContain('tether.dev/lamps');
  expect(resources.some((r) => r.startsWith('tether.dev/cams'))).toBe(false);

  sinks.get('cams')!.replaceAll([]); // offline for the grace period
  await until(() => routed[0]?.online === false, 'offline reaches the DRA backend');
});
