/**
 * The reference of a handler's `details`, read from its schema as plain JSON Schema (the
 * TypeBox schema in `<handler>/schema.ts`, or its serialised `details.schema.json`): one row
 * per field with its type, default, limits and description. Rendered as the docs table
 * (details-docs.ts) and as `tether discover <handler> --help`. Imports nothing, so the CLI's
 * help never loads TypeBox or a handler.
 */

/** A JSON Schema node, as far as the reference reads it. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** One field of the details. */
export interface FieldRow {
  /** `brokers[]`, `limits.maxDevices`, `generic[].presence.online`. */
  readonly path: string;
  readonly type: string;
  /** The default as JSON, `required`, or empty (optional, no default). */
  readonly default: string;
  readonly limits: string;
  readonly description: string;
}

const isSchema = (value: unknown): value is JsonSchema => typeof value === 'object' && value !== null && !Array.isArray(value);

function properties(node: JsonSchema): Record<string, JsonSchema> | undefined {
  return isSchema(node['properties']) ? (node['properties'] as Record<string, JsonSchema>) : undefined;
}

/** The value schema of a map (`additionalProperties` or TypeBox's `patternProperties: {'^.*$': …}`). */
function mapValues(node: JsonSchema): JsonSchema | undefined {
  if (isSchema(node['additionalProperties'])) return node['additionalProperties'];
  const patterns = node['patternProperties'];
  return isSchema(patterns) ? Object.values(patterns).find(isSchema) : undefined;
}

function branches(node: JsonSchema): JsonSchema[] {
  return Array.isArray(node['anyOf']) ? (node['anyOf'] as unknown[]).filter(isSchema) : [];
}

function json(value: unknown): string {
  return JSON.stringify(value);
}

/** `string`, `list of string`, `device | entity`, `boolean or object`, `map of string`. */
export function typeName(node: JsonSchema): string {
  if (Array.isArray(node['enum'])) {
    const values = node['enum'] as unknown[];
    const mixed = values.some((v) => typeof v !== 'string');
    return values.map((v) => (mixed ? json(v) : String(v))).join(' | ');
  }
  if ('const' in node) return json(node['const']);
  if (branches(node).length > 0) return [...new Set(branches(node).map(typeName))].join(' or ');
  const type = node['type'];
  if (type === 'array') return `list of ${isSchema(node['items']) ? plural(typeName(node['items'])) : 'values'}`;
  if (type === 'object') {
    const values = mapValues(node);
    return values === undefined ? 'object' : `map of ${typeName(values)}`;
  }
  return typeof type === 'string' ? type : 'any';
}

function plural(type: string): string {
  return type === 'object' ? 'objects' : type;
}

function range(min: unknown, max: unknown, unit: string): string | undefined {
  const has = (v: unknown): v is number => typeof v === 'number';
  if (has(min) && has(max)) return min === max ? `${min}${unit}` : `${min}–${max}${unit}`;
  if (has(min)) return `≥ ${min}${unit}`;
  if (has(max)) return `≤ ${max}${unit}`;
  return undefined;
}

function hint(node: JsonSchema): string | undefined {
  const message = node['errorMessage'];
  if (typeof message === 'string') return message;
  return typeof node['pattern'] === 'string' ? `matches /${node['pattern']}/` : undefined;
}

function arrayLimits(node: JsonSchema): (string | undefined)[] {
  const items = isSchema(node['items']) ? node['items'] : undefined;
  const each = items !== undefined && properties(items) === undefined ? limitsOf(items) : '';
  return [
    range(node['minItems'], node['maxItems'], ' entries'),
    node['uniqueItems'] === true ? 'unique' : undefined,
    each === '' ? undefined : `each: ${each}`,
  ];
}

function objectLimits(node: JsonSchema): (string | undefined)[] {
  const names = isSchema(node['propertyNames']) ? limitsOf({ type: 'string', ...node['propertyNames'] }) : '';
  const values = mapValues(node);
  const each = values === undefined ? '' : limitsOf(values);
  return [
    range(node['minProperties'], node['maxProperties'], ' entries'),
    names === '' ? undefined : `keys: ${names}`,
    each === '' ? undefined : `values: ${each}`,
  ];
}

/** Bounds of one node: lengths, ranges, entry counts, formats (`1–2048 chars; must be a URL like …`). */
export function limitsOf(node: JsonSchema): string {
  const parts: (string | undefined)[] =
    node['type'] === 'string'
      ? [range(node['minLength'], node['maxLength'], ' chars'), hint(node)]
      : node['type'] === 'integer' || node['type'] === 'number'
        ? [range(node['minimum'], node['maximum'], '')]
        : node['type'] === 'array'
          ? arrayLimits(node)
          : node['type'] === 'object'
            ? objectLimits(node)
            : branches(node).map((branch) => limitsOf(branch));
  return parts.filter((p): p is string => p !== undefined && p !== '').join('; ');
}

