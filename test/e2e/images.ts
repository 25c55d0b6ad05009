/**
 * The two images the e2e node needs, built locally (no registry, no Docker)
 * with deploy/image/build-oci.ts and imported into containerd's `k8s.io`
 * namespace, where the CRI plugin finds them:
 *   - pause: deploy/image/pause.c compiled with `gcc -static`;
 *   - busybox: the static busybox from Debian's busybox-static, with a
 *     symlink per applet.
 * Rebuilt every start (about a second); imported only when the digest changed.
 *
 * Imports that run show a progress line (test/cluster/progress.ts): which image goes into
 * which node, and for how long; `ctr import` itself reports nothing until it is done.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { buildOciImage, type BuiltOciImage } from '../../deploy/image/build-oci.ts';
import { ctrCommand } from './containerd.ts';
import { BUSYBOX_IMAGE, PAUSE_IMAGE, type NodeLayout } from './layout.ts';
import { runCommand } from '../../deploy/image/exec.ts';
import { startProgress } from '../cluster/progress.ts';

const PAUSE_SOURCE = resolve(import.meta.dirname, '../../deploy/image/pause.c');
const BUSYBOX = '/bin/busybox';

/** True when the ELF file at `path` has no PT_INTERP segment (is statically linked). */
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) throw new Error(`${path} is not a 64-bit ELF file`);
    const phoff = Number(header.readBigUInt64LE(0x20));
    const phentsize = header.readUInt16LE(0x36);
    const phnum = header.readUInt16LE(0x38);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

/** Compiles the pause binary, once per source version. */
function buildPause(layout: NodeLayout): string {
  const source = readFileSync(PAUSE_SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const binary = join(layout.imageDir, `pause-${hash}`);
  if (!existsSync(binary)) {
    runCommand('gcc', ['-static', '-Os', '-s', '-Wall', '-o', `${binary}.tmp`, PAUSE_SOURCE]);
    runCommand('mv', ['-f', `${binary}.tmp`, binary]);
  }
  return binary;
}

function freshDir(path: string): string {
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { recursive: true });
  return path;
}

function pauseRootfs(layout: NodeLayout): string {
  const rootfs = freshDir(join(layout.imageDir, 'pause-rootfs'));
  copyFileSync(buildPause(layout), join(rootfs, 'pause'));
  chmodSync(join(rootfs, 'pause'), 0o755);
  return rootfs;
}

