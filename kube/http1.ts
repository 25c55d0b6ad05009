/**
 * WARNING: @kubernetes/client-node 2 talks to the apiserver through undici 8, which
 * negotiates HTTP/2. undici's HTTP/2 idle-session cleanup can raise
 * `InformationalError: socket idle timeout` as an unhandled rejection after a watch was
 * aborted (seen in our integration runs) — enough to kill a process or fail a test run.
 * Watches and applies work the same over HTTP/1.1 (client-go's h1 fallback), so Tether
 * offers only http/1.1 in ALPN. `allowH2` set in the connect options reaches undici's
 * connector, which builds the ALPN list from it. Call once at process start.
 *
 * Only tests and benchmarks use client-node now (test/setup/http1.ts): Tether's own client
 * (client.ts) speaks HTTP/1.1 through node:https and never imports client-node at run time.
 */
import { KubeConfig } from '@kubernetes/client-node';

let applied = false;

export function useHttp1ForKubernetes(): void {
  if (applied) return;
  applied = true;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound with apply() below
  const original = KubeConfig.prototype.createDispatcherOptions;
  KubeConfig.prototype.createDispatcherOptions = function (this: KubeConfig, ...args: Parameters<typeof original>) {
    const options = original.apply(this, args);
    if ('connect' in options && options.connect !== undefined)
      return { ...options, connect: { ...options.connect, allowH2: false } } as unknown as typeof options;
    return options;
  };
}
