/**
 * The handlers' details schemas: the generated files are current (run `npm run docs:handlers`),
 * every example is valid, and hostile input stays bounded (every list, map and string has a
 * maximum), like the CRD checks in deploy/crds/crds.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { JsonSchema } from './details-reference.ts';
import { BEGIN_MARKER, DETAILS_SCHEMAS, END_MARKER, generatedFiles, serialiseSchema } from './details-docs.ts';
import { DETAILS_JSON_SCHEMAS } from './details-schemas.ts';
import { BUILTIN_HANDLER_NAMES } from './names.ts';
import { builtinHandlers } from './registry.ts';

const isObject = (x: unknown): x is JsonSchema => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Every schema node under `root`, with a readable path. */
function schemaNodes(root: JsonSchema, path = 'details'): { path: string; node: JsonSchema }[] {
  const out = [{ path, node: root }];
  for (const [key, child] of Object.entries(isObject(root['properties']) ? root['properties'] : {}))
    out.push(...schemaNodes(child as JsonSchema, `${path}.${key}`));
  if (isObject(root['items'])) out.push(...schemaNodes(root['items'], `${path}[]`));
  if (isObject(root['additionalProperties'])) out.push(...schemaNodes(root['additionalProperties'], `${path}{}`));
  for (const child of Object.values(isObject(root['patternProperties']) ? root['patternProperties'] : {}))
    out.push(...schemaNodes(child as JsonSchema, `${path}{}`));
  for (const [i, branch] of (Array.isArray(root['anyOf']) ? (root['anyOf'] as JsonSchema[]) : []).entries())
    out.push(...schemaNodes(branch, `${path}|${i}`));
  return out;
}

const handlers = BUILTIN_HANDLER_NAMES.map((name) => [name] as const);

describe.each(handlers)('%s details schema', (name) => {
  it('generated files are current (run `npm run docs:handlers`)', async () => {
    for (const file of await generatedFiles(name)) expect(readFileSync(file.url, 'utf8'), file.url.pathname).toBe(file.content);
  });

  it('the docs page holds the reference between the markers, once', () => {
    const page = readFileSync(new URL(`../docs/handlers/${name}.md`, import.meta.url), 'utf8');
    expect(page.split(BEGIN_MARKER)).toHaveLength(2);
    expect(page.split(END_MARKER)).toHaveLength(2);
  });

  it('the JSON the CLI and the handler read is the schema', async () => {
    expect(`${JSON.stringify(await DETAILS_JSON_SCHEMAS[name](), null, 2)}\n`).toBe(serialiseSchema(await DETAILS_SCHEMAS[name]()));
  });

  it('the DeviceDiscovery examples on its docs page have details the handler accepts', () => {
    const page = readFileSync(new URL(`../docs/handlers/${name}.md`, import.meta.url), 'utf8');
    const objects = [...page.matchAll(/```yaml\n([\s\S]*?)```/g)].flatMap((m) => parseAllDocuments(m[1]!).map((d) => d.toJS() as unknown));
    const discoveries = objects.filter(
      (o): o is { kind: string; spec: { handler: string; details?: unknown } } => isObject(o) && o['kind'] === 'DeviceDiscovery',
    );
    const mine = discoveries.filter((d) => d.spec.handler === name);
    expect(mine.length).toBeGreaterThan(0);
    for (const discovery of mine) {
      expect(() => builtinHandlers().get(name)!.parseDetails(discovery.spec.details)).not.toThrow();
    }
  });

  it('has a description and examples the handler accepts', async () => {
    const schema = (await DETAILS_SCHEMAS[name]()) as JsonSchema;
    expect(schema['description']).toBeTypeOf('string');
    const examples = schema['examples'] as unknown[];
    expect(examples.length).toBeGreaterThan(0);
    for (const example of examples) expect(() => builtinHandlers().get(name)!.parseDetails(example)).not.toThrow();
  });

  it('objects are closed, required fields are declared, and lists, maps and strings are bounded', async () => {
    const schema = JSON.parse(serialiseSchema(await DETAILS_SCHEMAS[name]())) as JsonSchema;
    for (const { path, node } of schemaNodes(schema)) {
      if (isObject(node['properties'])) {
        expect(node['additionalProperties'], `${path} must refuse unknown fields`).toBe(false);
        for (const key of (node['required'] as string[] | undefined) ?? [])
          expect(Object.keys(node['properties']), `${path} requires ${key}`).toContain(key);
      }
      if (node['type'] === 'array') expect(node['maxItems'], `${path} maxItems`).toBeTypeOf('number');
      if (node['type'] === 'object' && node['properties'] === undefined)
        expect(node['maxProperties'], `${path} maxProperties`).toBeTypeOf('number');
      if (node['type'] === 'string' && node['enum'] === undefined) expect(node['maxLength'], `${path} maxLength`).toBeTypeOf('number');
    }
  });
});
