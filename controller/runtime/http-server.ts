/**
 * /healthz (the process and its loops are alive), /readyz (caches synced; a standby replica is
 * ready too — it serves as soon as it wins the lease) and /metrics on one small HTTP server.
 */
import type { Server } from 'node:http';
import { createServer } from '../../kube/node-http.ts';
import type { AddressInfo } from 'node:net';
import type { Registry } from '../../kube/prometheus.ts';

export interface Probe {
  readonly ok: boolean;
  readonly detail: string;
}

export interface HealthSources {
  readonly healthy: () => Probe;
  readonly ready: () => Probe;
}

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on `host:port` (port 0: any free port). */
export async function startHttpServer(host: string, port: number, registry: Registry, health: HealthSources): Promise<HttpServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        })
        .catch((error: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(error));
        });
      return;
    }
    const probe = path === '/healthz' || path === '/livez' ? health.healthy() : path === '/readyz' ? health.ready() : undefined;
    if (probe === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    res.writeHead(probe.ok ? 200 : 503, { 'content-type': 'text/plain' });
    res.end(`${probe.detail}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
