import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadCheckpoint,
  parseCheckpoint,
  saveCheckpoint,
  serializeCheckpoint,
  withClaim,
  withoutClaim,
  type PreparedClaim,
} from './checkpoint.ts';

const claim: PreparedClaim = {
  namespace: 'ns',
  name: 'c',
  specPath: '/var/run/cdi/tether.dev-u1.json',
  devices: [{ request_names: ['r'], pool_name: 'p', device_name: 'd', cdi_device_ids: ['tether.dev/device=u1-d'] }],
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tdc-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('checkpoint', () => {
  it('adds and removes claims without touching the input', () => {
    const empty = new Map<string, PreparedClaim>();
    const one = withClaim(empty, 'u1', claim);
    expect(empty.size).toBe(0);
    expect(withoutClaim(one, 'u1').size).toBe(0);
    expect(one.get('u1')).toBe(claim);
  });

  it('round-trips through its file', async () => {
    const path = join(dir, 'sub', 'dra-checkpoint.json');
    expect((await loadCheckpoint(path)).size).toBe(0);
    await saveCheckpoint(path, withClaim(new Map(), 'u1', claim));
    expect(await loadCheckpoint(path)).toEqual(new Map([['u1', claim]]));
    expect(await readFile(path, 'utf8')).toBe(serializeCheckpoint(new Map([['u1', claim]])));
  });

  it.each(['{}', '{"version":2,"claims":{}}', '{"version":1,"claims":{"u":{"devices":[]}}}', 'null'])('refuses %s', (text) => {
    expect(() => parseCheckpoint(text)).toThrow();
  });
});
