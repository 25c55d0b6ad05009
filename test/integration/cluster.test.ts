/**
 * Smoke test of the test cluster itself: the pinned version answers, the CRDs
 * are served, and kube-controller-manager's controllers (job, garbage
 * collector) really run.
 */
import { VersionApi } from '@kubernetes/client-node';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { pinnedK8sVersion } from '../cluster/cluster.ts';
import { api, isApiError, kubectl, useTestNamespace, waitFor } from './support.ts';

const namespace = useTestNamespace('it-cluster');

describe('test cluster', () => {
  it('runs the pinned Kubernetes version', async () => {
    const version = await api().kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(pinnedK8sVersion());
    expect(version.gitVersion).toBe('v1.37.2');
  });

  it('serves the Tether CRDs to kubectl', async () => {
    const resources = await kubectl('api-resources', '--api-group=tether.dev', '-o', 'name');
    expect(resources.trim().split('\n').sort()).toEqual(['devicediscoveries.tether.dev', 'devices.tether.dev']);
    // Throws ("the server doesn't have a resource type") if either is not served.
    await kubectl('get', 'devicediscoveries,devices', '-A');
  });

  it('runs the job controller: a Job gets a Pod', async () => {
    const { batch, core } = api();
    const job = await batch.createNamespacedJob({
      namespace: namespace.name,
      body: {
        metadata: { name: 'smoke' },
        spec: {
          backoffLimit: 0,
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] } },
        },
      },
    });
    const pod = await waitFor(
      async () => {
        const pods = await core.listNamespacedPod({ namespace: namespace.name, labelSelector: `batch.kubernetes.io/job-name=smoke` });
        return pods.items[0];
      },
      { description: 'a Pod created by the job controller', timeoutMs: 60_000 },
    );
    expect(pod.metadata?.ownerReferences?.[0]?.uid).toBe(job.metadata?.uid);
  });

  it('serves coordination Leases', async () => {
    const { coordination } = api();
    const lease = await coordination.createNamespacedLease({
      namespace: namespace.name,
      body: { metadata: { name: 'smoke' }, spec: { holderIdentity: 'node-a', leaseDurationSeconds: 40 } },
    });
    expect(lease.spec?.holderIdentity).toBe('node-a');
  });

  it('runs the garbage collector: deleting an owner deletes its dependent', async () => {
    const { core } = api();
    const owner = await core.createNamespacedConfigMap({ namespace: namespace.name, body: { metadata: { name: 'owner' } } });
    const dependent: V1ConfigMap = {
      metadata: {
        name: 'dependent',
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }],
      },
    };
    await core.createNamespacedConfigMap({ namespace: namespace.name, body: dependent });
    await core.deleteNamespacedConfigMap({ namespace: namespace.name, name: 'owner' });
    await waitFor(
      async () => {
        try {
          await core.readNamespacedConfigMap({ namespace: namespace.name, name: 'dependent' });
          return false;
        } catch (error) {
          return isApiError(error, 404);
        }
      },
      { description: 'the dependent ConfigMap to be garbage-collected', timeoutMs: 60_000 },
    );
  });
});
