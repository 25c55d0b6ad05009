/**
 * Shared settings for the property-based fuzz tests (`*.fuzz.test.ts`, fast-check): a few
 * hundred runs each, so the whole set stays within seconds in the unit project.
 */
import { expect } from 'vitest';

/** Runs per property. */
export const FUZZ_RUNS = 300;

/**
 * Asserts that `run` (which must not throw) takes less than `maxMs`. A slow first run is
 * measured twice more and the best time counts: a machine shared with other work has pauses
 * that are not the parser's, while an input that is really slow is slow every time.
 */
export function expectFast(run: () => void, maxMs = 50): void {
  let best = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < 3 && best >= maxMs; attempt++) {
    const started = performance.now();
    run();
    best = Math.min(best, performance.now() - started);
  }
  expect(best, 'time per input (best of 3)').toBeLessThan(maxMs);
}
