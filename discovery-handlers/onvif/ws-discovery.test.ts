import { describe, expect, it } from 'vitest';
import { buildProbe, endpointId, isVideoTransmitter, parseWsDiscovery } from './ws-discovery.ts';
import { parseXml, XmlError } from './xml.ts';

const envelope = (body: string, header = ''): string =>
  '<?xml version="1.0" encoding="UTF-8"?>' +
  '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" ' +
  'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">' +
  `<SOAP-ENV:Header>${header}</SOAP-ENV:Header><SOAP-ENV:Body>${body}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;

const match = (fields: { address?: string; xaddrs?: string; scopes?: string; types?: string; version?: string }): string =>
  '<d:ProbeMatch>' +
  (fields.address === undefined ? '' : `<wsa:EndpointReference><wsa:Address>${fields.address}</wsa:Address></wsa:EndpointReference>`) +
  `<d:Types>${fields.types ?? 'dn:NetworkVideoTransmitter'}</d:Types>` +
  `<d:Scopes>${fields.scopes ?? 'onvif://www.onvif.org/name/Cam onvif://www.onvif.org/location/hall'}</d:Scopes>` +
  (fields.xaddrs === undefined ? '' : `<d:XAddrs>${fields.xaddrs}</d:XAddrs>`) +
  `<d:MetadataVersion>${fields.version ?? '1'}</d:MetadataVersion>` +
  '</d:ProbeMatch>';

const UUID = 'urn:uuid:1419D68A-1DD2-11B2-A105-F0000000AB01';

describe('buildProbe', () => {
  it('declares every prefix it uses, including dn for the Types QName (Akri #486)', () => {
    const probe = buildProbe('urn:uuid:00000000-0000-4000-8000-000000000001');
    expect(probe).toContain('xmlns:dn="http://www.onvif.org/ver10/network/wsdl"');
    expect(probe).toContain('<d:Types>dn:NetworkVideoTransmitter</d:Types>');
    for (const prefix of new Set([...probe.matchAll(/<\/?([A-Za-z]+):/g)].map((m) => m[1]!))) {
      expect(probe, `prefix ${prefix}`).toContain(`xmlns:${prefix}=`);
    }
    expect(probe).toContain('<a:MessageID>urn:uuid:00000000-0000-4000-8000-000000000001</a:MessageID>');
    expect(probe).toContain('http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe');
    expect(() => parseXml(probe, 10_000)).not.toThrow();
  });
});

describe('parseWsDiscovery', () => {
  it('reads a ProbeMatches with its RelatesTo', () => {
    const msg = parseWsDiscovery(
      envelope(
        `<d:ProbeMatches>${match({ address: UUID, xaddrs: 'http://10.0.0.7/onvif/device_service http://[fe80::1]/onvif/device_service' })}</d:ProbeMatches>`,
        '<wsa:RelatesTo>urn:uuid:probe-1</wsa:RelatesTo>',
      ),
    );
    expect(msg).toEqual({
      kind: 'probe-matches',
      relatesTo: 'urn:uuid:probe-1',
      malformed: 0,
      matches: [
        {
          address: UUID,
          id: '1419d68a-1dd2-11b2-a105-f0000000ab01',
          types: ['dn:NetworkVideoTransmitter'],
          scopes: ['onvif://www.onvif.org/name/Cam', 'onvif://www.onvif.org/location/hall'],
          xaddrs: ['http://10.0.0.7/onvif/device_service', 'http://[fe80::1]/onvif/device_service'],
          metadataVersion: 1,
        },
      ],
    });
  });

  it.each([
    ['no EndpointReference', match({ xaddrs: 'http://10.0.0.7/x' })],
    ['empty address', match({ address: '', xaddrs: 'http://10.0.0.7/x' })],
    ['no XAddrs', match({ address: UUID })],
    ['a non-http XAddr', match({ address: UUID, xaddrs: 'file:///etc/passwd' })],
    ['an unparseable XAddr', match({ address: UUID, xaddrs: 'http://' })],
    ['a control character in the address', match({ address: 'urn:uuid:x&#1;y', xaddrs: 'http://10.0.0.7/x' }).replace('&#1;', '\u0001')],
    ['too many XAddrs', match({ address: UUID, xaddrs: Array.from({ length: 17 }, (_, i) => `http://10.0.0.${i}/x`).join(' ') })],
    ['an overlong address', match({ address: `urn:${'x'.repeat(300)}`, xaddrs: 'http://10.0.0.7/x' })],
  ])('drops a ProbeMatch with %s and counts it', (_what, bad) => {
    const good = match({ address: 'urn:uuid:00000000-0000-4000-8000-000000000002', xaddrs: 'http://10.0.0.8/onvif/device_service' });
    const msg = parseWsDiscovery(envelope(`<d:ProbeMatches>${bad}${good}</d:ProbeMatches>`));
    expect(msg.kind).toBe('probe-matches');
    if (msg.kind !== 'probe-matches') return;
    expect(msg.malformed).toBe(1);
    expect(msg.matches.map((m) => m.id)).toEqual(['00000000-0000-4000-8000-000000000002']);
  });

  it('counts an empty ProbeMatches as malformed', () => {
    expect(parseWsDiscovery(envelope('<d:ProbeMatches></d:ProbeMatches>'))).toMatchObject({
      kind: 'probe-matches',
      matches: [],
      malformed: 1,
    });
  });

  it('reads Hello (XAddrs optional) and Bye', () => {
    const hello = parseWsDiscovery(
      envelope(
        `<d:Hello><wsa:EndpointReference><wsa:Address>${UUID}</wsa:Address></wsa:EndpointReference><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Hello>`,
      ),
    );
    expect(hello).toMatchObject({ kind: 'hello', endpoint: { id: '1419d68a-1dd2-11b2-a105-f0000000ab01', xaddrs: [] } });
    expect(
      parseWsDiscovery(envelope(`<d:Bye><wsa:EndpointReference><wsa:Address>${UUID}</wsa:Address></wsa:EndpointReference></d:Bye>`)),
    ).toEqual({
      kind: 'bye',
      id: '1419d68a-1dd2-11b2-a105-f0000000ab01',
    });
    expect(parseWsDiscovery(envelope('<d:Bye></d:Bye>'))).toEqual({ kind: 'malformed' });
  });

  it('ignores other traffic on the group (Probes from other clients)', () => {
    expect(parseWsDiscovery(buildProbe())).toEqual({ kind: 'other' });
  });

  it('decodes predefined entities in values but never expands declared ones', () => {
    const msg = parseWsDiscovery(
      envelope(`<d:ProbeMatches>${match({ address: UUID, xaddrs: 'http://10.0.0.7/a?x=1&amp;y=2' })}</d:ProbeMatches>`),
    );
    expect(msg).toMatchObject({ matches: [{ xaddrs: ['http://10.0.0.7/a?x=1&y=2'] }] });
  });

  it.each([
    [
      'a DOCTYPE with an external entity (XXE)',
      '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + envelope('<d:Bye>&xxe;</d:Bye>'),
    ],
    [
      'an entity expansion bomb',
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>',
    ],
    ['a doctype in lower case', '<!doctype x>' + envelope('')],
    ['deep nesting', `${'<a>'.repeat(500)}${'</a>'.repeat(500)}`],
    ['an oversized datagram', envelope(`<d:Bye>${'x'.repeat(40 * 1024)}</d:Bye>`)],
    ['unclosed tags', '<Envelope><Body><ProbeMatches>'],
    ['binary junk', '\u0000\u0001\u0002garbage'],
  ])('refuses %s', (_what, text) => {
    expect(() => parseWsDiscovery(text)).toThrow(XmlError);
  });
});

