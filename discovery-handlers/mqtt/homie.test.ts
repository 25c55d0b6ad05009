import { describe, expect, it } from 'vitest';
import { PayloadError } from './bounded.ts';
import { HomieConvention, parseHomieDescription } from './homie.ts';
import { msg, recordingContext } from '../../test/support/mqtt-convention.ts';

export const HOMIE_DESCRIPTION = {
  homie: '5.0',
  version: 7,
  name: 'Living room thermostat',
  type: 'thermostat',
  nodes: {
    thermostat: {
      name: 'Thermostat',
      properties: {
        temperature: { datatype: 'float', unit: '°C' },
        setpoint: { datatype: 'float', settable: true },
      },
    },
  },
};

describe('parseHomieDescription', () => {
  it('reduces a description to what Tether reports', () => {
    expect(parseHomieDescription(HOMIE_DESCRIPTION)).toEqual({
      version: '7',
      name: 'Living room thermostat',
      type: 'thermostat',
      nodes: ['thermostat'],
      properties: ['thermostat/temperature', 'thermostat/setpoint!'],
    });
  });

  it.each([
    ['not an object', [1]],
    ['homie 4', { homie: '4.0', nodes: {} }],
    ['no homie field', { nodes: {} }],
    ['nodes not an object', { homie: '5.0', nodes: [] }],
  ])('refuses %s', (_name, raw) => {
    expect(() => parseHomieDescription(raw)).toThrow(PayloadError);
  });

  it.each([
    ['a node ID with upper case', { homie: '5.0', nodes: { Thermostat: { properties: {} } } }],
    ['a node that is not an object', { homie: '5.0', nodes: { n: 'garbage' } }],
    ['properties that are not an object', { homie: '5.0', nodes: { n: { properties: [1, 2] } } }],
    ['a property ID with a slash', { homie: '5.0', nodes: { n: { properties: { 'a/b': { datatype: 'float' } } } } }],
    ['a property without a datatype', { homie: '5.0', nodes: { n: { properties: { t: {} } } } }],
    ['an unknown datatype', { homie: '5.0', nodes: { n: { properties: { t: { datatype: 'banana' } } } } }],
    ['a name that is not text', { homie: '5.0', name: { x: 1 }, nodes: {} }],
    ['a name with control characters', { homie: '5.0', name: 'a\u0000b', nodes: {} }],
    ['a negative version', { homie: '5.0', version: -1, nodes: {} }],
    ['a root that is not an ID', { homie: '5.0', root: '../etc', nodes: {} }],
  ])('issue 13: refuses garbage — %s', (_name, raw) => {
    expect(() => parseHomieDescription(raw)).toThrow(PayloadError);
  });

  it('bounds the property list', () => {
    const properties = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`p${i}`, { datatype: 'integer' }]));
    expect(parseHomieDescription({ homie: '5.0', nodes: { n: { properties } } }).properties).toHaveLength(256);
  });
});

