import { describe, expect, it } from 'vitest';
import { parseOnvifDetails } from './details.ts';
import { hasDeviceFilters, passesDeviceFilters, passesDiscoveryFilters, scopeMatches } from './filters.ts';
import { cidrContains, hosts, parseCidr } from '../ipv4.ts';
import { parsePattern } from '../pattern.ts';

const UUID = '1419d68a-1dd2-11b2-a105-f0000000ab01';
const facts = { uuid: UUID, ip: '10.0.0.7', scopes: ['onvif://www.onvif.org/name/Door', 'onvif://www.onvif.org/location/building/hall'] };

describe('discovery filters (before any SOAP call)', () => {
  it.each([
    [{}, true],
    [{ ipAddresses: { include: ['10.0.0.0/24'] } }, true],
    [{ ipAddresses: { include: ['10.0.1.0/24'] } }, false],
    [{ ipAddresses: { exclude: ['10.0.0.7'] } }, false],
    [{ ipAddresses: { include: ['10.0.0.0/8'], exclude: ['10.0.0.0/29'] } }, false],
    [{ ipAddresses: { action: 'Exclude', items: ['10.0.0.8'] } }, true],
    [{ uuids: { include: [`urn:uuid:${UUID.toUpperCase()}`] } }, true],
    [{ uuids: { exclude: [UUID] } }, false],
    [{ scopes: { include: ['onvif://www.onvif.org/location/building'] } }, true],
    [{ scopes: { include: ['onvif://www.onvif.org/location/build'] } }, false],
    [{ scopes: { include: ['onvif://www.onvif.org/location/'] } }, true],
    [{ scopes: { exclude: ['onvif://www.onvif.org/name/Door'] } }, false],
  ])('%j → %s', (raw, expected) => {
    expect(passesDiscoveryFilters(parseOnvifDetails(raw).filters, facts)).toBe(expected);
  });

  it('an include filter rejects a camera whose IP is unknown', () => {
    expect(
      passesDiscoveryFilters(parseOnvifDetails({ ipAddresses: { include: ['10.0.0.0/8'] } }).filters, { ...facts, ip: undefined }),
    ).toBe(false);
    expect(
      passesDiscoveryFilters(parseOnvifDetails({ ipAddresses: { exclude: ['10.0.0.0/8'] } }).filters, { ...facts, ip: undefined }),
    ).toBe(true);
  });
});

describe('device filters (after GetDeviceInformation / GetNetworkInterfaces)', () => {
  const device = { mac: 'aa:bb:cc:dd:ee:ff', manufacturer: 'AXIS', model: 'P1375-E' };
  it.each([
    [{}, true, false],
    [{ macAddresses: { include: ['AA-BB-CC-DD-EE-FF'] } }, true, true],
    [{ macAddresses: { exclude: ['aabbccddeeff'] } }, false, true],
    [{ manufacturers: { include: ['axis'] } }, true, true],
    [{ manufacturers: { include: ['Hik*'] } }, false, true],
    [{ models: { include: ['P13??-E'] } }, true, true],
    [{ models: { include: ['/^P1[0-9]+-E$/'] } }, true, true],
    [{ models: { include: ['/^p1/'] } }, false, true],
    [{ models: { include: ['/^p1/i'] } }, true, true],
    [{ manufacturers: { include: ['*'] }, models: { exclude: ['P1375-E'] } }, false, true],
  ])('%j → %s', (raw, expected, needsSoap) => {
    const filters = parseOnvifDetails(raw).filters;
    expect(hasDeviceFilters(filters)).toBe(needsSoap);
    expect(passesDeviceFilters(filters, device)).toBe(expected);
  });

  it('unknown values fail include lists and pass exclude lists', () => {
    const unknown = { mac: undefined, manufacturer: undefined, model: undefined };
    expect(passesDeviceFilters(parseOnvifDetails({ macAddresses: { include: ['aa:bb:cc:dd:ee:ff'] } }).filters, unknown)).toBe(false);
    expect(passesDeviceFilters(parseOnvifDetails({ macAddresses: { exclude: ['aa:bb:cc:dd:ee:ff'] } }).filters, unknown)).toBe(true);
  });
});

describe('helpers', () => {
  it.each([
    ['onvif://www.onvif.org/location', 'onvif://www.onvif.org/location/hall', true],
    ['onvif://www.onvif.org/location/', 'onvif://www.onvif.org/location/hall', true],
    ['onvif://www.onvif.org/loc', 'onvif://www.onvif.org/location/hall', false],
    ['ONVIF://www.onvif.org/Name/Door', 'onvif://www.onvif.org/name/door', true],
  ])('scopeMatches(%s, %s) = %s', (item, scope, expected) => expect(scopeMatches(item, scope)).toBe(expected));

  it('CIDR arithmetic', () => {
    const block = parseCidr('192.168.1.77/30')!;
    expect(block.network).toBe(parseCidr('192.168.1.76')!.network);
    expect([...hosts(block)]).toEqual(['192.168.1.77', '192.168.1.78']);
    expect([...hosts(parseCidr('10.0.0.5')!)]).toEqual(['10.0.0.5']);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, '255.255.255.255')).toBe(true);
    expect(cidrContains(block, '192.168.1.80')).toBe(false);
    expect(parseCidr('1.2.3.4/x')).toBeUndefined();
  });

  it('patterns: globs are anchored and case-insensitive, regexes keep their flags', () => {
    expect(parsePattern('ax*', 'p').test('AXIS')).toBe(true);
    expect(parsePattern('ax', 'p').test('AXIS')).toBe(false);
    expect(parsePattern('a.c', 'p').test('abc')).toBe(false);
    expect(parsePattern('/a.c/', 'p').test('xabcx')).toBe(true);
  });
});
