import { describe, expect, it } from 'vitest';
import { DetailsError } from '../contract.ts';
import { normalizeMac, parseOnvifDetails } from './details.ts';

describe('parseOnvifDetails', () => {
  it('has defaults for everything (multicast on all interfaces, probe every 5 s, 3 missed probes)', () => {
    const d = parseOnvifDetails(undefined);
    expect(d).toMatchObject({
      interfaces: undefined,
      multicast: true,
      unicastTargets: [],
      probeIntervalMs: 5000,
      discoveryTimeoutMs: 1000,
      offlineAfterMissedProbes: 3,
      shared: true,
      streamUris: true,
    });
    expect(d.filters.ipAddresses).toEqual({ include: [], exclude: [] });
    // Issue 13: a SOAP answer is parsed synchronously; 64 KiB is ~4× the largest real one.
    expect(d.maxResponseBytes).toBe(64 * 1024);
    expect(d.allowedServiceCidrs).toEqual([]);
  });

  it('parses allowedServiceCidrs (where service URLs may point besides the answering address)', () => {
    const d = parseOnvifDetails({ allowedServiceCidrs: ['10.8.0.0/16', '192.168.1.20'] });
    expect(d.allowedServiceCidrs.map((c) => [c.source, c.prefix])).toEqual([
      ['10.8.0.0/16', 16],
      ['192.168.1.20', 32],
    ]);
  });

  it('accepts the Akri filter shape and the CRD example', () => {
    const d = parseOnvifDetails({
      ipAddresses: { action: 'Include', items: ['10.0.0.1'] },
      uuids: { action: 'Exclude', items: ['urn:uuid:1419D68A-1DD2-11B2-A105-F0000000AB01'] },
      discoveryTimeoutSeconds: 1,
    });
    expect(d.filters.ipAddresses.include.map((c) => c.source)).toEqual(['10.0.0.1']);
    expect(d.filters.uuids).toEqual({ include: [], exclude: ['1419d68a-1dd2-11b2-a105-f0000000ab01'] });
  });

  it('parses unicast targets: hosts, blocks and ports', () => {
    const d = parseOnvifDetails({ unicastTargets: ['10.1.0.0/24', '10.2.0.9:3703', 'cam.example.com'] });
    expect(d.unicastTargets).toEqual([
      { kind: 'block', cidr: { network: 0x0a010000, prefix: 24, source: '10.1.0.0/24' }, port: 3702 },
      { kind: 'block', cidr: { network: 0x0a020009, prefix: 32, source: '10.2.0.9' }, port: 3703 },
      { kind: 'host', host: 'cam.example.com', port: 3702 },
    ]);
  });

  it.each([
    ['not an object', [], 'details'],
    ['unknown field', { probeInterval: 3 }, 'details.probeInterval'],
    ['interfaces not a list', { interfaces: 'eth0' }, 'details.interfaces'],
    ['empty interface', { interfaces: ['eth0', ''] }, 'details.interfaces[1]'],
    ['zero interval', { probeIntervalSeconds: 0 }, 'details.probeIntervalSeconds'],
    ['timeout beyond interval', { probeIntervalSeconds: 1, discoveryTimeoutSeconds: 2 }, 'details.discoveryTimeoutSeconds'],
    ['fractional missed probes', { offlineAfterMissedProbes: 1.5 }, 'details.offlineAfterMissedProbes'],
    ['no targets without multicast', { multicast: false }, 'details.unicastTargets'],
    ['bad target', { unicastTargets: ['10.0.0.300'] }, 'details.unicastTargets[0]'],
    ['huge block', { unicastTargets: ['10.0.0.0/8'] }, 'details.unicastTargets[0]'],
    ['too many hosts', { unicastTargets: ['10.0.0.0/20', '10.1.0.0/20'] }, 'details.unicastTargets'],
    ['bad port', { unicastTargets: ['10.0.0.1:70000'] }, 'details.unicastTargets[0]'],
    ['bad IP filter', { ipAddresses: { include: ['10.0.0.0/33'] } }, 'details.ipAddresses.include[0]'],
    ['IPv6 filter', { ipAddresses: { exclude: ['fe80::1'] } }, 'details.ipAddresses.exclude[0]'],
    ['bad MAC', { macAddresses: { include: ['aa:bb'] } }, 'details.macAddresses.include[0]'],
    ['bad uuid', { uuids: { include: ['camera-1'] } }, 'details.uuids.include[0]'],
    ['bad regex', { manufacturers: { include: ['/(/'] } }, 'details.manufacturers.include[0]'],
    ['unknown filter key', { models: { includes: ['x'] } }, 'details.models.includes'],
    ['bad Akri action', { scopes: { action: 'Only', items: ['x'] } }, 'details.scopes.action'],
    ['shared not boolean', { shared: 'yes' }, 'details.shared'],
    ['bad allowed service CIDR', { allowedServiceCidrs: ['10.0.0.0/24', 'cam.example.com'] }, 'details.allowedServiceCidrs[1]'],
    ['allowed service CIDRs not a list', { allowedServiceCidrs: '10.0.0.0/24' }, 'details.allowedServiceCidrs'],
    ['answers above the parse bound', { maxResponseBytes: 1024 * 1024 }, 'details.maxResponseBytes'],
  ])('rejects %s at %s', (_what, raw, path) => {
    try {
      parseOnvifDetails(raw);
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(DetailsError);
      expect((error as DetailsError).path).toBe(path);
    }
  });
});

describe('normalizeMac', () => {
  it.each([
    ['AA:BB:CC:DD:EE:FF', 'aa:bb:cc:dd:ee:ff'],
    ['aa-bb-cc-dd-ee-ff', 'aa:bb:cc:dd:ee:ff'],
    ['aabb.ccdd.eeff', 'aa:bb:cc:dd:ee:ff'],
    ['aabbccddeeff', 'aa:bb:cc:dd:ee:ff'],
    ['aa:bb:cc:dd:ee', undefined],
    ['gg:bb:cc:dd:ee:ff', undefined],
  ])('%s → %s', (input, output) => expect(normalizeMac(input)).toBe(output));
});
