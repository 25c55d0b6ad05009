/**
 * The DRA kubelet plugin against the mock DRA kubelet, over the real wire protocols:
 * registration, prepare → CDI spec, idempotency, unprepare, the checkpoint across a plugin
 * restart, per-claim errors, health updates and re-registration after a kubelet restart.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deviceName } from '../../api/names.ts';
import { buildContainerResponse } from '../allocation/container-response.ts';
import type { ServedDevice } from '../device.ts';
import { MockDraKubelet } from '../kubelet/mock-dra-kubelet.ts';
import type { CdiSpec } from './cdi-spec.ts';
import type { ResourceClaim } from './claim-devices.ts';
import { DraDriver, type ClaimReader } from './driver.ts';
import { DraPlugin } from './plugin.ts';

const log = pino({ level: 'silent' });
const NODE = 'n1';

function served(id: string, online = true): ServedDevice {
  return {
    name: deviceName({ namespace: 'ns', discovery: 'cams', deviceId: id, node: NODE }),
    namespace: 'ns',
    discovery: 'cams',
    deviceId: id,
    shared: false,
    capacity: 2,
    online,
    properties: { 'onvif.ip': `10.0.0.${id.length}`, name: id },
    mounts: [],
    deviceNodes: [{ containerPath: '/dev/cam', hostPath: `/dev/${id}`, permissions: 'rw' }],
  };
}

/** ResourceClaims by `namespace/name`, counting reads. */
class FakeClaims implements ClaimReader {
  readonly claims = new Map<string, ResourceClaim>();
  reads = 0;
  add(name: string, uid: string, devices: readonly string[]): { namespace: string; name: string; uid: string } {
    const results = devices.map((device, i) => ({ request: `r${i}`, driver: 'tether.dev', pool: `ns.cams/${NODE}`, device }));
    this.claims.set(`ns/${name}`, { metadata: { name, namespace: 'ns', uid }, status: { allocation: { devices: { results } } } });
    return { namespace: 'ns', name, uid };
  }
  read(namespace: string, name: string): Promise<ResourceClaim> {
    this.reads++;
    const claim = this.claims.get(`${namespace}/${name}`);
    return claim === undefined ? Promise.reject(new Error(`resourceclaims "${name}" not found`)) : Promise.resolve(claim);
  }
}

let dir: string;
let kubelet: MockDraKubelet;
let claims: FakeClaims;
let driver: DraDriver;
let plugin: DraPlugin;
const cam = served('cam-a');

