import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { packLayout, sha256Hex, writeGzipLayer } from './oci-blobs.ts';
import { MEDIA_TYPE } from './oci-json.ts';

describe('writeGzipLayer', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  async function tree(mtime: number): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'layer-'));
    dirs.push(dir);
    const root = join(dir, 'root');
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(join(root, 'home', 'tether'), { recursive: true });
    await mkdir(join(root, 'tmp'));
    await chmod(join(root, 'tmp'), 0o1777);
    await writeFile(join(root, 'etc', 'passwd'), 'tether:x:65532:65532::/home/tether:/sbin/nologin\n');
    await symlink('passwd', join(root, 'etc', 'link'));
    await utimes(join(root, 'etc', 'passwd'), mtime, mtime);
    return dir;
  }

  const build = async (dir: string): ReturnType<typeof writeGzipLayer> =>
    writeGzipLayer({
      root: join(dir, 'root'),
      blobsDir: join(dir, 'blobs'),
      createdBy: 't',
      owners: [{ path: 'home/tether', uid: 65532, gid: 65532 }],
    });

  it('stores a gzip blob whose digest, size and diff_id check out, owners and modes as asked', async () => {
    const dir = await tree(1_000);
    const layer = await build(dir);
    const blob = await readFile(join(dir, 'blobs', layer.digest.slice(7)));
    expect(layer.mediaType).toBe(MEDIA_TYPE.layerGzip);
    expect(`sha256:${sha256Hex(blob)}`).toBe(layer.digest);
    expect(blob.length).toBe(layer.size);
    // gzip header: no file name (FLG 0), MTIME 0.
    expect([blob[0], blob[1], blob[3], blob.readUInt32LE(4)]).toEqual([0x1f, 0x8b, 0, 0]);
    const tar = gunzipSync(blob);
    expect(`sha256:${sha256Hex(tar)}`).toBe(layer.diffId);
    expect(tar.length).toBe(layer.uncompressedSize);
    const listing = execFileSync('tar', ['-tvzf', join(dir, 'blobs', layer.digest.slice(7))], { encoding: 'utf8' });
    expect(listing).toMatch(/^drwx.* 65532\/65532 .* 1970-01-01 00:00 home\/tether\/$/m);
    expect(listing).toMatch(/^drwxrwxrwt 0\/0 .* tmp\/$/m);
    expect(listing).toMatch(/^-rw-.* 0\/0 .* 1970-01-01 00:00 etc\/passwd$/m);
    expect(listing).not.toContain('./');
  });

  it('is reproducible: the same tree (whatever its mtimes) gives the same digests', async () => {
    const first = await build(await tree(1_000));
    const second = await build(await tree(2_000_000));
    expect(second).toEqual(first);
  });

  it('packs a layout tar that depends on content only', async () => {
    const dir = await tree(1);
    const layer = await build(dir);
    const index = { schemaVersion: 2, manifests: [] };
    const pack = async (out: string): Promise<Buffer> => {
      await packLayout({ blobsDir: join(dir, 'blobs'), digests: [layer.digest, layer.digest], index, out: join(dir, out), workDir: dir });
      return readFile(join(dir, out));
    };
    const a = await pack('a.tar');
    expect((await pack('b.tar')).equals(a)).toBe(true);
    const names = execFileSync('tar', ['-tf', join(dir, 'a.tar')], { encoding: 'utf8' })
      .trim()
      .split('\n');
    expect(names).toEqual(['blobs/', 'blobs/sha256/', `blobs/sha256/${layer.digest.slice(7)}`, 'index.json', 'oci-layout']);
  });
});
