/**
 * The mqtt handler against a real Mosquitto (started here on a free loopback port), with
 * devices simulated by mocks/mqtt-devices (real MQTT clients with last wills) and by the real
 * `mosquitto_pub`. Needs `mosquitto` and `mosquitto-clients` (apt).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HomeAssistantDevice, HomieDevice, SparkplugEdgeNode } from '../../mocks/mqtt-devices/devices.ts';
import { runHandler, type RunningHandler } from '../../test/peers/handler-run.ts';
import { mosquittoPub, startMosquitto, type Mosquitto } from '../../test/peers/mosquitto.ts';
import { createNetnsLink } from '../../test/peers/netns.ts';
import { PeerGroup, run } from '../../test/peers/process.ts';
import { createTestPki, type TestPki } from '../../test/peers/tls.ts';
import { DEVICE_BASED, TASMOTA_RELAY, Z2M_TEMPERATURE } from '../../test/support/mqtt-firmware.ts';
import { createMqttHandler } from './mqtt.ts';

const peers = new PeerGroup();
const perTest = new PeerGroup();
let broker: Mosquitto;
let pki: TestPki;

beforeAll(async () => {
  broker = await startMosquitto(peers);
  pki = await createTestPki(peers);
});
afterAll(() => peers.close());
afterEach(() => perTest.close());

function start(details: Record<string, unknown>, properties?: ReadonlyMap<string, string>): RunningHandler {
  const running = runHandler(createMqttHandler(), { broker: broker.url, ...details }, properties === undefined ? {} : { properties });
  perTest.defer('mqtt handler', () => running.stop());
  return running;
}

/** A unique prefix per test: the broker is shared and retained messages outlive tests. */
let n = 0;
const unique = (name: string): string => `${name}${++n}${Date.now().toString(36)}`;

function track<T extends { crash(): Promise<void> }>(device: T): T {
  perTest.defer('mock device', () => device.crash());
  return device;
}

