/**
 * Whether a server certificate is trusted, decided by Tether itself (node:crypto's X509, no
 * I/O) before any credential goes to the server: node-opcua is then told to accept exactly the
 * certificates this file accepted (client.ts), never to accept unknown ones.
 *
 * Trust anchors: every certificate in the operator's PEM bundle (OPCUA_TRUSTED_CERTIFICATES: CA
 * certificates and pinned server certificates alike) and the SHA-1 thumbprints of
 * `trustedCertificateThumbprints`. A server certificate is trusted when it is an anchor itself,
 * or when a chain of valid signatures leads from it to an anchor that is a CA, through
 * intermediates the server sent with it (OPC UA servers may send a chain: DER certificates one
 * after the other) or that the bundle holds. Every certificate on the way must be valid now; the
 * server's certificate must name the application URI it answered with (OPC UA Part 4, 6.1.3).
 *
 * Not checked: revocation lists (none are configured), key usage bits.
 */
import { X509Certificate } from 'node:crypto';

/** Why a server certificate is (not) trusted; becomes OPCUA_SERVER_CERT_TRUST. */
export type TrustState = 'trusted' | 'untrusted' | 'expired' | 'not-yet-valid' | 'uri-mismatch' | 'invalid';

/** The operator's anchors, parsed once per run. */
export interface TrustAnchors {
  readonly certificates: readonly X509Certificate[];
  /** Lower-case hex SHA-1 thumbprints (the bundle's certificates and the listed ones). */
  readonly thumbprints: ReadonlySet<string>;
}

const MAX_CHAIN = 8;
const MAX_BUNDLE = 256;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Certificates of a PEM bundle; throws (naming the block, never its content) on a bad one. */
export function parsePemCertificates(pem: string, what: string): X509Certificate[] {
  const blocks = pem.match(PEM_BLOCK) ?? [];
  if (blocks.length > MAX_BUNDLE) throw new Error(`${what}: more than ${MAX_BUNDLE} certificates`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new Error(`${what}: certificate ${i + 1} is not a valid X.509 certificate`, { cause: error });
    }
  });
}

const hexThumbprint = (cert: X509Certificate): string => cert.fingerprint.replace(/:/g, '').toLowerCase();

export function trustAnchors(certificates: readonly X509Certificate[], thumbprints: ReadonlySet<string>): TrustAnchors {
  return { certificates, thumbprints: new Set([...thumbprints, ...certificates.map(hexThumbprint)]) };
}

/** Splits concatenated DER certificates (a chain as OPC UA sends it); undefined when malformed. */
export function splitDerChain(der: Uint8Array): Uint8Array[] | undefined {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < der.length && out.length < MAX_CHAIN) {
    if (der[at] !== 0x30 || at + 2 > der.length) return undefined;
    const first = der[at + 1]!;
    let length = first;
    let header = 2;
    if (first & 0x80) {
      const bytes = first & 0x7f;
      if (bytes === 0 || bytes > 3 || at + 2 + bytes > der.length) return undefined;
      length = 0;
      for (let i = 0; i < bytes; i++) length = length * 256 + der[at + 2 + i]!;
      header = 2 + bytes;
    }
    const end = at + header + length;
    if (end > der.length) return undefined;
    out.push(der.subarray(at, end));
    at = end;
  }
  return at === der.length ? out : undefined;
}

function timeState(cert: X509Certificate, now: Date): TrustState | undefined {
  if (now < new Date(cert.validFrom)) return 'not-yet-valid';
  if (now > new Date(cert.validTo)) return 'expired';
  return undefined;
}

/** Whether `child` was issued and signed by `issuer`. */
function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** The application URI in a certificate's subjectAltName, if any. */
export function certificateUris(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  return [...san.matchAll(/URI:([^,]+)/g)].map((m) => m[1]!.trim());
}

/**
 * The trust state of the certificate a server sent (`der`: one certificate or a chain),
 * answering as `applicationUri`, at `now`.
 */
export function evaluateServerCertificate(der: Uint8Array, applicationUri: string, anchors: TrustAnchors, now: Date): TrustState {
  const chain = splitDerChain(der);
  if (chain === undefined || chain.length === 0) return 'invalid';
  let certs: X509Certificate[];
  try {
    certs = chain.map((c) => new X509Certificate(c));
  } catch {
    return 'invalid';
  }
  const leaf = certs[0]!;
  const leafTime = timeState(leaf, now);
  if (leafTime !== undefined) return leafTime;
  const uris = certificateUris(leaf);
  if (uris.length > 0 && !uris.includes(applicationUri)) return 'uri-mismatch';
  if (anchors.thumbprints.has(hexThumbprint(leaf))) return 'trusted';
  const pool = [...certs.slice(1), ...anchors.certificates];
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const issuer = pool.find((candidate) => candidate !== current && signedBy(current, candidate));
    if (issuer === undefined || issuer.ca !== true) return 'untrusted';
    const issuerTime = timeState(issuer, now);
    if (issuerTime !== undefined) return issuerTime;
    if (anchors.thumbprints.has(hexThumbprint(issuer))) return 'trusted';
    current = issuer;
  }
  return 'untrusted';
}
