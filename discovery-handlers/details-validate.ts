/**
 * A small JSON Schema validator and defaulter for the handlers' details schemas, standing in
 * for TypeBox's `Value.Check`, `Value.Errors`, `Value.Default` and `Value.Clone` at run time:
 * importing `typebox/value` costs ~28 MiB of RSS (issue 15), and the agent only needs the
 * keywords the details schemas use. It works on the plain JSON of a schema (the serialised
 * `<handler>/details.schema.json`, or a TypeBox schema object: the same JSON).
 *
 * It reproduces TypeBox 1.x exactly where details-parse.ts depends on it: the same errors
 * (keyword, schemaPath, instancePath, params), in the same order (type; object keywords;
 * array; string; number; const; enum; anyOf, each branch's errors before the `anyOf` one),
 * at most 8 per list; defaults applied the same way (a union branch only when the branch then
 * validates; a map's values only when the value schema itself has a default). A keyword it
 * does not know throws, so a schema never silently validates less than it says
 * (details-validate.test.ts runs every handler's schema through it).
 */

type Json = Record<string, unknown>;

/** One validation problem, as TypeBox's `Value.Errors` reports it. */
export interface SchemaError {
  readonly keyword: string;
  readonly schemaPath: string;
  readonly instancePath: string;
  readonly params: Json;
  readonly message: string;
}

/** TypeBox's default error capacity per list (`Settings.maxErrors`). */
const MAX_ERRORS = 8;

/** Keywords that only annotate: no validation meaning. */
const ANNOTATIONS = new Set(['description', 'default', 'examples', 'errorMessage', 'title', '$schema', '$id', 'readOnly', 'writeOnly']);
const KNOWN = new Set([
  ...ANNOTATIONS,
  'type',
  'required',
  'additionalProperties',
  'patternProperties',
  'properties',
  'propertyNames',
  'minProperties',
  'maxProperties',
  'items',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'const',
  'enum',
  'anyOf',
]);

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null;
const isPlainObject = (value: unknown): value is Json => isObject(value) && !Array.isArray(value);
const encode = (fragment: string): string => fragment.replace(/~/g, '~0').replace(/\//g, '~1');

const regexps = new Map<string, RegExp>();
function regexp(pattern: string): RegExp {
  let re = regexps.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, 'u');
    regexps.set(pattern, re);
  }
  return re;
}

