import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASE_FILES, imageIdentity, sourceUrl, tetherRunConfig } from './tether-image.ts';

const repo = join(import.meta.dirname, '..', '..');
const read = (path: string): Promise<string> => readFile(join(repo, path), 'utf8');

describe('imageIdentity', () => {
  it("is the Helm chart's default image, and package.json agrees on the version", async () => {
    const identity = imageIdentity({
      packageJson: await read('package.json'),
      chartYaml: await read('deploy/helm/tether/Chart.yaml'),
      valuesYaml: await read('deploy/helm/tether/values.yaml'),
    });
    const pkg = JSON.parse(await read('package.json')) as { version: string };
    expect(identity).toEqual({
      reference: `ghcr.io/tether-dev/tether:${pkg.version}`,
      version: pkg.version,
      repository: 'ghcr.io/tether-dev/tether',
    });
  });

  it.each([
    ['a version mismatch', '{"version":"0.2.0"}', 'appVersion: "0.1.0"', 'image: {repository: ghcr.io/x/y}', /differs/],
    ['no appVersion', '{"version":"0.1.0"}', 'name: tether', 'image: {repository: ghcr.io/x/y}', /required/],
    ['no repository', '{"version":"0.1.0"}', 'appVersion: "0.1.0"', 'image: {}', /required/],
  ])('rejects %s', (_case, packageJson, chartYaml, valuesYaml, error) => {
    expect(() => imageIdentity({ packageJson, chartYaml, valuesYaml })).toThrow(error);
  });
});

describe('sourceUrl', () => {
  it.each([
    ['ghcr.io/tether-dev/tether', 'https://github.com/tether-dev/tether'],
    ['registry.example.com/tether', 'https://registry.example.com/tether'],
  ])('%s → %s', (repository, url) => {
    expect(sourceUrl(repository)).toBe(url);
  });
});

describe('the image runs tether as 65532 without a shell', () => {
  it('entrypoint runs tether (chart args follow it), default --help', () => {
    expect(tetherRunConfig({ l: 'v' })).toEqual({
      user: '65532:65532',
      env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production'],
      entrypoint: ['/usr/local/bin/node', '/app/bin/tether.js'],
      cmd: ['--help'],
      workingDir: '/',
      labels: { l: 'v' },
    });
  });

  it('/etc/passwd and /etc/group name uid and gid 65532 tether', () => {
    expect(BASE_FILES['etc/passwd']).toMatch(/^tether:x:65532:65532:[^:]*:\/home\/tether:\/sbin\/nologin$/m);
    expect(BASE_FILES['etc/group']).toMatch(/^tether:x:65532:$/m);
  });
});
