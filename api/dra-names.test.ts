import { describe, expect, it } from 'vitest';
import { draDeviceName, draDevicePool, draPoolName, MAX_DRA_POOL_NAME_LENGTH, parseDraDeviceName, parseDraPoolName } from './dra-names.ts';
import { deviceName } from './names.ts';

describe('dra names', () => {
  const device = deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'uuid-1' });

  it('names a slice device exactly as the Device, and parses it back', () => {
    expect(draDeviceName(device)).toBe(device);
    expect(parseDraDeviceName(device)).toBe(device);
    expect(parseDraDeviceName('gpu-0')).toBeUndefined();
  });

  it.each([
    [{ namespace: 'ns', discovery: 'cams' }, 'ns.cams'],
    [{ namespace: 'ns', discovery: 'cams', node: 'node-1.example' }, 'ns.cams/node-1.example'],
  ])('pool of %o is %s and parses back', (ref, pool) => {
    expect(draPoolName(ref)).toBe(pool);
    expect(parseDraPoolName(pool)).toEqual(ref);
  });

  it('hashes a node name that would make the pool too long', () => {
    const pool = draPoolName({ namespace: 'ns', discovery: 'cams', node: 'n'.repeat(250) });
    expect(pool).toMatch(/^ns\.cams\/node-[0-9a-f]{16}$/);
    expect(pool.length).toBeLessThanOrEqual(MAX_DRA_POOL_NAME_LENGTH);
  });

  it.each(['nodot', '.x', 'x.', 'a.b.c', 'a.b/', 'a.b/c/d'])('refuses pool %s', (pool) => {
    expect(parseDraPoolName(pool)).toBeUndefined();
  });
});

describe('draDevicePool', () => {
  it.each([
    [true, 'ns.cams'],
    [false, 'ns.cams/n1'],
  ])('shared=%s → %s', (shared, pool) => {
    expect(draDevicePool({ namespace: 'ns', discovery: 'cams', shared }, 'n1')).toBe(pool);
  });
});