describe('endpoint helpers', () => {
  it.each([
    ['urn:uuid:1419D68A-1DD2-11B2-A105-F0000000AB01', '1419d68a-1dd2-11b2-a105-f0000000ab01'],
    ['uuid:1419d68a-1dd2-11b2-a105-f0000000ab01', '1419d68a-1dd2-11b2-a105-f0000000ab01'],
    ['urn:example:camera-7', 'urn:example:camera-7'],
    ['  urn:uuid:1419d68a-1dd2-11b2-a105-f0000000ab01\n', '1419d68a-1dd2-11b2-a105-f0000000ab01'],
    ['http://10.0.0.7/onvif/device_service', 'http://10.0.0.7/onvif/device_service'],
    // Issue 13: a uuid URN must hold a UUID; anything else must be a bounded, printable URI.
    ['urn:uuid:not-a-uuid', undefined],
    ['uuid:1419d68a-1dd2-11b2-a105', undefined],
    ['urn:uuid:1419d68a-1dd2-11b2-a105-f0000000ab01-extra', undefined],
    ['urn:uuid:00000000-0000-0000-0000-000000000000', undefined],
    ['camera 7', undefined],
    ['no-scheme', undefined],
    ['urn:x:<script>', undefined],
    ['urn:x:caméra', undefined],
    ['urn:x:%zz', undefined],
    [`urn:x:${'a'.repeat(300)}`, undefined],
    ['', undefined],
  ])('endpointId(%j) = %s', (address, id) => expect(endpointId(address)).toBe(id));

  it('a ProbeMatch, Hello or Bye whose address is not an acceptable identity is malformed', () => {
    expect(
      parseWsDiscovery(
        envelope(
          `<d:ProbeMatches>${match({ address: 'urn:uuid:not-a-uuid', xaddrs: 'http://10.0.0.7/onvif/device_service' })}</d:ProbeMatches>`,
        ),
      ),
    ).toMatchObject({ matches: [], malformed: 1 });
    expect(
      parseWsDiscovery(
        envelope(
          `<d:Hello>${match({ address: 'urn:uuid:not-a-uuid', xaddrs: 'http://10.0.0.7/onvif/device_service' }).replace(/<\/?d:ProbeMatch>/g, '')}</d:Hello>`,
        ),
      ),
    ).toEqual({ kind: 'malformed' });
    expect(
      parseWsDiscovery(
        envelope('<d:Bye><wsa:EndpointReference><wsa:Address>urn:uuid:not-a-uuid</wsa:Address></wsa:EndpointReference></d:Bye>'),
      ),
    ).toEqual({ kind: 'malformed' });
  });

  it.each([
    [['dn:NetworkVideoTransmitter'], true],
    [['tdn:NetworkVideoTransmitter', 'tds:Device'], true],
    [['NetworkVideoTransmitter'], true],
    [['wsdp:Device', 'pub:Computer'], false],
  ])('isVideoTransmitter(%j) = %s', (types, expected) => {
    expect(isVideoTransmitter({ address: 'a', id: 'a', types, scopes: [], xaddrs: [], metadataVersion: undefined })).toBe(expected);
  });
});
