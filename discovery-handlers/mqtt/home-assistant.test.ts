import { describe, expect, it } from 'vitest';
import { PayloadError } from './bounded.ts';
import {
  evaluateTemplate,
  expandKeys,
  HomeAssistantConvention,
  parseConfigTopic,
  withBase,
  type HomeAssistantOptions,
} from './home-assistant.ts';
import { DEVICE_BASED, ESPHOME_TEMPERATURE, TASMOTA_RELAY, Z2M_TEMPERATURE } from '../../test/support/mqtt-firmware.ts';
import { msg, recordingContext } from '../../test/support/mqtt-convention.ts';

const OPTIONS: HomeAssistantOptions = { prefix: 'homeassistant', statusTopic: 'homeassistant/status', groupBy: 'device' };

function convention(options: Partial<HomeAssistantOptions> = {}): {
  ha: HomeAssistantConvention;
  context: ReturnType<typeof recordingContext>;
} {
  const context = recordingContext();
  return { ha: new HomeAssistantConvention({ ...OPTIONS, ...options }, context), context };
}

describe('Home Assistant pure parts', () => {
  it.each([
    ['homeassistant/sensor/obj/config', { component: 'sensor', objectId: 'obj' }],
    ['homeassistant/sensor/node/obj/config', { component: 'sensor', nodeId: 'node', objectId: 'obj' }],
    ['homeassistant/device/0AFFD2/config', { component: 'device', objectId: '0AFFD2' }],
    ['homeassistant/sensor/config', undefined],
    ['homeassistant/sensor/a/b/c/config', undefined],
    ['homeassistant/sensor//obj/config', undefined],
    ['other/sensor/obj/config', undefined],
    ['homeassistant/sensor/obj/state', undefined],
  ])('parseConfigTopic(%s)', (topic, expected) => {
    expect(parseConfigTopic('homeassistant', topic)).toEqual(expected);
  });

  it.each([
    ['~/state', 'dev/1', 'dev/1/state'],
    ['cmnd/~', 'dev/1', 'cmnd/dev/1'],
    ['plain/topic', 'dev/1', 'plain/topic'],
    ['~/state', undefined, '~/state'],
  ])('withBase(%s, %s)', (value, base, expected) => {
    expect(withBase(value, base)).toBe(expected);
  });

  it.each([
    ['{{ value_json.state }}', '{"state":"online"}', 'online'],
    ['{{value_json.state}}', '{"state":"online"}', 'online'],
    ["{{ value_json['state'] }}", '{"state":"offline"}', 'offline'],
    ['{{ value_json.a.b[1] }}', '{"a":{"b":["x","y"]}}', 'y'],
    ['{{ value }}', 'online', 'online'],
    ['{{ value_json.missing }}', '{"state":"online"}', undefined],
    ['{{ value_json.state }}', 'not json', undefined],
    ["{{ 'online' if value_json.ok else 'offline' }}", '{"ok":true}', undefined],
    ['{{ value_json.__proto__ }}', '{}', undefined],
  ])('evaluateTemplate(%s, %s) = %s', (template, payload, expected) => {
    expect(evaluateTemplate(template, payload)).toBe(expected);
  });

  it('expands abbreviations without copying prototype keys', () => {
    const raw = JSON.parse('{"stat_t":"a","__proto__":{"x":1},"uniq_id":"u"}') as Record<string, unknown>;
    const expanded = expandKeys(raw, { stat_t: 'state_topic', uniq_id: 'unique_id' });
    expect(expanded).toEqual({ state_topic: 'a', unique_id: 'u' });
    expect(Object.getPrototypeOf(expanded)).toBe(Object.prototype);
  });
});

