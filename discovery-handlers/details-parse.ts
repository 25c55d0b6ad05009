/**
 * Validates a handler's raw `details` against its schema (the one description of the field
 * types, bounds and defaults: written with TypeBox in `<handler>/schema.ts`, used at run time as
 * its serialised JSON, `<handler>/details.schema.json`) and turns the first problem into a
 * DetailsError naming the field: `details.brokers[1]: must be a string`. Defaults are applied
 * here, once, before validation — a field with a default is never missing from the result.
 * Validation is details-validate.ts's, not TypeBox's: TypeBox stays out of the agent's memory.
 *
 * Each handler's details.ts calls {@link parseWithSchema} first, then runs the small code the
 * schema cannot express (cross-field rules, compiling patterns and templates).
 */
import type { Static, TSchema } from 'typebox';
import { DetailsError } from './contract.ts';
import { detailsFromText } from './details-text.ts';
import { checkValue, cloneValue, defaultValue, valueErrors, type SchemaError } from './details-validate.ts';

type Json = Record<string, unknown>;

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
  for (const segment of schemaPath
    .replace(/^#\/?/, '')
    .split('/')
    .filter((s) => s !== '')) {
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

/** What one error says, with everything a message may need. */
interface Failure {
  readonly error: SchemaError;
  /** The schema node that failed. */
  readonly node: Json;
  /** Field path and value of the instance that failed. */
  readonly path: string;
  readonly value: unknown;
  /** All errors considered (a union reports one type error per branch). */
  readonly all: readonly SchemaError[];
}

type Describe = (f: Failure) => { path?: string; message: string };

const limit = (f: Failure): string => String(f.error.params['limit']);
const first = <T>(f: Failure, key: string, fallback: T): T => ((f.error.params[key] as T[] | undefined) ?? [])[0] ?? fallback;
const bounded = (f: Failure, fallback: string): string =>
  typeof f.node['minimum'] === 'number' && typeof f.node['maximum'] === 'number'
    ? `must be between ${f.node['minimum']} and ${f.node['maximum']}`
    : fallback;

/** Messages in the handlers' usual words, by JSON Schema keyword. */
const DESCRIBE: Readonly<Record<string, Describe>> = {
  required: (f) => ({ path: `${f.path}.${first(f, 'requiredProperties', '')}`, message: 'is required' }),
  additionalProperties: (f) => ({
    path: `${f.path}.${first(f, 'additionalProperties', '')}`,
    message: `unknown field; expected one of ${Object.keys(isObject(f.node['properties']) ? f.node['properties'] : {}).join(', ')}`,
  }),
  uniqueItems: (f) => {
    const index = first(f, 'duplicateItems', 0);
    return {
      path: `${f.path}[${index}]`,
      message: `duplicate entry ${JSON.stringify(Array.isArray(f.value) ? f.value[index] : undefined)}`,
    };
  },
  type: (f) => {
    const types = f.all
      .filter((e) => e.keyword === 'type' && e.instancePath === f.error.instancePath)
      .flatMap((e) => [e.params['type']].flat() as string[]);
    return { message: `must be ${[...new Set(types)].map((t) => TYPE_NAMES[t] ?? t).join(' or ')}` };
  },
  minimum: (f) => ({ message: bounded(f, `must be at least ${limit(f)}`) }),
  maximum: (f) => ({ message: bounded(f, `must be at most ${limit(f)}`) }),
  exclusiveMinimum: (f) => ({ message: `must be greater than ${limit(f)}` }),
  exclusiveMaximum: (f) => ({ message: `must be less than ${limit(f)}` }),
  minLength: (f) => ({ message: f.error.params['limit'] === 1 ? 'must not be empty' : `must be at least ${limit(f)} characters` }),
  maxLength: (f) => ({ message: `longer than ${limit(f)} characters` }),
  minItems: (f) => ({ message: `needs at least ${entries(f.error.params['limit'] as number)}` }),
  minProperties: (f) => ({ message: `needs at least ${entries(f.error.params['limit'] as number)}` }),
  maxItems: (f) => ({ message: `at most ${entries(f.error.params['limit'] as number)}` }),
  maxProperties: (f) => ({ message: `at most ${entries(f.error.params['limit'] as number)}` }),
  pattern: (f) => ({ message: `must match ${String(f.error.params['pattern'])}` }),
  enum: (f) => ({
    message: `must be one of ${(f.error.params['allowedValues'] as unknown[]).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}`,
  }),
  const: (f) => ({ message: `must be ${JSON.stringify(f.error.params['allowedValue'])}` }),
};

/** The problem as one DetailsError (path + message in the handlers' usual words). */
function toDetailsError(root: Json, errors: readonly SchemaError[], value: unknown, base: string): DetailsError {
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
  const depth = (e: SchemaError): number =>
    e.instancePath.split('/').length + (['required', 'additionalProperties', 'uniqueItems'].includes(e.keyword) ? 1 : 0);
  const error = candidates.reduce((best, e) => (depth(e) > depth(best) ? e : best));
  const node = schemaAt(root, error.schemaPath);
  const at = fieldPath(base, value, error.instancePath);
  // A value that fits no branch of a union: the union's own words, when it has them.
  const union =
    error.keyword === 'type' || error.keyword === 'const'
      ? errors.find((e) => e.keyword === 'anyOf' && e.instancePath === error.instancePath)
      : undefined;
  const hint = union === undefined ? node['errorMessage'] : (schemaAt(root, union.schemaPath)['errorMessage'] ?? node['errorMessage']);
  if (typeof hint === 'string' && HINTED_KEYWORDS.has(error.keyword)) return new DetailsError(at.path, hint);
  const described = DESCRIBE[error.keyword]?.({ error, node, path: at.path, value: at.value, all: candidates }) ?? {
    message: error.message,
  };
  const message = isObject(hint) && typeof hint[error.keyword] === 'string' ? (hint[error.keyword] as string) : described.message;
  return new DetailsError(described.path ?? at.path, message);
}

/**
 * Throws at the first list, map or string longer than its schema allows, looking at nothing
 * beyond a bound: hostile input (a million list entries) costs what its bounded part costs,
 * before anything copies or walks it all.
 */
function checkBounds(node: Json, value: unknown, path: string): void {
  const tooLong = (max: unknown, length: number): max is number => typeof max === 'number' && length > max;
  if (Array.isArray(value)) {
    if (tooLong(node['maxItems'], value.length)) throw new DetailsError(path, `at most ${entries(node['maxItems'])}`);
    const items = node['items'];
    if (isObject(items)) value.forEach((item, i) => checkBounds(items, item, `${path}[${i}]`));
  } else if (typeof value === 'string') {
    if (tooLong(node['maxLength'], value.length)) throw new DetailsError(path, `longer than ${node['maxLength']} characters`);
  } else if (isObject(value)) {
    if (tooLong(node['maxProperties'], Object.keys(value).length))
      throw new DetailsError(path, `at most ${entries(node['maxProperties'])}`);
    for (const [key, child] of Object.entries(value)) {
      const schema = childSchema(node, key);
      if (schema !== undefined) checkBounds(schema, child, `${path}.${key}`);
    }
  }
  for (const branch of Array.isArray(node['anyOf']) ? (node['anyOf'] as unknown[]) : [])
    if (isObject(branch)) checkBounds(branch, value, path);
}

/** The schema of an object's field `key`: a declared property, else the map's value schema. */
function childSchema(node: Json, key: string): Json | undefined {
  const properties = isObject(node['properties']) ? node['properties'] : {};
  const schema = Object.hasOwn(properties, key) ? properties[key] : mapValues(node);
  return isObject(schema) ? schema : undefined;
}

function mapValues(node: Json): Json | undefined {
  if (isObject(node['additionalProperties'])) return node['additionalProperties'];
  const patterns = node['patternProperties'];
  return isObject(patterns) ? Object.values(patterns).find(isObject) : undefined;
}

/**
 * The smallest part of `value` that fails: descends into the one property, list entry or map
 * value that fails on its own, so that valueErrors (which lists every error) runs on a small
 * subtree rather than on all of a large, wrong input.
 */
function failingPart(schema: Json, value: unknown, pointer = ''): { schema: Json; pointer: string } {
  const node = schema;
  const escape = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');
  const children: [string, unknown, unknown][] = [];
  if (Array.isArray(value) && isObject(node['items'])) value.forEach((item, i) => children.push([String(i), node['items'], item]));
  if (isObject(value)) for (const [key, child] of Object.entries(value)) children.push([key, childSchema(node, key), child]);
  for (const [key, child, item] of children) {
    if (isObject(child) && !checkValue(child, item)) return failingPart(child, item, `${pointer}/${escape(key)}`);
  }
  return { schema, pointer };
}

/**
 * Applies the schema's defaults to a copy of `raw` (a null field counts as absent), validates it and
 * returns it typed by the schema. Throws DetailsError at the first problem's field (`base` is
 * the path of `raw` itself, `details` unless a sub-schema is parsed). `schema` is the TypeBox
 * schema or its serialised JSON (then name the TypeBox type: `parseWithSchema<typeof X>(json, raw)`).
 */
export function parseWithSchema<const Schema extends TSchema>(schema: Schema | object, text: unknown, base = 'details'): Static<Schema> {
  const root = schema as Json;
  const raw = detailsFromText(text, base);
  checkBounds(root, raw, base);
  const value = defaultValue(root, raw === null || raw === undefined ? undefined : withoutNulls(cloneValue(raw)));
  if (checkValue(root, value)) return value as Static<Schema>;
  const part = failingPart(root, value);
  const at = part.pointer === '' ? value : pointerValue(value, part.pointer);
  const errors = valueErrors(part.schema, at).map((e) => ({ ...e, instancePath: `${part.pointer}${e.instancePath}` }));
  throw toDetailsError(part.schema, errors, value, base);
}

/**
 * `value` with every null field removed (in place): `limits:` left empty in YAML is null and
 * means "not set", as it always has for these details. List entries stay as they are.
 */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) value.forEach(withoutNulls);
  else if (isObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      if (child === null) delete value[key];
      else withoutNulls(child);
    }
  }
  return value;
}

function pointerValue(value: unknown, pointer: string): unknown {
  let current = value;
  for (const segment of pointer.split('/').slice(1).map(unescapePointer)) {
    current = Array.isArray(current) ? current[Number(segment)] : isObject(current) ? current[segment] : undefined;
  }
  return current;
}
