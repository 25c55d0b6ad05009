import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  deviceName,
  deviceResourceName,
  discoveryResourceName,
  isDeviceName,
  isValidDiscoveryName,
  MAX_DEVICE_ID_LENGTH,
  MAX_DEVICE_NAME_LENGTH,
  MAX_DISCOVERY_NAME_LENGTH,
  MAX_RESOURCE_NAME_PART_LENGTH,
  parseSlotId,
  slotId,
} from './names.ts';

/** Name part of a qualified name (what the kubelet requires after `tether.dev/`). */
const QUALIFIED_NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

function resourceNamePart(resource: string): string {
  expect(resource.startsWith('tether.dev/')).toBe(true);
  return resource.slice('tether.dev/'.length);
}

describe('deviceName', () => {
  const shared = { namespace: 'default', discovery: 'cameras', deviceId: 'urn:uuid:1' };

  // Pinned: changing the encoding renames every Device in every cluster.
  it.each([
    [shared, 'cameras-b2adb2085ba0cc95'],
    [{ namespace: 'default', discovery: 'usb', deviceId: '/devices/pci0000:00/usb1/1-1', node: 'node-a' }, 'usb-64d9aafa07d2ab99'],
  ])('is stable: %o → %s', (identity, name) => {
    expect(deviceName(identity)).toBe(name);
  });

  it('is deterministic', () => {
    expect(deviceName({ ...shared })).toBe(deviceName({ ...shared }));
  });

  it('differs between a shared device and the same id seen locally, and between nodes', () => {
    const names = new Set([deviceName(shared), deviceName({ ...shared, node: 'node-a' }), deviceName({ ...shared, node: 'node-b' })]);
    expect(names.size).toBe(3);
  });

  it('covers the namespace and does not confuse field boundaries', () => {
    const names = [
      deviceName({ namespace: 'a', discovery: 'cams', deviceId: 'x' }),
      deviceName({ namespace: 'b', discovery: 'cams', deviceId: 'x' }),
      deviceName({ namespace: 'ab', discovery: 'cams', deviceId: 'x' }),
      deviceName({ namespace: 'a', discovery: 'cams', deviceId: 'xy', node: 'z' }),
      deviceName({ namespace: 'a', discovery: 'cams', deviceId: 'x', node: 'yz' }),
      deviceName({ namespace: 'a', discovery: 'cams', deviceId: 'x\u0000\u0000\u0000\u0001y' }),
      deviceName({ namespace: 'a', discovery: 'cams', deviceId: 'x', node: 'y' }),
    ];
    expect(new Set(names).size).toBe(names.length);
  });

  it('has no collisions among 100k random device ids', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      const name = deviceName({ namespace: 'default', discovery: 'cams', deviceId: randomBytes(12).toString('base64') });
      seen.add(name);
    }
    expect(seen.size).toBe(100_000);
  });

  it('fits every limit at the longest discovery name', () => {
    const discovery = `a${'b'.repeat(MAX_DISCOVERY_NAME_LENGTH - 1)}`;
    const name = deviceName({ namespace: 'n'.repeat(63), discovery, deviceId: 'x'.repeat(MAX_DEVICE_ID_LENGTH), node: 'node' });
    expect(name).toHaveLength(MAX_DEVICE_NAME_LENGTH);
    expect(MAX_DEVICE_NAME_LENGTH).toBeLessThanOrEqual(MAX_RESOURCE_NAME_PART_LENGTH);
    expect(name).toMatch(DNS_1035_LABEL);
    expect(isDeviceName(name)).toBe(true);
    const part = resourceNamePart(deviceResourceName(name));
    expect(part.length).toBeLessThanOrEqual(MAX_RESOURCE_NAME_PART_LENGTH);
    expect(part).toMatch(QUALIFIED_NAME_PART);
  });

  it('counts device id length in code points, as the CRD does', () => {
    expect(() => deviceName({ ...shared, deviceId: '😀'.repeat(MAX_DEVICE_ID_LENGTH) })).not.toThrow();
    expect(() => deviceName({ ...shared, deviceId: 'x'.repeat(MAX_DEVICE_ID_LENGTH + 1) })).toThrow(RangeError);
  });

  it.each([
    ['empty device id', { ...shared, deviceId: '' }],
    ['empty namespace', { ...shared, namespace: '' }],
    ['empty node', { ...shared, node: '' }],
    ['discovery too long', { ...shared, discovery: 'a'.repeat(MAX_DISCOVERY_NAME_LENGTH + 1) }],
    ['discovery with a dot', { ...shared, discovery: 'a.b' }],
    ['discovery shaped like a device name', { ...shared, discovery: 'cams-0123456789abcdef' }],
  ])('rejects %s', (_, identity) => {
    expect(() => deviceName(identity)).toThrow(RangeError);
  });
});

describe('isValidDiscoveryName', () => {
  it.each([
    ['cameras', true],
    ['a', true],
    ['usb-2', true],
    ['cams-0123456789abcde', true],
    ['a'.repeat(MAX_DISCOVERY_NAME_LENGTH), true],
    ['a'.repeat(MAX_DISCOVERY_NAME_LENGTH + 1), false],
    ['', false],
    ['1wire', false],
    ['Cams', false],
    ['cams-', false],
    ['cams.example', false],
    ['cams_usb', false],
    ['cams-0123456789abcdef', false],
  ])('%s → %s', (name, valid) => {
    expect(isValidDiscoveryName(name)).toBe(valid);
  });
});

describe('slot ids', () => {
  const device = deviceName({ namespace: 'default', discovery: 'cams', deviceId: 'x' });

  it.each([0, 1, 9, 10, 1023])('round-trips index %i', (index) => {
    const id = slotId(device, index);
    expect(id).toBe(`${device}-${index}`);
    expect(parseSlotId(id)).toEqual({ deviceName: device, index });
  });

  it('round-trips a device name containing dashes', () => {
    const dashed = deviceName({ namespace: 'default', discovery: 'a-b-c', deviceId: 'x' });
    expect(parseSlotId(slotId(dashed, 7))).toEqual({ deviceName: dashed, index: 7 });
  });

  it.each([
    '',
    '-',
    '-1',
    device,
    `${device}-`,
    `${device}--1`,
    `${device}-01`,
    `${device}-1.5`,
    `${device}-1e3`,
    `${device}- 1`,
    `${device}-x`,
    `${device.toUpperCase()}-1`,
    'cams-0123456789abcdeg-1',
    'cams-0123456789abcde-1',
    'cams-1',
    'tether.dev/cams-0123456789abcdef-1',
    `${device}-1-2`,
  ])('rejects %j', (id) => {
    expect(parseSlotId(id)).toBeUndefined();
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('slotId refuses index %d', (index) => {
    expect(() => slotId(device, index)).toThrow(RangeError);
  });
});

describe('resource names', () => {
  it('prefixes with the API group', () => {
    expect(deviceResourceName('cams-0123456789abcdef')).toBe('tether.dev/cams-0123456789abcdef');
    expect(discoveryResourceName('cams')).toBe('tether.dev/cams');
  });

  it('fits the limit for the longest discovery name', () => {
    const part = resourceNamePart(discoveryResourceName('a'.repeat(MAX_DISCOVERY_NAME_LENGTH)));
    expect(part.length).toBeLessThanOrEqual(MAX_RESOURCE_NAME_PART_LENGTH);
    expect(part).toMatch(QUALIFIED_NAME_PART);
  });
});
