import type { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { DetailsError } from '../contract.ts';
import { parseMdnsDetails, parseServiceType } from './details.ts';
import { interfaceAddresses, questionFor, toRecord } from './mdns.ts';

describe('parseServiceType', () => {
  it.each([
    ['_ipp._tcp', { type: '_ipp._tcp', browseName: '_ipp._tcp.local' }],
    ['_ipp._tcp.local', { type: '_ipp._tcp', browseName: '_ipp._tcp.local' }],
    ['_ipp._tcp.local.', { type: '_ipp._tcp', browseName: '_ipp._tcp.local' }],
    ['_printer._sub._http._tcp', { type: '_http._tcp', browseName: '_printer._sub._http._tcp.local' }],
    ['_my-svc._udp', { type: '_my-svc._udp', browseName: '_my-svc._udp.local' }],
    ['ipp._tcp', undefined],
    ['_ipp._sctp', undefined],
    ['_ipp', undefined],
    ['_this-name-is-too-long._tcp', undefined],
    ['_ipp._tcp.example.com', undefined],
  ])('%s', (text, expected) => {
    expect(parseServiceType(text)).toEqual(expected);
  });
});

describe('parseMdnsDetails', () => {
  it('fills defaults', () => {
    expect(parseMdnsDetails({ serviceTypes: ['_ipp._tcp'] })).toEqual({
      serviceTypes: [{ type: '_ipp._tcp', browseName: '_ipp._tcp.local' }],
      filters: { txt: [] },
      discoveryTimeoutMs: 1500,
      maxQueryIntervalMs: 3_600_000,
      maxDevices: 1024,
      shared: true,
    });
  });

  it('compiles filters', () => {
    const details = parseMdnsDetails({
      serviceTypes: ['_rtsp._tcp'],
      interfaces: ['eth0', '10.0.0.5'],
      filters: { instanceName: '^Lobby', host: 'cam', txt: { path: '^/s', vendor: true } },
    });
    expect(details.interfaces).toEqual(['eth0', '10.0.0.5']);
    expect(details.filters.instanceName?.test('Lobby Cam')).toBe(true);
    expect(details.filters.txt).toEqual([{ key: 'path', value: /^\/s/u }, { key: 'vendor' }]);
  });

  it.each([
    [null, 'details'],
    [{}, 'details.serviceTypes'],
    [{ serviceTypes: [] }, 'details.serviceTypes'],
    [{ serviceTypes: ['ipp'] }, 'details.serviceTypes[0]'],
    [{ serviceTypes: ['_ipp._tcp', 7] }, 'details.serviceTypes[1]'],
    [{ serviceTypes: ['_ipp._tcp'], interfaces: ['eth0; rm -rf'] }, 'details.interfaces[0]'],
    [{ serviceTypes: ['_ipp._tcp'], interfaces: [] }, 'details.interfaces'],
    [{ serviceTypes: ['_ipp._tcp'], filters: { instanceName: '(' } }, 'details.filters.instanceName'],
    [{ serviceTypes: ['_ipp._tcp'], filters: { host: 'x'.repeat(300) } }, 'details.filters.host'],
    [{ serviceTypes: ['_ipp._tcp'], filters: { txt: { 'a=b': true } } }, 'details.filters.txt.a=b'],
    [{ serviceTypes: ['_ipp._tcp'], filters: { txt: { rp: 5 } } }, 'details.filters.txt.rp'],
    [{ serviceTypes: ['_ipp._tcp'], filters: { txt: ['rp'] } }, 'details.filters.txt'],
    [{ serviceTypes: ['_ipp._tcp'], filters: { name: 'x' } }, 'details.filters.name'],
    [{ serviceTypes: ['_ipp._tcp'], discoveryTimeoutSeconds: 0 }, 'details.discoveryTimeoutSeconds'],
    [{ serviceTypes: ['_ipp._tcp'], maxQueryIntervalSeconds: 0.5 }, 'details.maxQueryIntervalSeconds'],
    [{ serviceTypes: ['_ipp._tcp'], shared: 1 }, 'details.shared'],
    [{ serviceTypes: ['_ipp._tcp'], types: [] }, 'details.types'],
  ])('rejects %j at %s', (raw, path) => {
    try {
      parseMdnsDetails(raw);
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(DetailsError);
      expect((error as DetailsError).path).toBe(path);
    }
  });
});

describe('interfaceAddresses', () => {
  const interfaces = {
    lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
    eth0: [
      { address: 'fe80::1', family: 'IPv6', internal: false },
      { address: '192.168.1.5', family: 'IPv4', internal: false },
    ],
    wlan0: [{ address: '10.1.2.3', family: 'IPv4', internal: false }],
  } as unknown as ReturnType<typeof networkInterfaces>;

  it('defaults to the first IPv4 of every non-internal interface', () => {
    expect(interfaceAddresses(undefined, interfaces)).toEqual(['192.168.1.5', '10.1.2.3']);
  });

  it('resolves names and keeps addresses', () => {
    expect(interfaceAddresses(['eth0', '10.9.9.9'], interfaces)).toEqual(['192.168.1.5', '10.9.9.9']);
  });

  it('fails for an unknown interface (the agent retries with backoff)', () => {
    expect(() => interfaceAddresses(['eth9'], interfaces)).toThrow('interface eth9 does not exist or has no IPv4 address');
    expect(() => interfaceAddresses(undefined, { lo: interfaces['lo'] })).toThrow('no non-internal IPv4 interface');
  });
});

describe('toRecord', () => {
  it.each([
    [{ name: 'a.local', type: 'A', ttl: 120, data: '10.0.0.1' }, true],
    [{ name: 'a.local', type: 'A', ttl: 120, class: 'CH', data: '10.0.0.1' }, false],
    [{ name: 's.local', type: 'SRV', ttl: 120, data: { port: 1, target: 'h.local' } }, true],
    [{ name: 's.local', type: 'SRV', ttl: 120, data: { target: 'h.local' } }, false],
    [{ name: 't.local', type: 'TXT', ttl: 120, data: [Buffer.from('a=b')] }, true],
    [{ name: 't.local', type: 'TXT', ttl: 120, data: 'a=b' }, false],
    [{ name: 'x.local', type: 'HINFO', ttl: 120, data: {} }, false],
    [{ name: 'x.local', type: 'PTR', data: 'y.local' }, false],
    [{ type: 'PTR', ttl: 1, data: 'y.local' }, false],
  ])('%o → kept %s', (answer, kept) => {
    expect(toRecord(answer) !== undefined).toBe(kept);
  });
});

describe('questionFor', () => {
  const types = [parseServiceType('_ipp._tcp')!];
  it.each([
    ['Office Printer._ipp._tcp.local', 'SRV', { name: 'Office Printer._ipp._tcp.local', type: 'SRV' }],
    ['Printer v2.1._ipp._tcp.local', 'SRV', { name: '_ipp._tcp.local', type: 'PTR' }],
    ['Printer v2.1._ipp._tcp.local', 'TXT', { name: '_ipp._tcp.local', type: 'PTR' }],
    ['host.v2.local', 'A', { name: 'host.v2.local', type: 'A' }],
  ] as const)('%s %s', (name, type, expected) => {
    expect(questionFor(name, type, types)).toEqual(expected);
  });
});
