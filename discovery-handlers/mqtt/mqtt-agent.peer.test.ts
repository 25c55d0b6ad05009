/**
 * Through the agent: a device announced on a real Mosquitto becomes an allocatable resource on
 * the (mock) kubelet with the right env; its last will turns it Unhealthy at once. And the
 * `tether discover mqtt` CLI, one-shot, without a cluster.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HomeAssistantDevice } from '../../mocks/mqtt-devices/devices.ts';
import { mosquittoPub, startMosquitto, type Mosquitto } from '../../test/peers/mosquitto.ts';
import { PeerGroup } from '../../test/peers/process.ts';
import { startAgentWithHandler } from '../../test/support/handler-kit.ts';
import { createMqttHandler } from './mqtt.ts';

const peers = new PeerGroup();
let broker: Mosquitto;

beforeAll(async () => {
  broker = await startMosquitto(peers);
});
afterAll(() => peers.close());

describe('mqtt through the agent to the kubelet', () => {
  it('announcement → allocatable device with the right env; last will → Unhealthy', async () => {
    const kit = await startAgentWithHandler({
      handler: createMqttHandler(),
      discovery: 'thermo',
      details: { broker: broker.url, homeAssistant: { prefix: 'agent-ha' } },
      capacity: 2,
    });
    peers.defer('agent', () => kit.stop());

    const device = new HomeAssistantDevice({ url: broker.url }, 'kitchen', { prefix: 'agent-ha' });
    peers.defer('device', () => device.crash());
    const name = kit.deviceName('ha/kitchen', 'shared');
    const resource = kit.deviceResource('ha/kitchen', 'shared');
    await device.start();
    await kit.waitForSlots(resource, { healthy: 2 }, 5_000);

    const response = await kit.allocate('broker-pod', resource);
    expect(response.envs).toMatchObject({
      MQTT_BROKER_URL: broker.url,
      HA_DEVICE_ID: 'kitchen',
      HA_NAME: 'kitchen',
      HA_MANUFACTURER: 'espressif',
      HA_SENSOR_KITCHEN_TEMPERATURE_STATE_TOPIC: 'kitchen/sensor/temperature/state',
      HA_SWITCH_KITCHEN_RELAY_COMMAND_TOPIC: 'kitchen/switch/relay/command',
      TETHER_DEVICES: name,
    });
    expect(response.envs[`HA_NAME_${name.slice(-16).toUpperCase()}`]).toBe('kitchen');

    await device.crash();
    await kit.waitForSlots(resource, { healthy: 0, total: 2 }, 5_000);
  });
});

describe('tether discover mqtt', () => {
  it('one-shot prints the retained devices once the initial view is complete', async () => {
    await mosquittoPub(broker, 'cli/5/printer-1/$state', 'ready', { retain: true });
    await mosquittoPub(broker, 'cli/5/printer-2/$state', 'ready', { retain: true });
    const bin = new URL('../../bin/tether.ts', import.meta.url).pathname;
    const started = performance.now();
    const { stdout } = await promisify(execFile)(process.execPath, [
      bin,
      'discover',
      'mqtt',
      '--details',
      `{broker: "${broker.url}", homie: {domain: cli}}`,
      '-o',
      'json',
    ]);
    const devices = JSON.parse(stdout) as { id: string; online: boolean; properties: Record<string, string> }[];
    expect(devices.map((d) => [d.id, d.online])).toEqual([
      ['homie/printer-1', true],
      ['homie/printer-2', true],
    ]);
    expect(devices[0]?.properties['HOMIE_TOPIC']).toBe('cli/5/printer-1');
    // It printed after the sync, not after the 5 s timeout.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
