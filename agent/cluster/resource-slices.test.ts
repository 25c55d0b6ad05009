import { describe, expect, it } from 'vitest';
import { attributeValue, propertyAttributeId } from '../../api/dra-attributes.ts';
import type { DeviceName } from '../../api/names.ts';
import {
  desiredPools,
  MAX_DEVICES_PER_SLICE,
  offlineTaint,
  planSlices,
  sliceDevice,
  type DraDiscoverySettings,
  type ResourceSlice,
  type SliceDevice,
} from './resource-slices.ts';

const settings: DraDiscoverySettings = { evictOnOffline: false, attributeTypes: {} };
const device = (n: number, over: Partial<SliceDevice> = {}): SliceDevice => ({
  name: `cams-${n.toString(16).padStart(16, '0')}` as DeviceName,
  namespace: 'edge',
  discovery: 'cams',
  deviceId: `id-${n}`,
  shared: false,
  capacity: 2,
  online: true,
  properties: {},
  ...over,
});
const dra = (): DraDiscoverySettings => settings;

/** What the apiserver would hold after applying the plan's slices. */
function store(plan: ReturnType<typeof planSlices>, before: readonly ResourceSlice[] = []): ResourceSlice[] {
  const byName = new Map(before.map((s) => [s.metadata.name, s]));
  for (const s of plan.apply) byName.set(s.metadata.name, s);
  for (const n of plan.delete) byName.delete(n);
  return [...byName.values()];
}

describe('attributes', () => {
  it.each([
    ['ONVIF_URL', 'ONVIF_URL'],
    ['site.zone', /^site_zone_[0-9a-f]{8}$/],
    ['1wire', /^_1wire_[0-9a-f]{8}$/],
    ['A'.repeat(40), /^A{23}_[0-9a-f]{8}$/],
  ])('property %s → attribute id %s', (property, expected) => {
    const id = propertyAttributeId(property);
    expect(id.length).toBeLessThanOrEqual(32);
    if (typeof expected === 'string') expect(id).toBe(expected);
    else expect(id).toMatch(expected);
  });

  it('keeps two properties that sanitise alike apart', () => {
    expect(propertyAttributeId('a.b')).not.toBe(propertyAttributeId('a-b'));
  });

  it.each([
    ['string', 'x', { string: 'x' }],
    ['string', 'x'.repeat(65), undefined],
    ['int', '42', { int: 42 }],
    ['int', '-7', { int: -7 }],
    ['int', '042', undefined],
    ['int', '99999999999999999999', undefined],
    ['bool', 'True', { bool: true }],
    ['bool', 'yes', undefined],
    ['version', '1.2.3-rc.1+b5', { version: '1.2.3-rc.1+b5' }],
    ['version', 'v1.2', undefined],
  ] as const)('%s %j → %j', (type, raw, expected) => {
    expect(attributeValue(type, raw)).toEqual(expected);
  });

  it('gives standard attributes, typed properties, consumable slots; leaves out what does not fit', () => {
    const entry = sliceDevice(
      device(1, { properties: { PORT: '8080', MODEL: 'x', BAD: 'nope', LONG: 'y'.repeat(70) }, deviceId: 'z'.repeat(70) }),
      'n1',
      { evictOnOffline: false, attributeTypes: { PORT: 'int', BAD: 'int' } },
    );
    expect(entry).toEqual({
      name: 'cams-0000000000000001',
      attributes: {
        'tether.dev/namespace': { string: 'edge' },
        'tether.dev/discovery': { string: 'cams' },
        'tether.dev/device': { string: 'cams-0000000000000001' },
        'tether.dev/node': { string: 'n1' },
        'property.tether.dev/MODEL': { string: 'x' },
        'property.tether.dev/PORT': { int: 8080 },
      },
      capacity: { 'tether.dev/slots': { value: '2', requestPolicy: { default: '1', validValues: ['1'] } } },
      allowMultipleAllocations: true,
    });
  });

  it('caps property attributes at 26 (32 per device with 5 standard and 1 capacity), by name', () => {
    const properties = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`P${String(i).padStart(2, '0')}`, 'v']));
    const entry = sliceDevice(device(1, { properties, deviceId: 'd' }), 'n1', settings);
    expect(Object.keys(entry.attributes).length + Object.keys(entry.capacity).length).toBe(32);
    expect(entry.attributes['property.tether.dev/P25']).toBeDefined();
    expect(entry.attributes['property.tether.dev/P26']).toBeUndefined();
  });
});

describe('offlineTaint', () => {
  it.each([
    [true, false, false, undefined],
    [false, false, false, 'NoSchedule'],
    [false, false, true, 'NoExecute'],
    // A shared device gone from one node may still be served by another: never evict for it.
    [false, true, true, 'NoSchedule'],
  ] as const)('online %s, shared %s, evict %s → %s', (online, shared, evict, effect) => {
    expect(offlineTaint({ online, shared }, evict)?.effect).toBe(effect);
  });
});