function codePoints(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

/** TypeBox's en_US messages for the keywords supported here (bounds: `must be >= 1`). */
const MESSAGES: Readonly<Record<string, (params: Json) => string>> = {
  additionalProperties: () => 'must not have additional properties',
  anyOf: () => 'must match a schema in anyOf',
  boolean: () => 'schema is false',
  const: () => 'must be equal to constant',
  enum: () => 'must be equal to one of the allowed values',
  maxItems: (p) => `must not have more than ${String(p['limit'])} items`,
  maxLength: (p) => `must not have more than ${String(p['limit'])} characters`,
  maxProperties: (p) => `must not have more than ${String(p['limit'])} properties`,
  minItems: (p) => `must not have fewer than ${String(p['limit'])} items`,
  minLength: (p) => `must not have fewer than ${String(p['limit'])} characters`,
  minProperties: (p) => `must not have fewer than ${String(p['limit'])} properties`,
  pattern: (p) => `must match pattern "${String(p['pattern'])}"`,
  propertyNames: (p) => `property names ${(p['propertyNames'] as string[]).join(', ')} are invalid`,
  required: (p) => `must have required properties ${(p['requiredProperties'] as string[]).join(', ')}`,
  type: (p) => (typeof p['type'] === 'string' ? `must be ${p['type']}` : `must be either ${(p['type'] as string[]).join(' or ')}`),
  uniqueItems: () => 'must not have duplicate items',
};

function messageOf(keyword: string, params: Json): string {
  return MESSAGES[keyword]?.(params) ?? `must be ${String(params['comparison'])} ${String(params['limit'])}`;
}

class ErrorList {
  readonly errors: SchemaError[] = [];

  get full(): boolean {
    return this.errors.length >= MAX_ERRORS;
  }

  /** Records a problem (unless full); always false, so `return ok || list.add(…)` reads as TypeBox's code. */
  add(keyword: string, schemaPath: string, instancePath: string, params: Json): false {
    if (!this.full) this.errors.push({ keyword, schemaPath, instancePath, params, message: messageOf(keyword, params) });
    return false;
  }
}

function isType(type: string, value: unknown): boolean {
  switch (type) {
    case 'object':
      return isPlainObject(value);
    case 'array':
      return Array.isArray(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return Number.isFinite(value);
    case 'null':
      return value === null;
    case 'string':
      return typeof value === 'string';
    default:
      throw new Error(`details schema: unsupported type "${type}"`);
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!isObject(a) || !isObject(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

function hashOf(value: unknown): string {
  if (!isObject(value)) return `${typeof value}:${String(value)}`;
  if (Array.isArray(value)) return `[${value.map(hashOf).join(',')}]`;
  return `{${Object.keys(value)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${hashOf(value[k])}`)
    .join(',')}}`;
}

/** `additionalProperties`: every key no property or pattern names must satisfy it. */
function checkAdditional(schema: Json, value: Json, schemaPath: string, instancePath: string, list: ErrorList): boolean {
  const additional = schema['additionalProperties'];
  if (additional === undefined || additional === true || (isPlainObject(additional) && Object.keys(additional).length === 0)) return true;
  const names = Object.keys(isPlainObject(schema['properties']) ? schema['properties'] : {});
  const known = [
    ...Object.keys(isPlainObject(schema['patternProperties']) ? schema['patternProperties'] : {}),
    ...names.map((k) => `^${k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
  ];
  const re = regexp(known.length === 0 ? '(?!)' : `(${known.join('|')})`);
  const extra = Object.getOwnPropertyNames(value).filter(
    (key) =>
      !re.test(key) &&
      !check(additional as Json | boolean, value[key], `${schemaPath}/additionalProperties`, `${instancePath}/${encode(key)}`, list),
  );
  return extra.length === 0 || list.add('additionalProperties', schemaPath, instancePath, { additionalProperties: extra });
}

/** `patternProperties` then `properties`: each value against its schema. */
function checkProperties(schema: Json, value: Json, schemaPath: string, instancePath: string, list: ErrorList): boolean {
  let ok = true;
  const patterns = isPlainObject(schema['patternProperties']) ? schema['patternProperties'] : {};
  for (const [pattern, sub] of Object.entries(patterns)) {
    const re = regexp(pattern);
    for (const [key, v] of Object.entries(value)) {
      if (re.test(key))
        ok = check(sub as Json, v, `${schemaPath}/patternProperties/${encode(pattern)}`, `${instancePath}/${encode(key)}`, list) && ok;
    }
  }
  const required = Array.isArray(schema['required']) ? (schema['required'] as string[]) : [];
  for (const [key, sub] of Object.entries(isPlainObject(schema['properties']) ? schema['properties'] : {})) {
    // As TypeScript (and TypeBox): an optional property may be present as undefined.
    if (!required.includes(key) && value[key] === undefined) continue;
    if (key in value)
      ok = check(sub as Json, value[key], `${schemaPath}/properties/${encode(key)}`, `${instancePath}/${encode(key)}`, list) && ok;
  }
  return ok;
}

function checkObject(schema: Json, value: Json, schemaPath: string, instancePath: string, list: ErrorList): boolean {
  let ok = true;
  const keys = Object.getOwnPropertyNames(value);
  if (Array.isArray(schema['required'])) {
    const missing = (schema['required'] as string[]).filter((key) => !(key in value));
    ok = missing.length === 0 || list.add('required', schemaPath, instancePath, { requiredProperties: missing });
  }
  ok = checkAdditional(schema, value, schemaPath, instancePath, list) && ok;
  ok = checkProperties(schema, value, schemaPath, instancePath, list) && ok;
  if (schema['propertyNames'] !== undefined) {
    const bad = keys.filter(
      (key) => !check(schema['propertyNames'] as Json, key, `${schemaPath}/propertyNames`, `${instancePath}/${encode(key)}`, list),
    );
    ok = (bad.length === 0 || list.add('propertyNames', schemaPath, instancePath, { propertyNames: bad })) && ok;
  }
  for (const [keyword, fails] of [
    ['minProperties', (limit: number) => keys.length < limit],
    ['maxProperties', (limit: number) => keys.length > limit],
  ] as const) {
    const limit = schema[keyword];
    if (typeof limit === 'number' && fails(limit)) ok = list.add(keyword, schemaPath, instancePath, { limit });
  }
  return ok;
}

function checkArray(schema: Json, value: unknown[], schemaPath: string, instancePath: string, list: ErrorList): boolean {
  let ok = true;
  const items = schema['items'];
  if (Array.isArray(items)) throw new Error('details schema: tuple items are not supported');
  if (items !== undefined)
    value.forEach((item, i) => (ok = check(items as Json, item, `${schemaPath}/items`, `${instancePath}/${i}`, list) && ok));
  if (typeof schema['minItems'] === 'number' && value.length < schema['minItems'])
    ok = list.add('minItems', schemaPath, instancePath, { limit: schema['minItems'] });
  if (typeof schema['maxItems'] === 'number' && value.length > schema['maxItems'])
    ok = list.add('maxItems', schemaPath, instancePath, { limit: schema['maxItems'] });
  if (schema['uniqueItems'] !== undefined && schema['uniqueItems'] !== false) {
    const seen = new Set<string>();
    const duplicateItems: number[] = [];
    value.forEach((item, i) => {
      const hash = hashOf(item);
      if (seen.has(hash)) duplicateItems.push(i);
      seen.add(hash);
    });
    if (duplicateItems.length > 0) ok = list.add('uniqueItems', schemaPath, instancePath, { duplicateItems });
  }
  return ok;
}

function checkString(schema: Json, value: string, schemaPath: string, instancePath: string, list: ErrorList): boolean {
  let ok = true;
  const min = schema['minLength'];
  const max = schema['maxLength'];
  if (typeof min === 'number' && value.length < 2 * min && codePoints(value) < min)
    ok = list.add('minLength', schemaPath, instancePath, { limit: min });
  if (typeof max === 'number' && value.length > max && codePoints(value) > max)
    ok = list.add('maxLength', schemaPath, instancePath, { limit: max });
  if (typeof schema['pattern'] === 'string' && !regexp(schema['pattern']).test(value))
    ok = list.add('pattern', schemaPath, instancePath, { pattern: schema['pattern'] });
  return ok;
}

function checkNumber(schema: Json, value: number, schemaPath: string, instancePath: string, list: ErrorList): boolean {
  const bounds: [string, string, (limit: number) => boolean][] = [
    ['exclusiveMinimum', '>', (limit) => value > limit],
    ['exclusiveMaximum', '<', (limit) => value < limit],
    ['minimum', '>=', (limit) => value >= limit],
    ['maximum', '<=', (limit) => value <= limit],
  ];
  let ok = true;
  for (const [keyword, comparison, holds] of bounds) {
    const limit = schema[keyword];
    if (typeof limit === 'number' && !holds(limit)) ok = list.add(keyword, schemaPath, instancePath, { comparison, limit });
  }
  return ok;
}

function checkAnyOf(branches: unknown[], value: unknown, schemaPath: string, instancePath: string, list: ErrorList): boolean {
  const failed: ErrorList[] = [];
  let matched = false;
  branches.forEach((branch, i) => {
    const own = new ErrorList();
    if (check(branch as Json, value, `${schemaPath}/anyOf/${i}`, instancePath, own)) matched = true;
    else failed.push(own);
  });
  if (matched) return true;
  for (const errors of failed) for (const e of errors.errors) if (!list.full) list.errors.push(e);
  return list.add('anyOf', schemaPath, instancePath, {});
}

function refuseUnknownKeywords(schema: Json): void {
  for (const keyword of Object.keys(schema)) {
    if (!KNOWN.has(keyword) && !keyword.startsWith('x-') && !keyword.startsWith('~'))
      throw new Error(`details schema: keyword "${keyword}" is not supported (discovery-handlers/details-validate.ts)`);
  }
}

/** The keywords of one kind of value (object, array, string, number), in TypeBox's order. */
function checkByKind(schema: Json, value: unknown, schemaPath: string, instancePath: string, list: ErrorList): boolean {
  if (isPlainObject(value)) return checkObject(schema, value, schemaPath, instancePath, list);
  if (Array.isArray(value)) return checkArray(schema, value, schemaPath, instancePath, list);
  if (typeof value === 'string') return checkString(schema, value, schemaPath, instancePath, list);
  if (typeof value === 'number' && Number.isFinite(value)) return checkNumber(schema, value, schemaPath, instancePath, list);
  return true;
}

function check(schema: Json | boolean, value: unknown, schemaPath: string, instancePath: string, list: ErrorList): boolean {
  if (list.full) return false;
  if (typeof schema === 'boolean') return schema || list.add('boolean', schemaPath, instancePath, {});
  refuseUnknownKeywords(schema);
  let ok = true;
  const type = schema['type'];
  if (type !== undefined) {
    const types = Array.isArray(type) ? (type as string[]) : [type as string];
    ok = types.some((t) => isType(t, value)) || list.add('type', schemaPath, instancePath, { type });
  }
  ok = checkByKind(schema, value, schemaPath, instancePath, list) && ok;
  if ('const' in schema && !deepEqual(value, schema['const']))
    ok = list.add('const', schemaPath, instancePath, { allowedValue: schema['const'] });
  if (Array.isArray(schema['enum']) && !schema['enum'].some((option) => deepEqual(value, option)))
    ok = list.add('enum', schemaPath, instancePath, { allowedValues: schema['enum'] });
  if (Array.isArray(schema['anyOf'])) ok = checkAnyOf(schema['anyOf'], value, schemaPath, instancePath, list) && ok;
  return ok;
}

/** True when `value` satisfies `schema` (TypeBox's `Value.Check`). */
export function checkValue(schema: unknown, value: unknown): boolean {
  return check(schema as Json, value, '#', '', new ErrorList());
}

/** The problems of `value` against `schema`, at most 8 (TypeBox's `Value.Errors`). */
export function valueErrors(schema: unknown, value: unknown): SchemaError[] {
  const list = new ErrorList();
  check(schema as Json, value, '#', '', list);
  return list.errors;
}

/** A deep copy of JSON-like data (TypeBox's `Value.Clone` for what details hold). */
export function cloneValue<T>(value: T): T {
  if (!isObject(value)) return value;
  if (Array.isArray(value)) return value.map(cloneValue) as T;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cloneValue(v)])) as T;
}

