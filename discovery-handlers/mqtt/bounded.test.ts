import { describe, expect, it } from 'vitest';
import { boundProperties, jsonDepth, parseBoundedJson, PayloadError, propertyNamePart, safeEntries, truncate } from './bounded.ts';
import { filterProblem, topicMatches } from './topic.ts';

const limits = { maxPayloadBytes: 1024, maxJsonDepth: 4 };
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('jsonDepth', () => {
  it.each([
    ['1', 0],
    ['{}', 1],
    ['[[1],[2]]', 2],
    ['{"a":{"b":[1]}}', 3],
    ['"[[[[[["', 0],
    ['{"a":"\\"[[[["}', 1],
    ['[[[[[[[[[[', 5], // stops once past the limit
  ])('%s → %i', (text, depth) => {
    expect(jsonDepth(text, 4)).toBe(depth);
  });
});

describe('parseBoundedJson refuses hostile payloads', () => {
  it.each([
    ['too large', new Uint8Array(2048).fill(0x20), 'too_large'],
    ['too deep', bytes('[[[[[1]]]]]'), 'too_deep'],
    ['nesting far beyond any stack', bytes('['.repeat(1000)), 'too_deep'],
    ['not JSON', bytes('{"a":'), 'bad_json'],
    ['invalid UTF-8', Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]), 'not_utf8'],
  ])('%s', (_name, payload, problem) => {
    expect(() => parseBoundedJson(payload, limits)).toThrow(PayloadError);
    try {
      parseBoundedJson(payload, limits);
    } catch (error) {
      expect((error as PayloadError).problem).toBe(problem);
    }
  });

  it('parses what is within the limits', () => {
    expect(parseBoundedJson(bytes('{"a":[1,{"b":2}]}'), limits)).toEqual({ a: [1, { b: 2 }] });
  });

  it('a __proto__ key never reaches a prototype', () => {
    const parsed = parseBoundedJson(bytes('{"__proto__":{"polluted":true},"constructor":1,"ok":2}'), limits) as Record<string, unknown>;
    expect(safeEntries(parsed)).toEqual([['ok', 2]]);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('boundProperties', () => {
  it('keeps reserved properties first, drops the extras and cuts long values', () => {
    const props = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`P${i}`, 'x'.repeat(i * 10)]));
    const { properties, limited } = boundProperties(props, { maxProperties: 4, maxPropertyLength: 25 }, { URL: 'mqtt://b' });
    expect(limited).toBe(true);
    expect(Object.keys(properties)).toEqual(['URL', 'P0', 'P1', 'P2']);
    expect(properties['P2']).toBe('x'.repeat(20));
    const cut = boundProperties({ A: 'y'.repeat(30) }, { maxProperties: 4, maxPropertyLength: 25 }).properties['A']!;
    expect(cut).toHaveLength(25);
    expect(cut.endsWith('…')).toBe(true);
  });

  it('reports nothing limited when within bounds', () => {
    expect(boundProperties({ A: 'a' }, { maxProperties: 4, maxPropertyLength: 25 })).toEqual({ properties: { A: 'a' }, limited: false });
  });

  it('never splits a surrogate pair', () => {
    expect(truncate('ab😀😀', 4)).toBe('ab…');
  });

  it.each([
    ['sensor', 'SENSOR'],
    ['living room/temp', 'LIVING_ROOM_TEMP'],
    ['__x__', 'X'],
    ['ü', '_'],
  ])('propertyNamePart(%j) = %j', (input, output) => {
    expect(propertyNamePart(input)).toBe(output);
  });
});

describe('topics', () => {
  it.each([
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['+/+/config', 'x/y/config', true],
    ['#', '$SYS/broker/load', false],
    ['+/broker', '$SYS/broker', false],
    ['$SYS/#', '$SYS/broker', true],
    ['a/+/c', 'a//c', true],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it.each([
    ['a/#/b', "'#' must be a whole level and the last one"],
    ['a/b#', "'#' must be a whole level and the last one"],
    ['a/b+', "'+' must be a whole level"],
    ['', 'must not be empty'],
  ])('filter %j is invalid', (filter, problem) => {
    expect(filterProblem(filter)).toBe(problem);
  });
});
