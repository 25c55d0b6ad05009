import { describe, expect, it } from 'vitest';
import {
  MEDIA_TYPE,
  formatPlatform,
  imageAnnotations,
  imageConfig,
  imageIndex,
  imageManifest,
  layoutIndex,
  parsePlatform,
  type LayerBlob,
} from './oci-json.ts';

const layer = (n: number): LayerBlob => ({
  mediaType: MEDIA_TYPE.layerGzip,
  digest: `sha256:${String(n).repeat(64)}`,
  size: 100 + n,
  diffId: `sha256:${String(n + 1).repeat(64)}`,
  uncompressedSize: 1000 + n,
  createdBy: `layer ${n}`,
});

const source = {
  title: 'tether',
  description: 'd',
  version: '0.1.0',
  source: 'https://github.com/tether-dev/tether',
  licenses: 'Apache-2.0',
  revision: 'abc',
  created: '2026-11-27T07:14:30Z',
};

describe('parsePlatform', () => {
  it.each([
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ['linux/arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64/v8'],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
  ])('%s', (text, platform, formatted) => {
    expect(parsePlatform(text)).toEqual(platform);
    expect(formatPlatform(parsePlatform(text))).toBe(formatted);
  });

  it.each(['amd64', 'windows/amd64', 'linux/', 'linux/arm64/v8/x'])('rejects %s', (text) => {
    expect(() => parsePlatform(text)).toThrow(/invalid platform/);
  });
});

describe('imageConfig', () => {
  it('lists diff_ids (not blob digests) and one history entry per layer, at the fixed time', () => {
    const config = imageConfig({
      platform: parsePlatform('linux/arm64'),
      created: source.created,
      layers: [layer(1), layer(2)],
      run: { user: '65532:65532', env: ['A=1'], entrypoint: ['/e'], cmd: ['--help'], workingDir: '/', labels: { l: 'v' } },
    });
    expect(config).toEqual({
      created: source.created,
      architecture: 'arm64',
      os: 'linux',
      variant: 'v8',
      config: { User: '65532:65532', Env: ['A=1'], Entrypoint: ['/e'], Cmd: ['--help'], WorkingDir: '/', Labels: { l: 'v' } },
      rootfs: { type: 'layers', diff_ids: [layer(1).diffId, layer(2).diffId] },
      history: [
        { created: source.created, created_by: 'layer 1' },
        { created: source.created, created_by: 'layer 2' },
      ],
    });
  });

  it('serializes the same input to the same bytes', () => {
    const make = (): string =>
      JSON.stringify(
        imageConfig({ platform: parsePlatform('linux/amd64'), created: source.created, layers: [layer(3)], run: { cmd: ['x'] } }),
      );
    expect(make()).toBe(make());
  });
});

describe('manifest, index and layout index', () => {
  const config = { mediaType: MEDIA_TYPE.config, digest: `sha256:${'c'.repeat(64)}`, size: 10 };

  it('manifest lists layer descriptors without build-only fields', () => {
    expect(imageManifest({ config, layers: [layer(1)], annotations: { a: 'b' } })).toEqual({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config,
      layers: [{ mediaType: MEDIA_TYPE.layerGzip, digest: layer(1).digest, size: 101 }],
      annotations: { a: 'b' },
    });
  });

  it('index carries each manifest with its platform', () => {
    const manifests = [
      { mediaType: MEDIA_TYPE.manifest, digest: `sha256:${'a'.repeat(64)}`, size: 1, platform: parsePlatform('linux/amd64') },
      { mediaType: MEDIA_TYPE.manifest, digest: `sha256:${'b'.repeat(64)}`, size: 2, platform: parsePlatform('linux/arm64') },
    ];
    expect(imageIndex({ manifests })).toEqual({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests });
  });

  it('layout index names the image for containerd (full name) and the OCI layout (tag)', () => {
    const index = { mediaType: MEDIA_TYPE.index, digest: `sha256:${'d'.repeat(64)}`, size: 3 };
    expect(layoutIndex(index, 'ghcr.io/tether-dev/tether:0.1.0')).toEqual({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.index,
      manifests: [
        {
          ...index,
          annotations: { 'io.containerd.image.name': 'ghcr.io/tether-dev/tether:0.1.0', 'org.opencontainers.image.ref.name': '0.1.0' },
        },
      ],
    });
  });
});

describe('imageAnnotations', () => {
  it('sets every pre-defined key Tether publishes, sorted', () => {
    const annotations = imageAnnotations(source);
    expect(Object.keys(annotations)).toEqual([...Object.keys(annotations)].sort());
    expect(annotations).toEqual({
      'org.opencontainers.image.created': '2026-11-27T07:14:30Z',
      'org.opencontainers.image.description': 'd',
      'org.opencontainers.image.licenses': 'Apache-2.0',
      'org.opencontainers.image.revision': 'abc',
      'org.opencontainers.image.source': 'https://github.com/tether-dev/tether',
      'org.opencontainers.image.title': 'tether',
      'org.opencontainers.image.version': '0.1.0',
    });
  });
});
