/**
 * WebAssembly images for runwasi-style containerd shims (Tether's own: deploy/wasm-shim), built
 * with build-oci.ts: no Docker, no registry, no wasm-specific tooling.
 *
 * The shape is the one every runwasi shim accepts on containerd 1.6 as well as 2.x: a plain OCI
 * image for the node's platform (linux/<arch>, so the CRI's platform match takes it) whose single
 * layer holds the `.wasm` file and whose `Entrypoint` is that file. The shim finds the entrypoint
 * in the container's root filesystem and runs it (a WASI preview 1 module or a preview 2
 * component). runwasi's other shape, wasm layers with media type
 * `application/vnd.bytecodealliance.wasm.component.layer.v0+wasm` under an OCI artifact, needs
 * the shim to read the image from containerd's content store; it buys nothing here.
 *
 *   node deploy/image/wasm-image.ts <file.wasm> <name:tag> <out.tar>
 *   node deploy/image/wasm-image.ts --broker [<name:tag>] [<out.tar>]
 *        (--broker builds examples/wasm-broker for wasm32-wasip2 first)
 */
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildOciImage, type BuiltOciImage, type ImageRunConfig } from './build-oci.ts';
import { runCommand } from './exec.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** The sample broker's crate (a wasm32-wasip2 component). */
export const WASM_BROKER_CRATE = join(REPO, 'examples', 'wasm-broker');
/** The reference the e2e imports the sample broker under. */
export const WASM_BROKER_IMAGE = 'tether.local/examples/wasm-broker:0.1.0';
/** The Rust target the sample broker is built for: WASI preview 2 (a component; std's sockets work). */
export const WASM_BROKER_TARGET = 'wasm32-wasip2';
/**
 * The same broker as a WASI preview 1 module, for proving a shim's module path: preview 1 has
 * no sockets, so it prints its env, fails to listen and exits 1.
 */
export const WASM_BROKER_P1_IMAGE = 'tether.local/examples/wasm-broker-p1:0.1.0';
/** The Rust targets the sample broker builds for. */
export type WasmBrokerTarget = 'wasm32-wasip2' | 'wasm32-wasip1';

/** What the first 8 bytes of a WebAssembly binary say it is. */
export type WasmKind = 'module' | 'component';

/**
 * The binary kind from its header: `\0asm` then a 4-byte version/layer field — `01 00 00 00`
 * for a core module, layer 1 (`0d 00 01 00` today) for a component. Throws for anything else
 * (a `.wat` text file, an ELF binary, a truncated file): the shim would run such an entrypoint
 * as an ordinary process, and the mistake would surface only as a crash-looping pod.
 */
export function wasmKind(header: Uint8Array): WasmKind {
  if (header.length < 8 || header[0] !== 0 || header[1] !== 0x61 || header[2] !== 0x73 || header[3] !== 0x6d) {
    throw new Error('not a WebAssembly binary (no \\0asm header)');
  }
  const layer = header[6]! | (header[7]! << 8);
  if (layer === 0 && header[4] === 1 && header[5] === 0) return 'module';
  if (layer === 1) return 'component';
  throw new Error(`unknown WebAssembly binary version/layer ${Buffer.from(header.subarray(4, 8)).toString('hex')}`);
}

/** Reads the header of `path` and returns its {@link WasmKind}. */
export function wasmFileKind(path: string): WasmKind {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(8);
    const read = readSync(fd, header, 0, 8, 0);
    return wasmKind(header.subarray(0, read));
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
  } finally {
    closeSync(fd);
  }
}

/**
 * The image config for a module at `/<fileName>`: Entrypoint is the module (runwasi takes
 * `Entrypoint[0]`, optionally `file.wasm#function`); no PATH, which means nothing to WASI; env
 * comes from the pod. The file name must be a plain `.wasm` name, since it lands in `/`.
 */
export function wasmRunConfig(fileName: string, env: readonly string[] = []): ImageRunConfig {
  if (!/^[\w.-]+\.wasm$/.test(fileName)) throw new Error(`wasm file name must match [\\w.-]+.wasm: ${fileName}`);
  return { entrypoint: [`/${fileName}`], env, workingDir: '/' };
}

/** Input of {@link buildWasmImage}. */
export interface BuildWasmImageOptions {
  /** The `.wasm` module or component. */
  wasm: string;
  /** Image reference, e.g. {@link WASM_BROKER_IMAGE}. */
  name: string;
  /** Where to write the OCI tarball. */
  out: string;
  /** `NAME=value` entries baked into the image (the pod's env adds to them). */
  env?: readonly string[];
  /** OCI architecture; default: this machine's. The shim's, not the module's (which has none). */
  architecture?: string;
}