function defaultOf(node: JsonSchema, required: boolean): string {
  const value = node['default'];
  if (value === undefined) return required ? 'required' : '';
  // An object's default ({}) only says "its fields' defaults apply": they have their own rows.
  if (isSchema(value) && Object.keys(value).length === 0 && properties(node) !== undefined) return '';
  return json(value);
}

/**
 * Every field under `schema`, depth first in declaration order. Object fields get a row and
 * rows for their fields; list items that are objects appear as `field[].x`. A union's object
 * branches are listed once: a later field with the same branch points at the first.
 */
export function fieldRows(schema: JsonSchema): FieldRow[] {
  const rows: FieldRow[] = [];
  const seen = new Map<string, string>();
  const visit = (node: JsonSchema, prefix: string): void => {
    const required = new Set(Array.isArray(node['required']) ? (node['required'] as string[]) : []);
    for (const [name, child] of Object.entries(properties(node) ?? {})) {
      const path = `${prefix}${name}`;
      const nested = nestedObjects(child, path);
      const sameAs = new Set<string>();
      const fresh = nested.filter(({ object, at }) => {
        const key = json(object);
        const first = seen.get(key);
        if (first !== undefined) sameAs.add(first);
        else seen.set(key, at);
        return first === undefined;
      });
      const description = [
        typeof child['description'] === 'string' ? child['description'] : '',
        ...[...sameAs].map((first) => `Same fields as ${first}.`),
      ];
      rows.push({
        path,
        type: typeName(child),
        default: defaultOf(child, required.has(name)),
        limits: limitsOf(child),
        description: description.join(' ').trim(),
      });
      for (const { object, at } of fresh) visit(object, `${at}.`);
    }
  };
  visit(schema, '');
  return rows;
}

/** Objects with fields under a field: itself, its list items, its union branches. */
function nestedObjects(node: JsonSchema, path: string): { object: JsonSchema; at: string }[] {
  if (properties(node) !== undefined) return [{ object: node, at: path }];
  if (node['type'] === 'array' && isSchema(node['items'])) return nestedObjects(node['items'], `${path}[]`);
  return branches(node).flatMap((branch) => nestedObjects(branch, path));
}

/** The first of the schema's `examples`, as compact JSON for `--details`. */
export function exampleDetails(schema: JsonSchema): string | undefined {
  const examples = schema['examples'];
  return Array.isArray(examples) && examples.length > 0 ? json(examples[0]) : undefined;
}

function cell(text: string, code = false): string {
  if (text === '') return '';
  const escaped = text.replace(/\|/g, '\\|');
  return code ? `\`${escaped}\`` : escaped;
}

/** The docs table: | field | type | default | limits | description |. */
export function renderMarkdownTable(rows: readonly FieldRow[]): string {
  const lines = ['| field | type | default | limits | description |', '|---|---|---|---|---|'];
  for (const row of rows) {
    const defaultCell = row.default === 'required' ? '**required**' : cell(row.default, true);
    lines.push(`| ${cell(row.path, true)} | ${cell(row.type)} | ${defaultCell} | ${cell(row.limits)} | ${cell(row.description)} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** `text` in lines of at most `width` characters (a longer word stays whole), each after `indent`. */
export function wrap(text: string, indent: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(`${indent}${line}`);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(`${indent}${line}`);
  return lines;
}

/** `tether discover <handler> --help`: what the handler finds, its details fields, an example. */
export function renderDetailsHelp(handler: string, schema: JsonSchema, width = 100): string {
  const lines: string[] = [''];
  lines.push(`Handler ${handler}:`, ...wrap(typeof schema['description'] === 'string' ? schema['description'] : '', '  ', width), '');
  lines.push(`Details fields (--details, JSON or YAML; docs/handlers/${handler}.md):`);
  for (const row of fieldRows(schema)) {
    const facts = [
      row.type,
      row.default === 'required' ? 'required' : row.default === '' ? '' : `default ${row.default}`,
      row.limits,
    ].filter((f) => f !== '');
    lines.push(`  ${row.path}  (${facts.join('; ')})`, ...wrap(row.description, '      ', width));
  }
  const example = exampleDetails(schema);
  if (example !== undefined) lines.push('', 'Example:', `  tether discover ${handler} --details '${example}'`);
  return `${lines.join('\n')}\n`;
}