describe('desiredPools', () => {
  it('puts local devices in the node pool, shared ones in the discovery pool, skips non-DRA discoveries', () => {
    const pools = desiredPools(
      'n1',
      [device(1), device(2, { shared: true }), device(3, { discovery: 'other', name: 'other-0000000000000003' as DeviceName })],
      (_ns, d) => (d === 'cams' ? settings : undefined),
    );
    expect(pools.map((p) => [p.pool, p.slices.map((s) => s.devices.map((d) => d.name))])).toEqual([
      ['edge.cams', [['cams-0000000000000002']]],
      ['edge.cams/n1', [['cams-0000000000000001']]],
    ]);
  });

  it(`cuts a pool into slices of at most ${MAX_DEVICES_PER_SLICE}`, () => {
    const pools = desiredPools(
      'n1',
      Array.from({ length: 130 }, (_, i) => device(i)),
      dra,
    );
    expect(pools[0]!.slices.map((s) => s.devices.length)).toEqual([64, 64, 2]);
  });
});

describe('planSlices', () => {
  const devices = Array.from({ length: 70 }, (_, i) => device(i));

  it('creates every slice at generation 1 with the right slice count, then writes nothing', () => {
    const first = planSlices('n1', desiredPools('n1', devices, dra), []);
    expect(first.apply.map((s) => s.spec.pool)).toEqual([
      { name: 'edge.cams/n1', generation: 1, resourceSliceCount: 2 },
      { name: 'edge.cams/n1', generation: 1, resourceSliceCount: 2 },
    ]);
    expect(first.apply[0]!.spec.nodeName).toBe('n1');
    expect(first.apply[0]!.spec.driver).toBe('tether.dev');
    expect(planSlices('n1', desiredPools('n1', devices, dra), store(first))).toEqual({ apply: [], delete: [] });
  });

  it('taints an offline device by rewriting only its slice, same generation', () => {
    const stored = store(planSlices('n1', desiredPools('n1', devices, dra), []));
    const offline = devices.map((d, i) => (i === 65 ? { ...d, online: false } : d));
    const plan = planSlices('n1', desiredPools('n1', offline, dra), stored);
    expect(plan.delete).toEqual([]);
    expect(plan.apply).toHaveLength(1);
    expect(plan.apply[0]!.spec.pool.generation).toBe(1);
    expect(plan.apply[0]!.spec.devices![1]!.taints).toEqual([{ key: 'tether.dev/offline', value: 'true', effect: 'NoSchedule' }]);
  });

  it('ignores the timeAdded the apiserver adds to a taint', () => {
    const offline = [{ ...device(1), online: false }];
    const stored = store(planSlices('n1', desiredPools('n1', offline, dra), []));
    const withTime = stored.map((s) => ({
      ...s,
      spec: { ...s.spec, devices: s.spec.devices!.map((d) => ({ ...d, taints: d.taints!.map((t) => ({ ...t, timeAdded: 'x' })) })) },
    }));
    expect(planSlices('n1', desiredPools('n1', offline, dra), withTime)).toEqual({ apply: [], delete: [] });
  });

  it('bumps the generation of every slice when the partition changes, deletes the extra slice', () => {
    const stored = store(planSlices('n1', desiredPools('n1', devices, dra), []));
    const plan = planSlices('n1', desiredPools('n1', devices.slice(0, 10), dra), stored);
    expect(plan.apply.map((s) => s.spec.pool)).toEqual([{ name: 'edge.cams/n1', generation: 2, resourceSliceCount: 1 }]);
    expect(plan.delete).toHaveLength(1);
  });

  it('deletes every slice of a pool this node no longer has', () => {
    const stored = store(planSlices('n1', desiredPools('n1', devices, dra), []));
    const plan = planSlices(
      'n1',
      desiredPools('n1', devices, () => undefined),
      stored,
    );
    expect(plan).toEqual({ apply: [], delete: stored.map((s) => s.metadata.name).sort() });
  });

  it('re-creates a slice someone deleted, at a new generation', () => {
    const stored = store(planSlices('n1', desiredPools('n1', devices, dra), []));
    const plan = planSlices('n1', desiredPools('n1', devices, dra), stored.slice(1));
    expect(plan.apply.map((s) => s.spec.pool.generation)).toEqual([2, 2]);
  });

  it('continues from the last generation it wrote when every slice of the pool was deleted', () => {
    const plan = planSlices('n1', desiredPools('n1', devices, dra), [], {}, new Map([['edge.cams/n1', 4]]));
    expect(plan.apply.map((s) => s.spec.pool.generation)).toEqual([5, 5]);
  });
});
