/**
 * SpinKube's `SpinApp`, reduced to its shape — an opaque spec, a status with conditions — for
 * the tests of custom-kind brokers (integration and e2e), and its installation.
 */
import { isApiError, type KubeObject, type ResourceType } from '../../kube/client.ts';
import type { Api } from '../../kube/resources.ts';
import { waitFor } from '../integration/support.ts';

export const SPINAPPS: ResourceType = {
  group: 'core.spinkube.dev',
  version: 'v1alpha1',
  plural: 'spinapps',
  kind: 'SpinApp',
  namespaced: true,
};

const CRDS: ResourceType = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  plural: 'customresourcedefinitions',
  kind: 'CustomResourceDefinition',
  namespaced: false,
};

export const SPINAPP_CRD = {
  metadata: { name: `${SPINAPPS.plural}.${SPINAPPS.group}` },
  spec: {
    group: SPINAPPS.group,
    scope: 'Namespaced',
    names: { plural: SPINAPPS.plural, singular: 'spinapp', kind: 'SpinApp', listKind: 'SpinAppList' },
    versions: [
      {
        name: SPINAPPS.version,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
            },
          },
        },
      },
    ],
  },
};

/**
 * Installs the SpinApp CRD (kept when it exists) and waits until it is established. Through the
 * project's own client: client-node's typed serializer would drop `x-kubernetes-preserve-unknown-fields`
 * (it knows the field under another name), and the apiserver would then prune every spec to `{}`.
 */
export async function installSpinAppCrd(api: Api): Promise<void> {
  try {
    await api.create(CRDS, undefined, SPINAPP_CRD as never);
  } catch (error) {
    if (!isApiError(error, 409)) throw error;
  }
  await waitFor(
    async () => {
      const crd = await api.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(
        CRDS,
        undefined,
        SPINAPP_CRD.metadata.name,
      );
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    },
    { timeoutMs: 30_000, description: 'the SpinApp CRD established' },
  );
}
