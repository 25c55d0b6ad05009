/**
 * Certificates and keys for the test cluster, made with the openssl CLI.
 * EC P-256 everywhere: generation is instant and every component accepts it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Paths of every PEM file the cluster uses, all inside one directory. */
export interface ClusterCerts {
  dir: string;
  caCert: string;
  caKey: string;
  /** kube-apiserver serving certificate. */
  apiserverCert: string;
  apiserverKey: string;
  /** Service-account token signing key (private) and its public half. */
  serviceAccountKey: string;
  serviceAccountPub: string;
  /** Client certificates, one per identity. */
  admin: ClientCert;
  controllerManager: ClientCert;
  scheduler: ClientCert;
  /** Used by kube-apiserver for kubelet calls (logs, exec) in later end-to-end tests. */
  apiserverKubeletClient: ClientCert;
}

/** A client certificate and its key. */
export interface ClientCert {
  cert: string;
  key: string;
}

/** The first IP of the service range: the `kubernetes` Service's ClusterIP. */
export const SERVICE_CIDR = '10.96.0.0/16';
const KUBERNETES_SERVICE_IP = '10.96.0.1';

const API_SANS = [
  'IP:127.0.0.1',
  `IP:${KUBERNETES_SERVICE_IP}`,
  'DNS:localhost',
  'DNS:kubernetes',
  'DNS:kubernetes.default',
  'DNS:kubernetes.default.svc',
  'DNS:kubernetes.default.svc.cluster.local',
];

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`, { cause: error });
  }
}

function newKey(path: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
}

function newCa(certs: ClusterCerts): void {
  newKey(certs.caKey);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    certs.caKey,
    '-out',
    certs.caCert,
    '-days',
    '3650',
    '-subj',
    '/CN=tether-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
}

/** Issues a leaf certificate signed by the CA (OpenSSL 3 `req -CA`). */
function issue(certs: ClusterCerts, out: ClientCert, subject: string, extensions: string[]): void {
  newKey(out.key);
  openssl([
    'req',
    '-new',
    '-key',
    out.key,
    '-out',
    out.cert,
    '-days',
    '3650',
    '-subj',
    subject,
    '-CA',
    certs.caCert,
    '-CAkey',
    certs.caKey,
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    ...extensions.flatMap((extension) => ['-addext', extension]),
  ]);
}

function issueClient(certs: ClusterCerts, out: ClientCert, user: string, group?: string): void {
  const subject = group === undefined ? `/CN=${user}` : `/O=${group}/CN=${user}`;
  issue(certs, out, subject, ['extendedKeyUsage=clientAuth']);
}

function certPaths(dir: string): ClusterCerts {
  const pair = (name: string): ClientCert => ({ cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) });
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    apiserverCert: join(dir, 'apiserver.crt'),
    apiserverKey: join(dir, 'apiserver.key'),
    serviceAccountKey: join(dir, 'service-account.key'),
    serviceAccountPub: join(dir, 'service-account.pub'),
    admin: pair('admin'),
    controllerManager: pair('kube-controller-manager'),
    scheduler: pair('kube-scheduler'),
    apiserverKubeletClient: pair('apiserver-kubelet-client'),
  };
}

/**
 * Generates a fresh CA and every certificate the cluster needs into `dir`,
 * unless they already exist there (a reused state dir keeps its CA).
 * `extraApiserverSans` (e.g. `IP:10.250.77.1`) are added to the apiserver's certificate.
 */
export function ensureCerts(dir: string, extraApiserverSans: readonly string[] = []): ClusterCerts {
  const certs = certPaths(dir);
  if (existsSync(certs.admin.cert)) return certs;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  newCa(certs);
  issue(certs, { cert: certs.apiserverCert, key: certs.apiserverKey }, '/CN=kube-apiserver', [
    `subjectAltName=${[...API_SANS, ...extraApiserverSans].join(',')}`,
    'extendedKeyUsage=serverAuth',
  ]);
  issueClient(certs, certs.controllerManager, 'system:kube-controller-manager');
  issueClient(certs, certs.scheduler, 'system:kube-scheduler');
  issueClient(certs, certs.apiserverKubeletClient, 'kube-apiserver-kubelet-client', 'system:masters');
  newKey(certs.serviceAccountKey);
  openssl(['pkey', '-in', certs.serviceAccountKey, '-pubout', '-out', certs.serviceAccountPub]);
  // Written last: its presence marks the set as complete.
  issueClient(certs, certs.admin, 'tether-admin', 'system:masters');
  return certs;
}

/** Writes a kubeconfig that authenticates with a client certificate. */
export function writeKubeconfig(path: string, server: string, caCert: string, client: ClientCert, user: string): void {
  const yaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: tether-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority: ${caCert}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    client-certificate: ${client.cert}`,
    `    client-key: ${client.key}`,
    'contexts:',
    '- name: tether-test',
    '  context:',
    '    cluster: tether-test',
    `    user: ${user}`,
    'current-context: tether-test',
    '',
  ].join('\n');
  writeFileSync(path, yaml, { mode: 0o600 });
}
