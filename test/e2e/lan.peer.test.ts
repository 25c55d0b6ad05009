/**
 * The e2e device LAN (lan.ts) on its own, without a cluster: the LAN namespace and bridge, a
 * throwaway namespace and the host attached to it, the peers started inside it — and Tether's
 * real handlers finding them through `tether discover`, from both namespaces, as a node's
 * agent would. Needs root.
 *
 * The LAN's avahi-daemon publishes a DNS-SD printer (`startLanPeers({ mdns: true })`), found by
 * the mdns handler the same way.
 *
 * Without `--property`, the ONVIF runs through the CLI see the camera without credentials
 * (WS-Discovery facts only); with `--property-file` they log in and get the stream URI. Digest
 * authentication failures are checked with the same handler run in-process on the host.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createOnvifHandler } from '../../discovery-handlers/onvif/onvif.ts';
import { runHandler } from '../peers/handler-run.ts';
import { PeerGroup, run, startPeer } from '../peers/process.ts';
import { LAN, attachToLan, ensureLan, removeLan, startLanPeers, type LanPeers } from './lan.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const NODE = `${REPO}node_modules/.bin/node`;
const isRoot = process.getuid?.() === 0;
// WARNING: vitest's `e2e` project includes test/e2e/**/*.test.ts, so this file is collected
// there too; it must not run there (its removeLan() would tear down the LAN of the e2e tests).
const inE2eProject = (inject('e2eNodeName') as string | undefined) !== undefined;

const PROBE_ADDRESS = '10.250.90.50';
const HOST_ADDRESS = '10.250.90.11';
const MQTT_DETAILS = (url: string): object => ({ broker: url, homeAssistant: true });
const ONVIF_DETAILS = { interfaces: [LAN.ifName] };
const MDNS_DETAILS = { serviceTypes: ['_ipp._tcp'], interfaces: [LAN.ifName] };

interface CliDevice {
  id: string;
  online: boolean;
  properties: Record<string, string>;
}

/** `netns` undefined = the host. */
type Where = string | undefined;

function tetherCommand(where: Where, args: readonly string[]): { command: string; args: string[] } {
  const tether = [NODE, 'bin/tether.ts', ...args];
  return where === undefined
    ? { command: tether[0]!, args: tether.slice(1) }
    : { command: 'ip', args: ['netns', 'exec', where, ...tether] };
}

