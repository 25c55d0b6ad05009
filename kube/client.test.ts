/**
 * KubeClient's request lifecycle against a local HTTP server: an answered request leaves
 * nothing behind (no timer, no listener on the caller's signal — an idle process pays for
 * each), a request nobody answers ends at its deadline, and the caller's abort ends a request
 * at once, before or after the headers arrived.
 */
import { getEventListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient } from './client.ts';

let server: Server;
let client: KubeClient;
let handle: (req: IncomingMessage, res: ServerResponse) => void;
const seen: string[] = [];

beforeEach(async () => {
  seen.length = 0;
  server = createServer((req, res) => {
    seen.push(req.url ?? '');
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kc = {
    getCurrentCluster: () => ({ server: `http://127.0.0.1:${port}`, skipTLSVerify: false }),
    getCurrentUser: () => ({ name: 'u' }),
  };
  client = new KubeClient(kc, undefined, 300);
});

afterEach(async () => {
  client.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('KubeClient.request', () => {
  it('returns the parsed answer and leaves no timer and no abort listener behind', async () => {
    handle = (_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"kind":"Lease"}');
    const caller = new AbortController();
    const before = timers();
    const answer = await client.request<{ kind: string }>('GET', '/apis/x', { verb: 'get', resource: 'x', signal: caller.signal });
    expect(answer).toEqual({ kind: 'Lease' });
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    expect(timers()).toBe(before);
  });

  it('ends a request nobody answers at its deadline', async () => {
    handle = () => undefined; // never answers
    await expect(client.request('GET', '/apis/silent', { verb: 'get', resource: 'x' })).rejects.toThrow(
      'GET /apis/silent: no answer within 300 ms',
    );
  });

  it("ends at the caller's abort while the body is still coming, with the caller's reason", async () => {
    const caller = new AbortController();
    handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"kind":');
      caller.abort(new Error('shutting down'));
    };
    await expect(client.request('GET', '/apis/slow', { verb: 'get', resource: 'x', signal: caller.signal })).rejects.toThrow(
      'shutting down',
    );
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('sends nothing when the signal has already aborted', async () => {
    handle = (_req, res) => res.writeHead(200).end('{}');
    const caller = new AbortController();
    caller.abort(new Error('stopped'));
    await expect(client.request('GET', '/apis/never', { verb: 'get', resource: 'x', signal: caller.signal })).rejects.toThrow('stopped');
    expect(seen).toEqual([]);
  });
});