/** A built wasm image: build-oci's result plus what the entrypoint is. */
export interface BuiltWasmImage extends BuiltOciImage {
  kind: WasmKind;
  /** The image's entrypoint, `/<file>.wasm`. */
  entrypoint: string;
}

/**
 * Packs `wasm` as a single-layer image with the module at `/<basename>` and Entrypoint pointing
 * to it. Reproducible: the same module and options give the same manifest digest (build-oci's
 * guarantee), so an unchanged broker is not re-imported. Throws when the file is not WebAssembly.
 */
export async function buildWasmImage(options: BuildWasmImageOptions): Promise<BuiltWasmImage> {
  const kind = wasmFileKind(options.wasm);
  const fileName = basename(options.wasm);
  const run = wasmRunConfig(fileName, options.env);
  mkdirSync(dirname(options.out), { recursive: true });
  const rootfs = mkdtempSync(join(dirname(options.out), '.wasm-rootfs-'));
  try {
    copyFileSync(options.wasm, join(rootfs, fileName));
    const built = await buildOciImage({
      rootfs,
      name: options.name,
      out: options.out,
      config: run,
      ...(options.architecture === undefined ? {} : { architecture: options.architecture }),
    });
    return { ...built, kind, entrypoint: `/${fileName}` };
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
}

/** Tether's cache dir (`TETHER_CACHE` or `~/.cache/tether`). */
function cacheDir(): string {
  return process.env.TETHER_CACHE ?? join(homedir(), '.cache', 'tether');
}

/**
 * Builds examples/wasm-broker for wasm32-wasip2 (adding the rustup target when it is missing)
 * and returns the `.wasm` path. Cargo's target dir is in Tether's cache: an unchanged crate
 * costs well under a second.
 */
export function buildWasmBroker(options: { target?: WasmBrokerTarget; log?: (message: string) => void } = {}): string {
  const target = options.target ?? WASM_BROKER_TARGET;
  const installed = runCommand('rustup', ['target', 'list', '--installed']).split('\n');
  if (!installed.includes(target)) {
    options.log?.(`Adding the Rust target ${target}`);
    runCommand('rustup', ['target', 'add', target]);
  }
  const targetDir = join(cacheDir(), 'wasm-broker-target');
  runCommand('cargo', ['build', '--release', '--locked', '--target', target], {
    cwd: WASM_BROKER_CRATE,
    env: { ...process.env, CARGO_TARGET_DIR: targetDir },
  });
  return join(targetDir, target, 'release', 'wasm-broker.wasm');
}

/**
 * Builds the sample broker and its image under the cache: {@link WASM_BROKER_IMAGE} for
 * wasm32-wasip2 (the default), {@link WASM_BROKER_P1_IMAGE} for wasm32-wasip1.
 */
export async function buildWasmBrokerImage(
  options: { target?: WasmBrokerTarget; name?: string; out?: string; log?: (message: string) => void } = {},
): Promise<BuiltWasmImage> {
  const target = options.target ?? WASM_BROKER_TARGET;
  const wasm = buildWasmBroker({ target, ...(options.log === undefined ? {} : { log: options.log }) });
  const p1 = target === 'wasm32-wasip1';
  return buildWasmImage({
    wasm,
    name: options.name ?? (p1 ? WASM_BROKER_P1_IMAGE : WASM_BROKER_IMAGE),
    out: options.out ?? join(cacheDir(), 'image', p1 ? 'wasm-broker-p1.oci.tar' : 'wasm-broker.oci.tar'),
  });
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { broker: { type: 'boolean' } } });
  let built: BuiltWasmImage;
  if (values.broker === true) {
    const [name, out] = positionals;
    built = await buildWasmBrokerImage({
      ...(name === undefined ? {} : { name }),
      ...(out === undefined ? {} : { out }),
      log: (message) => process.stderr.write(`${message}\n`),
    });
  } else {
    const [wasm, name, out] = positionals;
    if (wasm === undefined || name === undefined || out === undefined || positionals.length !== 3) {
      throw new Error('usage: wasm-image.ts <file.wasm> <name:tag> <out.tar> | wasm-image.ts --broker [<name:tag>] [<out.tar>]');
    }
    built = await buildWasmImage({ wasm, name, out });
  }
  process.stdout.write(`${built.out} ${built.name} ${built.manifestDigest} (${built.kind}, entrypoint ${built.entrypoint})\n`);
}

if (import.meta.main) {
  try {
    await main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`wasm-image: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
