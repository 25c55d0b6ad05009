/**
 * Blob I/O shared by the image builders (build-oci.ts, tether-image.ts): reproducible tar
 * layers (GNU tar), deterministic gzip, content-addressed blob files, and packing an OCI
 * image layout into one tar.
 *
 * Reproducibility: tar entries sorted by name, mtime 0, owner 0:0 unless a path is listed
 * in `owners`, GNU format (no atime/ctime); gzip from Node's bundled zlib at a fixed level
 * with a header that has no name and mtime 0. Same tree, same Node → same bytes.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { MEDIA_TYPE, OCI_LAYOUT, type Descriptor, type LayerBlob } from './oci-json.ts';

/** GNU tar flags that make an archive depend on content (and modes) only. */
export const REPRODUCIBLE_TAR = ['--format=gnu', '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner'];

/** zlib level of every gzip layer. Changing it changes every layer digest. */
export const GZIP_LEVEL = 6;

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Runs GNU tar with {@link REPRODUCIBLE_TAR} first; throws with tar's stderr. */
export function runTar(args: readonly string[]): void {
  try {
    execFileSync('tar', [...REPRODUCIBLE_TAR, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new Error(`tar failed (GNU tar is required): ${stderr}`, { cause: error });
  }
}

/** Writes a JSON document as a blob into `blobsDir` and returns its descriptor. */
export async function writeJsonBlob(blobsDir: string, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = sha256Hex(bytes);
  await writeFile(join(blobsDir, hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

/** Input of {@link writeGzipLayer}. */
export interface LayerInput {
  /** Directory whose contents become the layer (paths relative to it, no `./` prefix). */
  root: string;
  /** Content-addressed blob directory (`…/blobs/sha256`) to write the gzip blob into. */
  blobsDir: string;
  createdBy: string;
  /**
   * Paths (relative to `root`, no trailing slash) stored with another owner than 0:0.
   * Directories are stored without their contents' ownership changing.
   */
  owners?: readonly { path: string; uid: number; gid: number }[];
  /** GNU tar `--mode` applied to every entry, e.g. `a+rX,go-w` (default: modes as on disk). */
  mode?: string;
}

/**
 * Tars `root` reproducibly, gzips it, and stores the blob under its digest. Returns the
 * layer with both digests. Throws when `root` is empty or tar fails.
 */
export async function writeGzipLayer(input: LayerInput): Promise<LayerBlob> {
  const entries = (await readdir(input.root)).sort();
  if (entries.length === 0) throw new Error(`layer root ${input.root} is empty`);
  await mkdir(input.blobsDir, { recursive: true });
  const tarPath = join(input.blobsDir, `.layer-${process.pid}-${Date.now()}.tar`);
  const gzPath = `${tarPath}.gz`;
  try {
    const owners = input.owners ?? [];
    const mode = input.mode === undefined ? [] : [`--mode=${input.mode}`];
    const excludes = owners.map((owner) => `--exclude=${owner.path}`);
    runTar([
      '--create',
      '--hard-dereference',
      '--anchored',
      ...mode,
      ...excludes,
      '--file',
      tarPath,
      '--directory',
      input.root,
      '--',
      ...entries,
    ]);
    for (const owner of owners) {
      // Appended after the sorted entries: later options override REPRODUCIBLE_TAR's owner.
      runTar([
        '--append',
        '--no-recursion',
        ...mode,
        `--owner=${owner.uid}`,
        `--group=${owner.gid}`,
        '--file',
        tarPath,
        '--directory',
        input.root,
        '--',
        owner.path,
      ]);
    }
    const diffHex = await sha256File(tarPath);
    const { size: uncompressedSize } = await stat(tarPath);
    const hash = createHash('sha256');
    let size = 0;
    const tee = new Transform({
      transform(chunk: Buffer, _encoding, callback): void {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    await pipeline(createReadStream(tarPath), createGzip({ level: GZIP_LEVEL }), tee, createWriteStream(gzPath));
    const hex = hash.digest('hex');
    await rename(gzPath, join(input.blobsDir, hex));
    return {
      mediaType: MEDIA_TYPE.layerGzip,
      digest: `sha256:${hex}`,
      size,
      diffId: `sha256:${diffHex}`,
      uncompressedSize,
      createdBy: input.createdBy,
    };
  } finally {
    await rm(tarPath, { force: true });
    await rm(gzPath, { force: true });
  }
}

/**
 * Writes an OCI image layout as one tar at `out` (atomically): `oci-layout`, `index.json`
 * and the listed blobs, hard-linked (or copied) from `blobsDir`.
 */
export async function packLayout(options: {
  blobsDir: string;
  digests: readonly string[];
  index: object;
  out: string;
  workDir: string;
}): Promise<void> {
  const layout = join(options.workDir, `.layout-${process.pid}-${Date.now()}`);
  try {
    const blobs = join(layout, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    for (const digest of new Set(options.digests)) {
      const hex = digest.slice('sha256:'.length);
      await link(join(options.blobsDir, hex), join(blobs, hex));
    }
    await writeFile(join(layout, 'index.json'), JSON.stringify(options.index));
    await writeFile(join(layout, 'oci-layout'), JSON.stringify(OCI_LAYOUT));
    const tmp = `${options.out}.tmp-${process.pid}`;
    // Blobs are stored 0644 whatever the umask: the tar depends on content only.
    runTar([
      '--create',
      '--hard-dereference',
      '--mode=a+rX,go-w',
      '--file',
      tmp,
      '--directory',
      layout,
      '--',
      'blobs',
      'index.json',
      'oci-layout',
    ]);
    await rename(tmp, options.out);
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}
