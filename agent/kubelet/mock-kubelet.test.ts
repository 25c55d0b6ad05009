/** The mock kubelet's own contract: refuses what the kubelet refuses, serves PodResources. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevicePluginProtos, loadPodResourcesProtos } from '../../proto/load.ts';
import { MockKubelet } from './mock-kubelet.ts';

let dir: string;
let kubelet: MockKubelet;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tk-'));
  kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
});

afterAll(async () => {
  await kubelet.stop();
  await rm(dir, { recursive: true, force: true });
});

function call<T>(client: Client, method: string, request: unknown): Promise<T> {
  const rpc = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
  return new Promise((resolve, reject) =>
    rpc.call(client, request, (error: ServiceError | null, response: T) => (error ? reject(error) : resolve(response))),
  );
}

describe('mock kubelet registration', () => {
  it.each([
    [{ version: 'v1alpha', endpoint: 'x.sock', resource_name: 'tether.dev/x' }, 'unsupported device plugin API version'],
    [{ version: 'v1beta1', endpoint: 'x.sock', resource_name: 'no-domain' }, 'invalid extended resource name'],
    [{ version: 'v1beta1', endpoint: 'x.sock', resource_name: `tether.dev/${'a'.repeat(64)}` }, 'too long'],
    [{ version: 'v1beta1', endpoint: '../x.sock', resource_name: 'tether.dev/x' }, 'invalid endpoint'],
  ])('refuses %j', async (request, message) => {
    const { Registration } = loadDevicePluginProtos();
    const client = new Registration(`unix://${kubelet.kubeletSocket}`, credentials.createInsecure());
    try {
      await expect(call(client, 'Register', request)).rejects.toMatchObject({
        code: status.INVALID_ARGUMENT,
        details: expect.stringContaining(message),
      });
    } finally {
      client.close();
    }
  });
});

describe('mock kubelet PodResources', () => {
  it('serves List, Get and GetAllocatableResources from its allocations', async () => {
    kubelet.recordAllocation({ namespace: 'ns', name: 'p', container: 'c' }, 'tether.dev/x', ['x-0']);
    const { PodResourcesLister } = loadPodResourcesProtos();
    const client = new PodResourcesLister(`unix://${kubelet.podResourcesSocket!}`, credentials.createInsecure());
    try {
      const list = await call<{
        pod_resources: { name: string; containers: { name: string; devices: { resource_name: string; device_ids: string[] }[] }[] }[];
      }>(client, 'List', {});
      expect(list.pod_resources).toHaveLength(1);
      expect(list.pod_resources[0]).toMatchObject({
        name: 'p',
        containers: [{ name: 'c', devices: [{ resource_name: 'tether.dev/x', device_ids: ['x-0'] }] }],
      });
      const one = await call<{ pod_resources: { namespace: string } }>(client, 'Get', { pod_name: 'p', pod_namespace: 'ns' });
      expect(one.pod_resources.namespace).toBe('ns');
      await expect(call(client, 'Get', { pod_name: 'nope', pod_namespace: 'ns' })).rejects.toMatchObject({ code: status.NOT_FOUND });
      const allocatable = await call<{ devices: unknown[] }>(client, 'GetAllocatableResources', {});
      expect(allocatable.devices).toEqual([]);
      kubelet.removePod('ns', 'p');
      expect(kubelet.listPods()).toEqual([]);
    } finally {
      client.close();
    }
  });
});
