import { describe, expect, it } from 'vitest';
import { LIMITS, sanitizeForApi } from './device-object.ts';

describe('sanitizeForApi', () => {
  it('keeps clean data untouched', () => {
    const clean = sanitizeForApi({ URL: 'x', 'a.b-c': 'y' }, [{ containerPath: '/c', hostPath: '/h', readOnly: true }], []);
    expect(clean.properties).toEqual({ URL: 'x', 'a.b-c': 'y' });
    expect(clean.problems).toEqual([]);
  });

  it.each([
    ['bad chars', { 'a b/c': 'v' }, { a_b_c: 'v' }],
    ['leading digit', { '9x': 'v' }, { _9x: 'v' }],
    ['empty name', { '': 'v' }, { _: 'v' }],
  ])('rewrites property names: %s', (_what, input, expected) => {
    const clean = sanitizeForApi(input, [], []);
    expect(clean.properties).toEqual(expected);
    expect(clean.problems).toHaveLength(1);
  });

  it('bounds hostile sizes', () => {
    const many = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`P${i}`, 'v']));
    expect(Object.keys(sanitizeForApi(many, [], []).properties)).toHaveLength(LIMITS.properties);
    const long = sanitizeForApi({ BIG: 'x'.repeat(100_000) }, [], []);
    expect(long.properties['BIG']).toHaveLength(LIMITS.propertyValue);
    const longName = sanitizeForApi({ ['N'.repeat(1_000)]: 'v' }, [], []);
    expect(Object.keys(longName.properties)[0]).toHaveLength(LIMITS.propertyName);
  });

  it('drops relative paths, duplicates and bad permissions', () => {
    const clean = sanitizeForApi(
      {},
      [
        { containerPath: 'relative', hostPath: '/h', readOnly: false },
        { containerPath: '/c', hostPath: '/h1', readOnly: false },
        { containerPath: '/c', hostPath: '/h2', readOnly: false },
      ],
      [{ containerPath: '/dev/x', hostPath: '/dev/y', permissions: 'rwx;rm -rf' }],
    );
    expect(clean.mounts).toEqual([{ containerPath: '/c', hostPath: '/h2', readOnly: false }]);
    expect(clean.deviceNodes).toEqual([{ containerPath: '/dev/x', hostPath: '/dev/y', permissions: 'rw' }]);
  });
});
