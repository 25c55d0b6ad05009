import { describe, expect, it } from 'vitest';
import { DetailsError } from '../contract.ts';
import { parseUdevDetails } from './details.ts';

describe('parseUdevDetails', () => {
  it("has Akri's defaults (groupRecursive false, permissions rwm) and Tether's (poll every 5 s, at most 256 devices)", () => {
    const d = parseUdevDetails({ udevRules: ['KERNEL=="video[0-9]*"'] });
    expect(d).toMatchObject({ groupRecursive: false, permissions: 'rwm', pollIntervalMs: 5000, maxDevices: 256, shared: false });
    expect(d.udevRules.map((r) => r.source)).toEqual(['KERNEL=="video[0-9]*"']);
  });

  it("reads Akri's discoveryDetails YAML text unchanged", () => {
    const d = parseUdevDetails(
      `groupRecursive: true\nudevRules:\n- 'KERNEL=="video[0-9]*"'\n- SUBSYSTEM=="tty", ATTRS{idVendor}=="0403"\npermissions: rw\n`,
    );
    expect(d.groupRecursive).toBe(true);
    expect(d.permissions).toBe('rw');
    expect(d.udevRules.map((r) => r.expressions.length)).toEqual([1, 2]);
  });

  it('accepts an empty rule list (finds nothing), as Akri does', () => {
    expect(parseUdevDetails({ udevRules: [] }).udevRules).toEqual([]);
  });

  it.each([
    ['no details', undefined, 'details.udevRules', /required/],
    ['no rules', {}, 'details.udevRules', /required/],
    ['rules not a list', { udevRules: 'KERNEL=="x"' }, 'details.udevRules', /list/],
    ['unknown field', { udevRules: [], groupRecursiv: true }, 'details.groupRecursiv', /./],
    ['an unsupported key', { udevRules: ['KERNEL=="x"', 'RUN+="/bin/x"'] }, 'details.udevRules[1]', /unsupported key "RUN"/],
    ['an assignment', { udevRules: ['TAG+="uaccess"'] }, 'details.udevRules[0]', /unsupported operator "\+="/],
    ['an empty rule', { udevRules: [''] }, 'details.udevRules[0]', /./],
    ['a long rule', { udevRules: ['x'.repeat(1025)] }, 'details.udevRules[0]', /./],
    ['too many rules', { udevRules: Array.from({ length: 65 }, () => 'KERNEL=="x"') }, 'details.udevRules', /64/],
    ['bad permissions', { udevRules: [], permissions: 'xyz' }, 'details.permissions', /r, w, m/],
    ['poll too fast', { udevRules: [], pollIntervalSeconds: 0.001 }, 'details.pollIntervalSeconds', /./],
    ['maxDevices 0', { udevRules: [], maxDevices: 0 }, 'details.maxDevices', /./],
    ['bad YAML', 'udevRules: [', 'details', /is not valid YAML/],
    ['empty YAML text', '', 'details.udevRules', /required/],
  ])('rejects %s at %s', (_what, raw, path, message) => {
    try {
      parseUdevDetails(raw);
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(DetailsError);
      expect((error as DetailsError).path).toBe(path);
      expect((error as DetailsError).message).toMatch(message);
    }
  });
});
