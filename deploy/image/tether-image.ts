/**
 * `npm run image`: Tether's own multi-platform OCI image, without Docker.
 *
 *   node deploy/image/tether-image.ts [--out <file.tar>] [--platform linux/amd64]… [--force]
 *
 * One image index (linux/amd64 + linux/arm64), three gzip layers per platform:
 *   1. base — /etc/passwd, /etc/group (uid/gid 65532 `tether`), /tmp (1777), and the glibc
 *      shared libraries Node needs, from Debian's libc6, libstdc++6, libgcc-s1 (glibc.ts);
 *   2. node — /usr/local/bin/node from npm's node-linux-<arch> at the lock's version;
 *   3. app  — /app: tsc output, .proto files, production node_modules (the same blob on
 *      both platforms).
 * Entrypoint `/usr/local/bin/node /app/bin/tether.js`, Cmd `--help`, user 65532:65532; no
 * shell. Written as an OCI image layout in one tar, named `<image.repository>:<appVersion>`
 * from the Helm chart, so `ctr -n k8s.io images import <tar>` makes it the chart's default.
 *
 * Reproducible: from the same commit (and the same cached .debs and Node) every byte is the
 * same — `created` is the commit time of the last change to the image inputs. Layers and the
 * finished image are cached under `${TETHER_CACHE:-~/.cache/tether}/image/`; a build whose
 * inputs (product sources, lock, chart version, Node pin, this builder) are unchanged returns
 * the cached tar at once.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { buildAppTree } from './app-tree.ts';
import { hostArchitecture, normalizeImageName } from './build-oci.ts';
import { parseElfDependencies } from './elf.ts';
import { runCommand } from './exec.ts';
import { GLIBC_PACKAGES, copyPaths, debianArch, extractDebs, fetchGlibcDebs, sharedLibraryClosure } from './glibc.ts';
import { NODE_PACKAGE, fetchNodeRuntime, nodePinFromLock, type NodePin } from './node-runtime.ts';
import { GZIP_LEVEL, packLayout, sha256Hex, writeGzipLayer, writeJsonBlob } from './oci-blobs.ts';
import {
  MEDIA_TYPE,
  formatPlatform,
  imageAnnotations,
  imageConfig,
  imageIndex,
  imageManifest,
  layoutIndex,
  parsePlatform,
  type Descriptor,
  type ImageSource,
  type LayerBlob,
  type Platform,
  type RunConfig,
} from './oci-json.ts';

/** Options of {@link buildTetherImage}; all optional. */
export interface BuildTetherImageOptions {
  /** Progress lines (default: none). */
  log?: (message: string) => void;
  /** Output tar (default: `<cacheDir>/tether-<version>.oci.tar`). */
  out?: string;
  /** Default `['linux/amd64', 'linux/arm64']`. */
  platforms?: readonly string[];
  /** Default `${TETHER_CACHE:-~/.cache/tether}/image`. */
  cacheDir?: string;
  /** Rebuild every layer and the image even when cached. */
  force?: boolean;
}

/** One platform's image in the index. */
export interface BuiltPlatform {
  /** `linux/amd64`, `linux/arm64/v8`. */
  platform: string;
  /** `sha256:…` of the platform's manifest. */
  manifestDigest: string;
  /** Layer blobs + config, as pulled. */
  compressedBytes: number;
  /** Uncompressed layer tars. */
  uncompressedBytes: number;
}

/** The built (or cached) image. */
export interface BuiltTetherImage {
  /** `ghcr.io/tether-dev/tether:0.1.0`: the name `ctr images import` gives it. */
  reference: string;
  /** The OCI layout tar. */
  out: string;
  /** `sha256:…` of the image index: the image's digest (`ctr images ls`, registries). */
  indexDigest: string;
  platforms: BuiltPlatform[];
  /** True when nothing was rebuilt. */
  cached: boolean;
}

export const DEFAULT_PLATFORMS = ['linux/amd64', 'linux/arm64'] as const;
const TETHER_UID = 65532;