function busyboxRootfs(layout: NodeLayout): string {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} missing: apt-get install busybox-static`);
  if (!isStaticElf(BUSYBOX)) throw new Error(`${BUSYBOX} is dynamically linked: apt-get install busybox-static`);
  const rootfs = freshDir(join(layout.imageDir, 'busybox-rootfs'));
  for (const dir of ['bin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(rootfs, dir));
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  const applets = runCommand(BUSYBOX, ['--list'])
    .split('\n')
    .filter((name) => /^[\w.[-]+$/.test(name) && name !== 'busybox');
  for (const applet of applets) symlinkSync('busybox', join(rootfs, 'bin', applet));
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  return rootfs;
}

/** The manifest digest containerd holds for `name` in `k8s.io`, if any. */
export function importedDigest(layout: NodeLayout, name: string): string | undefined {
  const listing = runCommand(ctrCommand(layout), [
    '--address',
    layout.containerdSocket,
    '--namespace',
    'k8s.io',
    'images',
    'list',
    `name==${name}`,
  ]);
  const line = listing.split('\n').find((l) => l.startsWith(`${name} `));
  return line?.split(/\s+/)[2];
}

/**
 * `ctr images import` without blocking the event loop (a progress line keeps ticking; Ctrl-C
 * is seen), then checks containerd lists `digest` under `name`.
 */
function ctrImport(layout: NodeLayout, tarball: string, name: string, digest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      ctrCommand(layout),
      ['--address', layout.containerdSocket, '--namespace', 'k8s.io', 'images', 'import', tarball],
      { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (error !== null)
          return reject(new Error(`ctr images import ${tarball} into ${layout.nodeName} failed: ${stderr.trim()}`, { cause: error }));
        const listed = importedDigest(layout, name);
        if (listed !== digest) return reject(new Error(`imported ${name} but containerd lists digest ${listed ?? 'none'}, not ${digest}`));
        resolve();
      },
    );
  });
}

/** One image for one node's containerd. */
interface ImportJob {
  readonly layout: NodeLayout;
  readonly name: string;
  readonly out: string;
  readonly digest: string;
}

/**
 * Runs the jobs whose node lacks the image (by digest) one after the other, under one progress
 * line ("2/4 imports"); returns the jobs it ran.
 */
async function importMissing(jobs: readonly ImportJob[]): Promise<ImportJob[]> {
  const missing = jobs.filter((job) => importedDigest(job.layout, job.name) !== job.digest);
  if (missing.length === 0) return [];
  const names = [...new Set(missing.map((job) => job.name))].join(', ');
  const nodes = [...new Set(missing.map((job) => job.layout.nodeName))].join(', ');
  const phase = `loading ${names} into containerd of ${nodes}: images loaded`;
  const progress = startProgress({ label: 'images' }, { phase, done: 0, total: missing.length });
  for (const [i, job] of missing.entries()) {
    progress.update({ phase, done: i, total: missing.length, detail: `${job.name} → ${job.layout.nodeName}` });
    await ctrImport(job.layout, job.out, job.name, job.digest);
  }
  progress.done(`loaded ${names} into containerd of ${nodes}`);
  return missing;
}

/** What {@link ensureImages} did. */
export interface ImagesResult {
  pause: BuiltOciImage;
  busybox: BuiltOciImage;
  /** Names that were (re-)imported; empty when containerd already had both. */
  imported: string[];
}

/** Builds both images and imports whichever containerd lacks. containerd must be running. */
export async function ensureImages(layout: NodeLayout): Promise<ImagesResult> {
  mkdirSync(layout.imageDir, { recursive: true });
  const pause = await buildOciImage({
    rootfs: pauseRootfs(layout),
    name: PAUSE_IMAGE,
    out: join(layout.imageDir, 'pause.tar'),
    config: { entrypoint: ['/pause'] },
  });
  const busybox = await buildOciImage({
    rootfs: busyboxRootfs(layout),
    name: BUSYBOX_IMAGE,
    out: join(layout.imageDir, 'busybox.tar'),
    config: { cmd: ['sh'] },
  });
  const imported = await importMissing(
    [pause, busybox].map((image) => ({ layout, name: image.name, out: image.out, digest: image.manifestDigest })),
  );
  return { pause, busybox, imported: imported.map((job) => job.name) };
}

/** What {@link importTetherImage} needs of a built Tether image (deploy/image/tether-image.ts). */
export interface TetherImageTarball {
  reference: string;
  out: string;
  indexDigest: string;
}

/**
 * Imports Tether's image (an OCI index) into the node's containerd, as an
 * operator of an air-gapped node would (`ctr -n k8s.io images import`); skipped
 * when containerd already holds this digest under that name.
 */
export function importTetherImage(layout: NodeLayout, image: TetherImageTarball): boolean {
  // Synchronous on purpose (the chart suite and the bench call it between steps); npm start
  // uses loadTetherImage for a progress line.
  if (importedDigest(layout, image.reference) === image.indexDigest) return false;
  runCommand(ctrCommand(layout), ['--address', layout.containerdSocket, '--namespace', 'k8s.io', 'images', 'import', image.out]);
  const digest = importedDigest(layout, image.reference);
  if (digest !== image.indexDigest)
    throw new Error(`imported ${image.reference} but containerd lists digest ${digest ?? 'none'}, not ${image.indexDigest}`);
  return true;
}

/**
 * {@link importTetherImage} for several nodes, asynchronously, with one progress line over the
 * nodes that lack the image. Returns the names of the nodes it was imported into (empty: every node
 * already held this digest).
 */
export async function loadTetherImage(layouts: readonly NodeLayout[], image: TetherImageTarball): Promise<string[]> {
  const imported = await importMissing(
    layouts.map((layout) => ({ layout, name: image.reference, out: image.out, digest: image.indexDigest })),
  );
  return imported.map((job) => job.layout.nodeName);
}
