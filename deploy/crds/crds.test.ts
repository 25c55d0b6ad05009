import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { crdExamples } from './examples.ts';
import { buildCrds, GENERATED_HEADER, renderCrd } from './generate.ts';
import {
  DEFAULT_CAPACITY,
  DEFAULT_OFFLINE_GRACE_PERIOD_SECONDS,
  DeviceDiscoverySchema,
  DeviceSchema,
  rootSchemas,
} from '../../api/schema.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

type Json = Record<string, unknown>;

const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

interface SchemaNode {
  readonly path: string;
  readonly node: Json;
}

/** Every schema node (not every JSON value) under `root`, with a readable path. */
function schemaNodes(root: Json, path = ''): SchemaNode[] {
  const out: SchemaNode[] = [{ path: path || '<root>', node: root }];
  if (isObject(root.properties)) {
    for (const [key, child] of Object.entries(root.properties)) out.push(...schemaNodes(child as Json, `${path}.${key}`));
  }
  if (isObject(root.items)) out.push(...schemaNodes(root.items, `${path}[]`));
  if (isObject(root.additionalProperties)) out.push(...schemaNodes(root.additionalProperties, `${path}{}`));
  return out;
}

const crds = buildCrds();
const openApiSchemas = crds.map(({ crd }) => ({
  kind: crd.spec.names.kind,
  schema: crd.spec.versions[0]!.schema.openAPIV3Schema as Json,
}));

describe('generated YAML', () => {
  it.each(crds)('$fileName matches the generator (run `npm run crds:generate`)', ({ fileName, crd }) => {
    const committed = readFileSync(join(here, fileName), 'utf8');
    expect(committed).toBe(renderCrd(crd));
  });

  it.each(crds)('$fileName starts with the generated header and parses back to the CRD', ({ fileName, crd }) => {
    const committed = readFileSync(join(here, fileName), 'utf8');
    expect(committed.startsWith(GENERATED_HEADER)).toBe(true);
    expect(parse(committed)).toEqual(crd);
  });

  it('names files after the CRD names', () => {
    expect(crds.map((c) => c.fileName)).toEqual(['devicediscoveries.tether.dev.yaml', 'devices.tether.dev.yaml']);
  });
});

describe('examples against Value.Check', () => {
  const schemas = { DeviceDiscovery: DeviceDiscoverySchema, Device: DeviceSchema };
  const examples = crdExamples();

  it('cover every outcome for both kinds', () => {
    for (const kind of ['DeviceDiscovery', 'Device'] as const) {
      for (const expectation of ['valid', 'schema-invalid', 'cel-invalid'] as const) {
        expect(examples.some((e) => e.kind === kind && e.expect === expectation)).toBe(true);
      }
    }
    expect(new Set(examples.map((e) => `${e.kind}/${e.name}`)).size).toBe(examples.length);
  });

  // cel-invalid examples pass the OpenAPI part; only the apiserver's CEL rejects them.
  it.each(examples)('$kind: $name ($expect)', ({ kind, object, old, expect: expectation }) => {
    const schema = schemas[kind];
    const ok = Value.Check(schema, object);
    const detail = ok ? [] : [...Value.Errors(schema, object)].map((e) => `${e.instancePath}: ${e.message}`);
    expect({ ok, detail }).toMatchObject({ ok: expectation !== 'schema-invalid' });
    if (old !== undefined) expect(Value.Check(schema, old)).toBe(true);
  });
});