/** The run configuration every platform shares. */
export function tetherRunConfig(labels: Record<string, string>): RunConfig {
  return {
    user: `${TETHER_UID}:${TETHER_UID}`,
    env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production'],
    entrypoint: ['/usr/local/bin/node', '/app/bin/tether.js'],
    cmd: ['--help'],
    workingDir: '/',
    labels,
  };
}

/** Files of the base layer besides the libraries (path → content). */
export const BASE_FILES: Readonly<Record<string, string>> = {
  'etc/passwd': `root:x:0:0:root:/root:/sbin/nologin\ntether:x:${TETHER_UID}:${TETHER_UID}:tether:/home/tether:/sbin/nologin\n`,
  'etc/group': `root:x:0:\ntether:x:${TETHER_UID}:\n`,
  'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
};

/** The image's name and version: the Helm chart's default image (values.yaml + Chart.yaml). */
export interface ImageIdentity {
  reference: string;
  version: string;
  repository: string;
}

/**
 * Reads the chart's `image.repository` and `appVersion`; package.json's version must agree
 * (one version everywhere). Throws otherwise.
 */
export function imageIdentity(files: { packageJson: string; chartYaml: string; valuesYaml: string }): ImageIdentity {
  const pkg = JSON.parse(files.packageJson) as { version?: string };
  const chart = parseYaml(files.chartYaml) as { appVersion?: unknown };
  const values = parseYaml(files.valuesYaml) as { image?: { repository?: unknown } };
  const version = chart.appVersion;
  const repository = values.image?.repository;
  if (typeof version !== 'string' || typeof repository !== 'string' || version === '' || repository === '')
    throw new Error('deploy/helm/tether: Chart.yaml appVersion and values.yaml image.repository are required');
  if (pkg.version !== version)
    throw new Error(`package.json version ${pkg.version} differs from Chart.yaml appVersion ${version}: make them agree`);
  return { reference: normalizeImageName(`${repository}:${version}`), version, repository };
}

/** `ghcr.io/<owner>/<name>` → `https://github.com/<owner>/<name>` (the source annotation). */
export function sourceUrl(repository: string): string {
  const match = /^ghcr\.io\/([^/]+)\/([^/]+)$/.exec(repository);
  return match === null ? `https://${repository}` : `https://github.com/${match[1]}/${match[2]}`;
}

/** Repository paths whose content makes the image (besides tests), for the cache key and revision. */
export const IMAGE_INPUTS = [
  'bin',
  'agent',
  'api',
  'controller',
  'discovery-handlers',
  'kube',
  'proto',
  'deploy/image',
  'deploy/helm/tether/Chart.yaml',
  'deploy/helm/tether/values.yaml',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
] as const;

/** Git pathspecs of {@link IMAGE_INPUTS} without tests and C sources (pause.c). */
const INPUT_PATHSPECS = [...IMAGE_INPUTS, ':(exclude)*.test.ts', ':(exclude)*.c'];

/** Hash of the content of every input file (tracked or untracked, not ignored). */
async function inputsHash(repo: string): Promise<string> {
  const listed = runCommand('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...INPUT_PATHSPECS], {
    cwd: repo,
  });
  const hash = createHash('sha256');
  for (const path of [...new Set(listed.split('\0'))].filter((p) => p !== '').sort()) {
    const full = join(repo, path);
    if (!existsSync(full)) continue; // deleted, not yet committed
    hash
      .update(`${path}\0`)
      .update(await readFile(full))
      .update('\0');
  }
  return hash.digest('hex');
}

/** Last commit touching the inputs, its time, and whether the inputs differ from it. */
function gitRevision(repo: string): { revision: string; created: string } {
  const [commit, time] = runCommand('git', ['log', '-1', '--format=%H %ct', '--', ...INPUT_PATHSPECS], { cwd: repo })
    .trim()
    .split(' ');
  if (commit === undefined || time === undefined || commit === '') throw new Error('no commit touches the image inputs');
  const dirty =
    runCommand('git', ['status', '--porcelain', '--untracked-files=normal', '--', ...INPUT_PATHSPECS], { cwd: repo }).trim() !== '';
  return { revision: dirty ? `${commit}-dirty` : commit, created: new Date(Number(time) * 1000).toISOString().replace('.000Z', 'Z') };
}