describe.each([5, 4] as const)('MQTT %i (3.1.1 = 4) against Mosquitto', (protocolVersion) => {
  const connection = (): { url: string; protocolVersion: 4 | 5 } => ({ url: broker.url, protocolVersion });

  it('Home Assistant (ESPHome-style): announcement → device, last will → offline at once, empty config → removed', async () => {
    const prefix = unique('ha');
    const { sink } = start({ protocolVersion, homeAssistant: { prefix } });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'initial sync');
    const device = track(new HomeAssistantDevice(connection(), unique('esp'), { prefix }));
    const id = `ha/${device.node}`;
    await device.start();
    await sink.waitFor(() => sink.devices.has(id), 5_000, 'announced device');
    expect(sink.devices.get(id)?.properties).toMatchObject({
      MQTT_BROKER_URL: broker.url,
      HA_NAME: device.node,
      HA_MANUFACTURER: 'espressif',
      [`HA_SWITCH_${device.node.toUpperCase()}_RELAY_COMMAND_TOPIC`]: `${device.node}/switch/relay/command`,
    });
    await device.crash();
    await sink.waitFor(() => !sink.devices.has(id), 5_000, 'last will → offline');
    expect(sink.calls.at(-1)).toEqual({ kind: 'remove', id });
    await device.start();
    await sink.waitFor(() => sink.devices.has(id), 5_000, 'back online');
    await device.remove();
    await sink.waitFor(() => !sink.devices.has(id), 5_000, 'removed by empty retained config');
  });

  it('retained configs (Tasmota, zigbee2mqtt, device-based) → one complete replaceAll first', async () => {
    const prefix = unique('ha');
    const publish = (topic: string, payload: string): Promise<void> => mosquittoPub(broker, topic, payload, { retain: true });
    await publish(TASMOTA_RELAY.topic.replace('homeassistant', prefix), JSON.stringify(TASMOTA_RELAY.config));
    await publish('tasmota_A4CF12/tele/LWT', 'Online');
    await publish(Z2M_TEMPERATURE.topic.replace('homeassistant', prefix), JSON.stringify(Z2M_TEMPERATURE.config));
    await publish('zigbee2mqtt/bridge/state', '{"state":"online"}');
    await publish('zigbee2mqtt/kitchen_sensor/availability', '{"state":"online"}');
    await publish(DEVICE_BASED.topic.replace('homeassistant', prefix), JSON.stringify(DEVICE_BASED.config));
    await publish('sensorBedroom/status', 'online');
    const { sink } = start({ protocolVersion, homeAssistant: { prefix } });
    await sink.waitFor(() => sink.calls.length > 0, 5_000, 'first report');
    // Configs and the availability topics they name arrive before the first (and complete) report.
    expect(sink.calls[0]?.kind).toBe('replaceAll');
    expect(sink.ids()).toEqual(['ha/0AFFD2', 'ha/A4CF12', 'ha/zigbee2mqtt_0x00158d0001a2b3c4']);
    expect(sink.devices.get('ha/0AFFD2')?.properties['HA_SERIAL_NUMBER']).toBe('ea334450945afc');
    await mosquittoPub(broker, 'zigbee2mqtt/bridge/state', '{"state":"offline"}', { retain: true });
    await sink.waitFor(() => !sink.devices.has('ha/zigbee2mqtt_0x00158d0001a2b3c4'), 5_000, 'bridge offline');
    expect(sink.ids()).toEqual(['ha/0AFFD2', 'ha/A4CF12']);
    for (const topic of [TASMOTA_RELAY.topic, Z2M_TEMPERATURE.topic, DEVICE_BASED.topic]) {
      await mosquittoPub(broker, topic.replace('homeassistant', prefix), '', { retain: true, empty: true });
    }
  });

  it('Homie 5: ready → device; last will (lost) → offline; cleared $state → removed', async () => {
    const domain = unique('homie');
    const { sink } = start({ protocolVersion, homie: { domain } });
    const device = track(new HomieDevice(connection(), 'thermostat-1', { domain, name: 'Thermostat' }));
    await device.start();
    await sink.waitFor(() => sink.devices.has('homie/thermostat-1'), 5_000, 'homie device');
    expect(sink.devices.get('homie/thermostat-1')?.properties).toMatchObject({
      HOMIE_NAME: 'Thermostat',
      HOMIE_PROPERTIES: 'sensor/temperature,sensor/led!',
    });
    await device.crash();
    await sink.waitFor(() => !sink.devices.has('homie/thermostat-1'), 5_000, 'lost');
    await device.start();
    await sink.waitFor(() => sink.devices.has('homie/thermostat-1'), 5_000, 'ready again');
    await mosquittoPub(broker, device.topic('$state'), '', { retain: true, empty: true });
    await sink.waitFor(() => !sink.devices.has('homie/thermostat-1'), 5_000, 'removed');
  });

  it('Sparkplug B: births → node and devices; DDEATH; the NDEATH will takes the node and its devices', async () => {
    const group = unique('plant');
    const { sink } = start({ protocolVersion, sparkplug: { groups: [group] } });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'initial sync');
    const node = track(new SparkplugEdgeNode(connection(), group, 'edge1', ['pump', 'valve'], 7n));
    await node.start();
    const ids = [`sparkplug/${group}/edge1`, `sparkplug/${group}/edge1/pump`, `sparkplug/${group}/edge1/valve`];
    await sink.waitFor(() => ids.every((id) => sink.devices.has(id)), 5_000, 'births');
    expect(sink.devices.get(ids[0]!)?.properties['SPARKPLUG_PROPERTY_HARDWARE_MAKE']).toBe('Tether Mocks');
    await node.deviceDeath('valve');
    await sink.waitFor(() => !sink.devices.has(ids[2]!), 5_000, 'DDEATH');
    await node.crash();
    await sink.waitFor(() => sink.ids().length === 0, 5_000, 'NDEATH will');
  });
});

