import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { DeviceDiscoverySchema, HANDLER_SOURCES, type DeviceDiscovery } from '../../api/schema.ts';
import { importAkriDocuments } from './akri-configuration.ts';
import { HANDLER_SOURCE_CHOICES } from './import-akri-help.ts';
import { formatDiscoveries, importAkri, parseDocuments } from './import-akri.ts';

const root = new URL('../../', import.meta.url);
const fixturePath = (name: string): string => fileURLToPath(new URL(`test/fixtures/akri/${name}.yaml`, root));
const FIXTURES = ['debug-echo', 'udev', 'onvif', 'opcua'];

describe('parseDocuments', () => {
  it('reads several YAML documents and JSON; a broken document is an error with its number', () => {
    expect(parseDocuments('a: 1\n---\n{"b": [2]}\n---\n').documents).toEqual([{ a: 1 }, { b: [2] }, null]);
    const broken = parseDocuments('a: 1\n---\nb: [2\n');
    expect(broken.documents).toEqual([{ a: 1 }, undefined]);
    expect(broken.errors).toEqual([expect.stringMatching(/^document 2: not valid YAML or JSON: /)]);
  });
});

describe('formatDiscoveries', () => {
  const { discoveries } = importAkriDocuments(FIXTURES.map((name) => parseYaml(readFileSync(fixturePath(name), 'utf8')) as unknown));

  it('YAML: one document per DeviceDiscovery, notes as comments, details byte for byte', () => {
    const text = formatDiscoveries(discoveries, 'yaml');
    const documents = parseAllDocuments(text);
    expect(documents.map((d) => (d.toJS() as DeviceDiscovery).metadata.name)).toEqual([
      'akri-debug-echo',
      'akri-udev-video',
      'akri-onvif',
      'akri-opcua-monitoring',
    ]);
    documents.forEach((document, i) => expect(document.toJS()).toEqual(discoveries[i]!.discovery));
    for (const part of text.split(/^---$/m))
      expect(part.trimStart()).toMatch(
        /^# Converted by tether import-akri from the Akri Configuration akri-[a-z-]+\.\n(# .*\n)+apiVersion: /,
      );
    expect(text).toContain('# spec.brokerSpec.brokerPodSpec: "{{PLACEHOLDER}}" dropped');
  });

  it('JSON: one v1 List', () => {
    const list = JSON.parse(formatDiscoveries(discoveries, 'json')) as { apiVersion: string; kind: string; items: unknown[] };
    expect(list.apiVersion).toBe('v1');
    expect(list.kind).toBe('List');
    expect(list.items).toEqual(discoveries.map((d) => d.discovery));
  });
});

