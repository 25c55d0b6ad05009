/**
 * details-validate.ts against TypeBox itself, on every handler's serialised details schema:
 * the same Check, the same Errors (keyword, paths, params, order) and the same Default, for
 * inputs shaped by each schema (right and wrong types, bounds, unknown fields, nulls).
 */
import fc from 'fast-check';
import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { BUILTIN_HANDLER_NAMES } from './names.ts';
import { DETAILS_SCHEMAS } from './details-docs.ts';
import { DETAILS_JSON_SCHEMAS } from './details-schemas.ts';
import { checkValue, cloneValue, defaultValue, valueErrors } from './details-validate.ts';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Values shaped by `schema`, with some wrong ones mixed in. */
function shaped(schema: unknown, depth = 0): fc.Arbitrary<unknown> {
  const wrong = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -2, max: 70_000 }),
    fc.string({ maxLength: 4 }),
    fc.constant([]),
    fc.constant({}),
  );
  if (!isObject(schema) || depth > 4) return wrong;
  const options: fc.Arbitrary<unknown>[] = [];
  if (Array.isArray(schema['anyOf'])) options.push(...schema['anyOf'].map((b) => shaped(b, depth + 1)));
  if (Array.isArray(schema['enum'])) options.push(fc.constantFrom(...(schema['enum'] as unknown[])));
  if (isObject(schema['properties'])) {
    const props = schema['properties'];
    const record = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, shaped(v, depth + 1)]));
    options.push(
      fc
        .tuple(fc.record(record, { requiredKeys: [] }), fc.option(fc.constantFrom('extra', 'Bad Key'), { nil: undefined }))
        .map(([r, extra]) => (extra === undefined ? r : { ...r, [extra]: 1 })),
    );
  }
  if (isObject(schema['patternProperties']))
    options.push(
      fc.dictionary(fc.constantFrom('a', 'b', 'Key', 'x-y', '7'), shaped(Object.values(schema['patternProperties'])[0], depth + 1), {
        maxKeys: 4,
      }),
    );
  if (schema['type'] === 'array') options.push(fc.array(shaped(schema['items'], depth + 1), { maxLength: 4 }));
  if (schema['type'] === 'string') {
    const examples = Array.isArray(schema['examples']) ? (schema['examples'] as unknown[]) : [];
    options.push(fc.string({ maxLength: 12 }), fc.constantFrom('', 'a', 'mqtt://h:1883', '_tcp', 'x'.repeat(70), ...examples));
  }
  if (schema['type'] === 'integer' || schema['type'] === 'number') {
    const min = typeof schema['minimum'] === 'number' ? schema['minimum'] : 0;
    const max = typeof schema['maximum'] === 'number' ? schema['maximum'] : 100;
    options.push(fc.constantFrom(min - 1, min, max, max + 1, 1.5));
  }
  if (schema['type'] === 'boolean') options.push(fc.boolean());
  return options.length === 0 ? wrong : fc.oneof({ arbitrary: fc.oneof(...options), weight: 6 }, { arbitrary: wrong, weight: 1 });
}

const strip = (errors: readonly { keyword: string; schemaPath: string; instancePath: string; params: unknown }[]): unknown[] =>
  errors.map(({ keyword, schemaPath, instancePath, params }) => ({ keyword, schemaPath, instancePath, params }));

describe('details-validate.ts does what TypeBox does', () => {
  it.each(BUILTIN_HANDLER_NAMES)('%s: Check, Errors and Default agree', async (name) => {
    // Ours runs on the serialised JSON (as the agent does), TypeBox on its own schema objects.
    const schema = await DETAILS_JSON_SCHEMAS[name]();
    const typebox = await DETAILS_SCHEMAS[name]();
    fc.assert(
      fc.property(shaped(schema), (value) => {
        expect(checkValue(schema, value)).toBe(Value.Check(typebox, value));
        expect(strip(valueErrors(schema, value))).toEqual(strip([...Value.Errors(typebox, value)]));
        const ours = defaultValue(schema, cloneValue(value));
        const theirs = Value.Default(typebox, Value.Clone(value));
        expect(ours).toEqual(theirs);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a keyword it does not implement', () => {
    expect(() => checkValue({ type: 'string', format: 'uri' }, 'x')).toThrow('keyword "format" is not supported');
  });
});