describe('mqtt handler against Mosquitto', () => {
  it('Sparkplug rebirth: a node born before Tether started is asked to rebirth on its first data', async () => {
    const group = unique('plant');
    const node = track(new SparkplugEdgeNode({ url: broker.url }, group, 'edge1', ['pump']));
    await node.start();
    const { sink } = start({ sparkplug: { groups: [group], rebirth: true } });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'initial sync');
    expect(sink.ids()).toEqual([]);
    await node.data('pump');
    await sink.waitFor(() => sink.devices.has(`sparkplug/${group}/edge1/pump`), 5_000, 'rebirth');
    expect(node.rebirthRequests).toBe(1);
    expect(sink.counted('rebirth_requested')).toBe(1);
  });

  it('generic rules: id and properties from topic and JSON, presence from a last-will topic, silence timeout', async () => {
    const root = unique('tele');
    const { sink } = start({
      generic: [
        { topic: `${root}/+/INFO1`, deviceId: 'tasmota-{topic[1]}', properties: { FIRMWARE: '{json.Info1.Version}', TOPIC: '{topic[1]}' } },
        { topic: `${root}/+/LWT`, deviceId: 'tasmota-{topic[1]}', presence: { online: ['Online'], offline: ['Offline'] } },
        { topic: `${root}/+/SENSOR`, deviceId: 'sensor-{json.serial}', properties: { ROOM: '{topic[1]}' }, silenceSeconds: 1 },
      ],
    });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'initial sync');
    await mosquittoPub(broker, `${root}/plug1/INFO1`, '{"Info1":{"Module":"Sonoff S31","Version":"14.1.0"}}');
    await sink.waitFor(() => sink.devices.get('tasmota-plug1')?.properties['FIRMWARE'] === '14.1.0', 5_000, 'INFO1');
    await mosquittoPub(broker, `${root}/plug1/LWT`, 'Offline');
    await sink.waitFor(() => !sink.devices.has('tasmota-plug1'), 5_000, 'LWT Offline');
    await mosquittoPub(broker, `${root}/kitchen/SENSOR`, '{"serial":"SN-1","temp":21.5}');
    await sink.waitFor(() => sink.devices.get('sensor-SN-1')?.properties['ROOM'] === 'kitchen', 5_000, 'sensor');
    await sink.waitFor(() => !sink.devices.has('sensor-SN-1'), 5_000, 'silence timeout');
  });

  it('hostile payloads are counted, logged once per topic, and never stop discovery', async () => {
    const prefix = unique('ha');
    const { sink, done } = start({
      protocolVersion: 4,
      homeAssistant: { prefix },
      homie: { domain: unique('homie') },
      sparkplug: { groups: [unique('g')] },
      limits: { maxPayloadBytes: 65_536 },
    });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'initial sync');
    const big = join(broker.dir, 'big.bin');
    await writeFile(big, Buffer.alloc(2 * 1024 * 1024, 0x7b));
    const garbage = join(broker.dir, 'garbage.bin');
    await writeFile(garbage, Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x7b, 0x22]));
    const hostile: [string, string, { file?: string }][] = [
      [`${prefix}/sensor/big/config`, '', { file: big }],
      [`${prefix}/sensor/deep/config`, '['.repeat(5000), {}],
      [`${prefix}/sensor/garbage/config`, '', { file: garbage }],
      [`${prefix}/sensor/array/config`, '[1,2,3]', {}],
      [`${prefix}/device/nodev/config`, '{"cmps":{}}', {}],
      [`${prefix}/sensor/proto/config`, '{"__proto__":{"polluted":true},"uniq_id":"proto"}', {}],
    ];
    for (const [topic, payload, options] of hostile) await mosquittoPub(broker, topic, payload, options);
    for (let i = 0; i < 3; i++) await mosquittoPub(broker, `${prefix}/sensor/deep/config`, '['.repeat(5000));
    await mosquittoPub(broker, `${prefix}/sensor/good/config`, '{"uniq_id":"good","name":"Good"}');
    await sink.waitFor(() => sink.devices.has('ha/good'), 5_000, 'a good device after the hostile ones');
    expect(sink.counted('bad_payload')).toBe(8);
    expect(sink.devices.has('ha/proto')).toBe(true);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    let settled = false;
    void done.finally(() => (settled = true));
    expect(settled).toBe(false);
  });

  it('MQTT 5: the broker drops messages above the advertised maximum packet size', async () => {
    const prefix = unique('ha');
    const { sink } = start({ homeAssistant: { prefix }, limits: { maxPayloadBytes: 1024 } });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'initial sync');
    const big = join(broker.dir, 'big5.bin');
    await writeFile(big, Buffer.alloc(256 * 1024, 0x20));
    await mosquittoPub(broker, `${prefix}/sensor/big/config`, '', { file: big });
    await mosquittoPub(broker, `${prefix}/sensor/after/config`, '{"uniq_id":"after"}');
    await sink.waitFor(() => sink.devices.has('ha/after'), 5_000, 'the next message');
    expect(sink.counted('bad_payload')).toBe(0);
    expect(sink.counted('reconnect')).toBe(0);
  });

  it('broker outage: devices stay through the grace, turn offline after it, and come back after the re-sync', async () => {
    const outage = await startMosquitto(perTest, { persistence: true });
    const handler = runHandler(createMqttHandler(), {
      broker: outage.url,
      homie: true,
      brokerLossGraceSeconds: 1,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    perTest.defer('handler', () => handler.stop());
    const { sink } = handler;
    // A device that stays up; published by mosquitto_pub so that no will fires when the broker stops.
    await mosquittoPub(outage, 'homie/5/survivor/$state', 'ready', { retain: true });
    await sink.waitFor(() => sink.devices.has('homie/survivor'), 5_000, 'device');
    await outage.stop();
    await sink.waitFor(() => sink.counted('connect_error') >= 1, 5_000, 'a failed reconnect');
    // Broker unreachable ≠ devices gone: still reported while within the grace.
    expect(sink.devices.has('homie/survivor')).toBe(true);
    await sink.waitFor(() => !sink.devices.has('homie/survivor'), 5_000, 'offline after the grace');
    expect(sink.counted('broker_lost')).toBe(1);
    await outage.start(); // persistence: the retained `ready` survived the restart
    await sink.waitFor(() => sink.devices.has('homie/survivor'), 10_000, 'back after reconnect');
    expect(sink.calls.at(-1)).toEqual({ kind: 'replaceAll', ids: ['homie/survivor'] });
  });

  it('short outage: no change at all when the broker is back within the grace', async () => {
    const outage = await startMosquitto(perTest, { persistence: true });
    const handler = runHandler(createMqttHandler(), {
      broker: outage.url,
      homie: true,
      reconnect: { initialDelayMs: 50, maxDelayMs: 100 },
    });
    perTest.defer('handler', () => handler.stop());
    const { sink } = handler;
    await mosquittoPub(outage, 'homie/5/steady/$state', 'ready', { retain: true });
    await sink.waitFor(() => sink.devices.has('homie/steady'), 5_000, 'device');
    const before = sink.calls.length;
    await outage.stop();
    await outage.start();
    await sink.waitFor(() => sink.calls.length > before && sink.calls.at(-1)?.kind === 'replaceAll', 10_000, 're-sync');
    expect(sink.calls.slice(before)).toEqual([{ kind: 'replaceAll', ids: ['homie/steady'] }]);
  });

  it('Home Assistant birth: devices re-announce; one with a non-retained config that stays silent is dropped after the window', async () => {
    const prefix = unique('ha');
    const { sink } = start({ homeAssistant: { prefix }, resyncWindowSeconds: 1 });
    await sink.waitFor(() => sink.calls[0]?.kind === 'replaceAll', 5_000, 'initial sync');
    const chatty = track(new HomeAssistantDevice({ url: broker.url }, unique('chatty'), { prefix }));
    await chatty.start();
    const ghost = `${prefix}/sensor/ghost/config`;
    await mosquittoPub(broker, ghost, '{"uniq_id":"ghost"}'); // not retained
    await sink.waitFor(() => sink.devices.has('ha/ghost') && sink.devices.has(`ha/${chatty.node}`), 5_000, 'both');
    await mosquittoPub(broker, `${prefix}/status`, 'online');
    await chatty.announce();
    await sink.waitFor(() => !sink.devices.has('ha/ghost'), 5_000, 'ghost dropped after the re-sync window');
    expect(sink.devices.has(`ha/${chatty.node}`)).toBe(true);
  });

  it('TLS with a client certificate and password, credentials from the discovery properties', async () => {
    const secure = await startMosquitto(perTest, { tls: pki, requireClientCertificate: true, users: { agent: 's3cret', device: 'd' } });
    const properties = new Map([
      ['MQTT_USERNAME', 'agent'],
      ['MQTT_PASSWORD', 's3cret'],
      ['MQTT_CA', await pki.pem(pki.caCert)],
      ['MQTT_CERT', await pki.pem(pki.clientCert)],
      ['MQTT_KEY', await pki.pem(pki.clientKey)],
    ]);
    const handler = runHandler(createMqttHandler(), { broker: secure.url, homie: true }, { properties });
    perTest.defer('handler', () => handler.stop());
    const tls = {
      ca: await pki.pem(pki.caCert),
      cert: await pki.pem(pki.clientCert),
      key: await pki.pem(pki.clientKey),
      username: 'device',
      password: 'd',
    };
    const device = track(new HomieDevice({ url: secure.url, options: tls }, 'secure-1'));
    await device.start();
    await handler.sink.waitFor(() => handler.sink.devices.has('homie/secure-1'), 5_000, 'device over TLS');
    expect(handler.sink.devices.get('homie/secure-1')?.properties['MQTT_BROKER_URL']).toBe(secure.url);

    const refused = runHandler(
      createMqttHandler(),
      { broker: secure.url, homie: true, reconnect: { initialDelayMs: 50, maxDelayMs: 100 } },
      {
        properties: new Map([...properties, ['MQTT_PASSWORD', 'wrong']]),
      },
    );
    perTest.defer('refused handler', () => refused.stop());
    await refused.sink.waitFor(() => refused.sink.counted('connect_error') >= 2, 5_000, 'refused connections, retried');
    expect(refused.sink.calls).toEqual([]);
  });
});

