import { describe, expect, it } from 'vitest';
import { parseOpcuaDetails } from './details.ts';
import { describeServer, passesFilter, passesListingFilters, thumbprint, type EndpointInfo } from './servers.ts';

const details = parseOpcuaDetails({});
const endpoint = (extra: Partial<EndpointInfo> = {}): EndpointInfo => ({
  endpointUrl: 'opc.tcp://10.0.0.7:4841/',
  securityMode: 'None',
  securityPolicyUri: 'http://opcfoundation.org/UA/SecurityPolicy#None',
  userTokenTypes: ['Anonymous'],
  applicationUri: 'urn:a',
  applicationName: 'Press A',
  applicationType: 'Server',
  productUri: 'urn:p',
  ...extra,
});
const candidate = { source: 'lds' as const, discoveryUrl: 'opc.tcp://10.0.0.7:4841', ldsUrl: 'opc.tcp://10.0.0.7:4840/' };

describe('filters', () => {
  it.each([
    [{ include: [], exclude: [] }, 'x', true],
    [{ include: ['x'], exclude: [] }, 'x', true],
    [{ include: ['x'], exclude: [] }, 'y', false],
    [{ include: ['x'], exclude: [] }, undefined, false],
    [{ include: [], exclude: ['x'] }, 'x', false],
    [{ include: [], exclude: ['x'] }, undefined, true],
  ])('%j on %s → %s', (filter, value, result) => {
    expect(passesFilter(filter, value)).toBe(result);
  });

  it('leaves out discovery servers and clients by what the LDS says', () => {
    expect(passesListingFilters({ ...candidate, applicationType: 'DiscoveryServer' }, details)).toBe(false);
    expect(passesListingFilters({ ...candidate, applicationType: 'ClientAndServer' }, details)).toBe(true);
    expect(passesListingFilters({ ...candidate, applicationType: 'Client' }, details)).toBe(false);
  });
});

describe('describeServer', () => {
  it("gives Akri's OPCUA_DISCOVERY_URL and Tether's set; a thumbprint, never the certificate", () => {
    const der = new Uint8Array([1, 2, 3]);
    const { device, untrusted } = describeServer(
      candidate,
      [
        endpoint(),
        endpoint({
          securityMode: 'SignAndEncrypt',
          securityPolicyUri: 'http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256',
          serverCertificate: der,
          userTokenTypes: ['UserName'],
        }),
      ],
      '10.0.0.7',
      details,
    );
    expect(untrusted).toBe(false);
    expect(device).toEqual({
      id: 'urn:a',
      properties: {
        OPCUA_DISCOVERY_URL: 'opc.tcp://10.0.0.7:4841',
        OPCUA_APPLICATION_URI: 'urn:a',
        OPCUA_APPLICATION_NAME: 'Press A',
        OPCUA_APPLICATION_TYPE: 'Server',
        OPCUA_PRODUCT_URI: 'urn:p',
        OPCUA_ENDPOINT_URL: 'opc.tcp://10.0.0.7:4841/',
        OPCUA_ENDPOINT_URLS: 'opc.tcp://10.0.0.7:4841/',
        OPCUA_SECURITY_MODES: 'None,SignAndEncrypt',
        OPCUA_SECURITY_POLICIES: 'Basic256Sha256,None',
        OPCUA_USER_TOKEN_TYPES: 'Anonymous,UserName',
        OPCUA_DISCOVERED_VIA: 'lds',
        OPCUA_LDS_URL: 'opc.tcp://10.0.0.7:4840/',
        OPCUA_SERVER_CERT_THUMBPRINT: thumbprint(der),
      },
    });
  });

  it('reports an untrusted certificate when a trusted list is set', () => {
    const pinned = parseOpcuaDetails({ trustedCertificateThumbprints: ['ab'.repeat(20)] });
    const described = describeServer(candidate, [endpoint({ serverCertificate: new Uint8Array([9]) })], '10.0.0.7', pinned);
    expect(described.untrusted).toBe(true);
    expect(described.device!.properties['OPCUA_SERVER_CERT_TRUSTED']).toBe('false');
  });

  it.each([
    ['no endpoints', [], 'no-endpoints'],
    ['only endpoints elsewhere', [endpoint({ endpointUrl: 'opc.tcp://10.0.0.8:4841' })], 'unsafe-url'],
    ['another application URI', [endpoint({ applicationUri: 'urn:b' })], 'uri-mismatch'],
  ])('no device: %s', (_label, endpoints, kind) => {
    expect(describeServer({ ...candidate, applicationUri: 'urn:a' }, endpoints, '10.0.0.7', details).rejection?.kind).toBe(kind);
  });

  it('filters on offered security modes and policies', () => {
    const secureOnly = parseOpcuaDetails({ securityModes: ['SignAndEncrypt'] });
    expect(describeServer(candidate, [endpoint()], '10.0.0.7', secureOnly).rejection).toEqual({ kind: 'filtered' });
    const policy = parseOpcuaDetails({ securityPolicies: ['None'] });
    expect(describeServer(candidate, [endpoint()], '10.0.0.7', policy).device?.id).toBe('urn:a');
  });
});
