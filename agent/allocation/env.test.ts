import { describe, expect, it } from 'vitest';
import { containerEnv, envNamesFor, envSuffix, escapeEnvValue, sanitizeEnvName } from './env.ts';

describe('sanitizeEnvName', () => {
  it.each([
    ['DEBUG_ECHO_DESCRIPTION', 'DEBUG_ECHO_DESCRIPTION'],
    ['host', 'HOST'],
    ['rtsp.url', 'RTSP_URL'],
    ['stream-uri/main', 'STREAM_URI_MAIN'],
    ['9lives', '_9LIVES'],
    ['', '_'],
    ['ümlaut', '_MLAUT'],
    ['a b\tc', 'A_B_C'],
  ])('%j → %s', (input, expected) => {
    expect(sanitizeEnvName(input)).toBe(expected);
    expect(sanitizeEnvName(input)).toMatch(/^[A-Z_][A-Z0-9_]*$/);
  });
});

describe('escapeEnvValue', () => {
  it.each([
    ['plain', 'plain'],
    ['two\nlines', 'two\\nlines'],
    ['crlf\r\n', 'crlf\\r\\n'],
    ['nul\0byte', 'nul\\0byte'],
    ['back\\slash', 'back\\\\slash'],
    ['literal \\n stays distinct', 'literal \\\\n stays distinct'],
  ])('%j → %j', (input, expected) => {
    expect(escapeEnvValue(input)).toBe(expected);
    expect(escapeEnvValue(input)).not.toMatch(/[\n\r\0]/);
  });

  it('is injective on tricky pairs', () => {
    expect(escapeEnvValue('a\nb')).not.toBe(escapeEnvValue('a\\nb'));
  });
});

describe('envNamesFor', () => {
  it('resolves sanitising collisions deterministically without losing a property', () => {
    const names = envNamesFor({ 'a-b': '1', 'a.b': '2', a_b: '3', A_B: '4' });
    expect([...names.values()].sort()).toEqual(['A_B', 'A_B_2', 'A_B_3', 'A_B_4']);
    expect(names.get('A_B')).toBe('A_B');
    // insertion order of the input does not matter
    const reversed = envNamesFor({ A_B: '4', a_b: '3', 'a.b': '2', 'a-b': '1' });
    expect(reversed).toEqual(names);
  });
});

describe('containerEnv', () => {
  const camA = { name: 'cams-0123456789abcdef', properties: { url: 'rtsp://a', model: 'X' } };
  const camB = { name: 'cams-fedcba9876543210', properties: { url: 'rtsp://b', model: 'Y' } };

  it('one device: plain and suffixed names', () => {
    expect(containerEnv([camA])).toEqual({
      URL: 'rtsp://a',
      URL_0123456789ABCDEF: 'rtsp://a',
      MODEL: 'X',
      MODEL_0123456789ABCDEF: 'X',
      TETHER_DEVICES: 'cams-0123456789abcdef',
    });
  });

  it('several devices: only suffixed names, no collisions, order-independent', () => {
    const env = containerEnv([camB, camA]);
    expect(env).toEqual({
      URL_0123456789ABCDEF: 'rtsp://a',
      MODEL_0123456789ABCDEF: 'X',
      URL_FEDCBA9876543210: 'rtsp://b',
      MODEL_FEDCBA9876543210: 'Y',
      TETHER_DEVICES: 'cams-0123456789abcdef,cams-fedcba9876543210',
    });
    expect(containerEnv([camA, camB])).toEqual(env);
  });

  it('two slots of the same device count as one device', () => {
    expect(containerEnv([camA, camA])).toHaveProperty('URL', 'rtsp://a');
  });

  it('escapes hostile values', () => {
    const env = containerEnv([{ name: 'x-0000000000000000', properties: { note: 'a\nb\0' } }]);
    expect(env['NOTE']).toBe('a\\nb\\0');
  });

  it('derives a suffix for names without a hash tail', () => {
    expect(envSuffix('plain')).toMatch(/^[0-9A-F]{16}$/);
    expect(envSuffix('plain')).toBe(envSuffix('plain'));
  });
});
