import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  digestAuthorization,
  parseDigestChallenge,
  passwordDigest,
  securityHeader,
  soapCall,
  SoapError,
  type SoapOptions,
} from './soap.ts';

describe('WS-UsernameToken', () => {
  it('computes PasswordDigest as in the ONVIF Application Programmer’s Guide example', () => {
    expect(passwordDigest(Buffer.from('LKqI6G/AikKCQrN0zqZFlg==', 'base64'), '2010-09-16T07:50:45Z', 'userpassword')).toBe(
      'tuOSpGlFlIXsozq4HFNeeGeFLEI=',
    );
  });

  it('builds a header with the camera-clock Created, the nonce and the digest, never the password', () => {
    const nonce = Buffer.from('LKqI6G/AikKCQrN0zqZFlg==', 'base64');
    const header = securityHeader({ username: 'a<b', password: 'userpassword' }, Date.parse('2010-09-16T07:50:45.123Z'), nonce);
    expect(header).toContain('<wsu:Created>2010-09-16T07:50:45Z</wsu:Created>');
    expect(header).toContain('>tuOSpGlFlIXsozq4HFNeeGeFLEI=</wsse:Password>');
    expect(header).toContain('#PasswordDigest"');
    expect(header).toContain('<wsse:Username>a&lt;b</wsse:Username>');
    expect(header).toContain('LKqI6G/AikKCQrN0zqZFlg==');
    expect(header).not.toContain('userpassword');
  });
});

