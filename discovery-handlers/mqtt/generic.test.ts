import { describe, expect, it } from 'vitest';
import { compileTemplate, GenericConvention, renderTemplate, type GenericRule, type Template } from './generic.ts';
import { msg, recordingContext } from '../../test/support/mqtt-convention.ts';

const t = (source: string): Template => {
  const compiled = compileTemplate(source);
  if (typeof compiled === 'string') throw new Error(compiled);
  return compiled;
};

describe('templates', () => {
  const input = (topic: string, payload: string): Parameters<typeof renderTemplate>[1] => ({
    levels: topic.split('/'),
    payload: () => payload,
    json: () => JSON.parse(payload) as unknown,
  });

  it.each([
    ['{topic[1]}', 'tele/plug1/STATE', '{}', 'plug1'],
    ['dev-{topic[1]}-{topic[2]}', 'a/b/c', '{}', 'dev-b-c'],
    ['{payload}', 'x', 'Online', 'Online'],
    ['{json.info.fw}', 'x', '{"info":{"fw":"1.2"}}', '1.2'],
    ['{json.list[1]}', 'x', '{"list":[3,4]}', '4'],
    ['{json[0].id}', 'x', '[{"id":"a"}]', 'a'],
    ['{json.n}', 'x', '{"n":42}', '42'],
    ['{json.o}', 'x', '{"o":{"k":1}}', '{"k":1}'],
    ['{{literal}} {topic[0]}', 'a/b', '{}', '{literal} a'],
    ['{topic[5]}', 'a/b', '{}', undefined],
    ['{json.missing}', 'x', '{}', undefined],
    ['{json.n}', 'x', '{"n":null}', undefined],
    ['{json.__proto__}', 'x', '{}', undefined],
  ])('%s on %s %s → %s', (source, topic, payload, expected) => {
    expect(renderTemplate(t(source), input(topic, payload))).toBe(expected);
  });

  it.each([
    ['{nope}', 'unknown placeholder {nope}; use {topic[N]}, {payload} or {json.field}'],
    ['{json.}', 'bad JSON path "."'],
    ['{json.a..b}', 'bad JSON path ".a..b"'],
    ['a}b', 'unbalanced { or }'],
    ['{topic[x]}', 'unknown placeholder {topic[x]}; use {topic[N]}, {payload} or {json.field}'],
  ])('compileTemplate(%s) fails: %s', (source, error) => {
    expect(compileTemplate(source)).toBe(error);
  });
});

describe('GenericConvention', () => {
  // Tasmota without Home Assistant discovery: INFO1 carries identity, LWT carries presence.
  const tasmota: GenericRule[] = [
    {
      topic: 'tele/+/INFO1',
      deviceId: t('tasmota-{topic[1]}'),
      properties: [
        ['TASMOTA_TOPIC', t('{topic[1]}')],
        ['FIRMWARE', t('{json.Info1.Version}')],
      ],
    },
    {
      topic: 'tele/+/LWT',
      deviceId: t('tasmota-{topic[1]}'),
      properties: [],
      presence: { value: t('{payload}'), online: ['Online'], offline: ['Offline'] },
    },
  ];

  it('merges rules per device and follows presence', () => {
    const generic = new GenericConvention(tasmota, recordingContext());
    expect(generic.filters).toEqual(['tele/+/INFO1', 'tele/+/LWT']);
    generic.handle(msg('tele/plug1/INFO1', { Info1: { Module: 'Sonoff', Version: '14.1.0' } }), 0);
    expect(generic.view('tasmota-plug1')?.properties).toEqual({ TASMOTA_TOPIC: 'plug1', FIRMWARE: '14.1.0' });
    expect(generic.handle(msg('tele/plug1/LWT', 'Offline'), 0)).toEqual(['tasmota-plug1']);
    expect(generic.view('tasmota-plug1')).toBeUndefined();
    generic.handle(msg('tele/plug1/LWT', 'Online'), 0);
    expect(generic.views()).toHaveLength(1);
  });

  it('live traffic brings an offline device back; a retained message does not', () => {
    const generic = new GenericConvention(tasmota, recordingContext());
    generic.handle(msg('tele/plug1/LWT', 'Offline'), 0);
    generic.handle(msg('tele/plug1/INFO1', { Info1: { Version: '1' } }, true), 0);
    expect(generic.view('tasmota-plug1')).toBeUndefined();
    generic.handle(msg('tele/plug1/INFO1', { Info1: { Version: '1' } }, false), 0);
    expect(generic.view('tasmota-plug1')).toBeDefined();
  });

  it('an empty payload removes what that rule knew; the device goes when no rule knows it', () => {
    const generic = new GenericConvention(tasmota, recordingContext());
    generic.handle(msg('tele/plug1/INFO1', { Info1: { Version: '1' } }), 0);
    generic.handle(msg('tele/plug1/LWT', 'Online'), 0);
    generic.handle(msg('tele/plug1/INFO1', null), 0);
    expect(generic.view('tasmota-plug1')?.properties).toEqual({});
    generic.handle(msg('tele/plug1/LWT', null), 0);
    expect(generic.views()).toEqual([]);
  });

  it('goes offline after its silence and comes back with the next message', () => {
    const rules: GenericRule[] = [
      { topic: 'sensors/+/data', deviceId: t('{json.serial}'), properties: [['ROOM', t('{topic[1]}')]], silenceMs: 60_000 },
    ];
    const generic = new GenericConvention(rules, recordingContext());
    generic.handle(msg('sensors/kitchen/data', { serial: 'SN1', t: 20 }, false), 0);
    expect(generic.expire(59_000)).toEqual([]);
    expect(generic.expire(60_001)).toEqual(['SN1']);
    expect(generic.view('SN1')).toBeUndefined();
    expect(generic.expire(120_000)).toEqual([]);
    generic.handle(msg('sensors/kitchen/data', { serial: 'SN1', t: 21 }, false), 130_000);
    expect(generic.view('SN1')?.properties).toEqual({ ROOM: 'kitchen' });
  });

  it('refuses a payload without the id field', () => {
    const rules: GenericRule[] = [{ topic: 'sensors/+/data', deviceId: t('{json.serial}'), properties: [] }];
    const generic = new GenericConvention(rules, recordingContext());
    expect(() => generic.handle(msg('sensors/x/data', { other: 1 }), 0)).toThrow('no device id from {json.serial}');
    expect(() => generic.handle(msg('sensors/x/data', 'not json'), 0)).toThrow('not JSON');
    expect(generic.views()).toEqual([]);
  });

  it('counts and stops at the device limit', () => {
    const context = recordingContext({ maxDevices: 2 });
    const generic = new GenericConvention([{ topic: 'd/+', deviceId: t('{topic[1]}'), properties: [] }], context);
    for (const id of ['a', 'b', 'c']) generic.handle(msg(`d/${id}`, 'x', false), 0);
    expect(generic.views().map((v) => v.id)).toEqual(['a', 'b']);
    expect(context.counts).toEqual(['device_limit']);
  });
});
