/**
 * Property-based fuzzing of the SOAP answers a camera (or anything answering on its port)
 * sends: parseXml then every reader of device-client.ts fail only with XmlError / SoapError,
 * keep their bounds, never publish credentials, and answer fast. Also the HTTP Digest
 * challenge parser, which reads a camera's WWW-Authenticate header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_PROFILES,
  MAX_VALUE_LENGTH,
  readDeviceInformation,
  readMediaServiceFromCapabilities,
  readMediaServiceFromServices,
  readNetworkInterfaces,
  readProfiles,
  readStreamUri,
  readSystemDateAndTime,
} from './device-client.ts';
import { parseDigestChallenge, SoapError } from './soap.ts';
import { child, escapeXml, parseXml, XmlError, type XmlNode } from './xml.ts';
import { parseOnvifDetails } from './details.ts';
import { expectFast, FUZZ_RUNS as RUNS } from '../../test/support/fuzz.ts';

/** Element names the readers look for, so generated trees reach their code. */
const NAMES = [
  'GetSystemDateAndTimeResponse',
  'SystemDateAndTime',
  'UTCDateTime',
  'Date',
  'Time',
  'Year',
  'Month',
  'Day',
  'Hour',
  'Minute',
  'Second',
  'GetDeviceInformationResponse',
  'Manufacturer',
  'Model',
  'FirmwareVersion',
  'SerialNumber',
  'HardwareId',
  'GetServicesResponse',
  'Service',
  'Namespace',
  'XAddr',
  'GetCapabilitiesResponse',
  'Capabilities',
  'Media',
  'GetNetworkInterfacesResponse',
  'NetworkInterfaces',
  'Info',
  'HwAddress',
  'IPv4',
  'Config',
  'Manual',
  'FromDHCP',
  'LinkLocal',
  'Address',
  'GetProfilesResponse',
  'Profiles',
  'Name',
  'VideoEncoderConfiguration',
  'Encoding',
  'Resolution',
  'Width',
  'Height',
  'GetStreamUriResponse',
  'MediaUri',
  'Uri',
  'Fault',
  'Code',
  'Value',
  'x',
];
const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.nat(100_000).map(String),
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.constantFrom(
    'http://www.onvif.org/ver10/media/wsdl',
    'rtsp://admin:secret@10.0.0.7:554/stream?user=admin&password=secret',
    'http://127.0.0.1:9999/onvif/media',
    'AA-BB-CC-DD-EE-FF',
    '-1',
    '1e400',
    'NaN',
    '&#x0;',
    '\u0000\u0007',
  ),
);
const prefix = fc.constantFrom('', 'tt:', 'trt:', 'tds:', 'x:');
type Tree = { name: string; prefix: string; token: string | undefined; content: string | Tree[] };
const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.record({
    name: fc.constantFrom(...NAMES),
    prefix,
    token: fc.option(text, { nil: undefined }),
    content: fc.oneof({ depthSize: 'small', withCrossShrink: true }, text, fc.array(tie('tree'), { maxLength: 4 })),
  }),
}));
const serialise = (t: Tree): string => {
  const attribute = t.token === undefined ? '' : ` token="${escapeXml(t.token)}"`;
  const inner = typeof t.content === 'string' ? escapeXml(t.content) : t.content.map(serialise).join('');
  return `<${t.prefix}${t.name}${attribute}>${inner}</${t.prefix}${t.name}>`;
};
const answer = fc
  .array(tree, { minLength: 1, maxLength: 3 })
  .map(
    (trees) =>
      '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="urn:tt" xmlns:trt="urn:trt" xmlns:tds="urn:tds" xmlns:x="urn:x">' +
      `<s:Body>${trees.map(serialise).join('')}</s:Body></s:Envelope>`,
  );
const mutated = fc
  .tuple(answer, fc.array(fc.tuple(fc.nat(), fc.nat(8), text), { maxLength: 6 }))
  .map(([t, edits]) =>
    edits.reduce((s, [at, cut, insert]) => s.slice(0, at % (s.length + 1)) + insert + s.slice((at % (s.length + 1)) + cut), t),
  );

/** The default cap: what a camera's answer may be before it is parsed. */
const MAX_BYTES = parseOnvifDetails({}).maxResponseBytes;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function readAll(body: XmlNode): void {
  readSystemDateAndTime(body);
  try {
    const info = readDeviceInformation(body);
    for (const value of Object.values(info)) {
      if (value === undefined) continue;
      expect(value.length).toBeLessThanOrEqual(MAX_VALUE_LENGTH);
      expect(value).not.toMatch(CONTROL);
    }
  } catch (error) {
    expect(error).toBeInstanceOf(SoapError);
  }
  for (const media of [readMediaServiceFromServices(body), readMediaServiceFromCapabilities(body)]) {
    if (media !== undefined) expect(new URL(media).protocol).toMatch(/^https?:$/);
  }
  for (const ni of readNetworkInterfaces(body)) if (ni.mac !== undefined) expect(ni.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const profiles = readProfiles(body);
  expect(profiles.length).toBeLessThanOrEqual(MAX_PROFILES);
  for (const p of profiles) expect(p.token.length).toBeLessThanOrEqual(MAX_VALUE_LENGTH);
  const uri = readStreamUri(body);
  if (uri !== undefined) {
    const url = new URL(uri);
    expect(url.username + url.password).toBe('');
    expect([...url.searchParams.keys()].some((k) => /^(user|password)$/i.test(k))).toBe(false);
  }
}

function check(document: string): void {
  const parse = (): XmlNode | undefined => {
    let doc: XmlNode;
    try {
      doc = parseXml(document, MAX_BYTES);
    } catch (error) {
      expect(error).toBeInstanceOf(XmlError);
      return undefined;
    }
    const body = child(child(doc, 'Envelope'), 'Body');
    return typeof body === 'object' && body !== null ? (body as XmlNode) : undefined;
  };
  expectFast(() => {
    const body = parse();
    if (body !== undefined) readAll(body);
  });
}

describe('SOAP answers under fuzzing (issue 13)', () => {
  it('generated answers: the readers fail only with SoapError, keep their bounds, publish no credentials, fast', () => {
    fc.assert(fc.property(answer, check), { numRuns: RUNS });
  });

  it('mutated answers: XmlError or bounded readings, fast', () => {
    fc.assert(fc.property(mutated, check), { numRuns: RUNS });
  });

  it('arbitrary text: XmlError or bounded readings, fast', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), check), { numRuns: RUNS });
  });

  it('a Digest challenge header of any text: parameters or undefined, fast', () => {
    const header = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 500 }),
      fc
        .array(fc.tuple(fc.string({ maxLength: 10 }), text), { maxLength: 10 })
        .map((pairs) => `Digest ${pairs.map(([k, v]) => `${k}="${v}"`).join(', ')}`),
    );
    fc.assert(
      fc.property(header, (h) => {
        expectFast(() => {
          const params = parseDigestChallenge(h);
          if (params !== undefined) expect(typeof params['nonce']).toBe('string');
        });
      }),
      { numRuns: RUNS },
    );
  });
});
