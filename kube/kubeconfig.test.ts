import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeApiError, KubeClient, errorCode } from './client.ts';
import { KubeConfig } from './kubeconfig.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tkc-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const KUBECONFIG = `
apiVersion: v1
kind: Config
current-context: b
contexts:
  - name: a
    context: { cluster: one, user: alice }
  - name: b
    context: { cluster: two, user: bob, namespace: edge }
clusters:
  - name: one
    cluster: { server: 'https://one:6443', insecure-skip-tls-verify: true }
  - name: two
    cluster: { server: 'https://two:6443/', certificate-authority: certs/ca.crt, tls-server-name: kubernetes }
users:
  - name: alice
    user: { token: secret }
  - name: bob
    user: { client-certificate: certs/bob.crt, client-key: /abs/bob.key, token-file: token }
`;

describe('KubeConfig', () => {
  it('loads the current context; relative paths are relative to the file', async () => {
    await writeFile(join(dir, 'config'), KUBECONFIG);
    const kc = new KubeConfig();
    kc.loadFromFile(join(dir, 'config'));
    expect(kc.getCurrentCluster()).toEqual({
      server: 'https://two:6443',
      caFile: join(dir, 'certs/ca.crt'),
      skipTLSVerify: false,
      tlsServerName: 'kubernetes',
    });
    expect(kc.getCurrentUser()).toMatchObject({
      certFile: join(dir, 'certs/bob.crt'),
      keyFile: '/abs/bob.key',
      authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } },
    });
    expect(kc.namespace).toBe('edge');
  });

  it('loads another context by name, and JSON as well as YAML', async () => {
    await writeFile(join(dir, 'config'), KUBECONFIG);
    const kc = new KubeConfig();
    kc.loadFromFile(join(dir, 'config'), 'a');
    expect(kc.getCurrentCluster()).toEqual({ server: 'https://one:6443', skipTLSVerify: true });
    expect(kc.getCurrentUser()).toMatchObject({ token: 'secret' });
    const json = {
      'current-context': 'x',
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      clusters: [{ name: 'c', cluster: { server: 'http://127.0.0.1:1' } }],
      users: [{ name: 'u', user: {} }],
    };
    await writeFile(join(dir, 'config.json'), JSON.stringify(json));
    kc.loadFromFile(join(dir, 'config.json'));
    expect(kc.getCurrentCluster()?.server).toBe('http://127.0.0.1:1');
  });

  it.each([
    ['current-context: nope\ncontexts: []\n', 'no context named "nope"'],
    ['contexts: []\n', 'no current-context'],
    [
      'current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "https://c"}}]\nusers: [{name: u, user: {auth-provider: {name: gcp}}}]\n',
      'auth-provider plugins are not supported',
    ],
    ['- a list\n', 'not a kubeconfig'],
  ])('refuses %j', async (text, message) => {
    await writeFile(join(dir, 'config'), text);
    expect(() => new KubeConfig().loadFromFile(join(dir, 'config'))).toThrow(message);
  });

  it('in-cluster: the service account of the pod', async () => {
    await writeFile(join(dir, 'namespace'), 'tether-system\n');
    const kc = new KubeConfig();
    kc.loadFromCluster({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir);
    expect(kc.getCurrentCluster()).toEqual({ server: 'https://[fd00::1]:443', caFile: join(dir, 'ca.crt'), skipTLSVerify: false });
    expect(kc.namespace).toBe('tether-system');
    expect(() => new KubeConfig().loadFromCluster({}, dir)).toThrow('not in a cluster');
  });
});

describe('KubeClient over node:http', () => {
  let server: Server;
  let seen: { url: string; headers: IncomingHttpHeaders; body: string }[];

  async function serve(answer: (url: string) => [number, string]): Promise<string> {
    seen = [];
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, body });
        const [status, text] = answer(req.url ?? '');
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(text);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    return `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  }

  afterEach(() => server.close());

  it('sends JSON with the bearer token read from its file, re-read on refresh', async () => {
    const url = await serve(() => [200, '{"kind":"Pod"}']);
    await writeFile(join(dir, 'token'), 'first\n');
    await chmod(join(dir, 'token'), 0o600);
    await writeFile(
      join(dir, 'config'),
      `current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "${url}"}}]\nusers: [{name: u, user: {token-file: token}}]\n`,
    );
    const kc = new KubeConfig();
    kc.loadFromFile(join(dir, 'config'));
    const client = new KubeClient(kc);
    const pod = await client.request<{ kind: string }>('POST', '/api/v1/pods', {
      verb: 'create',
      resource: 'pods',
      body: { a: 1 },
      query: { fieldManager: 'tether', dryRun: undefined },
    });
    expect(pod).toEqual({ kind: 'Pod' });
    expect(seen[0]).toMatchObject({ url: '/api/v1/pods?fieldManager=tether', body: '{"a":1}' });
    expect(seen[0]?.headers).toMatchObject({ authorization: 'Bearer first', 'content-type': 'application/json' });
    expect(client.counter.snapshot()).toEqual({ 'create pods': 1 });
    client.close();
  });

  it('turns an error answer into a KubeApiError with the Status message', async () => {
    const url = await serve(() => [404, '{"kind":"Status","message":"pods \\"x\\" not found","code":404}']);
    const kc = new KubeConfig();
    await writeFile(
      join(dir, 'config'),
      `current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "${url}"}}]\nusers: [{name: u, user: {username: a, password: b}}]\n`,
    );
    kc.loadFromFile(join(dir, 'config'));
    const client = new KubeClient(kc);
    const error = await client.request('GET', '/api/v1/namespaces/d/pods/x', { verb: 'get', resource: 'pods' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(errorCode(error)).toBe(404);
    expect((error as Error).message).toBe('GET /api/v1/namespaces/d/pods/x: HTTP 404: pods "x" not found');
    expect(seen[0]?.headers.authorization).toBe(`Basic ${Buffer.from('a:b').toString('base64')}`);
    client.close();
  });
});
