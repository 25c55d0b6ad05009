/**
 * Property-based fuzzing of the rule parser and the globs it compiles: whatever text a
 * DeviceDiscovery holds, parsing throws nothing but a DetailsError at the rule's path, takes
 * bounded time, and a parsed rule's globs match bounded values quickly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectFast, FUZZ_RUNS } from '../../test/support/fuzz.ts';
import { DetailsError } from '../contract.ts';
import { parseUdevRule } from './rules.ts';

const PATH = 'details.udevRules[0]';

/** Pieces of rules, so the fuzzer reaches deep into the grammar instead of failing at character 1. */
const piece = fc.constantFrom(
  'KERNEL',
  'SUBSYSTEMS',
  'ATTRS{idVendor}',
  'ENV{ID_SERIAL}',
  'ATTR{',
  'TAG',
  'RUN',
  '==',
  '!=',
  '=',
  '+=',
  '"',
  '"video[0-9]*"',
  '"[!a-',
  '"*?*?*"',
  '"a|b|"',
  '[[:digit:]]',
  '[:',
  '\\',
  ',',
  ', ',
  '{',
  '}',
  ' ',
  '|',
  '*',
  '[',
  ']',
  '\u0000',
  'é',
);
const ruleText = fc.oneof(
  fc.string({ maxLength: 1200 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.array(piece, { maxLength: 200 }).map((p) => p.join('')),
);

function parseOrDetailsError(text: string): ReturnType<typeof parseUdevRule> | undefined {
  try {
    return parseUdevRule(text, PATH);
  } catch (error) {
    expect(error).toBeInstanceOf(DetailsError);
    expect((error as DetailsError).path).toBe(PATH);
    return undefined;
  }
}

describe('udev rule parser under fuzzing', () => {
  it('any text: a rule or a DetailsError at the rule path, quickly; parsed globs match fast', () => {
    fc.assert(
      fc.property(ruleText, fc.string({ maxLength: 5000 }), (text, value) => {
        let rule: ReturnType<typeof parseUdevRule> | undefined;
        expectFast(() => {
          rule = parseOrDetailsError(text);
        });
        if (rule === undefined) return;
        expect(rule.expressions.length).toBeGreaterThan(0);
        expect(rule.expressions.length).toBeLessThanOrEqual(32);
        expectFast(() => {
          for (const e of rule!.expressions) e.value.test(value);
        });
      }),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('a near-longest rule of star-heavy globs matches a page-long value quickly', () => {
    const glob = `${'*a'.repeat(60)}b`;
    const text = Array.from({ length: 7 }, () => `KERNEL=="${glob}"`).join(',');
    const rule = parseUdevRule(text, PATH);
    expectFast(() => {
      for (const e of rule.expressions) expect(e.value.test('a'.repeat(100_000))).toBe(false);
    });
  });
});
