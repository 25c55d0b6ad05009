/**
 * The glibc shared libraries Node's official (dynamically linked) binaries need, per
 * architecture, taken from Debian packages (libc6, libstdc++6, libgcc-s1).
 *
 * The .debs come from the machine's configured apt sources through a private apt state and
 * cache directory (`apt-get -o Dir::State=… -o APT::Architecture=<arch> update/download`):
 * the machine's apt configuration, package lists and dpkg database are not touched, and no
 * foreign architecture is added. Downloaded .debs are cached; delete the cache directory to
 * pick up newer package versions.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { parseElfDependencies, type ElfDependencies } from './elf.ts';
import { runCommand } from './exec.ts';

/** Debian packages that hold the loader, libc, libm, libstdc++ and libgcc_s. */
export const GLIBC_PACKAGES = ['libc6', 'libstdc++6', 'libgcc-s1'] as const;

/** Debian architecture, multiarch triplet and ELF machine of each supported OCI architecture. */
export const DEBIAN_ARCH: Record<string, { debian: string; triplet: string; machine: string } | undefined> = {
  amd64: { debian: 'amd64', triplet: 'x86_64-linux-gnu', machine: 'x86_64' },
  arm64: { debian: 'arm64', triplet: 'aarch64-linux-gnu', machine: 'aarch64' },
};

export function debianArch(architecture: string): { debian: string; triplet: string; machine: string } {
  const arch = DEBIAN_ARCH[architecture];
  if (arch === undefined) throw new Error(`no Debian architecture for ${architecture} (supported: ${Object.keys(DEBIAN_ARCH).join(', ')})`);
  return arch;
}

/** Cached .deb files of {@link GLIBC_PACKAGES} for `arch`, or undefined when one is missing. */
async function cachedDebs(dir: string, debian: string): Promise<string[] | undefined> {
  const files = existsSync(dir) ? await readdir(dir) : [];
  const debs: string[] = [];
  for (const pkg of GLIBC_PACKAGES) {
    const file = files
      .filter((f) => f.startsWith(`${pkg}_`) && f.endsWith(`_${debian}.deb`))
      .sort()
      .at(-1);
    if (file === undefined) return undefined;
    debs.push(join(dir, file));
  }
  return debs;
}

/**
 * Returns the .deb files of {@link GLIBC_PACKAGES} for `architecture`, downloading them
 * (private apt state under `cacheDir/apt/<arch>`) only when the cache lacks one.
 */
export async function fetchGlibcDebs(options: { architecture: string; cacheDir: string; log: (m: string) => void }): Promise<string[]> {
  const { debian } = debianArch(options.architecture);
  const debDir = join(options.cacheDir, 'debs', debian);
  const cached = await cachedDebs(debDir, debian);
  if (cached !== undefined) return cached;
  const apt = join(options.cacheDir, 'apt', debian);
  await mkdir(join(apt, 'state', 'lists', 'partial'), { recursive: true });
  await mkdir(join(apt, 'cache', 'archives', 'partial'), { recursive: true });
  await mkdir(debDir, { recursive: true });
  const status = join(apt, 'state', 'status');
  if (!existsSync(status)) await writeFile(status, '');
  const aptOptions = [
    '-o',
    `Dir::State=${join(apt, 'state')}`,
    '-o',
    `Dir::State::status=${status}`,
    '-o',
    `Dir::Cache=${join(apt, 'cache')}`,
    '-o',
    `APT::Architecture=${debian}`,
    '-o',
    `APT::Architectures=${debian}`,
    // Our own state directory needs no lock, and the download target is not _apt's.
    '-o',
    'Debug::NoLocking=1',
    '-o',
    'APT::Sandbox::User=root',
    // Package lists only: no translations, Contents or DEP-11 metadata.
    '-o',
    'Acquire::Languages=none',
    '-o',
    'Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false',
    '-o',
    'Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false',
    '-o',
    'Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false',
    '-o',
    'Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false',
  ];
  options.log(`Downloading ${GLIBC_PACKAGES.join(', ')} for ${debian} (private apt state in ${apt})`);
  runCommand('apt-get', [...aptOptions, '-qq', 'update']);
  runCommand('apt-get', [...aptOptions, '-qq', 'download', ...GLIBC_PACKAGES], { cwd: debDir });
  const debs = await cachedDebs(debDir, debian);
  if (debs === undefined) throw new Error(`apt-get download left no .deb for one of ${GLIBC_PACKAGES.join(', ')} in ${debDir}`);
  return debs;
}

