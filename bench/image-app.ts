/**
 * Running Tether in a bench as the image runs it: the JavaScript tsc emits (as
 * deploy/image/app-tree.ts does), `node bin/tether.js` with NODE_ENV=production and the V8
 * flags the Helm chart gives each component (deploy/helm/tether/values.yaml `nodeOptions`).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

const REPO = resolve(import.meta.dirname, '..');

/**
 * Emits the product's JavaScript as the image does (tsc, no type check) into `dist/<name>`;
 * returns bin/tether.js. `sources` is another checkout of the repository (a baseline commit);
 * the output stays under this one, so it resolves this checkout's node_modules.
 */
export async function buildJavaScript(name = 'bench-app', sources = REPO): Promise<string> {
  const out = join(REPO, 'dist', name);
  await rm(out, { recursive: true, force: true });
  process.stderr.write(`[bench] emitting JavaScript (tsc -p deploy/image/tsconfig.build.json) into dist/${name}\n`);
  const tsc = spawn(
    process.execPath,
    [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'deploy/image/tsconfig.build.json', '--outDir', out, '--noCheck'],
    { cwd: sources, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const [code] = (await once(tsc, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`tsc exited ${code}`);
  await mkdir(join(out, 'proto'), { recursive: true });
  for (const proto of (await readdir(join(sources, 'proto'))).filter((n) => n.endsWith('.proto')))
    await copyFile(join(sources, 'proto', proto), join(out, 'proto', proto));
  return join(out, 'bin', 'tether.js');
}

/** The tree of `ref` (a commit of this repository) in `dist/<name>-src`, for a paired baseline run. */
export async function checkoutRef(ref: string, name: string): Promise<string> {
  const dir = join(REPO, 'dist', `${name}-src`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const archive = spawn('sh', ['-c', 'git archive "$0" | tar -x -C "$1"', ref, dir], {
    cwd: REPO,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const [code] = (await once(archive, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`git archive ${ref} exited ${code}`);
  return dir;
}

/** The chart's default V8 flags for a component, split for argv. */
export async function chartNodeOptions(component: 'agent' | 'controller'): Promise<string[]> {
  const values = parseYaml(await readFile(join(REPO, 'deploy/helm/tether/values.yaml'), 'utf8')) as Record<
    string,
    { nodeOptions?: string } | undefined
  >;
  return (values[component]?.nodeOptions ?? '').split(' ').filter((flag) => flag !== '');
}
