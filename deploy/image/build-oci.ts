/**
 * Builds a minimal OCI image tarball (an OCI image layout in one tar) from a
 * root filesystem directory: one uncompressed layer, an image config, a
 * manifest and an index. No Docker, no registry: `ctr images import` (and
 * `podman load`, `skopeo copy oci-archive:`) take the result directly.
 *
 *   node deploy/image/build-oci.ts <rootfs dir> <name:tag> <out.tar>
 *        [--entrypoint '["/pause"]'] [--cmd '["sh"]'] [--env K=V]… [--workdir /]
 *
 * The output is reproducible: the same rootfs (contents, modes, symlinks) and
 * options give byte-identical tarballs (sorted entries, mtime 0, owner 0:0),
 * so the manifest digest identifies the content and importers can skip
 * re-importing an unchanged image.
 *
 * Needs GNU tar (for --sort=name); runs on Node 24 (`.ts` directly).
 */
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runTar as tar, sha256File, writeJsonBlob } from './oci-blobs.ts';
import { MEDIA_TYPE, OCI_LAYOUT } from './oci-json.ts';

/** What the image runs and with which environment (the OCI config's `config`). */
export interface ImageRunConfig {
  entrypoint?: readonly string[];
  cmd?: readonly string[];
  /** `NAME=value` entries. */
  env?: readonly string[];
  workingDir?: string;
}

/** Input of {@link buildOciImage}. */
export interface BuildOciOptions {
  /** Directory whose contents become the image's root filesystem. */
  rootfs: string;
  /** Image reference, e.g. `tether.local/e2e/busybox:1` or `busybox:1`. */
  name: string;
  /** Where to write the tarball (replaced atomically). */
  out: string;
  config?: ImageRunConfig;
  /** OCI architecture; default: this machine's (`amd64`, `arm64`, …). */
  architecture?: string;
}

/** What was built: the normalized name and the digests that identify it. */
export interface BuiltOciImage {
  /** Fully qualified reference, as containerd names the imported image. */
  name: string;
  /** `sha256:…` of the manifest: what `ctr images ls` shows as the image's digest. */
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  out: string;
}

/**
 * Normalizes an image reference the way containerd's CRI and `ctr` do:
 * `busybox:1` → `docker.io/library/busybox:1`, `me/app` → `docker.io/me/app:latest`.
 * Digest references are not supported (an image being built has no digest yet).
 */
export function normalizeImageName(reference: string): string {
  if (reference.includes('@')) throw new Error(`image name must not contain a digest: ${reference}`);
  const slash = reference.indexOf('/');
  const first = slash < 0 ? '' : reference.slice(0, slash);
  const hasDomain = first.includes('.') || first.includes(':') || first === 'localhost';
  let name = hasDomain ? reference : `docker.io/${slash < 0 ? 'library/' : ''}${reference}`;
  const lastSlash = name.lastIndexOf('/');
  if (!name.slice(lastSlash + 1).includes(':')) name += ':latest';
  if (!/^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._/-][a-z0-9]+)*)+:[\w][\w.-]{0,127}$/.test(name)) {
    throw new Error(`invalid image name: ${reference}`);
  }
  return name;
}

/** The OCI architecture name of this machine. */
export function hostArchitecture(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const architecture = map[process.arch];
  if (architecture === undefined) throw new Error(`no OCI architecture for ${process.arch}`);
  return architecture;
}

/**
 * Builds the image tarball. Throws when the rootfs is missing or empty, the
 * name is invalid, or tar fails.
 */
export async function buildOciImage(options: BuildOciOptions): Promise<BuiltOciImage> {
  const name = normalizeImageName(options.name);
  const rootfs = resolve(options.rootfs);
  const entries = (await readdir(rootfs)).sort();
  if (entries.length === 0) throw new Error(`rootfs ${rootfs} is empty`);
  const out = resolve(options.out);
  await mkdir(dirname(out), { recursive: true });
  const layout = await mkdtemp(join(dirname(out), '.oci-'));
  try {
    const blobs = join(layout, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    const layerTmp = join(layout, 'layer.tar');
    // Top-level entries by name (not "."), so paths have no "./" prefix.
    tar(['--create', '--file', layerTmp, '--directory', rootfs, '--', ...entries]);
    const layerHex = await sha256File(layerTmp);
    const { size: layerSize } = await stat(layerTmp);
    await rename(layerTmp, join(blobs, layerHex));
    const layer = { mediaType: MEDIA_TYPE.layer, digest: `sha256:${layerHex}`, size: layerSize };

    const run = options.config ?? {};
    const config = await writeJsonBlob(blobs, MEDIA_TYPE.config, {
      created: '1970-01-01T00:00:00Z',
      architecture: options.architecture ?? hostArchitecture(),
      os: 'linux',
      config: {
        ...(run.entrypoint === undefined ? {} : { Entrypoint: run.entrypoint }),
        ...(run.cmd === undefined ? {} : { Cmd: run.cmd }),
        Env: run.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        WorkingDir: run.workingDir ?? '/',
      },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'deploy/image/build-oci.ts' }],
    });
    const manifest = await writeJsonBlob(blobs, MEDIA_TYPE.manifest, {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config,
      layers: [layer],
    });
    const tag = name.slice(name.lastIndexOf(':') + 1);
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.index,
      manifests: [
        {
          ...manifest,
          // ref.name is the tag (OCI image-layout spec); containerd's importer
          // prefers its own annotation with the full name.
          annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    };
    await writeFile(join(layout, 'index.json'), JSON.stringify(index));
    await writeFile(join(layout, 'oci-layout'), JSON.stringify(OCI_LAYOUT));
    const outTmp = `${out}.tmp`;
    tar(['--create', '--file', outTmp, '--directory', layout, '--', 'blobs', 'index.json', 'oci-layout']);
    await rename(outTmp, out);
    return { name, manifestDigest: manifest.digest, configDigest: config.digest, layerDigest: layer.digest, out };
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}

function parseJsonArgv(flag: string, text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new Error(`${flag} must be a JSON array of strings, e.g. '["/bin/sh","-c"]'`);
  }
  return value;
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      entrypoint: { type: 'string' },
      cmd: { type: 'string' },
      env: { type: 'string', multiple: true },
      workdir: { type: 'string' },
      arch: { type: 'string' },
    },
  });
  const [rootfs, name, out] = positionals;
  if (rootfs === undefined || name === undefined || out === undefined || positionals.length !== 3) {
    throw new Error(
      'usage: build-oci.ts <rootfs dir> <name:tag> <out.tar> [--entrypoint JSON] [--cmd JSON] [--env K=V]… [--workdir DIR] [--arch ARCH]',
    );
  }
  const entrypoint = parseJsonArgv('--entrypoint', values.entrypoint);
  const cmd = parseJsonArgv('--cmd', values.cmd);
  const built = await buildOciImage({
    rootfs,
    name,
    out,
    config: {
      ...(entrypoint === undefined ? {} : { entrypoint }),
      ...(cmd === undefined ? {} : { cmd }),
      ...(values.env === undefined ? {} : { env: values.env }),
      ...(values.workdir === undefined ? {} : { workingDir: values.workdir }),
    },
    ...(values.arch === undefined ? {} : { architecture: values.arch }),
  });
  process.stdout.write(`${built.out} ${built.name} ${built.manifestDigest}\n`);
}

if (import.meta.main) {
  try {
    await main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`build-oci: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
