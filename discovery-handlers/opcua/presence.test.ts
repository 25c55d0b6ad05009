import { describe, expect, it } from 'vitest';
import { Backoff, PresenceTable } from './presence.ts';

const device = (id: string): { id: string; properties: Record<string, string> } => ({ id, properties: {} });

describe('PresenceTable', () => {
  it('keeps a failing server until offlineAfter consecutive failures; a success resets the count', () => {
    const table = new PresenceTable(2);
    table.answered('u1', device('a'));
    expect(table.failed('u1')).toBe(false);
    table.answered('u1', device('a'));
    expect(table.failed('u1')).toBe(false);
    expect(table.devices(10).devices.map((d) => d.id)).toEqual(['a']);
    expect(table.failed('u1')).toBe(true);
    expect(table.devices(10).devices).toEqual([]);
  });

  it('forgets unlisted servers at once; one device per id; at most max', () => {
    const table = new PresenceTable(3);
    table.answered('u1', device('a'));
    table.answered('u2', device('a'));
    table.answered('u3', device('b'));
    table.answered('u4', undefined);
    expect(table.devices(10).devices.map((d) => d.id)).toEqual(['a', 'b']);
    expect(table.devices(1)).toEqual({ devices: [device('a')], limited: true });
    table.keepOnly(new Set(['u3']));
    expect(table.devices(10).devices.map((d) => d.id)).toEqual(['b']);
  });
});

describe('Backoff', () => {
  it.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 500],
    [9, 500],
  ])('after %i failures waits %i ms (interval 100, cap 500)', (failures, delay) => {
    const backoff = new Backoff(100, 500);
    let last = 0;
    for (let i = 0; i < failures; i++) last = backoff.failed('k', 0);
    expect(last).toBe(delay);
    expect(backoff.due('k', delay - 1)).toBe(false);
    expect(backoff.due('k', delay)).toBe(true);
    backoff.succeeded('k');
    expect(backoff.due('k', 0)).toBe(true);
  });
});
