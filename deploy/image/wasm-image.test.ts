import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildWasmImage, wasmKind, wasmRunConfig } from './wasm-image.ts';

/** The smallest valid core module: header only. */
const EMPTY_MODULE = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
/** A component header (version 0x0d, layer 1), as wasm32-wasip2 output starts. */
const COMPONENT_HEADER = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);

describe('wasmKind', () => {
  it.each([
    ['a core module', EMPTY_MODULE, 'module'],
    ['a component', COMPONENT_HEADER, 'component'],
  ])('%s', (_name, header, kind) => {
    expect(wasmKind(header)).toBe(kind);
  });

  it.each([
    ['an ELF binary', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), /no \\0asm header/],
    ['a .wat text file', Buffer.from('(module)\n'), /no \\0asm header/],
    ['a truncated file', EMPTY_MODULE.subarray(0, 6), /no \\0asm header/],
    ['an unknown layer', Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x02, 0x00]), /unknown .* 01000200/],
  ])('rejects %s', (_name, header, message) => {
    expect(() => wasmKind(header)).toThrow(message);
  });
});

describe('wasmRunConfig', () => {
  it('points Entrypoint at the module in / and sets no PATH', () => {
    expect(wasmRunConfig('broker.wasm', ['A=1'])).toEqual({ entrypoint: ['/broker.wasm'], env: ['A=1'], workingDir: '/' });
  });

  it.each(['broker', 'a/b.wasm', '../x.wasm', 'x.wasm#f'])('rejects the file name %s', (name) => {
    expect(() => wasmRunConfig(name)).toThrow(/wasm file name/);
  });
});

describe('buildWasmImage', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'wasm-image-'));
    dirs.push(dir);
    return dir;
  }

  async function unpack(tarball: string, dir: string): Promise<(digest: string) => Promise<Buffer>> {
    const layout = join(dir, 'layout');
    await mkdir(layout);
    execFileSync('tar', ['-xf', tarball, '-C', layout]);
    return (digest) => readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
  }

  it('packs the module as the only file of a single layer, Entrypoint pointing to it', async () => {
    const dir = await tempDir();
    const wasm = join(dir, 'app.wasm');
    await writeFile(wasm, EMPTY_MODULE);
    const built = await buildWasmImage({ wasm, name: 'x.local/t/app:1', out: join(dir, 'app.tar'), architecture: 'amd64' });
    expect(built).toMatchObject({ name: 'x.local/t/app:1', kind: 'module', entrypoint: '/app.wasm' });

    const blob = await unpack(built.out, dir);
    const manifest = JSON.parse((await blob(built.manifestDigest)).toString());
    expect(manifest.layers).toHaveLength(1);
    const config = JSON.parse((await blob(built.configDigest)).toString());
    expect(config).toMatchObject({ os: 'linux', architecture: 'amd64', config: { Entrypoint: ['/app.wasm'], Env: [], WorkingDir: '/' } });
    expect(config.config.Cmd).toBeUndefined();

    const layerTar = join(dir, 'layer.tar');
    await writeFile(layerTar, await blob(built.layerDigest));
    expect(execFileSync('tar', ['-tvf', layerTar], { encoding: 'utf8' }).trim()).toMatch(/^-r[w-]-r--r-- 0\/0\s+8 .* app\.wasm$/);
    execFileSync('tar', ['-xf', layerTar, '-C', dir, 'app.wasm', '--transform', 's/app/extracted/']);
    expect(await readFile(join(dir, 'extracted.wasm'))).toEqual(EMPTY_MODULE);
  });

  it('is reproducible: the same module gives the same manifest digest, another module another', async () => {
    const dir = await tempDir();
    const wasm = join(dir, 'app.wasm');
    await writeFile(wasm, EMPTY_MODULE);
    const first = await buildWasmImage({ wasm, name: 'x.local/t/app:1', out: join(dir, 'a.tar') });
    const second = await buildWasmImage({ wasm, name: 'x.local/t/app:1', out: join(dir, 'b.tar') });
    expect(second.manifestDigest).toBe(first.manifestDigest);
    await writeFile(wasm, Buffer.concat([COMPONENT_HEADER]));
    const third = await buildWasmImage({ wasm, name: 'x.local/t/app:1', out: join(dir, 'c.tar') });
    expect(third.kind).toBe('component');
    expect(third.manifestDigest).not.toBe(first.manifestDigest);
  });

  it('refuses a file that is not WebAssembly, naming it, and writes nothing', async () => {
    const dir = await tempDir();
    const wasm = join(dir, 'app.wasm');
    await writeFile(wasm, '(module)\n');
    await expect(buildWasmImage({ wasm, name: 'x.local/t/app:1', out: join(dir, 'app.tar') })).rejects.toThrow(
      `${wasm}: not a WebAssembly binary`,
    );
    expect(execFileSync('ls', ['-A', dir], { encoding: 'utf8' }).trim()).toBe('app.wasm');
  });
});
