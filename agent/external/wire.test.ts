/** The pure parts: registrations, responses with bounds, merging, details and properties. */
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DetailsError } from '../../discovery-handlers/contract.ts';
import type { AkriDevice, RegisterDiscoveryHandlerRequest } from '../../proto/types.ts';
import { detailsErrorFrom } from './adapter.ts';
import { discoverRequest, parseExternalDetails } from './details.ts';
import { DEFAULT_WIRE_LIMITS, fromAkriDevice, mergeEndpointLists, readDiscoverResponse } from './devices.ts';
import { parseRegistration } from './endpoint.ts';

const akri = (id: string, extra: Partial<AkriDevice> = {}): AkriDevice => ({ id, properties: {}, mounts: [], device_specs: [], ...extra });
const reg = (over: Partial<RegisterDiscoveryHandlerRequest>): RegisterDiscoveryHandlerRequest => ({
  name: 'debugEcho',
  endpoint: '/var/lib/akri/debugEcho.sock',
  endpoint_type: 'UDS',
  shared: false,
  ...over,
});

describe('parseRegistration', () => {
  it.each([
    [reg({}), 'debugEcho@/var/lib/akri/debugEcho.sock', 'unix:///var/lib/akri/debugEcho.sock'],
    // Akri's discovery-utils registers NETWORK endpoints as http://POD_IP:10000.
    [reg({ endpoint: 'http://10.1.2.3:10000', endpoint_type: 'NETWORK' }), 'debugEcho@10.1.2.3:10000', '10.1.2.3:10000'],
    [reg({ endpoint: 'handler.ns.svc:10000', endpoint_type: 'NETWORK' }), 'debugEcho@handler.ns.svc:10000', 'handler.ns.svc:10000'],
    [reg({ endpoint: 'http://[fd00::1]:10000/', endpoint_type: 'NETWORK' }), 'debugEcho@[fd00::1]:10000', '[fd00::1]:10000'],
  ])('accepts %j', (request, key, target) => {
    const parsed = parseRegistration(request);
    expect(parsed).toMatchObject({ key, target, name: 'debugEcho', shared: false });
  });

  it.each([
    [reg({ name: '' }), 'handler name'],
    [reg({ name: 'bad name' }), 'handler name'],
    [reg({ name: 'x'.repeat(254) }), 'handler name'],
    [reg({ endpoint: '' }), 'endpoint is empty'],
    [reg({ endpoint: 'relative.sock' }), 'absolute socket path'],
    [reg({ endpoint: `/${'x'.repeat(110)}` }), 'longer than 107 bytes'],
    [reg({ endpoint: 'https://10.0.0.1:10000', endpoint_type: 'NETWORK' }), 'https'],
    [reg({ endpoint: '10.0.0.1', endpoint_type: 'NETWORK' }), 'not host:port'],
    [reg({ endpoint: '10.0.0.1:99999', endpoint_type: 'NETWORK' }), 'not host:port'],
    [reg({ endpoint_type: 7 as unknown as 'UDS' }), 'unknown endpoint_type'],
  ])('refuses %j', (request, reason) => {
    expect(parseRegistration(request)).toEqual(expect.stringContaining(reason));
  });

  it('keeps the shared flag', () => {
    expect(parseRegistration(reg({ shared: true }))).toMatchObject({ shared: true });
  });
});

describe('fromAkriDevice', () => {
  it('maps properties, mounts and device specs', () => {
    const device = fromAkriDevice(
      akri('cam', {
        properties: { URL: 'rtsp://x' },
        mounts: [{ container_path: '/data', host_path: '/srv/data', read_only: true }],
        device_specs: [{ container_path: '/dev/video0', host_path: '/dev/video2', permissions: 'rw' }],
      }),
    );
    expect(device).toEqual({
      id: 'cam',
      properties: { URL: 'rtsp://x' },
      mounts: [{ containerPath: '/data', hostPath: '/srv/data', readOnly: true }],
      deviceNodes: [{ containerPath: '/dev/video0', hostPath: '/dev/video2', permissions: 'rw' }],
    });
  });

  it('omits empty mounts and device nodes', () => {
    expect(fromAkriDevice(akri('a'))).toEqual({ id: 'a', properties: {} });
  });

  const L = DEFAULT_WIRE_LIMITS;
  it.each([
    [akri(''), 'empty id'],
    [akri('x'.repeat(L.maxIdLength + 1)), 'id longer'],
    [akri('a', { properties: Object.fromEntries(Array.from({ length: L.maxProperties + 1 }, (_, i) => [`P${i}`, 'v'])) }), 'properties'],
    [akri('a', { properties: { ['K'.repeat(L.maxPropertyNameLength + 1)]: 'v' } }), 'property name longer'],
    [akri('a', { properties: { K: 'v'.repeat(L.maxPropertyValueLength + 1) } }), 'property K longer'],
    [akri('a', { mounts: [{ container_path: 'rel', host_path: '/x', read_only: false }] }), 'absolute path'],
    [akri('a', { device_specs: [{ container_path: '/dev/x', host_path: '/dev/x', permissions: 'rwx' }] }), 'subset of rwm'],
    [
      akri('a', { mounts: Array.from({ length: L.maxMounts + 1 }, () => ({ container_path: '/a', host_path: '/b', read_only: false })) }),
      'mounts',
    ],
  ])('refuses %#: %s', (device, reason) => {
    expect(fromAkriDevice(device)).toEqual(expect.stringContaining(reason));
  });
});

