/**
 * What each top-level dependency (and each of Tether's entry modules) costs to import: a
 * fresh Node per module imports it alone, waits, runs a full GC and reports VmRSS minus a
 * bare Node's (same steps, nothing imported). Three runs each; p50 is the figure.
 *
 *   npm run bench -- import-cost
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { summarize, type Measure, type Measurement } from '../harness.ts';

const REPO = resolve(import.meta.dirname, '../..');
const RUNS = 3;

/**
 * Tether's own modules that each command's run-time path starts from. They are TypeScript, so
 * each row includes Node's type stripper (~17 MiB, loaded for the first .ts file without a warm
 * compile cache): api/group.ts, which imports nothing, shows that part alone.
 */
const OWN_MODULES = [
  'api/group.ts',
  'kube/client.ts',
  'kube/informer.ts',
  'controller/main.ts',
  'agent/main.ts',
  'agent/cluster-agent.ts',
  'discovery-handlers/registry.ts',
  'discovery-handlers/details-parse.ts',
  'proto/load.ts',
  'agent/metrics.ts',
] as const;

/** Imports argv[1] (or nothing), settles, collects garbage, prints VmRSS in KiB. */
const PROBE = `
const spec = process.argv[1];
if (spec) await import(spec);
await new Promise((r) => setTimeout(r, 200));
globalThis.gc();
await new Promise((r) => setTimeout(r, 50));
const status = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8');
process.stdout.write(/VmRSS:\\s+(\\d+)/.exec(status)[1]);
`;

async function rssAfterImport(spec: string | undefined): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--input-type=module', '--eval', PROBE, ...(spec === undefined ? [] : [spec])],
    { cwd: REPO, env: { ...process.env, NODE_COMPILE_CACHE: '' } },
  );
  return Number(stdout) / 1024;
}

async function importCost(): Promise<Measurement[]> {
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const specs = [
    ...Object.keys(pkg.dependencies).sort(),
    'typebox/value',
    '@grpc/grpc-js',
    ...OWN_MODULES.map((m) => `file://${join(REPO, m)}`),
  ].filter((spec, i, all) => all.indexOf(spec) === i);
  const bare: number[] = [];
  for (let i = 0; i < RUNS; i++) bare.push(await rssAfterImport(undefined));
  const bareP50 = summarize('bare', 'MiB', bare).p50;
  const results: Measurement[] = [summarize('import-cost: bare node (absolute RSS)', 'MiB', bare, 1)];
  for (const spec of specs) {
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) samples.push((await rssAfterImport(spec)) - bareP50);
    results.push(summarize(`import-cost: ${spec.replace(`file://${REPO}/`, '')} (RSS over bare)`, 'MiB', samples, 1));
  }
  return results;
}

export const importCostMeasures: Measure[] = [
  {
    name: 'import-cost',
    description: 'RSS over a bare Node after importing one module alone (fresh process each)',
    onlyWhenNamed: true,
    run: importCost,
  },
];
