/**
 * A throwaway PKI for TLS peer tests (openssl CLI, EC P-256): a CA, a server certificate for
 * `localhost` / 127.0.0.1, and a client certificate.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type PeerGroup } from './process.ts';

export interface TestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** PEM text of a file above. */
  pem(path: string): Promise<string>;
}

async function issue(dir: string, name: string, subject: string, extensions: string): Promise<void> {
  const key = join(dir, `${name}.key`);
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', subject, '-out', join(dir, `${name}.csr`)]);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    join(dir, `${name}.csr`),
    '-CA',
    join(dir, 'ca.crt'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    join(dir, `${name}.crt`),
  ]);
}

export async function createTestPki(group: PeerGroup): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-pki-'));
  group.defer(`pki ${dir}`, () => rm(dir, { recursive: true, force: true }));
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, 'ca.key')]);
  await run('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    join(dir, 'ca.key'),
    '-subj',
    '/CN=tether-test-ca',
    '-days',
    '2',
    '-out',
    join(dir, 'ca.crt'),
  ]);
  await issue(dir, 'server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await issue(dir, 'client', '/CN=tether-agent', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    pem: (path) => readFile(path, 'utf8'),
  };
}
