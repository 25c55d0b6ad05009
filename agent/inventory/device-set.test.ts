import { describe, expect, it } from 'vitest';
import { DeviceSet } from './device-set.ts';

function manualTimers(): {
  timers: { set: (fn: () => void, ms: number) => unknown; clear: (h: unknown) => void };
  fire: () => void;
  pending: () => number;
} {
  const queue = new Map<number, () => void>();
  let next = 0;
  return {
    timers: {
      set: (fn) => {
        queue.set(++next, fn);
        return next;
      },
      clear: (h) => queue.delete(h as number),
    },
    fire: () => {
      const fns = [...queue.values()];
      queue.clear();
      for (const fn of fns) fn();
    },
    pending: () => queue.size,
  };
}

const dev = (id: string, value = '1') => ({ id, properties: { V: value } });

describe('DeviceSet', () => {
  it('reports changes only when something changed', () => {
    let changes = 0;
    const set = new DeviceSet({ graceMs: 1_000, onChange: () => changes++ });
    set.replaceAll([dev('a')]);
    set.replaceAll([dev('a')]);
    set.upsert(dev('a'));
    expect(changes).toBe(1);
    set.upsert(dev('a', '2'));
    expect(changes).toBe(2);
    expect(set.snapshot()).toEqual([{ device: dev('a', '2'), online: true }]);
  });

  it('an empty first report still counts as a report', () => {
    let changes = 0;
    const set = new DeviceSet({ graceMs: 1_000, onChange: () => changes++ });
    expect(set.reported).toBe(false);
    set.replaceAll([]);
    expect(set.reported).toBe(true);
    expect(changes).toBe(1);
  });

  it('keeps a vanished device offline for the grace period, then forgets it', () => {
    const t = manualTimers();
    const set = new DeviceSet({ graceMs: 1_000, onChange: () => undefined, timers: t.timers });
    set.replaceAll([dev('a'), dev('b')]);
    set.replaceAll([dev('b')]);
    expect(set.snapshot()).toContainEqual({ device: dev('a'), online: false });
    t.fire();
    expect(set.snapshot().map((d) => d.device.id)).toEqual(['b']);
  });

  it('a device back within the grace period is kept and its expiry cancelled', () => {
    const t = manualTimers();
    const set = new DeviceSet({ graceMs: 1_000, onChange: () => undefined, timers: t.timers });
    set.upsert(dev('a'));
    set.remove('a');
    expect(t.pending()).toBe(1);
    set.upsert(dev('a'));
    expect(t.pending()).toBe(0);
    expect(set.snapshot()).toEqual([{ device: dev('a'), online: true }]);
  });

  it('grace 0 removes at once', () => {
    const set = new DeviceSet({ graceMs: 0, onChange: () => undefined });
    set.upsert(dev('a'));
    set.remove('a');
    expect(set.snapshot()).toEqual([]);
  });

  it('flapping costs one change per transition, not more', () => {
    let changes = 0;
    const t = manualTimers();
    const set = new DeviceSet({ graceMs: 1_000, onChange: () => changes++, timers: t.timers });
    for (let i = 0; i < 10; i++) {
      set.replaceAll([dev('a')]);
      set.replaceAll([]);
    }
    expect(changes).toBe(20);
    expect(t.pending()).toBe(1);
  });
});

describe('DeviceSet seeding (agent restart)', () => {
  it('seeded devices stay online until the first full report, which keeps the confirmed ones', () => {
    const t = manualTimers();
    const set = new DeviceSet({ graceMs: 1_000, onChange: () => undefined, timers: t.timers });
    set.seed([dev('a'), dev('b')]);
    expect(set.snapshot().every((d) => d.online)).toBe(true);
    set.replaceAll([dev('a')]);
    expect(set.snapshot()).toEqual([
      { device: dev('a'), online: true },
      { device: dev('b'), online: false },
    ]);
  });

  it('an unconfirmed seeded device goes offline at the startup timeout, a confirmed one does not', () => {
    const set = new DeviceSet({ graceMs: 1_000, onChange: () => undefined, timers: manualTimers().timers });
    set.seed([dev('a'), dev('b')]);
    set.upsert(dev('a'));
    set.expireProvisional();
    expect(set.snapshot()).toEqual([
      { device: dev('a'), online: true },
      { device: dev('b'), online: false },
    ]);
  });
});
