/**
 * Validates a handler's raw `details` against its TypeBox schema (the one description of the
 * field types, bounds and defaults) and turns the first problem into a DetailsError naming the
 * field: `details.brokers[1]: must be a string`. Defaults are applied here, once, before
 * validation — a field with a default is never missing from the result.
 *
 * Each handler's details.ts calls {@link parseWithSchema} first, then runs the small code the
 * schema cannot express (cross-field rules, compiling patterns and templates).
 */
import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { DetailsError } from '../contract.ts';

type Json = Record<string, unknown>;

interface SchemaError {
  readonly keyword: string;
  readonly schemaPath: string;
  readonly instancePath: string;
  readonly params: Json;
  readonly message: string;
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Keywords that only summarise errors reported more precisely elsewhere. */
const SUMMARY_KEYWORDS = new Set(['anyOf', 'oneOf', 'boolean', 'propertyNames']);
/** Keywords whose message a schema node's `errorMessage` replaces (bounds keep their own). */
const HINTED_KEYWORDS = new Set(['type', 'pattern', 'enum', 'const', 'format']);

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** The schema node a `#/properties/a/items` path points at. */
function schemaAt(root: unknown, schemaPath: string): Json {
  let node: unknown = root;
  for (const segment of schemaPath.replace(/^#\/?/, '').split('/').filter((s) => s !== '')) {
    node = isObject(node) || Array.isArray(node) ? (node as Record<string, unknown>)[unescapePointer(segment)] : undefined;
  }
  return isObject(node) ? node : {};
}

/** `details.brokers[1].url` from `/brokers/1/url`, reading the value to tell list indexes from map keys. */
function fieldPath(base: string, value: unknown, instancePath: string): { path: string; value: unknown } {
  let path = base;
  let current = value;
  for (const segment of instancePath.split('/').slice(1).map(unescapePointer)) {
    if (Array.isArray(current)) {
      path += `[${segment}]`;
      current = current[Number(segment)];
    } else {
      path += `.${segment}`;
      current = isObject(current) ? current[segment] : undefined;
    }
  }
  return { path, value: current };
}

function entries(n: number): string {
  return `${n} entr${n === 1 ? 'y' : 'ies'}`;
}

function between(node: Json, fallback: string): string {
  const min = node['minimum'] ?? node['exclusiveMinimum'];
  const max = node['maximum'] ?? node['exclusiveMaximum'];
  if (typeof node['minimum'] === 'number' && typeof node['maximum'] === 'number') return `must be between ${String(min)} and ${String(max)}`;
  return fallback;
}

/** The problem as one DetailsError (path + message in the handlers' usual words). */
function toDetailsError(root: TSchema, errors: readonly SchemaError[], value: unknown, base: string): DetailsError {
  // Value.Default fills a union branch only when the branch then validates, so an invalid
  // branch also reports its defaulted fields as missing: not the problem to show.
  const missingDefault = (e: SchemaError): boolean => {
    if (e.keyword !== 'required') return false;
    const properties = schemaAt(root, e.schemaPath)['properties'];
    const missing = (e.params['requiredProperties'] as string[] | undefined) ?? [];
    return isObject(properties) && missing.every((name) => isObject(properties[name]) && properties[name]['default'] !== undefined);
  };
  const relevant = errors.filter((e) => !SUMMARY_KEYWORDS.has(e.keyword) && !missingDefault(e));
  const candidates = relevant.length > 0 ? relevant : errors;
  // The deepest problem is the most precise one; among equals, the first reported.
  const depth = (e: SchemaError): number => e.instancePath.split('/').length + (['required', 'additionalProperties', 'uniqueItems'].includes(e.keyword) ? 1 : 0);
  const chosen = candidates.reduce((best, e) => (depth(e) > depth(best) ? e : best));
  const node = schemaAt(root, chosen.schemaPath);
  const at = fieldPath(base, value, chosen.instancePath);
  const params = chosen.params;
  const hint = typeof node['errorMessage'] === 'string' ? node['errorMessage'] : undefined;
  if (hint !== undefined && HINTED_KEYWORDS.has(chosen.keyword)) return new DetailsError(at.path, hint);
  switch (chosen.keyword) {
    case 'required': {
      const missing = (params['requiredProperties'] as string[] | undefined)?.[0] ?? '';
      return new DetailsError(`${at.path}.${missing}`, 'is required');
    }
    case 'additionalProperties': {
      const extra = (params['additionalProperties'] as string[] | undefined)?.[0] ?? '';
      const known = Object.keys(isObject(node['properties']) ? node['properties'] : {});
      return new DetailsError(`${at.path}.${extra}`, `unknown field; expected one of ${known.join(', ')}`);
    }
    case 'uniqueItems': {
      const index = (params['duplicateItems'] as number[] | undefined)?.[0] ?? 0;
      const item = Array.isArray(at.value) ? (at.value[index] as unknown) : undefined;
      return new DetailsError(`${at.path}[${index}]`, `duplicate entry ${JSON.stringify(item)}`);
    }
    case 'type': {
      // Every type a value here may have (a union reports one error per branch).
      const types = candidates.filter((e) => e.keyword === 'type' && e.instancePath === chosen.instancePath).flatMap((e) => [e.params['type']].flat() as string[]);
      return new DetailsError(at.path, `must be ${[...new Set(types)].map((t) => TYPE_NAMES[t] ?? t).join(' or ')}`);
    }
    case 'minimum':
    case 'maximum':
      return new DetailsError(at.path, between(node, `must be ${chosen.keyword === 'minimum' ? 'at least' : 'at most'} ${String(params['limit'])}`));
    case 'exclusiveMinimum':
      return new DetailsError(at.path, `must be greater than ${String(params['limit'])}`);
    case 'exclusiveMaximum':
      return new DetailsError(at.path, `must be less than ${String(params['limit'])}`);
    case 'minLength':
      return new DetailsError(at.path, params['limit'] === 1 ? 'must not be empty' : `must be at least ${String(params['limit'])} characters`);
    case 'maxLength':
      return new DetailsError(at.path, `longer than ${String(params['limit'])} characters`);
    case 'minItems':
    case 'minProperties':
      return new DetailsError(at.path, `needs at least ${entries(params['limit'] as number)}`);
    case 'maxItems':
    case 'maxProperties':
      return new DetailsError(at.path, `at most ${entries(params['limit'] as number)}`);
    case 'pattern':
      return new DetailsError(at.path, `must match ${String(params['pattern'])}`);
    case 'enum':
      return new DetailsError(at.path, `must be one of ${(params['allowedValues'] as unknown[]).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}`);
    case 'const':
      return new DetailsError(at.path, `must be ${JSON.stringify(params['allowedValue'])}`);
    default:
      return new DetailsError(at.path, chosen.message);
  }
}

/**
 * Applies the schema's defaults to a copy of `raw` (null counts as absent), validates it and
 * returns it typed by the schema. Throws DetailsError at the first problem's field (`base` is
 * the path of `raw` itself, `details` unless a sub-schema is parsed).
 */
export function parseWithSchema<const Schema extends TSchema>(schema: Schema, raw: unknown, base = 'details'): Static<Schema> {
  const value = Value.Default(schema, raw === null || raw === undefined ? undefined : Value.Clone(raw));
  if (Value.Check(schema, value)) return value;
  throw toDetailsError(schema, Value.Errors(schema, value) as unknown as SchemaError[], value, base);
}
