import { describe, expect, it } from 'vitest';
import { shouldReconcile } from './reconcile-schedule.ts';

describe('shouldReconcile', () => {
  it.each([
    ['holding a slot: every tick', { holdsSlots: true, servesDevices: true, sinceLastMs: 5_000, idleIntervalMs: 60_000 }, true],
    [
      'holding a slot, just asked: still every tick',
      { holdsSlots: true, servesDevices: true, sinceLastMs: 0, idleIntervalMs: 60_000 },
      true,
    ],
    [
      'never asked: the first tick asks (adopts what a restart left)',
      { holdsSlots: false, servesDevices: true, sinceLastMs: undefined, idleIntervalMs: 60_000 },
      true,
    ],
    ['idle, asked recently: skipped', { holdsSlots: false, servesDevices: true, sinceLastMs: 55_000, idleIntervalMs: 60_000 }, false],
    ['idle, the idle period is over: asks', { holdsSlots: false, servesDevices: true, sinceLastMs: 60_000, idleIntervalMs: 60_000 }, true],
    [
      'serving nothing, holding nothing: never again after the first call',
      { holdsSlots: false, servesDevices: false, sinceLastMs: 600_000, idleIntervalMs: 60_000 },
      false,
    ],
    [
      'serving nothing yet: the first call still asks (a restart may have left slots)',
      { holdsSlots: false, servesDevices: false, sinceLastMs: undefined, idleIntervalMs: 60_000 },
      true,
    ],
  ])('%s', (_name, tick, want) => {
    expect(shouldReconcile(tick)).toBe(want);
  });
});
