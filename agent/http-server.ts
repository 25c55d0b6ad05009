/** /metrics, /healthz and /readyz on one small HTTP server. */
import type { Server } from 'node:http';
import { createServer } from '../kube/node-http.ts';
import type { AddressInfo } from 'node:net';
import type { Registry } from '../kube/prometheus.ts';

export interface HealthSource {
  /** Process is alive and its loops are running. */
  healthy(): boolean;
  /** Initial sync done: the agent serves what it should. */
  ready(): boolean;
}

export async function startHttpServer(address: string, registry: Registry, health: HealthSource): Promise<Server> {
  const [host, portText] = address.includes(':')
    ? [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)]
    : ['', address];
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500).end(String(error)),
      );
      return;
    }
    const probe = path === '/healthz' ? health.healthy() : path === '/readyz' ? health.ready() : undefined;
    if (probe === undefined) response.writeHead(404).end('not found\n');
    else response.writeHead(probe ? 200 : 503, { 'content-type': 'text/plain' }).end(probe ? 'ok\n' : 'not ready\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host === '' ? undefined : host, () => resolve());
  });
  return server;
}

export function listeningPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}