describe('network partition (issue 13)', () => {
  it('the broker a veth link away goes silent: devices stay through the grace, turn offline after it, and re-sync when the link is back', async () => {
    const link = await createNetnsLink(perTest, 'mqtt');
    const remote = await startMosquitto(perTest, { persistence: true, netns: link });
    const handler = runHandler(createMqttHandler(), {
      broker: remote.url,
      homie: true,
      keepaliveSeconds: 5,
      brokerLossGraceSeconds: 3,
      reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    });
    perTest.defer('handler', () => handler.stop());
    const { sink } = handler;
    await mosquittoPub(remote, 'homie/5/far/$state', 'ready', { retain: true });
    await sink.waitFor(() => sink.devices.has('homie/far'), 5_000, 'device');

    // Partition: no FIN, no RST — only the keepalive can tell the connection is dead.
    await run('ip', ['link', 'set', link.hostIf, 'down']);
    await sink.waitFor(() => sink.counted('connect_error') >= 1, 15_000, 'the lost connection noticed');
    expect(sink.devices.has('homie/far')).toBe(true); // unreachable ≠ gone: within the grace
    await sink.waitFor(() => !sink.devices.has('homie/far'), 10_000, 'offline after the grace');
    expect(sink.counted('broker_lost')).toBe(1);

    await run('ip', ['link', 'set', link.hostIf, 'up']);
    await sink.waitFor(() => sink.devices.has('homie/far'), 15_000, 'back after the link returned');
    expect(sink.calls.at(-1)).toEqual({ kind: 'replaceAll', ids: ['homie/far'] });
  });
});
