/**
 * What the agent and the controller load before they do anything (issue 15: each idle process
 * ≤ 80 MiB). Packages that cost several MiB of RSS and are needed only when a particular kind
 * of work arrives are loaded then, not at start: a fresh Node imports the component's entry
 * module (which only defines functions) and reports every package it resolved.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/** Records the package of every module resolved, and whether Node's bundled undici loaded; prints them at exit. */
const HOOK = `
import { registerHooks } from 'node:module';
const packages = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const result = next(specifier, context);
    const match = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(result.url);
    if (match) packages.add(match[1]);
    return result;
  },
});
process.on('exit', () =>
  process.stdout.write(JSON.stringify({ packages: [...packages].sort(), undici: process.moduleLoadList.some((m) => m.includes('undici')) })),
);
`;

interface Loaded {
  readonly packages: string[];
  /** Node's bundled undici (fetch, WebSocket): an ESM import of node:http loads it (kube/node-http.ts). */
  readonly undici: boolean;
}

async function loadedBy(entry: string): Promise<Loaded> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--import',
      `data:text/javascript,${encodeURIComponent(HOOK)}`,
      '--input-type=module',
      '--eval',
      `await import(${JSON.stringify(entry)});`,
    ],
    { cwd: new URL('..', import.meta.url).pathname },
  );
  return JSON.parse(stdout) as Loaded;
}

/** Each: what it costs to import (`npm run bench -- import-cost`) and when it is needed. */
const LOADED_WHEN_NEEDED = [
  '@kubernetes/client-node', // ~80 MiB; never at run time
  'prom-client', // ~19 MiB; never at run time
  '@grpc/proto-loader', // ~3.5 MiB over protobufjs; never at run time (proto/load.ts uses protobufjs directly)
  'yaml', // ~12 MiB; YAML text: a kubeconfig, Akri's discoveryDetails, an external handler's details
  'fast-xml-parser', // ~7 MiB; the first WS-Discovery or SOAP document an onvif discovery receives
  'mqtt', // ~17 MiB; an mqtt discovery's run
  'bonjour-service', // ~5 MiB; an mdns (or opcua DNS-SD) discovery's run
  'node-opcua-client', // ~85 MiB; an opcua discovery's run
];

describe('import footprint', () => {
  it('the probe sees undici when node:http is imported as a module', async () => {
    expect((await loadedBy('node:http')).undici).toBe(true);
  });

  // TypeBox (~20 MiB) builds the schemas for the generators; the run time reads their JSON.
  const heavy = [...LOADED_WHEN_NEEDED, 'typebox'];

  it('the agent loads no package that only some work needs, nor TypeBox', async () => {
    const loaded = await loadedBy('./agent/main.ts');
    expect(loaded.packages).toContain('@grpc/grpc-js'); // the probe sees packages
    expect(loaded.packages.filter((p) => heavy.includes(p))).toEqual([]);
    expect(loaded.undici, "Node's bundled undici (~13 MiB)").toBe(false);
  });

  it('the controller loads no package that only some work needs, nor TypeBox', async () => {
    const loaded = await loadedBy('./controller/main.ts');
    expect(loaded.packages.filter((p) => heavy.includes(p))).toEqual([]);
    expect(loaded.undici, "Node's bundled undici (~13 MiB)").toBe(false);
  });
});
