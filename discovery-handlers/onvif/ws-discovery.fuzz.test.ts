/**
 * Property-based fuzzing of what anything on the LAN can send to the WS-Discovery sockets:
 * parseWsDiscovery never fails other than with XmlError, keeps its bounds, and answers fast.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endpointId, MAX_DATAGRAM_BYTES, parseWsDiscovery } from './ws-discovery.ts';
import { escapeXml, XmlError } from './xml.ts';
import { expectFast, FUZZ_RUNS as RUNS } from '../../test/support/fuzz.ts';

/** Text a hostile sender likes: any code unit, entities, markup fragments, near-valid ids. */
const nasty = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    'urn:uuid:not-a-uuid',
    'urn:uuid:00000000-0000-0000-0000-000000000000',
    'http://127.0.0.1:9999/onvif/device_service',
    'http://[::1]/x',
    '&amp;',
    '&#0;',
    '&#x110000;',
    '&xxe;',
    ']]>',
    '<![CDATA[<x>]]>',
    '<!DOCTYPE x>',
    '\u0000',
    '\uFEFF',
    '\uD800',
  ),
);
const field = fc.oneof(nasty.map(escapeXml), nasty);
const address = fc.oneof(
  fc.uuid().map((u) => `urn:uuid:${u}`),
  fc.uuid().map((u) => `uuid:${u.toUpperCase()}`),
  fc.webUrl(),
  field,
);
const list = (item: fc.Arbitrary<string>): fc.Arbitrary<string> => fc.array(item, { maxLength: 20 }).map((a) => a.join(' '));
const endpoint = fc.record({
  address,
  types: list(fc.oneof(fc.constant('dn:NetworkVideoTransmitter'), field)),
  scopes: list(fc.oneof(fc.webUrl(), fc.constant('onvif://www.onvif.org/name/Cam'), field)),
  xaddrs: list(
    fc.oneof(
      fc.webUrl(),
      fc.ipV4().map((ip) => `http://${ip}/onvif/device_service`),
      field,
    ),
  ),
  version: fc.oneof(fc.nat().map(String), field),
});
const body = (
  name: string,
  e: fc.Arbitrary<{ address: string; types: string; scopes: string; xaddrs: string; version: string }>,
): fc.Arbitrary<string> =>
  e.map(
    (f) =>
      `<d:${name}><a:EndpointReference><a:Address>${f.address}</a:Address></a:EndpointReference><d:Types>${f.types}</d:Types>` +
      `<d:Scopes>${f.scopes}</d:Scopes><d:XAddrs>${f.xaddrs}</d:XAddrs><d:MetadataVersion>${f.version}</d:MetadataVersion></d:${name}>`,
  );
const message = fc
  .tuple(
    fc.oneof(
      fc.array(body('ProbeMatch', endpoint), { maxLength: 5 }).map((m) => `<d:ProbeMatches>${m.join('')}</d:ProbeMatches>`),
      body('Hello', endpoint),
      body('Bye', endpoint),
      field.map((f) => `<d:Resolve>${f}</d:Resolve>`),
    ),
    field,
  )
  .map(
    ([inner, relatesTo]) =>
      '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" ' +
      'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">' +
      `<s:Header><a:RelatesTo>${relatesTo}</a:RelatesTo></s:Header><s:Body>${inner}</s:Body></s:Envelope>`,
  );
/** A message with random cuts and insertions: broken tags, unbalanced nesting, stray bytes. */
const mutated = fc
  .tuple(message, fc.array(fc.tuple(fc.nat(), fc.nat(8), nasty), { maxLength: 6 }))
  .map(([text, edits]) =>
    edits.reduce((t, [at, cut, insert]) => t.slice(0, at % (t.length + 1)) + insert + t.slice((at % (t.length + 1)) + cut), text),
  );

const URI_TEXT = /^[\x21-\x7e]+$/;

/** The parse result, or the error it threw. */
function attempt<T>(parse: () => T): T | { error: unknown } {
  try {
    return parse();
  } catch (error) {
    return { error };
  }
}

function check(datagram: string): void {
  // Parsing is synchronous on the handler's event loop: every input must be quick.
  expectFast(() => void attempt(() => parseWsDiscovery(datagram)));
  const parsed = attempt(() => parseWsDiscovery(datagram));
  if ('error' in parsed) {
    expect(parsed.error).toBeInstanceOf(XmlError);
    return;
  }
  const endpoints = parsed.kind === 'probe-matches' ? parsed.matches : parsed.kind === 'hello' ? [parsed.endpoint] : [];
  for (const e of endpoints) {
    expect(e.id).toBe(endpointId(e.address));
    expect(e.id.length).toBeLessThanOrEqual(256);
    expect(e.id).toMatch(URI_TEXT);
    expect(e.xaddrs.length).toBeLessThanOrEqual(16);
    for (const x of e.xaddrs) expect(new URL(x).protocol).toMatch(/^https?:$/);
    expect(e.scopes.length).toBeLessThanOrEqual(64);
  }
  if (parsed.kind === 'bye') expect(parsed.id).toMatch(URI_TEXT);
}

describe('WS-Discovery parsing under fuzzing (issue 13)', () => {
  it('arbitrary text: a message or XmlError, fast', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 2000 }), fc.string({ unit: 'binary', maxLength: 2000 })), check), {
      numRuns: RUNS,
    });
  });

  it('well-formed messages with hostile fields: bounded endpoints, fast', () => {
    fc.assert(fc.property(message, check), { numRuns: RUNS });
  });

  it('mutated messages: a message or XmlError, fast', () => {
    fc.assert(fc.property(mutated, check), { numRuns: RUNS });
  });

  it('the largest accepted datagram of worst-case markup parses within the bound', () => {
    const flat = `<a>${'<b x="1">y</b>'.repeat(Math.floor((MAX_DATAGRAM_BYTES - 7) / 15))}</a>`;
    expect(flat.length).toBeLessThanOrEqual(MAX_DATAGRAM_BYTES);
    check(flat);
    expect(() => parseWsDiscovery(`${flat} `.repeat(2))).toThrow(XmlError);
  });

  it('endpointId: undefined or a bounded printable-ASCII identity', () => {
    fc.assert(
      fc.property(fc.oneof(address, fc.string({ unit: 'binary', maxLength: 300 })), (a) => {
        const id = endpointId(a);
        if (id !== undefined) {
          expect(id.length).toBeLessThanOrEqual(256);
          expect(id).toMatch(URI_TEXT);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