describe('HomeAssistantConvention', () => {
  it('ESPHome: config + retained availability → one device; offline at once; empty config removes it', () => {
    const { ha } = convention();
    expect(ha.handle(msg(ESPHOME_TEMPERATURE.topic, ESPHOME_TEMPERATURE.config))).toEqual(['ha/a4cf12b3c4d5']);
    // Availability configured but not yet received: unavailable, as Home Assistant treats it.
    expect(ha.view('ha/a4cf12b3c4d5')).toBeUndefined();
    expect([...ha.dynamicTopics()]).toEqual(['livingroom/status']);
    expect(ha.accepts('livingroom/status')).toBe(true);
    expect(ha.handle(msg('livingroom/status', 'online'))).toEqual(['ha/a4cf12b3c4d5']);
    const view = ha.view('ha/a4cf12b3c4d5')!;
    expect(view.properties).toMatchObject({
      HA_DEVICE_ID: 'a4cf12b3c4d5',
      HA_NAME: 'livingroom',
      HA_MANUFACTURER: 'espressif',
      HA_MODEL: 'esp32dev',
      HA_SW_VERSION: 'esphome v2024.6.0',
      HA_SENSOR_LIVINGROOM_TEMPERATURE_STATE_TOPIC: 'livingroom/sensor/temperature/state',
    });
    expect(JSON.parse(view.properties['HA_ENTITIES']!)).toEqual([
      {
        component: 'sensor',
        object_id: 'livingroom_temperature',
        unique_id: 'ESPsensortemperature',
        name: 'Temperature',
        state_topic: 'livingroom/sensor/temperature/state',
        device_class: 'temperature',
        unit: '°C',
      },
    ]);
    ha.handle(msg('livingroom/status', 'offline', false));
    expect(ha.view('ha/a4cf12b3c4d5')).toBeUndefined();
    ha.handle(msg('livingroom/status', 'online', false));
    expect(ha.views()).toHaveLength(1);
    expect(ha.handle(msg(ESPHOME_TEMPERATURE.topic, null))).toEqual(['ha/a4cf12b3c4d5']);
    expect(ha.views()).toEqual([]);
    expect(ha.dynamicTopics().size).toBe(0);
  });

  it('Tasmota: ~ base topic with custom availability payloads, grouped by identifier', () => {
    const { ha } = convention();
    ha.handle(msg(TASMOTA_RELAY.topic, TASMOTA_RELAY.config));
    expect([...ha.dynamicTopics()]).toEqual(['tasmota_A4CF12/tele/LWT']);
    ha.handle(msg('tasmota_A4CF12/tele/LWT', 'Online'));
    expect(ha.view('ha/A4CF12')?.properties).toMatchObject({
      HA_SWITCH_A4CF12_RL_1_COMMAND_TOPIC: 'tasmota_A4CF12/cmnd/POWER',
      HA_SWITCH_A4CF12_RL_1_STATE_TOPIC: 'tasmota_A4CF12/tele/STATE',
      HA_CONNECTIONS: 'mac:A4CF12B3C4D5',
    });
    ha.handle(msg('tasmota_A4CF12/tele/LWT', 'Offline'));
    expect(ha.view('ha/A4CF12')).toBeUndefined();
    // A payload that is neither available nor not-available changes nothing (as in HA).
    ha.handle(msg('tasmota_A4CF12/tele/LWT', 'Rebooting'));
    expect(ha.view('ha/A4CF12')).toBeUndefined();
  });

  it('zigbee2mqtt: availability mode all with JSON templates on two topics', () => {
    const { ha } = convention();
    const id = 'ha/zigbee2mqtt_0x00158d0001a2b3c4';
    ha.handle(msg(Z2M_TEMPERATURE.topic, Z2M_TEMPERATURE.config));
    ha.handle(msg('zigbee2mqtt/bridge/state', { state: 'online' }));
    expect(ha.view(id)).toBeUndefined();
    ha.handle(msg('zigbee2mqtt/kitchen_sensor/availability', { state: 'online' }));
    expect(ha.view(id)?.properties).toMatchObject({
      HA_VIA_DEVICE: 'zigbee2mqtt_bridge_0x00124b0012345678',
      HA_ORIGIN: 'Zigbee2MQTT 1.40.0',
      HA_MODEL: 'Temperature and humidity sensor (WSDCGQ11LM)',
    });
    // The bridge going down takes every zigbee device with it.
    expect(ha.handle(msg('zigbee2mqtt/bridge/state', { state: 'offline' }, false))).toEqual([id]);
    expect(ha.view(id)).toBeUndefined();
  });

  it.each([
    [
      'latest',
      [
        ['a', 'online'],
        ['b', 'offline'],
      ],
      false,
    ],
    [
      'latest',
      [
        ['a', 'offline'],
        ['b', 'online'],
      ],
      true,
    ],
    [
      'latest',
      [
        ['b', 'online'],
        ['a', 'garbage'],
      ],
      true,
    ],
    [
      'any',
      [
        ['a', 'offline'],
        ['b', 'online'],
      ],
      true,
    ],
    ['any', [['a', 'offline']], false],
    ['all', [['a', 'online']], false],
    [
      'all',
      [
        ['a', 'online'],
        ['b', 'online'],
      ],
      true,
    ],
  ])('availability mode %s after %j → present %s', (mode, messages, present) => {
    const { ha } = convention();
    ha.handle(msg('homeassistant/binary_sensor/x/config', { uniq_id: 'x', avty: [{ t: 'a' }, { t: 'b' }], avty_mode: mode }));
    for (const [topic, payload] of messages as [string, string][]) ha.handle(msg(topic, payload));
    expect(ha.view('ha/x') !== undefined).toBe(present);
  });

  it('device-based form: one device with its components, shared state topic and availability', () => {
    const { ha } = convention();
    expect(ha.handle(msg(DEVICE_BASED.topic, DEVICE_BASED.config))).toEqual(['ha/0AFFD2']);
    ha.handle(msg('sensorBedroom/status', 'online'));
    const props = ha.view('ha/0AFFD2')!.properties;
    expect(props).toMatchObject({
      HA_NAME: 'Heater',
      HA_SERIAL_NUMBER: 'ea334450945afc',
      HA_HW_VERSION: '1.0rev2',
      HA_ORIGIN: 'bla2mqtt 2.1',
    });
    const entities = JSON.parse(props['HA_ENTITIES']!) as { object_id: string; state_topic: string }[];
    expect(entities.map((e) => [e.object_id, e.state_topic])).toEqual([
      ['some_unique_component_id1', 'sensorBedroom/state'],
      ['some_unique_id2', 'sensorBedroom/state'],
    ]);
    ha.handle(msg(DEVICE_BASED.topic, null));
    expect(ha.views()).toEqual([]);
  });

  it('groupBy entity: one device per unique_id', () => {
    const { ha } = convention({ groupBy: 'entity' });
    ha.handle(msg(DEVICE_BASED.topic, { ...DEVICE_BASED.config, avty_t: undefined }));
    expect(
      ha
        .views()
        .map((v) => v.id)
        .sort(),
    ).toEqual(['ha/temp01ae_h', 'ha/temp01ae_t']);
  });

  it('a changed config moves availability without losing the last availability state', () => {
    const { ha } = convention();
    ha.handle(msg(ESPHOME_TEMPERATURE.topic, ESPHOME_TEMPERATURE.config));
    ha.handle(msg('livingroom/status', 'online'));
    ha.handle(msg(ESPHOME_TEMPERATURE.topic, { ...ESPHOME_TEMPERATURE.config, name: 'Temp 2' }));
    expect(ha.view('ha/a4cf12b3c4d5')).toBeDefined();
  });

  it.each([
    ['a JSON array', '[1,2]'],
    ['not JSON', '{"name":'],
    ['a device form without components', JSON.stringify({ dev: { ids: 'x' } })],
    ['a device form without a device', JSON.stringify({ cmps: {} })],
  ])('refuses %s as a config and keeps its state', (_name, payload) => {
    const { ha } = convention();
    expect(() => ha.handle(msg('homeassistant/device/x/config', payload))).toThrow(PayloadError);
    expect(ha.views()).toEqual([]);
  });

  it('a birth message (online on the status topic, live) asks for a re-sync; a retained one does not', () => {
    const { ha, context } = convention();
    ha.handle(msg('homeassistant/status', 'online', true));
    expect(context.resyncRequests).toBe(0);
    ha.handle(msg('homeassistant/status', 'offline', false));
    expect(context.resyncRequests).toBe(0);
    ha.handle(msg('homeassistant/status', 'online', false));
    expect(context.resyncRequests).toBe(1);
  });

  it('re-sync: unconfirmed retained configs go at once, non-retained ones after the window', () => {
    const { ha } = convention();
    ha.handle(msg('homeassistant/sensor/kept/config', { uniq_id: 'kept' }, true));
    ha.handle(msg('homeassistant/sensor/deleted/config', { uniq_id: 'deleted' }, true));
    ha.handle(msg('homeassistant/sensor/live/config', { uniq_id: 'live' }, false));
    ha.handle(msg('homeassistant/sensor/late/config', { uniq_id: 'late' }, false));
    ha.beginResync();
    ha.handle(msg('homeassistant/sensor/kept/config', { uniq_id: 'kept' }, true));
    expect(ha.settleResync(false)).toEqual(['ha/deleted']);
    expect(
      ha
        .views()
        .map((v) => v.id)
        .sort(),
    ).toEqual(['ha/kept', 'ha/late', 'ha/live']);
    ha.handle(msg('homeassistant/sensor/late/config', { uniq_id: 'late' }, false));
    expect(ha.settleResync(true)).toEqual(['ha/live']);
    expect(
      ha
        .views()
        .map((v) => v.id)
        .sort(),
    ).toEqual(['ha/kept', 'ha/late']);
  });

  it('stops tracking at the device limit and counts it', () => {
    const context = recordingContext({ maxDevices: 1 });
    const ha = new HomeAssistantConvention(OPTIONS, context);
    for (let i = 0; i < 10; i++) ha.handle(msg(`homeassistant/sensor/s${i}/config`, { uniq_id: `s${i}` }));
    expect(ha.views()).toHaveLength(8);
    expect(context.counts).toEqual(['device_limit', 'device_limit']);
  });

  it('keeps HA_ENTITIES valid JSON under the length limit', () => {
    const context = recordingContext({ maxPropertyLength: 300 });
    const ha = new HomeAssistantConvention(OPTIONS, context);
    const cmps = Object.fromEntries(
      Array.from({ length: 50 }, (_, i) => [`c${i}`, { p: 'sensor', stat_t: `dev/sensor/${i}/state`, uniq_id: `u${i}` }]),
    );
    ha.handle(msg('homeassistant/device/big/config', { dev: { ids: 'big' }, cmps }));
    const entities = ha.view('ha/big')!.properties['HA_ENTITIES']!;
    expect(entities.length).toBeLessThanOrEqual(300);
    expect((JSON.parse(entities) as unknown[]).length).toBeGreaterThan(0);
  });
});