describe('HTTP Digest', () => {
  it('answers the RFC 2617 example challenge', () => {
    const challenge = parseDigestChallenge(
      'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    )!;
    const header = digestAuthorization(challenge, { username: 'Mufasa', password: 'Circle Of Life' }, 'GET', '/dir/index.html', '0a4f113b');
    expect(header).toContain('response="6629fae49393a05397450978507c4ef1"');
    expect(header).toContain('qop=auth, nc=00000001, cnonce="0a4f113b"');
    expect(header).toContain('opaque="5ccc069c403ebaf9f0171e9517f40e41"');
  });

  it.each(['Basic realm="x"', 'Digest realm="x"', ''])('ignores a non-Digest or incomplete challenge: %j', (h) => {
    expect(parseDigestChallenge(h)).toBeUndefined();
  });
});

describe('soapCall limits and errors', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    server = createServer(handler);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/onvif/device_service`;
  }

  const options = (extra: Partial<SoapOptions> = {}): SoapOptions => ({
    timeoutMs: 2_000,
    maxResponseBytes: 8192,
    signal: new AbortController().signal,
    ...extra,
  });
  const ok = (body: string): string =>
    `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>${body}</e:Body></e:Envelope>`;
  const call = (url: string, extra?: Partial<SoapOptions>): Promise<unknown> =>
    soapCall(url, 'urn:x', '<x:Do/>', { x: 'urn:x' }, options(extra));
  const kind = async (promise: Promise<unknown>): Promise<string> => {
    try {
      await promise;
      return 'ok';
    } catch (error) {
      expect(error).toBeInstanceOf(SoapError);
      return (error as SoapError).kind;
    }
  };

  it('returns the parsed Body and sends a SOAP 1.2 request with the action', async () => {
    let seen: { type: string | undefined; body: string } | undefined;
    const url = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen = { type: req.headers['content-type'], body };
        res.end(ok('<r:DoResponse xmlns:r="urn:x"><r:Value>7</r:Value></r:DoResponse>'));
      });
    });
    expect(await call(url)).toEqual({ DoResponse: { Value: '7' } });
    expect(seen?.type).toBe('application/soap+xml; charset=utf-8; action="urn:x"');
    expect(seen?.body).toContain('xmlns:x="urn:x"');
    expect(seen?.body).not.toContain('Security');
  });

  it.each([
    [
      'a declared Content-Length over the limit',
      'too-large',
      (_req: IncomingMessage, res: ServerResponse) => res.end(ok('x'.repeat(10_000))),
    ],
    [
      'a chunked body growing past the limit',
      'too-large',
      (_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(200, { 'transfer-encoding': 'chunked' });
        const timer = setInterval(() => res.write('x'.repeat(1024)), 1);
        res.on('close', () => clearInterval(timer));
      },
    ],
    ['no answer in time', 'timeout', () => undefined],
    [
      'a body that trickles forever',
      'timeout',
      (_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(200);
        const timer = setInterval(() => res.write(' '), 50);
        res.on('close', () => clearInterval(timer));
      },
    ],
    [
      'a DOCTYPE (XXE)',
      'malformed',
      (_req: IncomingMessage, res: ServerResponse) => res.end(`<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>${ok('&x;')}`),
    ],
    ['not XML', 'malformed', (_req: IncomingMessage, res: ServerResponse) => res.end('<html><body>hi')],
    ['no Body', 'malformed', (_req: IncomingMessage, res: ServerResponse) => res.end('<e:Envelope xmlns:e="urn:e"/>')],
    [
      'a NotAuthorized fault',
      'auth',
      (_req: IncomingMessage, res: ServerResponse) =>
        res
          .writeHead(400)
          .end(
            ok(
              '<e:Fault><e:Code><e:Value>e:Sender</e:Value><e:Subcode><e:Value>ter:NotAuthorized</e:Value></e:Subcode></e:Code><e:Reason><e:Text>no</e:Text></e:Reason></e:Fault>',
            ),
          ),
    ],
    [
      'another fault',
      'fault',
      (_req: IncomingMessage, res: ServerResponse) =>
        res
          .writeHead(500)
          .end(
            ok(
              '<e:Fault><e:Code><e:Value>e:Receiver</e:Value><e:Subcode><e:Value>ter:ActionNotSupported</e:Value></e:Subcode></e:Code></e:Fault>',
            ),
          ),
    ],
    [
      'a fault inside a 200',
      'fault',
      (_req: IncomingMessage, res: ServerResponse) => res.end(ok('<e:Fault><e:Code><e:Value>e:Receiver</e:Value></e:Code></e:Fault>')),
    ],
    ['HTTP 404 without SOAP', 'http', (_req: IncomingMessage, res: ServerResponse) => res.writeHead(404).end('nope')],
    [
      'HTTP 401 without credentials',
      'auth',
      (_req: IncomingMessage, res: ServerResponse) => res.writeHead(401, { 'www-authenticate': 'Digest realm="r", nonce="n"' }).end(),
    ],
    ['a reset connection', 'network', (req: IncomingMessage) => req.socket.destroy()],
  ])('%s → %s', async (_what, expected, handler) => {
    const url = await serve(handler);
    expect(await kind(call(url, { timeoutMs: 300 }))).toBe(expected);
  });

  it('retries a 401 Digest challenge with an Authorization header', async () => {
    const authorizations: (string | undefined)[] = [];
    const url = await serve((req, res) => {
      authorizations.push(req.headers.authorization);
      req.resume();
      if (req.headers.authorization === undefined)
        res.writeHead(401, { 'www-authenticate': 'Digest realm="cam", nonce="abc", qop="auth"' }).end();
      else res.end(ok('<Done/>'));
    });
    expect(await call(url, { credentials: { username: 'admin', password: 'pw' } })).toEqual({ Done: '' });
    expect(authorizations[0]).toBeUndefined();
    expect(authorizations[1]).toMatch(/^Digest username="admin", realm="cam", nonce="abc", uri="\/onvif\/device_service"/);
  });

  it('gives up at once when the session is aborted', async () => {
    const url = await serve(() => undefined);
    const abort = new AbortController();
    const pending = call(url, { signal: abort.signal, timeoutMs: 60_000 });
    abort.abort();
    expect(await kind(pending)).toBe('network');
  });
});
