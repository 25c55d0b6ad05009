import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { KubeApiError, type KubeClient } from '../kube/client.ts';
import { WorkloadCaches } from './workloads.ts';

/** A client whose discovery answers 404 until `served` is set; counts discovery requests. */
function client(): { client: KubeClient; requests: string[]; serve: (list: unknown) => void } {
  const requests: string[] = [];
  let served: unknown;
  const fake = {
    request: (_method: string, path: string): Promise<unknown> => {
      requests.push(path);
      if (served === undefined) return Promise.reject(new KubeApiError(404, `${path} not found`, '', {}));
      return Promise.resolve(served);
    },
  };
  return { client: fake as unknown as KubeClient, requests, serve: (list) => (served = list) };
}

describe('WorkloadCaches', () => {
  it('reports an unserved kind as failed with why, asks again only after retryMs, and settles each time', async () => {
    const { client: kube, requests } = client();
    let now = 1_000;
    const settled: string[] = [];
    let notify: () => void = () => undefined;
    const caches = new WorkloadCaches({
      client: kube,
      namespace: 'ns',
      log: pino({ level: 'silent' }),
      onEvent: () => undefined,
      onSettled: (kind) => {
        settled.push(kind);
        notify();
      },
      retryMs: 10_000,
      now: () => now,
    });
    const settledOnce = (): Promise<void> => new Promise((resolve) => (notify = resolve));

    let next = settledOnce();
    expect(caches.ensure('core.spinkube.dev/v1alpha1', 'SpinApp')).toEqual({ state: 'pending' });
    // Asked once, however often a reconcile looks meanwhile.
    expect(caches.ensure('core.spinkube.dev/v1alpha1', 'SpinApp')).toEqual({ state: 'pending' });
    await next;
    expect(settled).toEqual(['SpinApp.core.spinkube.dev']);
    expect(caches.ensure('core.spinkube.dev/v1alpha1', 'SpinApp')).toEqual({
      state: 'failed',
      message: 'the apiserver serves no core.spinkube.dev/v1alpha1 (no such group-version)',
      retryAtMs: 11_000,
    });
    expect(caches.typeOf('SpinApp.core.spinkube.dev')).toBeUndefined();
    expect(caches.byIndex('device', 'ns/d')).toEqual([]);
    expect(requests).toEqual(['/apis/core.spinkube.dev/v1alpha1']);

    now = 10_999;
    expect(caches.ensure('core.spinkube.dev/v1alpha1', 'SpinApp').state).toBe('failed');
    expect(requests).toHaveLength(1);
    now = 11_000;
    next = settledOnce();
    expect(caches.ensure('core.spinkube.dev/v1alpha1', 'SpinApp')).toEqual({ state: 'pending' });
    await next;
    expect(requests).toHaveLength(2);
    await caches.stop();
  });
});