describe('importAkri', () => {
  const run = async (text: string): Promise<{ out: string; err: string[]; error?: Error }> => {
    let out = '';
    const err: string[] = [];
    const error = await importAkri({
      input: '-',
      output: 'yaml',
      readStdin: () => Promise.resolve(text),
      write: (t) => (out += t),
      warn: (line) => err.push(line),
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    return { out, err, ...(error === undefined ? {} : { error }) };
  };

  it('prints nothing when any document fails, and lists every failure', async () => {
    const { out, error } = await run(
      `${readFileSync(fixturePath('onvif'), 'utf8')}\n---\napiVersion: example.com/v1\nkind: Configuration\nmetadata: {name: x}\n---\n: [\n`,
    );
    expect(out).toBe('');
    expect(error?.message).toMatch(
      /^2 documents of stdin cannot be converted, so nothing was printed:\n {2}document 2: .*\n {2}document 3: /,
    );
  });

  it('fails, never "nothing found", when there is nothing to convert', async () => {
    expect((await run('')).error?.message).toBe('stdin holds no documents: nothing to convert');
    const secretsOnly = await run('apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n');
    expect(secretsOnly.error?.message).toBe(
      'stdin holds no Akri Configuration (apiVersion akri.sh/v0, kind Configuration); 1 other object(s) skipped',
    );
    expect(secretsOnly.err).toEqual(['warning: document 1: v1 Secret s skipped (not an Akri Configuration)']);
  });

  it('says which file it cannot read', async () => {
    const error = await importAkri({
      input: '/nonexistent/akri.yaml',
      output: 'yaml',
      readStdin: () => Promise.resolve(''),
      write: () => undefined,
      warn: () => undefined,
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/^cannot read \/nonexistent\/akri\.yaml: ENOENT/);
  });

  it('offers the handler sources the schema has', () => {
    expect([...HANDLER_SOURCE_CHOICES]).toEqual([...HANDLER_SOURCES]);
  });
});

describe('tether import-akri (the real CLI on Node 24)', () => {
  const node = fileURLToPath(new URL('node_modules/.bin/node', root));
  const launcher = fileURLToPath(new URL('bin/tether.mjs', root));
  const tether = (args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(node, [launcher, 'import-akri', ...args], { cwd: fileURLToPath(root), timeout: 20_000 });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      child.stdin.end(stdin ?? '');
    });
  const valid = (object: unknown): boolean => Value.Check(DeviceDiscoverySchema, object);

  it('converts a file: stdout is valid DeviceDiscoveries, stderr has the warnings', async () => {
    const { code, stdout, stderr } = await tether(['test/fixtures/akri/onvif.yaml']);
    expect(code).toBe(0);
    const documents = parseAllDocuments(stdout).map((d) => d.toJS() as DeviceDiscovery);
    expect(documents).toHaveLength(1);
    expect(documents.every(valid)).toBe(true);
    expect(documents[0]).toMatchObject({ kind: 'DeviceDiscovery', metadata: { name: 'akri-onvif' }, spec: { handler: 'onvif' } });
    const warnings = stderr.trimEnd().split('\n');
    expect(warnings).toHaveLength(3);
    expect(warnings).toEqual([
      expect.stringMatching(/^warning: Configuration akri-onvif: metadata: Helm's ownership marks/),
      expect.stringMatching(
        /^warning: Configuration akri-onvif: spec\.discoveryHandler\.discoveryProperties\[1\]\.valueFrom\.secretKeyRef\.namespace: /,
      ),
      expect.stringMatching(/^warning: Configuration akri-onvif: spec\.brokerProperties: not carried over/),
    ]);
  });

  it('reads stdin (-): a JSON ConfigurationList of every fixture, -o json and --handler-source', async () => {
    const items = FIXTURES.map((name) => parseYaml(readFileSync(fixturePath(name), 'utf8')) as unknown);
    const input = JSON.stringify({ apiVersion: 'akri.sh/v0', kind: 'ConfigurationList', items });
    const { code, stdout, stderr } = await tether(['-', '-o', 'json', '--handler-source', 'External'], input);
    expect(code).toBe(0);
    const list = JSON.parse(stdout) as { kind: string; items: DeviceDiscovery[] };
    expect(list.kind).toBe('List');
    expect(list.items.map((d) => [d.spec.handler, d.spec.handlerSource])).toEqual([
      ['debugEcho', 'External'],
      ['udev', 'External'],
      ['onvif', 'External'],
      ['opcua', 'External'],
    ]);
    expect(list.items.every(valid)).toBe(true);
    expect(stderr).toMatch(
      /^warning: Configuration akri-opcua-monitoring: spec\.discoveryHandler\.name: opcua runs Akri's external OPC UA/m,
    );
    expect(stderr).toMatch(/^note: Configuration akri-debug-echo: spec\.brokerSpec\.brokerPodSpec: "\{\{PLACEHOLDER\}\}" dropped/m);
  });

  it('exits 1 with the document number when a document is not an Akri Configuration, printing nothing', async () => {
    const input = `${readFileSync(fixturePath('udev'), 'utf8')}---\napiVersion: akri.sh/v1\nkind: Configuration\nmetadata:\n  name: x\n`;
    const { code, stdout, stderr } = await tether(['-'], input);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('tether: a document of stdin cannot be converted, so nothing was printed:');
    expect(stderr).toContain('document 2: akri.sh/v1 Configuration x is not an Akri Configuration (expected apiVersion akri.sh/v0)');
  });

  it('exits 1 when the file cannot be read', async () => {
    const { code, stdout, stderr } = await tether(['test/fixtures/akri/missing.yaml']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^tether: cannot read test\/fixtures\/akri\/missing\.yaml: ENOENT/);
  });
});