/**
 * Fills in defaults where values are missing (TypeBox's `Value.Default`); mutates and returns
 * `value`. A union takes the first branch whose defaulted copy then validates; a map (object
 * with patternProperties) defaults its values only when the value schema has a default itself.
 */
export function defaultValue(schema: unknown, value: unknown): unknown {
  if (!isPlainObject(schema)) return value;
  const defaulted = value === undefined && 'default' in schema ? cloneValue(schema['default']) : value;
  if (Array.isArray(schema['anyOf'])) {
    for (const branch of schema['anyOf']) {
      const result = defaultValue(branch, cloneValue(defaulted));
      if (checkValue(branch, result)) return result;
    }
    return defaulted;
  }
  if (schema['type'] === 'array' && isPlainObject(schema['items']) && Array.isArray(defaulted)) {
    for (let i = 0; i < defaulted.length; i++) defaulted[i] = defaultValue(schema['items'], defaulted[i]);
    return defaulted;
  }
  // As TypeBox: an array given for an object schema gets the object's defaults too (it fails
  // the type check either way).
  if (!isObject(defaulted)) return defaulted;
  if (isPlainObject(schema['properties'])) return defaultObject(schema, schema['properties'], defaulted);
  if (isPlainObject(schema['patternProperties'])) return defaultMap(schema['patternProperties'], defaulted);
  return defaulted;
}

function defaultObject(schema: Json, properties: Json, value: Json): Json {
  const known = Object.keys(properties);
  for (const key of known) {
    const property = defaultValue(properties[key], value[key]);
    if (property !== undefined) value[key] = property;
  }
  const additional = schema['additionalProperties'];
  if (isPlainObject(additional)) {
    for (const key of Object.getOwnPropertyNames(value)) if (!known.includes(key)) value[key] = defaultValue(additional, value[key]);
  }
  return value;
}

function defaultMap(patterns: Json, value: Json): Json {
  const [pattern, sub] = Object.entries(patterns)[0] ?? [];
  if (pattern === undefined || !isPlainObject(sub) || !('default' in sub)) return value;
  const re = new RegExp(pattern);
  for (const key of Object.getOwnPropertyNames(value)) if (re.test(key)) value[key] = defaultValue(sub, value[key]);
  return value;
}