function cacheRoot(option: string | undefined): string {
  return option ?? join(process.env.TETHER_CACHE ?? join(homedir(), '.cache', 'tether'), 'image');
}

/** Builder sources: a change to any of them rebuilds every layer. */
async function builderHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(import.meta.dirname)).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts')).sort()) {
    hash.update(name).update(await readFile(join(import.meta.dirname, name)));
  }
  return hash.update(`gzip ${GZIP_LEVEL} zlib ${process.versions.zlib}`).digest('hex');
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

/** Chmods every directory under `root` to 0755 (mkdir depends on the umask). */
async function normalizeDirModes(root: string): Promise<void> {
  await chmod(root, 0o755);
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (entry.isDirectory()) await normalizeDirModes(join(root, entry.name));
  }
}

interface Context {
  repo: string;
  cacheDir: string;
  blobsDir: string;
  stageDir: string;
  builder: string;
  force: boolean;
  log: (message: string) => void;
}

/** Returns the cached layer for `key`, or builds it with `build` and caches it. */
async function cachedLayer(
  ctx: Context,
  name: string,
  key: object,
  build: (root: string) => Promise<Omit<Parameters<typeof writeGzipLayer>[0], 'root' | 'blobsDir'>>,
): Promise<LayerBlob> {
  const keyHex = sha256Hex(JSON.stringify({ ...key, builder: ctx.builder }));
  const record = join(ctx.cacheDir, 'layers', `${name}-${keyHex.slice(0, 16)}.json`);
  if (!ctx.force && existsSync(record)) {
    const layer = JSON.parse(await readFile(record, 'utf8')) as LayerBlob;
    if (existsSync(join(ctx.blobsDir, layer.digest.slice('sha256:'.length)))) {
      const now = new Date();
      await utimes(record, now, now); // in use: see collectGarbage
      return layer;
    }
  }
  const started = Date.now();
  const root = join(ctx.stageDir, name);
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const options = await build(root);
  const layer = await writeGzipLayer({ root, blobsDir: ctx.blobsDir, ...options });
  await rm(root, { recursive: true, force: true });
  await mkdir(dirname(record), { recursive: true });
  await writeJsonAtomic(record, layer);
  ctx.log(
    `Built layer ${name}: ${layer.digest.slice(0, 19)} ${mb(layer.size)} (${mb(layer.uncompressedSize)} uncompressed) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return layer;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

async function baseLayer(ctx: Context, platform: Platform, nodeBinary: string): Promise<LayerBlob> {
  const arch = platform.architecture;
  const debs = await fetchGlibcDebs({ architecture: arch, cacheDir: ctx.cacheDir, log: ctx.log });
  const debKey = await Promise.all(debs.map(async (deb) => `${deb.slice(deb.lastIndexOf('/') + 1)}:${(await stat(deb)).size}`));
  return cachedLayer(ctx, `base-${arch}`, { kind: 'base', arch, debs: debKey, files: BASE_FILES }, async (root) => {
    const debRoot = join(ctx.stageDir, `debs-${arch}`);
    await extractDebs(debs, debRoot);
    const deps = parseElfDependencies(await readFile(nodeBinary));
    if (deps.machine !== debianArch(arch).machine) throw new Error(`${nodeBinary} is ${deps.machine}, not ${debianArch(arch).machine}`);
    const libraries = await sharedLibraryClosure({ debRoot, architecture: arch, deps });
    ctx.log(`${arch}: node needs ${deps.needed.join(' ')}; shipping ${libraries.join(' ')}`);
    const copyrights = GLIBC_PACKAGES.map((pkg) => `usr/share/doc/${pkg}/copyright`).filter((p) => existsSync(join(debRoot, p)));
    await copyPaths(debRoot, root, [...libraries, ...copyrights]);
    await rm(debRoot, { recursive: true, force: true });
    for (const [path, content] of Object.entries(BASE_FILES)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content, { mode: 0o644 });
      await chmod(join(root, path), 0o644);
    }
    await mkdir(join(root, 'tmp'));
    await mkdir(join(root, 'home', 'tether'), { recursive: true });
    await normalizeDirModes(root);
    await chmod(join(root, 'tmp'), 0o1777);
    await chmod(join(root, 'home', 'tether'), 0o700);
    return {
      createdBy: `glibc from ${debKey.join(' ')}; /etc/passwd, /etc/group (tether ${TETHER_UID}), /tmp`,
      owners: [{ path: 'home/tether', uid: TETHER_UID, gid: TETHER_UID }],
    };
  });
}

async function nodeLayer(ctx: Context, platform: Platform, pin: NodePin, runtime: { binary: string; license: string }): Promise<LayerBlob> {
  const arch = platform.architecture;
  return cachedLayer(ctx, `node-${arch}`, { kind: 'node', arch, version: pin.version }, async (root) => {
    await mkdir(join(root, 'usr', 'local', 'bin'), { recursive: true });
    await mkdir(join(root, 'usr', 'local', 'share', 'doc', 'node'), { recursive: true });
    await copyFile(runtime.binary, join(root, 'usr', 'local', 'bin', 'node'));
    await chmod(join(root, 'usr', 'local', 'bin', 'node'), 0o755);
    await copyFile(runtime.license, join(root, 'usr', 'local', 'share', 'doc', 'node', 'LICENSE'));
    await chmod(join(root, 'usr', 'local', 'share', 'doc', 'node', 'LICENSE'), 0o644);
    await normalizeDirModes(root);
    return { createdBy: `node v${pin.version} (npm ${NODE_PACKAGE[arch] ?? '?'}) → /usr/local/bin/node` };
  });
}

async function appLayer(ctx: Context, inputs: string): Promise<LayerBlob> {
  return cachedLayer(ctx, 'app', { kind: 'app', inputs }, async (root) => {
    const tree = await buildAppTree({ repo: ctx.repo, appDir: join(root, 'app'), log: ctx.log });
    ctx.log(
      `app: ${tree.jsFiles} JavaScript files; node_modules ${mb(tree.nodeModulesBytes.installed)} → ${mb(tree.nodeModulesBytes.pruned)} after pruning types, maps and docs`,
    );
    // World-readable, nothing group/other-writable: the controller runs as 65532 read-only.
    return { createdBy: 'tsc (deploy/image/tsconfig.build.json) + npm ci --omit=dev → /app', mode: 'a+rX,go-w' };
  });
}

/**
 * Runs the amd64 image's node and `tether --help` in a chroot of its layers (root on an
 * x86-64 host only; elsewhere it logs why it skipped). Throws when either fails.
 */
async function smokeTest(ctx: Context, platform: Platform, layers: readonly LayerBlob[], nodeVersion: string): Promise<void> {
  if (platform.architecture !== hostArchitecture() || process.getuid?.() !== 0) {
    ctx.log(`${formatPlatform(platform)}: run check skipped (needs root on a host of that architecture)`);
    return;
  }
  const rootfs = join(ctx.stageDir, `rootfs-${platform.architecture}`);
  await rm(rootfs, { recursive: true, force: true });
  await mkdir(rootfs, { recursive: true });
  try {
    for (const layer of layers) runCommand('tar', ['-xzf', join(ctx.blobsDir, layer.digest.slice('sha256:'.length)), '-C', rootfs]);
    // The environment of the chrooted node, as the image sets it (chroot itself is found by path).
    const env = { PATH: '/usr/local/bin:/usr/bin:/bin', NODE_ENV: 'production', HOME: '/home/tether' };
    const chroot = ['/usr/sbin/chroot', '/usr/bin/chroot'].find((path) => existsSync(path)) ?? 'chroot';
    const version = runCommand(chroot, ['--userspec=65532:65532', rootfs, '/usr/local/bin/node', '-e', 'console.log(process.version)'], {
      env,
    }).trim();
    if (version !== `v${nodeVersion}`) throw new Error(`chroot node printed ${version}, expected v${nodeVersion}`);
    const help = runCommand(chroot, ['--userspec=65532:65532', rootfs, '/usr/local/bin/node', '/app/bin/tether.js', '--help'], { env });
    if (!help.includes('Usage: tether')) throw new Error(`tether --help printed:\n${help}`);
    ctx.log(`${formatPlatform(platform)}: chroot run check passed (node ${version}, tether --help as 65532)`);
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
}

interface ImageRecord {
  key: string;
  result: Omit<BuiltTetherImage, 'cached'>;
  outSize: number;
}

/**
 * Builds Tether's multi-platform OCI image tar (or returns the cached one when its inputs
 * are unchanged: well under a second). Needs GNU tar, npm, apt-get and dpkg-deb on a
 * Debian-like machine with network access to its apt sources and the npm registry on the
 * first build; root for the amd64 run check. Throws on any failed step; a failed build leaves
 * the previous output in place.
 */
export async function buildTetherImage(options: BuildTetherImageOptions = {}): Promise<BuiltTetherImage> {
  const log = options.log ?? ((): void => {});
  const repo = resolve(import.meta.dirname, '..', '..');
  const cacheDir = cacheRoot(options.cacheDir);
  const read = (path: string): Promise<string> => readFile(join(repo, path), 'utf8');
  const identity = imageIdentity({
    packageJson: await read('package.json'),
    chartYaml: await read('deploy/helm/tether/Chart.yaml'),
    valuesYaml: await read('deploy/helm/tether/values.yaml'),
  });
  const pin = nodePinFromLock(await read('package-lock.json'));
  const platforms = (options.platforms ?? DEFAULT_PLATFORMS).map(parsePlatform);
  // A subset of platforms (the e2e harness builds linux/amd64 only) gets its own file.
  const subset =
    platforms.map(formatPlatform).join(',') === DEFAULT_PLATFORMS.map((p) => formatPlatform(parsePlatform(p))).join(',')
      ? ''
      : `-${platforms.map((p) => p.architecture).join('-')}`;
  const out = resolve(options.out ?? join(cacheDir, `tether-${identity.version}${subset}.oci.tar`));
  const { revision, created } = gitRevision(repo);
  const source: ImageSource = {
    title: 'tether',
    description: 'Tether: edge devices for Kubernetes (agent and controller)',
    version: identity.version,
    source: sourceUrl(identity.repository),
    licenses: String((JSON.parse(await read('package.json')) as { license?: string }).license ?? 'NOASSERTION'),
    revision,
    created,
  };
  const builder = await builderHash();
  const inputs = await inputsHash(repo);
  const imageKey = sha256Hex(
    JSON.stringify({ identity, pin, platforms, source, builder, inputs, debs: await debListing(cacheDir, platforms) }),
  );
  // One record per output path: the e2e harness and `npm run image` may write different files.
  const recordPath = join(cacheDir, 'images', `${sha256Hex(out).slice(0, 16)}.json`);
  if (!options.force && existsSync(recordPath) && existsSync(out)) {
    const record = JSON.parse(await readFile(recordPath, 'utf8')) as ImageRecord;
    if (record.key === imageKey && record.result.out === out && (await stat(out)).size === record.outSize) {
      log(`Unchanged inputs: reusing ${out}`);
      return { ...record.result, cached: true };
    }
  }

  const ctx: Context = {
    repo,
    cacheDir,
    blobsDir: join(cacheDir, 'blobs', 'sha256'),
    stageDir: join(cacheDir, `stage-${process.pid}`),
    builder,
    force: options.force ?? false,
    log,
  };
  await mkdir(ctx.blobsDir, { recursive: true });
  try {
    const labels = imageAnnotations(source);
    const app = await appLayer(ctx, inputs);
    const manifests: Descriptor[] = [];
    const built: BuiltPlatform[] = [];
    const digests: string[] = [];
    for (const platform of platforms) {
      const runtime = await fetchNodeRuntime({ architecture: platform.architecture, pin, cacheDir, log });
      const layers = [await baseLayer(ctx, platform, runtime.binary), await nodeLayer(ctx, platform, pin, runtime), app];
      await smokeTest(ctx, platform, layers, pin.version);
      const config = await writeJsonBlob(
        ctx.blobsDir,
        MEDIA_TYPE.config,
        imageConfig({ platform, created, layers, run: tetherRunConfig(labels) }),
      );
      const manifest = await writeJsonBlob(ctx.blobsDir, MEDIA_TYPE.manifest, imageManifest({ config, layers, annotations: labels }));
      manifests.push({ ...manifest, platform });
      digests.push(manifest.digest, config.digest, ...layers.map((l) => l.digest));
      built.push({
        platform: formatPlatform(platform),
        manifestDigest: manifest.digest,
        compressedBytes: config.size + layers.reduce((sum, l) => sum + l.size, 0),
        uncompressedBytes: layers.reduce((sum, l) => sum + l.uncompressedSize, 0),
      });
    }
    const index = await writeJsonBlob(ctx.blobsDir, MEDIA_TYPE.index, imageIndex({ manifests, annotations: labels }));
    digests.push(index.digest);
    await mkdir(dirname(out), { recursive: true });
    await packLayout({ blobsDir: ctx.blobsDir, digests, index: layoutIndex(index, identity.reference), out, workDir: cacheDir });
    const result = { reference: identity.reference, out, indexDigest: index.digest, platforms: built };
    await mkdir(dirname(recordPath), { recursive: true });
    await writeJsonAtomic(recordPath, { key: imageKey, result, outSize: (await stat(out)).size } satisfies ImageRecord);
    await collectGarbage(ctx);
    return { ...result, cached: false };
  } finally {
    await rm(ctx.stageDir, { recursive: true, force: true });
  }
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * Keeps the blob store from growing with every app change: drops layer records unused for a
 * week (a build touches the records it uses), then blobs that no layer record names and that are over an hour old (config,
 * manifest and index blobs of older builds; layers of dropped records). A concurrent build
 * writes its blobs minutes before its records, hence the hour.
 */
async function collectGarbage(ctx: Context): Promise<void> {
  const now = Date.now();
  const layersDir = join(ctx.cacheDir, 'layers');
  const keep = new Set<string>();
  for (const name of await readdir(layersDir)) {
    const path = join(layersDir, name);
    if (now - (await stat(path)).mtimeMs > 7 * DAY_MS) {
      await rm(path, { force: true });
      continue;
    }
    keep.add((JSON.parse(await readFile(path, 'utf8')) as LayerBlob).digest.slice('sha256:'.length));
  }
  for (const hex of await readdir(ctx.blobsDir)) {
    if (keep.has(hex)) continue;
    const path = join(ctx.blobsDir, hex);
    if (now - (await stat(path)).mtimeMs > 3600 * 1000) await rm(path, { force: true });
  }
}

/** Names of the cached .debs per platform (part of the image key; apt is not asked). */
async function debListing(cacheDir: string, platforms: readonly Platform[]): Promise<string[]> {
  const names: string[] = [];
  for (const platform of platforms) {
    const dir = join(cacheDir, 'debs', debianArch(platform.architecture).debian);
    if (existsSync(dir)) names.push(...(await readdir(dir)).filter((n) => n.endsWith('.deb')).sort());
  }
  return names;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      platform: { type: 'string', multiple: true },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run image -- [--out <file.tar>] [--platform linux/amd64]… [--force]\n');
    return;
  }
  const started = Date.now();
  const image = await buildTetherImage({
    log: (message) => void process.stderr.write(`${message}\n`),
    force: values.force,
    ...(values.out === undefined ? {} : { out: values.out }),
    ...(values.platform === undefined ? {} : { platforms: values.platform }),
  });
  const lines = [
    `${image.reference}${image.cached ? ' (cached)' : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    ...image.platforms.map(
      (p) => `  ${p.platform.padEnd(16)} ${p.manifestDigest}  ${mb(p.compressedBytes)} compressed, ${mb(p.uncompressedBytes)} uncompressed`,
    ),
    `  index            ${image.indexDigest}`,
    image.out,
    '',
    'Import on a containerd node:  ctr -n k8s.io images import ' + image.out + '   (--all-platforms to keep arm64 too)',
    'Push to a registry, e.g.:     skopeo copy --all oci-archive:' +
      image.out +
      ' docker://<registry>/tether:' +
      image.reference.slice(image.reference.lastIndexOf(':') + 1),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (import.meta.main) {
  try {
    await main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`tether-image: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
