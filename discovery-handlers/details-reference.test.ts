import { describe, expect, it } from 'vitest';
import {
  exampleDetails,
  fieldRows,
  limitsOf,
  renderDetailsHelp,
  renderMarkdownTable,
  typeName,
  type JsonSchema,
} from './details-reference.ts';

describe('typeName and limitsOf', () => {
  it.each<[JsonSchema, string, string]>([
    [{ type: 'string', minLength: 1, maxLength: 64, errorMessage: 'must be a URL' }, 'string', '1–64 chars; must be a URL'],
    [{ type: 'string', maxLength: 6, pattern: '^[0-9]+$' }, 'string', '≤ 6 chars; matches /^[0-9]+$/'],
    [{ type: 'integer', minimum: 5, maximum: 3600 }, 'integer', '5–3600'],
    [{ type: 'number', minimum: 0.5 }, 'number', '≥ 0.5'],
    [
      { type: 'array', items: { type: 'string', maxLength: 4 }, minItems: 1, maxItems: 16, uniqueItems: true },
      'list of string',
      '1–16 entries; unique; each: ≤ 4 chars',
    ],
    [{ type: 'array', items: { type: 'object', properties: {} }, maxItems: 2 }, 'list of objects', '≤ 2 entries'],
    [{ enum: ['device', 'entity'] }, 'device | entity', ''],
    [{ enum: [5, '3.1.1'] }, '5 | "3.1.1"', ''],
    [{ anyOf: [{ type: 'boolean' }, { type: 'object', properties: {} }] }, 'boolean or object', ''],
    [
      {
        type: 'object',
        patternProperties: { '^.*$': { type: 'string', maxLength: 4 } },
        maxProperties: 8,
        propertyNames: { pattern: '^[a-z]+$' },
      },
      'map of string',
      '≤ 8 entries; keys: matches /^[a-z]+$/; values: ≤ 4 chars',
    ],
  ])('%j → %s (%s)', (node, type, limits) => {
    expect(typeName(node)).toBe(type);
    expect(limitsOf(node)).toBe(limits);
  });
});

const schema: JsonSchema = {
  type: 'object',
  description: 'Finds things.',
  required: ['name', 'count'],
  properties: {
    name: { type: 'string', maxLength: 8, description: 'The name.' },
    count: { type: 'integer', minimum: 1, maximum: 9, default: 3, description: 'How many.' },
    limits: { type: 'object', default: {}, description: 'Bounds.', properties: { max: { type: 'integer', default: 10 } } },
    rules: {
      type: 'array',
      maxItems: 2,
      items: { type: 'object', required: ['topic'], properties: { topic: { type: 'string', maxLength: 9, description: 'A | B' } } },
    },
    a: {
      anyOf: [{ type: 'boolean' }, { type: 'object', properties: { x: { type: 'boolean', default: false } } }],
      description: 'Switch A.',
    },
    b: {
      anyOf: [{ type: 'boolean' }, { type: 'object', properties: { x: { type: 'boolean', default: false } } }],
      description: 'Switch B.',
    },
  },
  examples: [{ name: 'n' }],
};

describe('fieldRows', () => {
  it('lists every field depth first, with required fields, defaults and shared shapes once', () => {
    expect(fieldRows(schema).map((r) => [r.path, r.default, r.description])).toEqual([
      ['name', 'required', 'The name.'],
      ['count', '3', 'How many.'],
      ['limits', '', 'Bounds.'],
      ['limits.max', '10', ''],
      ['rules', '', ''],
      ['rules[].topic', 'required', 'A | B'],
      ['a', '', 'Switch A.'],
      ['a.x', 'false', ''],
      ['b', '', 'Switch B. Same fields as a.'],
    ]);
  });
});

describe('rendering', () => {
  it('a markdown table with | escaped and required in bold', () => {
    const table = renderMarkdownTable(fieldRows(schema));
    expect(table.split('\n')[0]).toBe('| field | type | default | limits | description |');
    expect(table).toContain('| `name` | string | **required** | ≤ 8 chars | The name. |');
    expect(table).toContain('| `rules[].topic` | string | **required** | ≤ 9 chars | A \\| B |');
  });

  it('help text with the fields and an example --details', () => {
    const help = renderDetailsHelp('thing', schema);
    expect(help).toContain('Handler thing:\n  Finds things.\n');
    expect(help).toMatch(/^ {2}count {2}\(integer; default 3; 1–9\)\n {6}How many\.$/m);
    expect(help).toContain(`tether discover thing --details '{"name":"n"}'`);
    expect(exampleDetails({})).toBeUndefined();
  });
});
