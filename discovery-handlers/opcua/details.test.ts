import { describe, expect, it } from 'vitest';
import { DetailsError } from '../contract.ts';
import { parseOpcuaDetails } from './details.ts';

describe('parseOpcuaDetails', () => {
  it("accepts Akri's discoveryDetails YAML as it is", () => {
    const details = parseOpcuaDetails(
      'opcuaDiscoveryMethod:\n  standard:\n    discoveryUrls:\n    - opc.tcp://127.0.0.1:4855/\napplicationNames:\n  action: Include\n  items:\n  - Some application name\n',
    );
    expect(details.discoveryUrls).toEqual(['opc.tcp://127.0.0.1:4855/']);
    expect(details.applicationNames).toEqual({ include: ['Some application name'], exclude: [] });
    expect(details.shared).toBe(true);
    expect(details.queryIntervalMs).toBe(10_000);
  });

  it.each([
    ['Akri standard: {} → the node’s own LDS', { opcuaDiscoveryMethod: { standard: {} } }, ['opc.tcp://localhost:4840/']],
    ['nothing → the node’s own LDS', {}, ['opc.tcp://localhost:4840/']],
    ['only endpointUrls → no LDS', { endpointUrls: ['opc.tcp://10.0.0.1:4840'] }, []],
    ['only DNS-SD → no LDS', { dnsSd: true }, []],
  ])('%s', (_label, raw, urls) => {
    expect(parseOpcuaDetails(raw).discoveryUrls).toEqual(urls);
  });

  it('takes applicationNames inside standard too, and Exclude lists', () => {
    const details = parseOpcuaDetails({ opcuaDiscoveryMethod: { standard: { applicationNames: { action: 'Exclude', items: ['Duke'] } } } });
    expect(details.applicationNames).toEqual({ include: [], exclude: ['Duke'] });
  });

  it('resolves policy names to URIs and normalises thumbprints', () => {
    const details = parseOpcuaDetails({ securityPolicies: ['Basic256Sha256'], trustedCertificateThumbprints: ['AB:CD'] });
    expect(details.securityPolicies).toEqual(['http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256']);
    expect([...details.trustedThumbprints]).toEqual(['abcd']);
  });

  it.each([
    [{ endpointUrls: ['http://10.0.0.1/'] }, 'details.endpointUrls[0]'],
    [{ opcuaDiscoveryMethod: { standard: { discoveryUrls: ['tcp://x'] } } }, 'details.opcuaDiscoveryMethod.standard.discoveryUrls[0]'],
    [{ allowedEndpointCidrs: ['10.0.0.0/33'] }, 'details.allowedEndpointCidrs[0]'],
    [{ applicationTypes: ['Printer'] }, 'details.applicationTypes[0]'],
    [{ maxServers: 0 }, 'details.maxServers'],
    [{ bogus: 1 }, 'details'],
    [
      {
        applicationNames: { action: 'Include', items: [] },
        opcuaDiscoveryMethod: { standard: { applicationNames: { action: 'Include', items: [] } } },
      },
      'details.applicationNames',
    ],
  ])('refuses %j at %s', (raw, path) => {
    expect(() => parseOpcuaDetails(raw)).toThrow(DetailsError);
    try {
      parseOpcuaDetails(raw);
    } catch (error) {
      expect((error as DetailsError).path.startsWith(path)).toBe(true);
    }
  });
});
