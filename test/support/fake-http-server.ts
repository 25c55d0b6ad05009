/**
 * The plumbing of the tests' scripted HTTP fakes (fake apiservers): a server on a free local
 * port, and `until`, which waits for a condition the fake or the test makes true, re-checked
 * whenever `poke` says something happened — never on a timer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeClient } from '../../kube/client.ts';
import { WakeSignal } from './wake-signal.ts';

export abstract class FakeHttpServer {
  readonly server: Server;
  port = 0;
  readonly #wake = new WakeSignal();

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  /** Answers one request. */
  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Closes every connection (open watch streams included) and the server. */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** Tether's apiserver client, pointed at this fake (plain HTTP, no credentials). */
  kubeClient(): KubeClient {
    return new KubeClient({
      getCurrentCluster: () => ({ server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }),
      getCurrentUser: () => ({ name: 'u' }),
    });
  }

  /** Resolves once `test()` holds, re-checked at every `poke`; rejects after `timeoutMs`. */
  until(test: () => boolean, what: string, timeoutMs?: number): Promise<void> {
    return this.#wake.until(test, what, timeoutMs);
  }

  /** Re-checks every pending `until` (call on requests and on the events a test records). */
  poke(): void {
    this.#wake.poke();
  }

  /** A request's body as text. */
  protected static async bodyText(req: IncomingMessage): Promise<string> {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    return text;
  }
}
