/**
 * SOAP 1.2 over HTTP(S) for ONVIF, with WS-UsernameToken PasswordDigest and an HTTP
 * Digest fallback (some cameras answer 401 with a Digest challenge instead of reading the
 * WS-Security header). Every call has a deadline and a response size limit; the answer
 * is parsed by the hostile-input-safe parser in xml.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { request as httpRequest } from '../node-http.ts';
import { request as httpsRequest } from 'node:https';
import { child, escapeXml, parseXml, path, textValue, type XmlNode } from './xml.ts';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export interface SoapOptions {
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly signal: AbortSignal;
  /** Omitted: the call is sent without authentication. */
  readonly credentials?: Credentials | undefined;
  /** Camera clock minus local clock, applied to the token's Created time. */
  readonly clockOffsetMs?: number;
  readonly tlsInsecureSkipVerify?: boolean;
}

export type SoapErrorKind = 'auth' | 'fault' | 'timeout' | 'too-large' | 'http' | 'network' | 'malformed';

/** A failed SOAP call; `kind` is what the handler counts (never contains camera data). */
export class SoapError extends Error {
  readonly kind: SoapErrorKind;
  constructor(kind: SoapErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SoapError';
    this.kind = kind;
  }
}

const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
  passwordDigest: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest',
  base64: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary',
};

/** Base64(SHA-1(nonce ‖ created ‖ password)), per the WS-Security UsernameToken profile. */
export function passwordDigest(nonce: Buffer, created: string, password: string): string {
  return createHash('sha1')
    .update(Buffer.concat([nonce, Buffer.from(created, 'utf8'), Buffer.from(password, 'utf8')]))
    .digest('base64');
}

/** ISO-8601 UTC without milliseconds, the form cameras accept most widely. */
export function wsuTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The wsse:Security header for `credentials` at camera time `createdMs`. */
export function securityHeader(credentials: Credentials, createdMs: number, nonce: Buffer = randomBytes(16)): string {
  const created = wsuTimestamp(createdMs);
  return (
    `<wsse:Security s:mustUnderstand="1" xmlns:wsse="${NS.wsse}" xmlns:wsu="${NS.wsu}">` +
    '<wsse:UsernameToken>' +
    `<wsse:Username>${escapeXml(credentials.username)}</wsse:Username>` +
    `<wsse:Password Type="${NS.passwordDigest}">${passwordDigest(nonce, created, credentials.password)}</wsse:Password>` +
    `<wsse:Nonce EncodingType="${NS.base64}">${nonce.toString('base64')}</wsse:Nonce>` +
    `<wsu:Created>${created}</wsu:Created>` +
    '</wsse:UsernameToken></wsse:Security>'
  );
}

/** A SOAP 1.2 envelope; `namespaces` are declared on the Envelope so the body can use their prefixes. */
export function envelope(body: string, namespaces: Readonly<Record<string, string>>, header = ''): string {
  const xmlns = Object.entries(namespaces)
    .map(([prefix, uri]) => ` xmlns:${prefix}="${uri}"`)
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="${NS.soap}"${xmlns}><s:Header>${header}</s:Header><s:Body>${body}</s:Body></s:Envelope>`;
}

interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

function post(url: URL, payload: string, headers: Record<string, string>, options: SoapOptions): Promise<HttpAnswer> {
  const signal = AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const fail = (error: unknown): void => {
      if (signal.aborted && !options.signal.aborted)
        reject(new SoapError('timeout', `no answer within ${options.timeoutMs} ms`, { cause: error }));
      else if (error instanceof SoapError) reject(error);
      else reject(new SoapError('network', (error as Error).message, { cause: error }));
    };
    const req = request(
      url,
      {
        method: 'POST',
        signal,
        headers: { ...headers, 'content-length': Buffer.byteLength(payload) },
        ...(url.protocol === 'https:' ? { rejectUnauthorized: options.tlsInsecureSkipVerify !== true } : {}),
      },
      (res) => {
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > options.maxResponseBytes) {
          req.destroy(new SoapError('too-large', `response of ${declared} bytes exceeds ${options.maxResponseBytes}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxResponseBytes)
            req.destroy(new SoapError('too-large', `response exceeds ${options.maxResponseBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(payload);
  });
}

/** Parses `Digest realm="…", nonce="…", …` into its parameters. */
export function parseDigestChallenge(header: string): Record<string, string> | undefined {
  const match = /^\s*Digest\s+(.*)$/is.exec(header);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  for (const m of match[1]!.matchAll(/([a-zA-Z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    params[m[1]!.toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return params['nonce'] === undefined || params['realm'] === undefined ? undefined : params;
}

/** The Authorization header answering an HTTP Digest challenge (RFC 7616; MD5 or SHA-256, qop=auth). */
export function digestAuthorization(
  challenge: Record<string, string>,
  credentials: Credentials,
  method: string,
  uri: string,
  cnonce = randomBytes(8).toString('hex'),
): string {
  const algorithm = (challenge['algorithm'] ?? 'MD5').toUpperCase();
  const hashName = algorithm.startsWith('SHA-256') ? 'sha256' : 'md5';
  const h = (s: string): string => createHash(hashName).update(s).digest('hex');
  const realm = challenge['realm']!;
  const nonce = challenge['nonce']!;
  let ha1 = h(`${credentials.username}:${realm}:${credentials.password}`);
  if (algorithm.endsWith('-SESS')) ha1 = h(`${ha1}:${nonce}:${cnonce}`);
  const ha2 = h(`${method}:${uri}`);
  const qop =
    challenge['qop']
      ?.split(',')
      .map((q) => q.trim())
      .includes('auth') === true
      ? 'auth'
      : undefined;
  const nc = '00000001';
  const response = qop === undefined ? h(`${ha1}:${nonce}:${ha2}`) : h(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`);
  const quote = (s: string): string => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const parts = [
    `username=${quote(credentials.username)}`,
    `realm=${quote(realm)}`,
    `nonce=${quote(nonce)}`,
    `uri=${quote(uri)}`,
    `algorithm=${algorithm}`,
    `response=${quote(response)}`,
    ...(challenge['opaque'] === undefined ? [] : [`opaque=${quote(challenge['opaque'])}`]),
    ...(qop === undefined ? [] : [`qop=${qop}`, `nc=${nc}`, `cnonce=${quote(cnonce)}`]),
  ];
  return `Digest ${parts.join(', ')}`;
}