/** Extracts .debs into `dir` (emptied first) with `dpkg-deb -x`. */
export async function extractDebs(debs: readonly string[], dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const deb of debs) runCommand('dpkg-deb', ['-x', deb, dir]);
}

/** Resolves a path inside `root` one symlink step (absolute targets stay inside `root`). */
function linkTarget(path: string, target: string): string {
  return target.startsWith('/') ? posix.normalize(target.slice(1)) : posix.normalize(posix.join(posix.dirname(path), target));
}

/**
 * Every path (relative to `debRoot`, symlinks and the files they point to) a program with
 * `deps` needs at load time: the loader at its PT_INTERP path and the transitive DT_NEEDED
 * closure, searched in the multiarch directories the Debian loader searches. Throws when a
 * library is not found or has the wrong machine.
 */
export async function sharedLibraryClosure(options: { debRoot: string; architecture: string; deps: ElfDependencies }): Promise<string[]> {
  const { triplet, machine } = debianArch(options.architecture);
  const searchDirs = [`lib/${triplet}`, `usr/lib/${triplet}`, 'lib', 'usr/lib'];
  const paths = new Set<string>();
  const visitedFiles = new Set<string>();
  const pending: ElfDependencies[] = [options.deps];

  const exists = async (path: string): Promise<boolean> => {
    try {
      await lstat(join(options.debRoot, path));
      return true;
    } catch {
      return false;
    }
  };
  /** Records `path` and every link on the way to its file; returns the file. */
  const follow = async (start: string): Promise<string> => {
    let path = start;
    for (let hops = 0; hops < 16; hops++) {
      paths.add(path);
      const info = await lstat(join(options.debRoot, path));
      if (!info.isSymbolicLink()) return path;
      path = linkTarget(path, await readlink(join(options.debRoot, path)));
    }
    throw new Error(`too many symlinks from ${start}`);
  };
  const addFile = async (start: string): Promise<void> => {
    const file = await follow(start);
    if (visitedFiles.has(file)) return;
    visitedFiles.add(file);
    const deps = parseElfDependencies(await readFile(join(options.debRoot, file)));
    if (deps.machine !== machine) throw new Error(`${file} is ${deps.machine}, expected ${machine}`);
    pending.push(deps);
  };

  while (pending.length > 0) {
    const deps = pending.pop()!;
    if (deps.interpreter !== undefined) {
      const interp = deps.interpreter.slice(1);
      if (!(await exists(interp))) throw new Error(`program interpreter ${deps.interpreter} is not in ${GLIBC_PACKAGES.join(', ')}`);
      await addFile(interp);
    }
    for (const name of deps.needed) {
      let found: string | undefined;
      for (const dir of searchDirs) {
        if (await exists(`${dir}/${name}`)) {
          found = `${dir}/${name}`;
          break;
        }
      }
      if (found === undefined)
        throw new Error(`shared library ${name} not found in ${GLIBC_PACKAGES.join(', ')} (${options.architecture})`);
      await addFile(found);
    }
  }
  return [...paths].sort();
}

/** Copies `paths` (relative; symlinks stay symlinks, modes kept) from `from` to `to`. */
export async function copyPaths(from: string, to: string, paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const source = join(from, path);
    const target = join(to, path);
    await mkdir(dirname(target), { recursive: true });
    const info = await lstat(source);
    if (info.isSymbolicLink()) {
      await symlink(await readlink(source), target);
    } else {
      await copyFile(source, target);
      await chmod(target, info.mode & 0o7777);
    }
  }
}