/** Socket files a crashed process left: bound by a child that is then killed (nothing unlinks them). */
async function leaveStaleSockets(paths: readonly string[]): Promise<void> {
  const script = `const net = require('node:net'); for (const p of ${JSON.stringify(paths)}) net.createServer().listen(p); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  try {
    await kubelet.waitFor(() => paths.every((p) => existsSync(p)), 5_000, 'the stale sockets');
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}

async function startPlugin(): Promise<void> {
  driver = new DraDriver({ cdiDir: join(dir, 'cdi'), stateDir: join(dir, 'state'), claims, log });
  await driver.start();
  driver.setDevices([cam]);
  plugin = new DraPlugin({ kubeletDir: join(dir, 'kubelet'), node: NODE, driver, log, pollIntervalMs: 60_000 });
  await plugin.start();
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tdra-'));
  claims = new FakeClaims();
  kubelet = new MockDraKubelet({ kubeletDir: join(dir, 'kubelet') });
  await kubelet.start();
  await startPlugin();
  await kubelet.waitFor(() => kubelet.plugin('tether.dev') !== undefined, 5_000, 'registration');
});

afterEach(async () => {
  kubelet.stop();
  await plugin.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('DRA kubelet plugin', () => {
  it('registers as a DRAPlugin named tether.dev with its endpoint and services', () => {
    const registered = kubelet.plugin('tether.dev')!;
    expect(registered.info).toEqual({
      type: 'DRAPlugin',
      name: 'tether.dev',
      endpoint: join(dir, 'kubelet', 'plugins', 'tether.dev', 'dra.sock'),
      supported_versions: ['v1.DRAPlugin', 'v1beta1.DRAPlugin', 'v1.DRAResourceHealth', 'v1alpha1.DRAResourceHealth'],
    });
    expect([registered.version, registered.healthVersion]).toEqual(['v1', 'v1']);
    expect(plugin.registrations).toBe(1);
  });

  it('prepares a claim: CDI ids in the answer, a CDI spec with the device plugin env, nodes', async () => {
    const claim = claims.add('c1', 'uid-1', [cam.name]);
    const response = await kubelet.prepare('tether.dev', [claim]);
    expect(response.claims['uid-1']).toEqual({
      error: '',
      devices: [
        {
          request_names: ['r0'],
          pool_name: `ns.cams/${NODE}`,
          device_name: cam.name,
          cdi_device_ids: [`tether.dev/device=uid-1-${cam.name}`],
        },
      ],
    });
    const spec = JSON.parse(await readFile(join(dir, 'cdi', 'tether.dev-uid-1.json'), 'utf8')) as CdiSpec;
    expect(spec.kind).toBe('tether.dev/device');
    const env = [...(spec.containerEdits?.env ?? []), ...(spec.devices[0]?.containerEdits.env ?? [])].sort();
    const pluginEnv = Object.entries(buildContainerResponse([cam]).envs).map(([k, v]) => `${k}=${v}`);
    expect(env).toEqual(pluginEnv.sort());
    expect(env).toContain('ONVIF_IP=10.0.0.5');
    expect(spec.devices[0]?.containerEdits.deviceNodes).toEqual([{ path: '/dev/cam', hostPath: '/dev/cam-a', permissions: 'rw' }]);
  });

  it('is idempotent: a second prepare answers the same without reading or writing', async () => {
    const claim = claims.add('c1', 'uid-1', [cam.name]);
    const first = await kubelet.prepare('tether.dev', [claim]);
    const second = await kubelet.prepare('tether.dev', [claim]);
    expect(second).toEqual(first);
    expect([claims.reads, driver.specWrites]).toEqual([1, 1]);
  });

  it('unprepares: the spec file and the checkpoint entry go; unknown claims are fine', async () => {
    const claim = claims.add('c1', 'uid-1', [cam.name]);
    await kubelet.prepare('tether.dev', [claim]);
    const specPath = join(dir, 'cdi', 'tether.dev-uid-1.json');
    expect(existsSync(specPath)).toBe(true);
    const response = await kubelet.unprepare('tether.dev', [claim, { namespace: 'ns', name: 'never', uid: 'uid-9' }]);
    expect(response.claims).toEqual({ 'uid-1': { error: '' }, 'uid-9': { error: '' } });
    expect(existsSync(specPath)).toBe(false);
    expect(driver.prepared.size).toBe(0);
  });

  it('keeps prepared claims across a plugin restart (checkpoint), and unprepares after it', async () => {
    const claim = claims.add('c1', 'uid-1', [cam.name]);
    const first = await kubelet.prepare('tether.dev', [claim]);
    await plugin.stop();
    claims.claims.clear(); // the restarted plugin must not need the apiserver for a prepared claim
    await startPlugin();
    await kubelet.waitFor(() => plugin.registrations === 1, 5_000, 're-registration');
    expect(await kubelet.prepare('tether.dev', [claim])).toEqual(first);
    expect(driver.specWrites).toBe(0);
    await kubelet.unprepare('tether.dev', [claim]);
    expect(existsSync(join(dir, 'cdi', 'tether.dev-uid-1.json'))).toBe(false);
    const checkpoint = JSON.parse(await readFile(join(dir, 'state', 'dra-checkpoint.json'), 'utf8')) as { claims: object };
    expect(checkpoint.claims).toEqual({});
  });

  it('answers per claim: an unknown or offline device, or an unreadable claim, fails only that claim', async () => {
    const good = claims.add('good', 'uid-g', [cam.name]);
    const gone = claims.add('gone', 'uid-x', [deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'gone' })]);
    const missing = { namespace: 'ns', name: 'missing', uid: 'uid-m' };
    const response = await kubelet.prepare('tether.dev', [good, gone, missing]);
    expect(response.claims['uid-g']?.error).toBe('');
    expect(response.claims['uid-x']).toEqual({ devices: [], error: expect.stringMatching(/is not served by this node/) as unknown });
    expect(response.claims['uid-m']?.error).toMatch(/reading ResourceClaim ns\/missing: resourceclaims "missing" not found/);
    driver.setDevices([{ ...cam, online: false }]);
    const offline = claims.add('off', 'uid-o', [cam.name]);
    expect((await kubelet.prepare('tether.dev', [offline])).claims['uid-o']?.error).toMatch(/is offline on this node/);
    expect(existsSync(join(dir, 'cdi', 'tether.dev-uid-o.json'))).toBe(false);
  });

  it('streams health: the full list at once, and again on offline and online', async () => {
    const watch = kubelet.watchHealth('tether.dev');
    const healths = (): string[] => watch.messages.map((m) => m.devices.map((d) => `${d.device?.device_name}:${d.health}`).join(','));
    await kubelet.waitFor(() => watch.messages.length === 1, 5_000, 'first health message');
    driver.setDevices([{ ...cam, online: false }]);
    await kubelet.waitFor(() => watch.messages.length === 2, 5_000, 'offline');
    driver.setDevices([{ ...cam, online: false, properties: { changed: 'yes' } }]); // no health change: no message
    driver.setDevices([cam]);
    await kubelet.waitFor(() => watch.messages.length === 3, 5_000, 'online');
    expect(healths()).toEqual([`${cam.name}:HEALTHY`, `${cam.name}:UNHEALTHY`, `${cam.name}:HEALTHY`]);
    expect(watch.messages[0]?.devices[0]?.device?.pool_name).toBe(`ns.cams/${NODE}`);
    watch.close();
  });

  it('registers again when a kubelet restart wipes plugins_registry', async () => {
    await kubelet.restart();
    expect(existsSync(plugin.registrationSocket)).toBe(false);
    await kubelet.waitFor(() => kubelet.plugin('tether.dev') !== undefined, 5_000, 're-registration');
    expect(plugin.registrations).toBe(2);
    const claim = claims.add('c1', 'uid-1', [cam.name]);
    expect((await kubelet.prepare('tether.dev', [claim])).claims['uid-1']?.error).toBe('');
  });

  it('offers the registration again after the kubelet refused it', async () => {
    kubelet.refuse = 'simulated refusal';
    await kubelet.restart();
    await kubelet.waitFor(() => kubelet.registrations >= 2, 5_000, 'refused registration');
    kubelet.refuse = undefined;
    await kubelet.waitFor(() => kubelet.plugin('tether.dev') !== undefined, 5_000, 'registration after the retry');
    expect(plugin.registrations).toBe(2);
  });

  it('serves an older kubelet through DRAPlugin v1beta1 and DRAResourceHealth v1alpha1', async () => {
    const old = new MockDraKubelet({
      kubeletDir: join(dir, 'kubelet'),
      knownServices: ['v1beta1.DRAPlugin', 'v1alpha1.DRAResourceHealth'],
    });
    await old.start();
    try {
      await old.waitFor(() => old.plugin('tether.dev') !== undefined, 5_000, 'registration with the older kubelet');
      expect([old.plugin('tether.dev')?.version, old.plugin('tether.dev')?.healthVersion]).toEqual(['v1beta1', 'v1alpha1']);
      const claim = claims.add('c1', 'uid-1', [cam.name]);
      claims.claims.set('ns/c1', {
        ...claims.claims.get('ns/c1')!,
        status: {
          allocation: {
            devices: { results: [{ request: 'r0', driver: 'tether.dev', pool: `ns.cams/${NODE}`, device: cam.name, shareID: 'share-1' }] },
          },
        },
      });
      const response = await old.prepare('tether.dev', [claim]);
      expect(response.claims['uid-1']?.devices[0]).toEqual({
        request_names: ['r0'],
        pool_name: `ns.cams/${NODE}`,
        device_name: cam.name,
        cdi_device_ids: [`tether.dev/device=uid-1-${cam.name}`],
      });
      expect((await kubelet.prepare('tether.dev', [claim])).claims['uid-1']?.devices[0]?.share_id).toBe('share-1');
      const watch = old.watchHealth('tether.dev');
      await old.waitFor(() => watch.messages.length === 1, 5_000, 'v1alpha1 health');
      expect(watch.messages[0]?.devices[0]?.health).toBe('HEALTHY');
      watch.close();
    } finally {
      old.stop();
    }
  });

  it('binds afresh over stale sockets (an agent restarted after a crash) and registers again', async () => {
    const before = plugin;
    const driverBefore = driver;
    await before.stop();
    await leaveStaleSockets([before.endpoint, before.registrationSocket]);
    await startPlugin();
    await kubelet.waitFor(() => plugin.registrations === 1, 5_000, 'registration of the new plugin');
    const claim = claims.add('c1', 'uid-1', [cam.name]);
    expect((await kubelet.prepare('tether.dev', [claim])).claims['uid-1']?.error).toBe('');
    expect([driver.specWrites, driverBefore.specWrites]).toEqual([1, 0]);
  });

  it('serves a removed socket again at once, through the directory watches (the poll is a minute here)', async () => {
    await rm(plugin.endpoint);
    await kubelet.waitFor(() => existsSync(plugin.endpoint), 5_000, 'the endpoint served again');
    const claim = claims.add('c1', 'uid-1', [cam.name]);
    expect((await kubelet.prepare('tether.dev', [claim])).claims['uid-1']?.error).toBe('');
    await rm(plugin.registrationSocket);
    await kubelet.waitFor(() => plugin.registrations === 2, 5_000, 'registered again');
  });

  it('leaves no directory watch behind after stop (it would keep the agent process alive)', async () => {
    await plugin.stop();
    const watches = (): number => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
    const before = watches();
    const other = new DraPlugin({ kubeletDir: join(dir, 'kubelet2'), node: NODE, driver, log, pollIntervalMs: 60_000 });
    await other.start();
    expect(watches()).toBe(before + 2); // the registration directory and the endpoint's
    await other.stop();
    expect(watches()).toBe(before);
  });
});
