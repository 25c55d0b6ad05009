import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import { DetailsError } from './contract.ts';
import { parseWithSchema } from './details-parse.ts';
import { closedObject, stringEnum, switchable } from './details-schema.ts';

const Schema = closedObject({
  name: Type.String({ minLength: 1, maxLength: 8 }),
  url: Type.Optional(Type.String({ maxLength: 64, pattern: '^mqtt://', errorMessage: 'must be a URL like mqtt://host' })),
  count: Type.Integer({ minimum: 1, maximum: 10, default: 3 }),
  ratio: Type.Optional(Type.Number({ minimum: 0.5 })),
  mode: stringEnum(['a', 'b'] as const, { default: 'a' }),
  tags: Type.Array(Type.String({ minLength: 1, maxLength: 4 }), { maxItems: 2, uniqueItems: true, default: [] }),
  nested: closedObject(
    {
      on: Type.Boolean({ default: true }),
      items: Type.Array(closedObject({ id: Type.String({ maxLength: 4 }) }), { maxItems: 2, default: [] }),
    },
    { default: {} },
  ),
  feature: Type.Optional(switchable(closedObject({ level: Type.Integer({ minimum: 0, maximum: 3, default: 1 }) }), 'on, off or options')),
  labels: Type.Optional(
    Type.Record(Type.String(), Type.String({ maxLength: 4 }), {
      maxProperties: 2,
      propertyNames: { maxLength: 8, pattern: '^[a-z]+$', errorMessage: 'lower-case keys only' },
    }),
  ),
});

describe('parseWithSchema', () => {
  it('applies every default once, nested ones included, and leaves the input alone', () => {
    const raw = { name: 'x', feature: {} };
    expect(parseWithSchema(Schema, raw)).toEqual({
      name: 'x',
      count: 3,
      mode: 'a',
      tags: [],
      nested: { on: true, items: [] },
      feature: { level: 1 },
    });
    expect(raw).toEqual({ name: 'x', feature: {} });
  });

  it.each([
    [null, 'details', 'must be an object'],
    [[], 'details', 'must be an object'],
    [{}, 'details.name', 'is required'],
    [
      { name: 'x', extra: 1 },
      'details.extra',
      'unknown field; expected one of name, url, count, ratio, mode, tags, nested, feature, labels',
    ],
    [{ name: 5 }, 'details.name', 'must be a string'],
    [{ name: '' }, 'details.name', 'must not be empty'],
    [{ name: 'x'.repeat(9) }, 'details.name', 'longer than 8 characters'],
    [{ name: 'x', url: 'http://a' }, 'details.url', 'must be a URL like mqtt://host'],
    [{ name: 'x', count: 0 }, 'details.count', 'must be between 1 and 10'],
    [{ name: 'x', count: 1.5 }, 'details.count', 'must be an integer'],
    [{ name: 'x', ratio: 0.1 }, 'details.ratio', 'must be at least 0.5'],
    [{ name: 'x', mode: 'c' }, 'details.mode', 'must be one of a, b'],
    [{ name: 'x', tags: ['a', 'b', 'c'] }, 'details.tags', 'at most 2 entries'],
    [{ name: 'x', tags: ['a', 'a'] }, 'details.tags[1]', 'duplicate entry "a"'],
    [{ name: 'x', tags: ['a', ''] }, 'details.tags[1]', 'must not be empty'],
    [{ name: 'x', nested: { on: 'yes' } }, 'details.nested.on', 'must be a boolean'],
    [{ name: 'x', nested: { items: [{ id: 'a' }, { id: 'toolong' }] } }, 'details.nested.items[1].id', 'longer than 4 characters'],
    [{ name: 'x', nested: { items: [{}] } }, 'details.nested.items[0].id', 'is required'],
    [{ name: 'x', feature: 'on' }, 'details.feature', 'must be a boolean or an object'],
    [{ name: 'x', feature: { level: 9 } }, 'details.feature.level', 'must be between 0 and 3'],
    [{ name: 'x', feature: { lvl: 1 } }, 'details.feature.lvl', 'unknown field; expected one of level'],
    [{ name: 'x', labels: { Bad: 'v' } }, 'details.labels.Bad', 'lower-case keys only'],
    [{ name: 'x', labels: { a: 'v', b: 'v', c: 'v' } }, 'details.labels', 'at most 2 entries'],
    [{ name: 'x', labels: { a: 'value' } }, 'details.labels.a', 'longer than 4 characters'],
  ])('%j → %s: %s', (raw, path, message) => {
    try {
      parseWithSchema(Schema, raw);
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(DetailsError);
      expect({ path: (error as DetailsError).path, message: (error as DetailsError).message }).toEqual({
        path,
        message: `${path}: ${message}`,
      });
    }
  });

  it('takes a null field as not set (an empty YAML value), but not a null list entry', () => {
    expect(parseWithSchema(Schema, { name: 'x', count: null, url: null, nested: null })).toMatchObject({ count: 3, nested: { on: true } });
    expect(() => parseWithSchema(Schema, { name: 'x', tags: [null] })).toThrow('details.tags[0]: must be a string');
  });

  it('names list indexes and map keys apart (a map key may look like a number)', () => {
    expect(() => parseWithSchema(Schema, { name: 'x', labels: { '7': 'value' } })).toThrow('details.labels.7: ');
  });

  it('stops at the first bound hostile input breaks, without walking the rest', () => {
    const started = performance.now();
    expect(() => parseWithSchema(Schema, { name: 'x', tags: Array.from({ length: 1_000_000 }, () => 7) })).toThrow(
      'details.tags: at most 2 entries',
    );
    expect(() => parseWithSchema(Schema, { name: 'x'.repeat(10_000_000) })).toThrow('details.name: longer than 8 characters');
    expect(() =>
      parseWithSchema(Schema, { name: 'x', labels: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 7])) }),
    ).toThrow('details.labels: at most 2 entries');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('reports under the path it is given', () => {
    expect(() => parseWithSchema(Schema, { name: 5 }, 'details.rules[2]')).toThrow('details.rules[2].name: must be a string');
  });
});
