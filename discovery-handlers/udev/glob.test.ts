import { describe, expect, it } from 'vitest';
import { expectFast } from '../../test/support/fuzz.ts';
import { compileGlob, GlobError, plainAlternatives } from './glob.ts';

describe('udev globs', () => {
  it.each([
    ['video0', 'video0', true],
    ['video0', 'video01', false],
    ['video[0-9]*', 'video0', true],
    ['video[0-9]*', 'video12', true],
    ['video[0-9]*', 'video', false],
    ['video[0-9]*', 'blahvideo0', false],
    ['tty*', 'ttyUSB0', true],
    ['tty*', 'tty', true],
    ['ttyUSB?', 'ttyUSB0', true],
    ['ttyUSB?', 'ttyUSB10', false],
    ['*', '', true],
    ['?*', '', false],
    ['?*', 'x', true],
    ['', '', true],
    ['', 'x', false],
    ['[!0-9]*', 'a1', true],
    ['[!0-9]*', '1a', false],
    ['[^0-9]*', '1a', false],
    ['[]a]', ']', true],
    ['[!]]', 'a', true],
    ['[a-]', '-', true],
    ['[[:digit:]][[:xdigit:]]', '1f', true],
    ['[[:upper:]]', 'a', false],
    ['video*|vbi*', 'vbi0', true],
    ['video*|vbi*', 'radio0', false],
    ['|foo', '', true],
    ['\\*', '*', true],
    ['\\*', 'a', false],
    ['*:capture:*', ':video_capture:capture:', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'aXbY', false],
    ['/devices/*', '/devices/pci0000:00/usb1', true], // * crosses / (fnmatch without FNM_PATHNAME, as udev)
  ])('%j on %j → %s', (pattern, value, expected) => {
    expect(compileGlob(pattern).test(value)).toBe(expected);
  });

  it.each([
    ['video[0-9', '"[" is not closed by "]"'],
    ['[z-a]', 'range "z-a" is reversed'],
    ['[[:nope:]]', 'unknown character class "[:nope:]"'],
    ['x'.repeat(257), 'longer than 256'],
    [Array.from({ length: 33 }, () => 'a').join('|'), 'more than 32'],
  ])('refuses %j', (pattern, message) => {
    expect(() => compileGlob(pattern)).toThrow(GlobError);
    expect(() => compileGlob(pattern)).toThrow(message);
  });

  it('tells plain values (a subsystem name) from patterns', () => {
    expect(plainAlternatives(compileGlob('tty|video4linux'))).toEqual(['tty', 'video4linux']);
    expect(plainAlternatives(compileGlob('tty*'))).toBeUndefined();
  });

  it('stays fast on the worst patterns (no backtracking blow-up)', () => {
    const glob = compileGlob(`${'*a'.repeat(64)}b`);
    expectFast(() => expect(glob.test('a'.repeat(100_000))).toBe(false));
  });
});
