import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildOciImage, normalizeImageName } from './build-oci.ts';

describe('normalizeImageName', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1', 'docker.io/library/busybox:1'],
    ['me/app:2', 'docker.io/me/app:2'],
    ['tether.local/e2e/pause:1', 'tether.local/e2e/pause:1'],
    ['localhost/x', 'localhost/x:latest'],
    ['registry:5000/a/b:v1.2', 'registry:5000/a/b:v1.2'],
  ])('%s → %s', (input, expected) => {
    expect(normalizeImageName(input)).toBe(expected);
  });

  it.each(['Busybox', 'a@sha256:00', 'x/:1', 'tether.local/e2e/pause:'])('rejects %s', (input) => {
    expect(() => normalizeImageName(input)).toThrow();
  });
});

describe('buildOciImage', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  async function fixture(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'oci-'));
    dirs.push(dir);
    const rootfs = join(dir, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await writeFile(join(rootfs, 'bin', 'tool'), '#!/bin/sh\necho hi\n');
    await chmod(join(rootfs, 'bin', 'tool'), 0o755);
    await symlink('tool', join(rootfs, 'bin', 'alias'));
    return dir;
  }

  const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

  it('writes an OCI layout whose digests, sizes and diff_ids all check out', async () => {
    const dir = await fixture();
    const built = await buildOciImage({
      rootfs: join(dir, 'rootfs'),
      name: 'x.local/t/tool:1',
      out: join(dir, 'img.tar'),
      config: { entrypoint: ['/bin/tool'] },
      architecture: 'amd64',
    });
    const layout = join(dir, 'layout');
    await mkdir(layout);
    execFileSync('tar', ['-xf', built.out, '-C', layout]);
    const blob = (digest: string): Promise<Buffer> => readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));

    expect(JSON.parse(await readFile(join(layout, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0].annotations).toEqual({
      'io.containerd.image.name': 'x.local/t/tool:1',
      'org.opencontainers.image.ref.name': '1',
    });
    expect(index.manifests[0].digest).toBe(built.manifestDigest);

    const manifestBytes = await blob(built.manifestDigest);
    expect(sha256(manifestBytes)).toBe(built.manifestDigest);
    expect(manifestBytes.length).toBe(index.manifests[0].size);
    const manifest = JSON.parse(manifestBytes.toString()) as { config: { digest: string }; layers: { digest: string; size: number }[] };
    const layer = manifest.layers[0]!;
    const layerBytes = await blob(layer.digest);
    expect(sha256(layerBytes)).toBe(built.layerDigest);
    expect(layerBytes.length).toBe(layer.size);
    const config = JSON.parse((await blob(manifest.config.digest)).toString());
    expect(config).toMatchObject({
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: ['/bin/tool'] },
      rootfs: { type: 'layers', diff_ids: [built.layerDigest] },
    });

    const listing = execFileSync('tar', ['-tvf', join(layout, 'blobs', 'sha256', built.layerDigest.slice(7))], { encoding: 'utf8' });
    expect(listing).toMatch(/^-rwxr-xr-x 0\/0 .* bin\/tool$/m);
    expect(listing).toMatch(/^lrwxrwxrwx 0\/0 .* bin\/alias -> tool$/m);
    expect(listing).not.toContain('./');
  });

  it('is reproducible: the same rootfs gives the same bytes', async () => {
    const dir = await fixture();
    const first = await buildOciImage({ rootfs: join(dir, 'rootfs'), name: 'a:1', out: join(dir, 'a.tar') });
    const second = await buildOciImage({ rootfs: join(dir, 'rootfs'), name: 'a:1', out: join(dir, 'b.tar') });
    expect(second.manifestDigest).toBe(first.manifestDigest);
    expect((await readFile(second.out)).equals(await readFile(first.out))).toBe(true);
  });

  it('rejects an empty rootfs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oci-'));
    dirs.push(dir);
    await mkdir(join(dir, 'empty'));
    await expect(buildOciImage({ rootfs: join(dir, 'empty'), name: 'a:1', out: join(dir, 'a.tar') })).rejects.toThrow(/empty/);
  });
});