describe('readDiscoverResponse', () => {
  it('refuses a response over the device cap as a whole', () => {
    const result = readDiscoverResponse({ devices: [akri('a'), akri('b'), akri('c')] }, { ...DEFAULT_WIRE_LIMITS, maxDevices: 2 });
    expect(result).toEqual({ ok: false, reason: '3 devices in one response; at most 2' });
  });

  it('skips malformed devices, keeps the rest, and dedupes ids (last wins)', () => {
    const result = readDiscoverResponse({
      devices: [akri('a', { properties: { V: '1' } }), akri(''), akri('a', { properties: { V: '2' } }), akri('b')],
    });
    expect(result).toEqual({
      ok: true,
      devices: [
        { id: 'a', properties: { V: '2' } },
        { id: 'b', properties: {} },
      ],
      skipped: [{ id: '', reason: 'empty id' }],
    });
  });
});

describe('mergeEndpointLists', () => {
  it('is the union by id; a later endpoint wins conflicts; sorted by id', () => {
    const merged = mergeEndpointLists([
      [
        { id: 'b', properties: { FROM: '1' } },
        { id: 'a', properties: { FROM: '1' } },
      ],
      [
        { id: 'c', properties: { FROM: '2' } },
        { id: 'a', properties: { FROM: '2' } },
      ],
    ]);
    expect(merged).toEqual([
      { id: 'a', properties: { FROM: '2' } },
      { id: 'b', properties: { FROM: '1' } },
      { id: 'c', properties: { FROM: '2' } },
    ]);
  });
});

describe('parseExternalDetails and discoverRequest', () => {
  it('accepts objects and serialises them as YAML that round-trips', () => {
    const raw = { descriptions: ['foo', 'bar'], nested: { n: 1, ok: true, none: null } };
    const details = parseExternalDetails(raw);
    expect(details).toBe(raw);
    const request = discoverRequest(details, new Map([['USER', 'admin']]));
    expect(parse(request.discovery_details)).toEqual(raw);
    expect(request.discovery_properties['USER']?.vec).toEqual(Buffer.from('admin'));
  });

  it('passes YAML strings through unchanged and turns absent details into {}', () => {
    expect(discoverRequest(parseExternalDetails('descriptions: [a]\n'), new Map()).discovery_details).toBe('descriptions: [a]\n');
    expect(parseExternalDetails(undefined)).toEqual({});
  });

  it.each([
    [[1, 2], 'details'],
    [42, 'details'],
    [{ a: { b: () => 1 } }, 'details.a.b'],
    [{ a: [1, Number.NaN] }, 'details.a[1]'],
    [{ when: new Date(0) }, 'details.when'],
    [{ big: 1n }, 'details.big'],
  ])('refuses %s at %s', (raw, path) => {
    expect(() => parseExternalDetails(raw)).toThrow(DetailsError);
    try {
      parseExternalDetails(raw);
    } catch (error) {
      expect((error as DetailsError).path).toBe(path);
    }
  });
});

describe('detailsErrorFrom', () => {
  it.each([
    [
      'details.descriptions[1]: must be a non-empty string',
      'details.descriptions[1]',
      'details.descriptions[1]: must be a non-empty string',
    ],
    ['Configuration discovery details improperly configured', 'details', 'details: Configuration discovery details improperly configured'],
    ['', 'details', 'details: rejected by external handler h'],
  ])('%j → path %s', (message, path, full) => {
    const error = detailsErrorFrom(message, 'h');
    expect(error).toBeInstanceOf(DetailsError);
    expect(error.path).toBe(path);
    expect(error.message).toBe(full);
  });
});
