import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { DeviceSink, DiscoveredDevice } from '../contract.ts';
import { BUSY_CHANGES, BUSY_MS, MqttEngine } from './engine.ts';
import { HomeAssistantConvention } from './home-assistant.ts';
import { HomieConvention } from './homie.ts';
import { msg, recordingContext } from '../../test/support/mqtt-convention.ts';

type Call = ['replaceAll', string[]] | ['upsert', DiscoveredDevice] | ['remove', string];

function setup(limits = { maxProperties: 64, maxPropertyLength: 4096 }) {
  const calls: Call[] = [];
  const sink: DeviceSink = {
    replaceAll: (devices) => calls.push(['replaceAll', devices.map((d) => d.id)]),
    upsert: (device) => calls.push(['upsert', device]),
    remove: (id) => calls.push(['remove', id]),
  };
  const context = recordingContext();
  const logs: unknown[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const counts: string[] = [];
  const conventions = [
    new HomeAssistantConvention({ prefix: 'homeassistant', statusTopic: 'homeassistant/status', groupBy: 'device' }, context),
    new HomieConvention({ domain: 'homie' }, context),
  ];
  const engine = new MqttEngine({
    conventions,
    sink,
    log,
    count: (e) => counts.push(e),
    limits,
    common: { MQTT_BROKER_URL: 'mqtt://b:1883' },
    schedule: (flush) => flush(),
  });
  return { engine, calls, counts, logs };
}

describe('MqttEngine', () => {
  it('reports nothing while syncing, then one replaceAll, then live changes', () => {
    const { engine, calls } = setup();
    engine.beginResync();
    engine.handle(msg('homeassistant/sensor/a/config', { uniq_id: 'a' }), 0);
    engine.handle(msg('homie/5/b/$state', 'ready'), 0);
    expect(calls).toEqual([]);
    engine.endResync();
    expect(calls).toEqual([['replaceAll', ['ha/a', 'homie/b']]]);
    engine.handle(msg('homie/5/b/$state', 'lost', false), 0);
    engine.handle(msg('homie/5/c/$state', 'ready', false), 0);
    expect(calls.slice(1)).toEqual([
      ['remove', 'homie/b'],
      [
        'upsert',
        {
          id: 'homie/c',
          properties: { MQTT_BROKER_URL: 'mqtt://b:1883', HOMIE_DEVICE_ID: 'c', HOMIE_TOPIC: 'homie/5/c', HOMIE_STATE: 'ready' },
        },
      ],
    ]);
  });

  it('does not repeat an unchanged device, and removes only what it reported', () => {
    const { engine, calls } = setup();
    engine.endResync();
    engine.handle(msg('homie/5/c/$state', 'ready', false), 0);
    engine.handle(msg('homie/5/c/$state', 'ready', false), 0);
    engine.handle(msg('homie/5/d/$state', 'init', false), 0);
    engine.handle(msg('homie/5/d/$state', 'lost', false), 0);
    expect(calls.map((c) => c[0])).toEqual(['replaceAll', 'upsert']);
  });

  it('counts bad payloads and logs once per topic; state and the other devices are untouched', () => {
    const { engine, calls, counts, logs } = setup();
    engine.endResync();
    engine.handle(msg('homie/5/c/$state', 'ready', false), 0);
    for (let i = 0; i < 5; i++) engine.handle(msg('homeassistant/sensor/x/config', '{"broken":'), 0);
    // Device d is not listed: its bad $description is the engine's to count (a listed Homie device would be unlisted by it, see homie.test.ts).
    engine.handle(
      msg('homie/5/d/$description', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['),
      0,
    );
    expect(counts).toEqual(Array<string>(6).fill('bad_payload'));
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatchObject({ topic: 'homeassistant/sensor/x/config', convention: 'home-assistant', problem: 'bad_json' });
    expect(logs[1]).toMatchObject({ topic: 'homie/5/d/$description', problem: 'too_deep' });
    expect(calls.map((c) => c[0])).toEqual(['replaceAll', 'upsert']);
  });

  it('bounds properties, keeping the broker URL first', () => {
    const { engine, calls, counts } = setup({ maxProperties: 4, maxPropertyLength: 64 });
    engine.endResync();
    engine.handle(msg('homie/5/c/$description', { homie: '5.0', name: 'n'.repeat(100), nodes: {} }, false), 0);
    engine.handle(msg('homie/5/c/$state', 'ready', false), 0);
    const device = (calls[1] as ['upsert', DiscoveredDevice])[1];
    expect(Object.keys(device.properties)).toEqual(['MQTT_BROKER_URL', 'HOMIE_DEVICE_ID', 'HOMIE_TOPIC', 'HOMIE_STATE']);
    expect(counts).toContain('properties_limited');
  });

  it('broker lost: every reported device removed; the next re-sync brings back what is still there', () => {
    const { engine, calls } = setup();
    engine.beginResync();
    engine.handle(msg('homie/5/a/$state', 'ready'), 0);
    engine.handle(msg('homie/5/b/$state', 'ready'), 0);
    engine.endResync();
    engine.brokerLost();
    expect(calls.slice(1)).toEqual([
      ['remove', 'homie/a'],
      ['remove', 'homie/b'],
    ]);
    engine.beginResync();
    engine.handle(msg('homie/5/a/$state', 'ready'), 0);
    engine.endResync();
    expect(calls.at(-1)).toEqual(['replaceAll', ['homie/a']]);
  });

  it('lists the subscriptions, dynamic ones included', () => {
    const { engine } = setup();
    engine.handle(msg('homeassistant/sensor/a/config', { uniq_id: 'a', avty_t: 'a/status' }), 0);
    expect([...engine.subscriptions()]).toEqual([
      'homeassistant/+/+/config',
      'homeassistant/+/+/+/config',
      'homeassistant/status',
      'a/status',
      'homie/5/+/$state',
      'homie/5/+/$description',
    ]);
  });

  it('batches a burst into one replaceAll of the complete set; a few changes go out one by one', () => {
    const calls: Call[] = [];
    const sink: DeviceSink = {
      replaceAll: (devices) => calls.push(['replaceAll', devices.map((d) => d.id)]),
      upsert: (device) => calls.push(['upsert', device]),
      remove: (id) => calls.push(['remove', id]),
    };
    const flushes: (() => void)[] = [];
    const homie = new HomieConvention({ domain: 'homie' }, recordingContext());
    const engine = new MqttEngine({
      conventions: [homie],
      sink,
      log: pino({ level: 'silent' }),
      count: () => undefined,
      limits: { maxProperties: 8, maxPropertyLength: 64 },
      common: {},
      schedule: (f) => flushes.push(f),
    });
    engine.endResync();
    for (let i = 0; i < 100; i++) engine.handle(msg(`homie/5/d${i}/$state`, 'ready', false), 0);
    expect(flushes).toHaveLength(1);
    flushes.shift()!();
    expect(calls.slice(1)).toEqual([['replaceAll', Array.from({ length: 100 }, (_, i) => `homie/d${i}`)]]);
    engine.handle(msg('homie/5/d1/$state', 'lost', false), 0);
    engine.handle(msg('homie/5/x/$state', 'ready', false), 0);
    flushes.shift()!();
    expect(calls.slice(2).map((c) => [c[0], typeof c[1] === 'string' ? c[1] : (c[1] as DiscoveredDevice).id])).toEqual([
      ['remove', 'homie/d1'],
      ['upsert', 'homie/x'],
    ]);
    // Nothing reaches the sink after close.
    engine.handle(msg('homie/5/y/$state', 'ready', false), 0);
    engine.close();
    flushes.shift()!();
    expect(calls).toHaveLength(4);
  });

  it('sends sparse changes at once and collects changes for BUSY_MS during a burst', () => {
    const delays: number[] = [];
    const homie = new HomieConvention({ domain: 'homie' }, recordingContext());
    const sink: DeviceSink = { replaceAll: () => undefined, upsert: () => undefined, remove: () => undefined };
    const engine = new MqttEngine({
      conventions: [homie],
      sink,
      log: pino({ level: 'silent' }),
      count: () => undefined,
      limits: { maxProperties: 8, maxPropertyLength: 64 },
      common: {},
      schedule: (flush, delayMs) => {
        delays.push(delayMs);
        flush();
      },
    });
    engine.endResync();
    engine.handle(msg('homie/5/a/$state', 'ready', false), 0);
    expect(delays).toEqual([0]);
    for (let i = 0; i < BUSY_CHANGES; i++) engine.handle(msg(`homie/5/b${i}/$state`, 'ready', false), 0);
    expect(delays.at(-1)).toBe(BUSY_MS);
  });
});
