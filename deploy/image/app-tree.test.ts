import { describe, expect, it } from 'vitest';
import { PRUNE_PATTERN, disallowedSources, tsImportsLeft } from './app-tree.ts';

describe('disallowedSources', () => {
  it('lets product code ship (the demo kubelet included), nothing from tests, mocks or benches', () => {
    const files = [
      'bin/tether.js',
      'agent/main.js',
      'agent/kubelet/mock-kubelet.js',
      'api/names.js',
      'mocks/kubelet/mock-kubelet.js',
      'test/e2e/x.js',
      'mocks/onvif-camera/cam.js',
      'bench/run.js',
    ];
    expect(disallowedSources(files)).toEqual([
      'mocks/kubelet/mock-kubelet.js',
      'test/e2e/x.js',
      'mocks/onvif-camera/cam.js',
      'bench/run.js',
    ]);
  });
});

describe('tsImportsLeft', () => {
  it.each([
    [`import { a } from "./a.js";\nimport b from '../b.ts';`, ['../b.ts']],
    [`const m = await import('./lazy.mts');`, ['./lazy.mts']],
    [`import { z } from 'typebox';\nexport * from "./x.js";`, []],
  ])('%#', (javascript, left) => {
    expect(tsImportsLeft(javascript)).toEqual(left);
  });
});

describe('PRUNE_PATTERN', () => {
  it.each([
    ['x/index.d.ts', true],
    ['x/index.d.mts', true],
    ['x/index.js.map', true],
    ['x/README.md', true],
    ['x/index.js', false],
    ['x/package.json', false],
    ['x/schema.proto', false],
    ['x/mdns.js', false],
  ])('%s → %s', (file, pruned) => {
    expect(PRUNE_PATTERN.test(file)).toBe(pruned);
  });
});