/** One-shot `tether discover <handler> -o json` (stdout parsed; stderr only in errors). */
async function discover(where: Where, handler: string, details: object, extra: readonly string[] = []): Promise<CliDevice[]> {
  const { command, args } = tetherCommand(where, ['discover', handler, '--details', JSON.stringify(details), '-o', 'json', ...extra]);
  const { stdout } = await promisify(execFile)(command, args, { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(stdout) as CliDevice[];
}

/** The complete JSON snapshots a `discover --watch -o json` printed so far (each a pretty-printed array). */
function snapshots(output: string): CliDevice[][] {
  const done: CliDevice[][] = [];
  let open: string[] | undefined;
  for (const line of output.split('\n')) {
    if (line === '[]') done.push([]);
    else if (line === '[') open = [line];
    else if (open !== undefined) open.push(line);
    if (line === ']' && open !== undefined) {
      done.push(JSON.parse(open.join('\n')) as CliDevice[]);
      open = undefined;
    }
  }
  return done;
}

describe.skipIf(!isRoot || inE2eProject)('e2e device LAN (lan.ts) with Tether handlers (peers)', () => {
  const group = new PeerGroup();
  const probe = `tether-lanprobe-${randomBytes(3).toString('hex')}`;
  let peers: LanPeers;
  const fail = (what: string): string => `${what}\n${peers.logs()}`;

  beforeAll(async () => {
    group.defer('LAN', () => {
      removeLan();
      if (existsSync(`/run/netns/${LAN.netns}`)) throw new Error('LAN namespace still exists after removeLan()');
    });
    removeLan(); // a clean slate, even after an aborted run
    ensureLan();
    ensureLan();
    await run('ip', ['netns', 'add', probe]);
    group.defer(`netns ${probe}`, async () => void (await run('ip', ['netns', 'del', probe])));
    await run('ip', ['-n', probe, 'link', 'set', 'lo', 'up']);
    for (let i = 0; i < 2; i++) {
      attachToLan({ netns: probe, address: PROBE_ADDRESS, tag: 'probe' });
      attachToLan({ address: HOST_ADDRESS, tag: 'host' });
    }
    const started = Date.now();
    peers = await startLanPeers({ mdns: true });
    process.stderr.write(`[lan] peers started in ${Date.now() - started} ms\n`);
    group.defer('LAN peers', () => peers.stop());
  });
  afterAll(() => group.close());

  it('attaches both namespaces through te2e-lan, without multicast routes in them', async () => {
    for (const [ns, address] of [
      [probe, PROBE_ADDRESS],
      [undefined, HOST_ADDRESS],
    ] as const) {
      const nsArgs = ns === undefined ? [] : ['-n', ns];
      expect(await run('ip', [...nsArgs, '-4', '-o', 'addr', 'show', 'dev', LAN.ifName])).toContain(` ${address}/24 `);
      expect(await run('ip', [...nsArgs, 'route', 'show', 'dev', LAN.ifName])).not.toMatch(/224\.0\.0\.0|default/);
    }
    const ports = await run('ip', ['-n', LAN.netns, '-o', 'link', 'show', 'master', LAN.bridge]);
    expect(ports).toMatch(/tl-probe@/);
    expect(ports).toMatch(/tl-host@/);
  });

  it('finds the Home Assistant device through the LAN broker from both namespaces', async () => {
    const expected = {
      MQTT_BROKER_URL: 'mqtt://10.250.90.1:1883',
      HA_DEVICE_ID: peers.ha.node,
      HA_NAME: peers.ha.node,
      HA_MANUFACTURER: 'espressif',
      HA_MODEL: 'esp32dev',
      HA_AVAILABILITY_TOPICS: peers.ha.statusTopic,
      HA_SWITCH_LAN_ESP32_RELAY_COMMAND_TOPIC: 'lan-esp32/switch/relay/command',
      HA_SENSOR_LAN_ESP32_TEMPERATURE_STATE_TOPIC: 'lan-esp32/sensor/temperature/state',
    };
    for (const devices of await Promise.all([
      discover(probe, 'mqtt', MQTT_DETAILS(peers.mqttUrl)),
      discover(undefined, 'mqtt', MQTT_DETAILS(peers.mqttUrl)),
    ])) {
      expect(devices, fail('mqtt devices')).toEqual([
        expect.objectContaining({ id: peers.ha.deviceId, online: true, properties: expect.objectContaining(expected) }),
      ]);
    }
  });

  it('finds the camera by multicast on te2e-lan from both namespaces (CLI: no credentials)', async () => {
    const expected = {
      ONVIF_DEVICE_UUID: peers.camera.uuid,
      ONVIF_DEVICE_SERVICE_URL: peers.camera.serviceUrl,
      ONVIF_DEVICE_IP_ADDRESS: LAN.address,
    };
    for (const devices of await Promise.all([discover(probe, 'onvif', ONVIF_DETAILS), discover(undefined, 'onvif', ONVIF_DETAILS)])) {
      expect(devices, fail('onvif devices')).toEqual([
        expect.objectContaining({ id: peers.camera.uuid, online: true, properties: expect.objectContaining(expected) }),
      ]);
      expect(devices[0]!.properties).not.toHaveProperty('ONVIF_STREAM_URI'); // SOAP refused without credentials
    }
  });

  it('the CLI logs in with --property-file credentials and gets the stream URI', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-cli-props-'));
    try {
      const file = join(dir, 'camera.env');
      await writeFile(file, `# the camera's login\nONVIF_USERNAME=${peers.camera.username}\nONVIF_PASSWORD=${peers.camera.password}\n`, {
        mode: 0o600,
      });
      const devices = await discover(probe, 'onvif', ONVIF_DETAILS, ['--property-file', file]);
      expect(devices, fail('onvif devices with credentials')).toEqual([
        expect.objectContaining({
          id: peers.camera.uuid,
          properties: expect.objectContaining({ ONVIF_STREAM_URI: peers.camera.streamUri, ONVIF_DEVICE_MODEL: 'SimCam 1000' }),
        }),
      ]);
      const wrong = await discover(probe, 'onvif', ONVIF_DETAILS, [
        '-p',
        `ONVIF_USERNAME=${peers.camera.username}`,
        '-p',
        'ONVIF_PASSWORD=not-the-password',
      ]);
      expect(wrong[0]?.properties).not.toHaveProperty('ONVIF_STREAM_URI');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('authenticates to the camera with the credentials a Secret would give (handler in-process on the host); Bye removes it, Hello brings it back', async () => {
    const properties = new Map([
      ['ONVIF_USERNAME', peers.camera.username],
      ['ONVIF_PASSWORD', peers.camera.password],
    ]);
    const good = runHandler(createOnvifHandler(), ONVIF_DETAILS, { properties });
    const wrong = runHandler(createOnvifHandler(), ONVIF_DETAILS, {
      properties: new Map([...properties, ['ONVIF_PASSWORD', 'not-the-password']]),
    });
    try {
      const interrogated = (): boolean =>
        good.sink.devices.get(peers.camera.uuid)?.properties['ONVIF_STREAM_URI'] === peers.camera.streamUri;
      await good.sink.waitFor(interrogated, 10_000, 'the camera with its stream URI');
      expect(good.sink.devices.get(peers.camera.uuid)!.properties).toMatchObject({
        ONVIF_DEVICE_MANUFACTURER: 'Tether Simulated',
        ONVIF_DEVICE_MODEL: 'SimCam 1000',
        ONVIF_PROFILE_TOKEN: 'profile_main',
        ONVIF_MEDIA_SERVICE_URL: peers.camera.serviceUrl.replace('device_service', 'media_service'),
      });
      await wrong.sink.waitFor(
        () => wrong.sink.counted('soap_auth_failed') > 0 && wrong.sink.devices.has(peers.camera.uuid),
        10_000,
        'an auth failure',
      );
      expect(wrong.sink.devices.get(peers.camera.uuid)!.properties).not.toHaveProperty('ONVIF_STREAM_URI');

      await peers.camera.bye();
      await good.sink.waitFor(() => !good.sink.devices.has(peers.camera.uuid), 5_000, 'the camera removed on Bye');
      await peers.camera.hello();
      await good.sink.waitFor(interrogated, 10_000, 'the camera back on Hello');
    } finally {
      await Promise.all([good.stop(), wrong.stop()]);
    }
  });

  it('reports the HA device offline on its last will (watching from the throwaway namespace) and online again when it re-announces', async () => {
    const { command, args } = tetherCommand(probe, [
      'discover',
      'mqtt',
      '--watch',
      '-o',
      'json',
      '--details',
      JSON.stringify(MQTT_DETAILS(peers.mqttUrl)),
    ]);
    const watch = startPeer(group, 'tether discover mqtt --watch', command, args, { cwd: REPO });
    try {
      const last = (output: string): CliDevice | undefined =>
        snapshots(output)
          .at(-1)
          ?.find((d) => d.id === peers.ha.deviceId);
      await watch.waitFor((output) => last(output)?.online === true, 15_000, 'the device online');
      await peers.ha.dieAbruptly();
      await watch.waitFor((output) => last(output)?.online !== true, 5_000, 'the device offline after its will');
      expect(await discover(undefined, 'mqtt', MQTT_DETAILS(peers.mqttUrl)), fail('one-shot after the will')).toEqual([]);
      await peers.ha.announce();
      await watch.waitFor((output) => last(output)?.online === true, 5_000, 'the device online again');
      expect(await discover(undefined, 'mqtt', MQTT_DETAILS(peers.mqttUrl))).toEqual([
        expect.objectContaining({ id: peers.ha.deviceId, online: true }),
      ]);
    } finally {
      await watch.stop();
    }
  });

  it('loses the camera on Bye and finds it again after Hello (one-shot CLI from both namespaces)', async () => {
    await peers.camera.bye();
    for (const devices of await Promise.all([discover(probe, 'onvif', ONVIF_DETAILS), discover(undefined, 'onvif', ONVIF_DETAILS)])) {
      expect(devices, fail('onvif devices after Bye')).toEqual([]);
    }
    await peers.camera.hello();
    for (const devices of await Promise.all([discover(probe, 'onvif', ONVIF_DETAILS), discover(undefined, 'onvif', ONVIF_DETAILS)])) {
      expect(devices, fail('onvif devices after Hello')).toEqual([expect.objectContaining({ id: peers.camera.uuid, online: true })]);
    }
  });

  it('finds the mDNS printer avahi publishes from both namespaces; withdrawn (goodbyes) → gone, published again → back', async () => {
    const printer = peers.mdns!;
    const expected = {
      MDNS_INSTANCE: printer.instance,
      MDNS_SERVICE_TYPE: printer.type,
      MDNS_HOST: printer.host,
      MDNS_PORT: String(printer.port),
      MDNS_ADDRESS: LAN.address,
      MDNS_TXT_TY: 'Tether LAN Printer',
    };
    const both = (): Promise<CliDevice[][]> =>
      Promise.all([discover(probe, 'mdns', MDNS_DETAILS), discover(undefined, 'mdns', MDNS_DETAILS)]);
    for (const devices of await both()) {
      expect(devices, fail('mdns devices')).toEqual([
        expect.objectContaining({ id: printer.fullName, online: true, properties: expect.objectContaining(expected) }),
      ]);
    }
    await printer.withdraw();
    expect(printer.published).toBe(false);
    for (const devices of await both()) expect(devices, fail('mdns devices after the goodbyes')).toEqual([]);
    await printer.publish();
    for (const devices of await both())
      expect(devices, fail('mdns devices published again')).toEqual([expect.objectContaining({ id: printer.fullName, online: true })]);
  });
});
