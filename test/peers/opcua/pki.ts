/**
 * A throwaway OPC UA PKI for the opcua peer tests (openssl CLI, RSA 2048 as Basic256Sha256
 * needs): certificate authorities and application instance certificates they sign, each with
 * its application URI (and address) in subjectAltName. Everything lives in a temp dir removed
 * by the PeerGroup; no key is ever committed.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type PeerGroup } from '../process.ts';

export interface Issued {
  readonly cert: string;
  readonly key: string;
  /** PEM text of the certificate and of the key. */
  readonly certPem: string;
  readonly keyPem: string;
}

export interface OpcuaPki {
  readonly dir: string;
  /** A self-signed CA named `name`. */
  ca(name: string): Promise<Issued>;
  /** An application instance certificate signed by `ca`, valid for two days. */
  issue(ca: Issued, name: string, san: { uri: string; ip?: string }): Promise<Issued>;
}

async function issued(dir: string, name: string): Promise<Issued> {
  const cert = join(dir, `${name}.cert.pem`);
  const key = join(dir, `${name}.key.pem`);
  return { cert, key, certPem: await readFile(cert, 'utf8'), keyPem: await readFile(key, 'utf8') };
}

export async function createOpcuaPki(group: PeerGroup): Promise<OpcuaPki> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-opcua-pki-'));
  group.defer(`opcua pki ${dir}`, () => rm(dir, { recursive: true, force: true }));
  const genKey = (name: string): Promise<unknown> =>
    run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(dir, `${name}.key.pem`)]);
  return {
    dir,
    async ca(name) {
      await genKey(name);
      await run('openssl', [
        'req',
        '-x509',
        '-new',
        '-key',
        join(dir, `${name}.key.pem`),
        '-subj',
        `/CN=${name}`,
        '-days',
        '2',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-out',
        join(dir, `${name}.cert.pem`),
      ]);
      return issued(dir, name);
    },
    async issue(ca, name, san) {
      await genKey(name);
      const csr = join(dir, `${name}.csr`);
      await run('openssl', ['req', '-new', '-key', join(dir, `${name}.key.pem`), '-subj', `/CN=${name}`, '-out', csr]);
      const ext = join(dir, `${name}.ext`);
      const alt = [`URI:${san.uri}`, ...(san.ip === undefined ? [] : [`IP:${san.ip}`])].join(',');
      await writeFile(
        ext,
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment',
          'extendedKeyUsage=serverAuth,clientAuth',
          `subjectAltName=${alt}`,
          '',
        ].join('\n'),
      );
      await run('openssl', [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca.cert,
        '-CAkey',
        ca.key,
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        ext,
        '-out',
        join(dir, `${name}.cert.pem`),
      ]);
      return issued(dir, name);
    },
  };
}