describe('HomieConvention', () => {
  const topic = (device: string, attr: string): string => `homie/5/${device}/${attr}`;

  it.each([
    ['init', false],
    ['ready', true],
    ['sleeping', true],
    ['disconnected', false],
    ['lost', false],
  ])('$state %s → present %s', (state, present) => {
    const homie = new HomieConvention({ domain: 'homie' }, recordingContext());
    homie.handle(msg(topic('dev1', '$state'), state));
    expect(homie.view('homie/dev1') !== undefined).toBe(present);
  });

  it('reports the description; the last will (lost) takes it offline; an empty $state removes it', () => {
    const homie = new HomieConvention({ domain: 'homie' }, recordingContext());
    expect(homie.filters).toEqual(['homie/5/+/$state', 'homie/5/+/$description']);
    homie.handle(msg(topic('thermo', '$description'), HOMIE_DESCRIPTION));
    expect(homie.views()).toEqual([]);
    homie.handle(msg(topic('thermo', '$state'), 'ready'));
    expect(homie.view('homie/thermo')?.properties).toEqual({
      HOMIE_DEVICE_ID: 'thermo',
      HOMIE_TOPIC: 'homie/5/thermo',
      HOMIE_STATE: 'ready',
      HOMIE_NAME: 'Living room thermostat',
      HOMIE_TYPE: 'thermostat',
      HOMIE_DESCRIPTION_VERSION: '7',
      HOMIE_NODES: 'thermostat',
      HOMIE_PROPERTIES: 'thermostat/temperature,thermostat/setpoint!',
    });
    expect(homie.handle(msg(topic('thermo', '$state'), 'lost', false))).toEqual(['homie/thermo']);
    expect(homie.view('homie/thermo')).toBeUndefined();
    homie.handle(msg(topic('thermo', '$state'), 'ready', false));
    expect(homie.views()).toHaveLength(1);
    homie.handle(msg(topic('thermo', '$state'), null));
    expect(homie.views()).toEqual([]);
  });

  it('refuses an unknown $state and keeps the previous one', () => {
    const homie = new HomieConvention({ domain: 'homie' }, recordingContext());
    homie.handle(msg(topic('d', '$state'), 'ready'));
    expect(() => homie.handle(msg(topic('d', '$state'), 'exploded'))).toThrow(PayloadError);
    expect(homie.view('homie/d')?.properties['HOMIE_STATE']).toBe('ready');
  });

  it('re-sync: devices whose retained $state did not come back are gone', () => {
    const homie = new HomieConvention({ domain: 'homie' }, recordingContext());
    homie.handle(msg(topic('a', '$state'), 'ready'));
    homie.handle(msg(topic('b', '$state'), 'ready'));
    homie.beginResync();
    homie.handle(msg(topic('a', '$state'), 'ready'));
    expect(homie.settleResync(false)).toEqual(['homie/b']);
    expect(homie.views().map((v) => v.id)).toEqual(['homie/a']);
  });

  it('issue 13: a listed device whose $description turns to garbage is no longer listed, counted as bad input; a valid one lists it again', () => {
    const context = recordingContext();
    const homie = new HomieConvention({ domain: 'homie' }, context);
    homie.handle(msg(topic('thermo', '$description'), HOMIE_DESCRIPTION));
    homie.handle(msg(topic('thermo', '$state'), 'ready'));
    expect(homie.views()).toHaveLength(1);
    expect(homie.handle(msg(topic('thermo', '$description'), { homie: '5.0', nodes: { n: 'garbage' } }))).toEqual(['homie/thermo']);
    expect(homie.view('homie/thermo')).toBeUndefined();
    expect(context.counts).toEqual(['bad_payload']);
    homie.handle(msg(topic('thermo', '$description'), HOMIE_DESCRIPTION));
    expect(homie.view('homie/thermo')?.properties['HOMIE_NAME']).toBe('Living room thermostat');
  });

  it("issue 13: a garbage $description before the $state keeps the device unlisted (the error is the engine's to count)", () => {
    const homie = new HomieConvention({ domain: 'homie' }, recordingContext());
    expect(() =>
      homie.handle(msg(topic('thermo', '$description'), { homie: '5.0', nodes: { n: { properties: { t: { datatype: 'banana' } } } } })),
    ).toThrow(PayloadError);
    expect(homie.handle(msg(topic('thermo', '$state'), 'ready'))).toEqual(['homie/thermo']);
    expect(homie.views()).toEqual([]);
    // Clearing the description (retained empty payload) makes it a device without one: listed from $state.
    homie.handle(msg(topic('thermo', '$description'), null));
    expect(homie.views().map((v) => v.id)).toEqual(['homie/thermo']);
  });

  it('issue 13: a device ID that is not a Homie ID is refused', () => {
    const homie = new HomieConvention({ domain: 'homie' }, recordingContext());
    expect(() => homie.handle(msg('homie/5/Not_An-ID-/$state', 'ready'))).toThrow(PayloadError);
    expect(homie.views()).toEqual([]);
  });

  it('uses its domain', () => {
    const homie = new HomieConvention({ domain: 'site-a' }, recordingContext());
    expect(homie.accepts('site-a/5/x/$state')).toBe(true);
    expect(homie.accepts('homie/5/x/$state')).toBe(false);
  });
});