const AUTH_SUBCODES = /NotAuthorized|FailedAuthentication|InvalidSecurity|FailedCheck|SecurityTokenUnavailable|Unauthorized/i;

function faultOf(body: string, maxBytes: number): { code: string; reason: string } | undefined {
  try {
    const fault = path(parseXml(body, maxBytes), 'Envelope', 'Body', 'Fault');
    if (fault === undefined) return undefined;
    const subcode = textValue(path(fault, 'Code', 'Subcode', 'Value')) ?? '';
    const code = textValue(path(fault, 'Code', 'Value')) ?? '';
    const reason = textValue(path(fault, 'Reason', 'Text')) ?? '';
    return { code: `${code} ${subcode}`.trim(), reason };
  } catch {
    return undefined;
  }
}

function isAuthFault(code: string): boolean {
  return AUTH_SUBCODES.test(code);
}

/** Turns a non-2xx answer into the SoapError it means. */
function failure(answer: HttpAnswer, maxBytes: number): SoapError {
  if (answer.status === 401 || answer.status === 403) return new SoapError('auth', `HTTP ${answer.status}`);
  const fault = faultOf(answer.body, maxBytes);
  if (fault === undefined) return new SoapError('http', `HTTP ${answer.status}`);
  return new SoapError(isAuthFault(fault.code) ? 'auth' : 'fault', `SOAP fault ${fault.code}: ${fault.reason.slice(0, 200)}`);
}

/** The Body of a 2xx answer; a Fault inside a 2xx is still a fault. */
function bodyOf(answer: HttpAnswer, maxBytes: number): XmlNode {
  let result: unknown;
  try {
    result = child(child(parseXml(answer.body, maxBytes), 'Envelope'), 'Body');
  } catch (error) {
    throw new SoapError('malformed', (error as Error).message, { cause: error });
  }
  if (result === undefined || typeof result !== 'object' || result === null) throw new SoapError('malformed', 'no SOAP Body');
  if (child(result, 'Fault') !== undefined) throw failure({ ...answer, status: 500 }, maxBytes);
  return result as XmlNode;
}

/**
 * Calls `action` at `url` with `body` (using prefixes declared in `namespaces`) and
 * returns the parsed Body element. Throws SoapError.
 */
export async function soapCall(
  url: string,
  action: string,
  body: string,
  namespaces: Readonly<Record<string, string>>,
  options: SoapOptions,
): Promise<XmlNode> {
  let target: URL;
  try {
    target = new URL(url);
  } catch (error) {
    throw new SoapError('malformed', 'invalid service URL', { cause: error });
  }
  const credentials = options.credentials;
  const header = credentials === undefined ? '' : securityHeader(credentials, Date.now() + (options.clockOffsetMs ?? 0));
  const payload = envelope(body, namespaces, header);
  const headers: Record<string, string> = { 'content-type': `application/soap+xml; charset=utf-8; action="${action}"` };
  let answer = await post(target, payload, headers, options);
  if (answer.status === 401 && credentials !== undefined) {
    const challenge = parseDigestChallenge(String(answer.headers['www-authenticate'] ?? ''));
    if (challenge !== undefined) {
      const authorization = digestAuthorization(challenge, credentials, 'POST', `${target.pathname}${target.search}`);
      answer = await post(target, payload, { ...headers, authorization }, options);
    }
  }
  if (answer.status < 200 || answer.status >= 300) throw failure(answer, options.maxResponseBytes);
  return bodyOf(answer, options.maxResponseBytes);
}
