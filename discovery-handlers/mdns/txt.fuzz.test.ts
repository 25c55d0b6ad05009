/**
 * Property-based fuzzing of DNS-SD TXT records (anything on the link can publish them):
 * decodeTxt never throws, keeps RFC 6763's rules and its bounds, and is fast.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTxt, MAX_TXT_ENTRIES, txtPropertyName } from './txt.ts';
import { expectFast, FUZZ_RUNS } from '../../test/support/fuzz.ts';

const encoder = new TextEncoder();
/** One TXT string: random bytes, or `key=value` text with hostile parts. */
const txtString = fc.oneof(
  fc.uint8Array({ maxLength: 255 }),
  fc
    .tuple(
      fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('PATH', 'path', 'a b', '', '=', '\u0000')),
      fc.option(fc.string({ unit: 'binary', maxLength: 60 }), { nil: undefined }),
    )
    .map(([key, value]) => encoder.encode(value === undefined ? key : `${key}=${value}`)),
);

describe('TXT records under fuzzing (issue 13)', () => {
  it('never throws; printable, unique (case-insensitive) keys; text values without control characters, else base64; bounded', () => {
    fc.assert(
      fc.property(fc.array(txtString, { maxLength: 200 }), (strings) => {
        expectFast(() => void decodeTxt(strings));
        const entries = decodeTxt(strings);
        expect(entries.length).toBeLessThanOrEqual(MAX_TXT_ENTRIES);
        expect(new Set(entries.map((e) => e.key.toLowerCase())).size).toBe(entries.length);
        for (const { key, value } of entries) {
          expect(key).toMatch(/^[\x20-\x3c\x3e-\x7e]+$/);
          // eslint-disable-next-line no-control-regex
          if (value !== true) expect(value.startsWith('base64:') || !/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)).toBe(true);
          expect(txtPropertyName(key)).toMatch(/^MDNS_TXT_[A-Z0-9_]+$/);
        }
      }),
      { numRuns: FUZZ_RUNS },
    );
  });
});
