import { describe, expect, it } from 'vitest';
import type { DeviceName } from '../../api/names.ts';
import { SlotLedger } from '../ledger/slot-ledger.ts';
import type { ServedDevice } from '../device.ts';
import { desiredResources, preferredSlots } from './resources.ts';

const A = 'cams-00000000000000aa';
const B = 'cams-00000000000000bb';
const device = (name: string, online = true): ServedDevice => ({
  name: name as DeviceName,
  namespace: 'default',
  discovery: 'cams',
  deviceId: name,
  shared: false,
  capacity: 2,
  online,
  properties: {},
  mounts: [],
  deviceNodes: [],
});

describe('desiredResources', () => {
  it('offers each slot through the device resource and the discovery resource', () => {
    const resources = desiredResources([device(A), device(B)], new SlotLedger(), 'n1');
    expect([...resources.keys()].sort()).toEqual([`tether.dev/${A}`, `tether.dev/${B}`, 'tether.dev/cams'].sort());
    expect(resources.get('tether.dev/cams' as never)?.map((d) => d.ID)).toEqual([`${A}-0`, `${A}-1`, `${B}-0`, `${B}-1`]);
  });

  it('lean: a device without its own resource is offered only through the discovery resource', () => {
    const resources = desiredResources([device(A), device(B)], new SlotLedger(), 'n1', (d) => d.name === B);
    expect([...resources.keys()].sort()).toEqual([`tether.dev/${B}`, 'tether.dev/cams'].sort());
    expect(resources.get('tether.dev/cams' as never)).toHaveLength(4);
  });

  it('offline devices are Unhealthy everywhere; held slots only where held', () => {
    const ledger = new SlotLedger();
    ledger.claim([`${A}-1`], { node: 'n1', resource: 'tether.dev/cams' });
    const resources = desiredResources([device(A), device(B, false)], ledger, 'n1');
    const health = (r: string) => Object.fromEntries(resources.get(r as never)!.map((d) => [d.ID, d.health]));
    expect(health(`tether.dev/${A}`)).toEqual({ [`${A}-0`]: 'Healthy', [`${A}-1`]: 'Unhealthy' });
    expect(health('tether.dev/cams')[`${A}-1`]).toBe('Healthy');
    expect(health(`tether.dev/${B}`)).toEqual({ [`${B}-0`]: 'Unhealthy', [`${B}-1`]: 'Unhealthy' });
  });

  it('slots held by another node are Unhealthy on this one', () => {
    const ledger = new SlotLedger();
    ledger.claim([`${A}-0`], { node: 'n2', resource: `tether.dev/${A}` });
    const resources = desiredResources([device(A)], ledger, 'n1');
    expect(resources.get(`tether.dev/${A}` as never)?.find((d) => d.ID === `${A}-0`)?.health).toBe('Unhealthy');
  });
});

describe('preferredSlots', () => {
  const C = 'cams-00000000000000cc';
  const available = [`${A}-0`, `${A}-1`, `${B}-0`, `${B}-1`, `${C}-0`, `${C}-1`];

  it.each([
    [2, [], [`${A}-0`, `${B}-0`]],
    [3, [], [`${A}-0`, `${B}-0`, `${C}-0`]],
    [4, [], [`${A}-0`, `${B}-0`, `${C}-0`, `${A}-1`]],
    [2, [`${B}-1`], [`${B}-1`, `${A}-0`]],
    [1, [], [`${A}-0`]],
  ])('size %i with must-include %j → %j', (size, must, expected) => {
    expect(preferredSlots(available, must, size)).toEqual(expected);
  });

  it('spreads over devices whatever the order of the IDs, with thousands of them (lean mode asks with every free slot)', () => {
    const many = Array.from({ length: 5_000 }, (_, i) => `cams-${(4_999 - i).toString(16).padStart(16, '0')}-${i % 2}`);
    const chosen = preferredSlots(many, [], 3);
    expect(chosen).toHaveLength(3);
    expect(new Set(chosen.map((s) => s.slice(0, -2))).size).toBe(3);
    expect(preferredSlots([`${B}-1`, `${A}-1`, `${B}-0`, `${A}-0`], [`${A}-1`], 3)).toEqual([`${A}-1`, `${B}-0`, `${A}-0`]);
  });

  it('never returns more than available', () => {
    expect(preferredSlots([`${A}-0`], [], 3)).toEqual([`${A}-0`]);
  });
});