describe('structural schema', () => {
  const FORBIDDEN = [
    'anyOf',
    'oneOf',
    'allOf',
    'not',
    'const',
    '$id',
    '$ref',
    '$schema',
    'definitions',
    '$defs',
    'patternProperties',
    'additionalItems',
    'dependencies',
    'dependentRequired',
    'dependentSchemas',
    'propertyNames',
    'if',
    'then',
    'else',
    'prefixItems',
    'unevaluatedProperties',
    'contains',
  ];
  const TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean'];

  it.each(openApiSchemas)('$kind: every node is typed and uses no forbidden keyword', ({ schema }) => {
    for (const { path, node } of schemaNodes(schema)) {
      // The one untyped kind of node structural schemas allow: anything, kept as it is.
      if (node.type === undefined) expect(node['x-kubernetes-preserve-unknown-fields'], `${path} type`).toBe(true);
      else expect(TYPES, `${path} type`).toContain(node.type);
      for (const key of Object.keys(node)) {
        expect(FORBIDDEN, `${path} uses ${key}`).not.toContain(key);
        expect(key.startsWith('~'), `${path} leaks TypeBox key ${key}`).toBe(false);
      }
      if ('additionalProperties' in node) {
        expect(isObject(node.additionalProperties), `${path} additionalProperties must be a schema`).toBe(true);
        expect(node.properties, `${path} has both properties and additionalProperties`).toBeUndefined();
      }
      if (node.type === 'array') expect(isObject(node.items), `${path} items`).toBe(true);
      if ('uniqueItems' in node) expect(node.uniqueItems, `${path} uniqueItems`).toBe(false);
      for (const key of ['exclusiveMinimum', 'exclusiveMaximum']) {
        if (key in node) expect(typeof node[key], `${path} ${key} must be boolean (OpenAPI v3.0)`).toBe('boolean');
      }
      for (const name of (node.required as string[] | undefined) ?? []) {
        expect(isObject(node.properties) && name in node.properties, `${path} requires undeclared ${name}`).toBe(true);
      }
    }
  });

  it.each(openApiSchemas)('$kind: list types are well-formed', ({ schema }) => {
    for (const { path, node } of schemaNodes(schema)) {
      const listType = node['x-kubernetes-list-type'];
      if (listType === undefined) continue;
      expect(node.type, path).toBe('array');
      const items = node.items as Json;
      if (listType === 'set') expect(['string', 'integer', 'number', 'boolean'], path).toContain(items.type);
      if (listType === 'map') {
        const keys = node['x-kubernetes-list-map-keys'] as string[];
        expect(keys.length, path).toBeGreaterThan(0);
        for (const key of keys) expect(items.required, `${path} map key ${key} must be required`).toContain(key);
      }
    }
  });

  // CEL cost estimation multiplies by the worst-case size of every list and map; unbounded ones
  // make the apiserver reject the CRD. Keep everything bounded (opaque objects excepted).
  it.each(openApiSchemas)('$kind: lists, maps and strings are bounded', ({ schema }) => {
    for (const { path, node } of schemaNodes(schema)) {
      if (node['x-kubernetes-preserve-unknown-fields'] === true && node.properties === undefined) continue;
      if (node.type === 'array') expect(node.maxItems, `${path} maxItems`).toBeTypeOf('number');
      if (isObject(node.additionalProperties)) expect(node.maxProperties, `${path} maxProperties`).toBeTypeOf('number');
      const exempt = ['.apiVersion', '.kind'].includes(path) || node.format === 'date-time' || node.enum !== undefined;
      if (node.type === 'string' && !exempt) expect(node.maxLength, `${path} maxLength`).toBeTypeOf('number');
    }
  });

  it.each(openApiSchemas)('$kind: every CEL rule has a message', ({ schema }) => {
    const rules = schemaNodes(schema).flatMap(({ node }) => (node['x-kubernetes-validations'] as Json[] | undefined) ?? []);
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      expect(rule.rule).toBeTypeOf('string');
      expect(rule.message).toBeTypeOf('string');
    }
  });

  it('TypeBox schemas carry no symbols and no enumerable internals', () => {
    const visit = (value: unknown, path: string): void => {
      if (typeof value !== 'object' || value === null) return;
      expect(Object.getOwnPropertySymbols(value), path).toEqual([]);
      for (const [key, child] of Object.entries(value)) {
        expect(key.startsWith('~'), `${path}.${key}`).toBe(false);
        visit(child, `${path}.${key}`);
      }
    };
    for (const [kind, schema] of Object.entries(rootSchemas)) {
      visit(schema, kind);
      expect(JSON.parse(JSON.stringify(schema))).toEqual({ ...schema });
    }
  });

  it('root-level metadata constrains only name and generateName', () => {
    for (const { schema } of openApiSchemas) {
      const metadata = (schema.properties as Record<string, Json>).metadata!;
      expect(Object.keys(metadata.properties as Json).sort()).toEqual(['generateName', 'name']);
    }
  });
});

describe('CRD shape', () => {
  it.each(crds)('$fileName: printer columns point at declared fields', ({ crd }) => {
    const version = crd.spec.versions[0]!;
    const schema = version.schema.openAPIV3Schema as Json;
    for (const column of version.additionalPrinterColumns) {
      if (column.jsonPath.startsWith('.metadata.')) continue;
      let node: Json = schema;
      for (const segment of column.jsonPath.slice(1).replace(/\[.*$/, '').split('.')) {
        node = (node.properties as Record<string, Json>)[segment]!;
        expect(node, `${column.name}: ${column.jsonPath}`).toBeDefined();
      }
    }
  });

  it('applies documented defaults', () => {
    const spec = DeviceDiscoverySchema.properties.spec.properties as unknown as Record<string, Json>;
    expect(spec.capacity!.default).toBe(DEFAULT_CAPACITY);
    expect(spec.offlineGracePeriodSeconds!.default).toBe(DEFAULT_OFFLINE_GRACE_PERIOD_SECONDS);
  });

  it('both kinds are namespaced, in category tether, with a status subresource', () => {
    for (const { crd } of crds) {
      expect(crd.spec.scope).toBe('Namespaced');
      expect(crd.spec.names.categories).toEqual(['tether']);
      expect(crd.spec.versions[0]!.subresources).toEqual({ status: {} });
    }
  });
});

// Runs the apiserver's own CRD validation and CEL evaluation (deploy/crds/verify, Go) when Go
// and the Kubernetes modules are available offline; skipped otherwise.
const verifyDir = join(here, 'verify');
const goEnv = { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off' };
function goAvailable(): boolean {
  const probe = spawnSync('go', ['list', '-m', 'k8s.io/apiextensions-apiserver'], { cwd: verifyDir, env: goEnv, encoding: 'utf8' });
  return probe.status === 0 && existsSync(join(verifyDir, 'go.sum'));
}

describe('apiserver validation code (deploy/crds/verify)', () => {
  it.skipIf(!goAvailable())(
    'accepts both CRDs and classifies every example as expected',
    () => {
      const run = spawnSync('go', ['run', '.', '-', ...crds.map((c) => join(here, c.fileName))], {
        cwd: verifyDir,
        env: goEnv,
        input: JSON.stringify(crdExamples()),
        encoding: 'utf8',
      });
      const output = `${run.stdout}${run.stderr}`;
      expect(output.split('\n').filter((line) => line.startsWith('FAIL'))).toEqual([]);
      expect(run.status, output).toBe(0);
      expect(output).toContain('CEL compiles within cost limits');
    },
    600_000,
  );
});
