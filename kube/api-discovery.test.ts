import { describe, expect, it } from 'vitest';
import { ApiResources, UnknownKindError } from './api-discovery.ts';
import { KubeApiError, type KubeClient } from './client.ts';

const APPS = {
  resources: [
    { name: 'deployments', kind: 'Deployment', namespaced: true, verbs: ['list', 'watch', 'patch'] },
    { name: 'deployments/scale', kind: 'Scale', namespaced: true },
    { name: 'statefulsets', kind: 'StatefulSet', namespaced: true },
  ],
};
const CLUSTER_SCOPED = { resources: [{ name: 'widgets', kind: 'Widget', namespaced: false }] };

/** A client answering discovery paths from `lists` (404 for the others), counting requests. */
function fakeClient(lists: Record<string, unknown>): { client: KubeClient; paths: string[] } {
  const paths: string[] = [];
  const client = {
    request: (method: string, path: string): Promise<unknown> => {
      paths.push(`${method} ${path}`);
      const list = lists[path];
      if (list === undefined) return Promise.reject(new KubeApiError(404, `${path} not found`, '', {}));
      return Promise.resolve(structuredClone(list));
    },
  };
  return { client: client as unknown as KubeClient, paths };
}

describe('ApiResources', () => {
  it('resolves a kind to its namespaced resource, and asks once per group-version', async () => {
    const { client, paths } = fakeClient({ '/apis/apps/v1': APPS });
    const resources = new ApiResources(client);
    expect(await resources.resolve('apps/v1', 'Deployment')).toEqual({
      group: 'apps',
      version: 'v1',
      plural: 'deployments',
      kind: 'Deployment',
      namespaced: true,
    });
    expect((await resources.resolve('apps/v1', 'StatefulSet')).plural).toBe('statefulsets');
    expect(paths).toEqual(['GET /apis/apps/v1']);
  });

  it('reads the core group from /api/v1', async () => {
    const { client } = fakeClient({
      '/api/v1': { resources: [{ name: 'replicationcontrollers', kind: 'ReplicationController', namespaced: true }] },
    });
    expect((await new ApiResources(client).resolve('v1', 'ReplicationController')).group).toBe('');
  });

  it.each([
    [
      'an unknown group-version',
      'gadgets.example.com/v1',
      'Gizmo',
      'the apiserver serves no gadgets.example.com/v1 (no such group-version)',
    ],
    ['a kind the group-version does not have', 'apps/v1', 'DaemonSets', 'the apiserver serves no kind DaemonSets in apps/v1'],
    ['a subresource kind', 'apps/v1', 'Scale', 'the apiserver serves no kind Scale in apps/v1'],
    ['a cluster-scoped kind', 'example.com/v1', 'Widget', 'Widget (example.com/v1) is cluster-scoped; brokers must be namespaced'],
  ])('refuses %s with UnknownKindError', async (_what, apiVersion, kind, message) => {
    const { client } = fakeClient({ '/apis/apps/v1': APPS, '/apis/example.com/v1': CLUSTER_SCOPED });
    const error = await new ApiResources(client).resolve(apiVersion, kind).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownKindError);
    expect((error as Error).message).toBe(message);
  });

  it('finds a kind installed later, asking again only after refreshMs', async () => {
    const lists: Record<string, unknown> = {};
    const { client, paths } = fakeClient(lists);
    let now = 0;
    const resources = new ApiResources(client, { refreshMs: 10_000, now: () => now });
    await expect(resources.resolve('core.spinkube.dev/v1alpha1', 'SpinApp')).rejects.toThrow(UnknownKindError);
    lists['/apis/core.spinkube.dev/v1alpha1'] = { resources: [{ name: 'spinapps', kind: 'SpinApp', namespaced: true }] };
    now = 5_000;
    await expect(resources.resolve('core.spinkube.dev/v1alpha1', 'SpinApp')).rejects.toThrow(UnknownKindError);
    now = 10_000;
    expect((await resources.resolve('core.spinkube.dev/v1alpha1', 'SpinApp')).plural).toBe('spinapps');
    expect(paths).toHaveLength(2);
  });

  it('passes on a failure to ask (not a 404) as an ordinary error, and asks again next time', async () => {
    let fail = true;
    const client = {
      request: (): Promise<unknown> => (fail ? Promise.reject(new KubeApiError(503, 'down', '', {})) : Promise.resolve(APPS)),
    } as unknown as KubeClient;
    const resources = new ApiResources(client);
    const error = await resources.resolve('apps/v1', 'Deployment').catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(UnknownKindError);
    expect((error as Error).message).toBe('reading the API resources of /apis/apps/v1');
    fail = false;
    expect((await resources.resolve('apps/v1', 'Deployment')).plural).toBe('deployments');
  });
});
