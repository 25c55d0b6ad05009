/** Discovery configs as real firmware publishes them, shared by unit and peer tests. */

/** What ESPHome publishes for one sensor (abbreviated keys, single-component form). */
export const ESPHOME_TEMPERATURE = {
  topic: 'homeassistant/sensor/livingroom/livingroom_temperature/config',
  config: {
    dev_cla: 'temperature',
    unit_of_meas: '°C',
    stat_cla: 'measurement',
    name: 'Temperature',
    stat_t: 'livingroom/sensor/temperature/state',
    avty_t: 'livingroom/status',
    uniq_id: 'ESPsensortemperature',
    dev: { ids: 'a4cf12b3c4d5', name: 'livingroom', sw: 'esphome v2024.6.0', mdl: 'esp32dev', mf: 'espressif' },
  },
};

/** Tasmota: `~` base topic with a trailing slash, Online/Offline LWT. */
export const TASMOTA_RELAY = {
  topic: 'homeassistant/switch/A4CF12_RL_1/config',
  config: {
    name: 'Plug',
    '~': 'tasmota_A4CF12/',
    cmd_t: '~cmnd/POWER',
    stat_t: '~tele/STATE',
    val_tpl: '{{value_json.POWER}}',
    avty_t: '~tele/LWT',
    pl_avail: 'Online',
    pl_not_avail: 'Offline',
    uniq_id: 'A4CF12_RL_1',
    dev: { ids: ['A4CF12'], name: 'Tasmota Plug', mdl: 'Sonoff S31', sw: '14.1.0', mf: 'Tasmota', cns: [['mac', 'A4CF12B3C4D5']] },
  },
};

/** zigbee2mqtt: full keys, two availability topics with JSON templates, mode `all`. */
export const Z2M_TEMPERATURE = {
  topic: 'homeassistant/sensor/0x00158d0001a2b3c4/temperature/config',
  config: {
    availability: [
      { topic: 'zigbee2mqtt/bridge/state', value_template: '{{ value_json.state }}' },
      { topic: 'zigbee2mqtt/kitchen_sensor/availability', value_template: '{{ value_json.state }}' },
    ],
    availability_mode: 'all',
    device: {
      identifiers: ['zigbee2mqtt_0x00158d0001a2b3c4'],
      manufacturer: 'Aqara',
      model: 'Temperature and humidity sensor (WSDCGQ11LM)',
      name: 'kitchen_sensor',
      via_device: 'zigbee2mqtt_bridge_0x00124b0012345678',
    },
    device_class: 'temperature',
    object_id: 'kitchen_sensor_temperature',
    origin: { name: 'Zigbee2MQTT', sw: '1.40.0', url: 'https://www.zigbee2mqtt.io' },
    state_topic: 'zigbee2mqtt/kitchen_sensor',
    unique_id: '0x00158d0001a2b3c4_temperature_zigbee2mqtt',
    unit_of_measurement: '°C',
    value_template: '{{ value_json.temperature }}',
  },
};

/** The device-based form from the Home Assistant documentation. */
export const DEVICE_BASED = {
  topic: 'homeassistant/device/0AFFD2/config',
  config: {
    dev: { ids: '0AFFD2', name: 'Heater', mf: 'Bla electronics', mdl: 'xya', sw: '1.0', sn: 'ea334450945afc', hw: '1.0rev2' },
    o: { name: 'bla2mqtt', sw: '2.1', url: 'https://bla2mqtt.example.com/support' },
    cmps: {
      some_unique_component_id1: { p: 'sensor', device_class: 'temperature', unit_of_measurement: '°C', unique_id: 'temp01ae_t' },
      some_unique_id2: { p: 'sensor', device_class: 'humidity', unit_of_measurement: '%', unique_id: 'temp01ae_h' },
      removed: { p: 'sensor' },
    },
    state_topic: 'sensorBedroom/state',
    avty_t: 'sensorBedroom/status',
    qos: 2,
  },
};
