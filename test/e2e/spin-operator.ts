/**
 * SpinKube's `SpinApp`, reduced to its shape (an opaque spec, a status with conditions), and a
 * stand-in for its operator: each SpinApp becomes one Pod (owned by it, so the garbage collector
 * removes it with the SpinApp) running `spec.image` under a RuntimeClass with `spec.variables` as
 * env, `spec.resources` and `spec.deploymentConfig.nodeSelector`, as SpinKube's operator copies
 * them into its Deployment; when the Pod is Ready, the SpinApp gets `Ready` True. Enough for the
 * e2e to prove that a custom-kind broker reaches a real kubelet with its device; not a SpinKube.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { KubeClient } from '../../kube/client.ts';
import { api, isApiError, loadKubeConfig, waitFor } from '../integration/support.ts';

export const SPINAPPS = { group: 'core.spinkube.dev', version: 'v1alpha1', plural: 'spinapps' } as const;
/** Label on the stand-in's pods: the `tether.dev/discovery` of the SpinApp they run. */
export const SPINAPP_OF_DISCOVERY = 'e2e.tether.dev/spinapp-of';

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

interface SpinApp {
  apiVersion: string;
  kind: string;
  metadata: { name: string; uid: string; generation?: number; labels?: Record<string, string> };
  spec: {
    image: string;
    resources?: { limits?: Record<string, string> };
    variables?: { name: string; value: string }[];
    deploymentConfig?: { nodeSelector?: Record<string, string> };
  };
  status?: { conditions?: { type: string; status: string }[] };
}

/**
 * Installs the SpinApp CRD and waits until it is established. Sent as raw JSON: client-node's
 * typed serializer drops `x-kubernetes-preserve-unknown-fields` (it knows the field under
 * another name), and the apiserver would then prune every SpinApp's spec to `{}`.
 */
export async function installSpinAppCrd(): Promise<void> {
  const client = new KubeClient(loadKubeConfig());
  const crds = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  try {
    await client.request('POST', crds, {
      verb: 'create',
      resource: 'customresourcedefinitions',
      body: { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', ...SPINAPP_CRD },
    });
  } catch (error) {
    if (!isApiError(error, 409)) throw error;
  }
  await waitFor(
    async () => {
      const crd = await client.request<{ status?: { conditions?: { type: string; status: string }[] } }>(
        'GET',
        `${crds}/${SPINAPP_CRD.metadata.name}`,
        { verb: 'get', resource: 'customresourcedefinitions' },
      );
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') === true;
    },
    { timeoutMs: 30_000, description: 'the SpinApp CRD established' },
  );
}

export interface SpinOperator {
  stop(): void;
}

export interface SpinOperatorOptions {
  readonly runtimeClassName: string;
  readonly port: number;
  /** How often the stand-in reconciles (an operator's resync, not a test wait); default 250 ms. */
  readonly everyMs?: number;
}

function podFor(app: SpinApp, options: SpinOperatorOptions): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${app.metadata.name}-0`,
      labels: { [SPINAPP_OF_DISCOVERY]: app.metadata.labels?.['tether.dev/discovery'] ?? '' },
      ownerReferences: [{ apiVersion: app.apiVersion, kind: app.kind, name: app.metadata.name, uid: app.metadata.uid, controller: true }],
    },
    spec: {
      runtimeClassName: options.runtimeClassName,
      ...(app.spec.deploymentConfig?.nodeSelector === undefined ? {} : { nodeSelector: app.spec.deploymentConfig.nodeSelector }),
      containers: [
        {
          name: 'main',
          image: app.spec.image,
          imagePullPolicy: 'Never',
          env: [...(app.spec.variables ?? []), { name: 'PORT', value: String(options.port) }],
          ports: [{ containerPort: options.port, name: 'http' }],
          ...(app.spec.resources?.limits === undefined ? {} : { resources: { limits: app.spec.resources.limits } }),
        },
      ],
    },
  };
}

/** Runs the stand-in operator for the SpinApps of `namespace` until stopped. */
export function startSpinOperator(namespace: string, options: SpinOperatorOptions): SpinOperator {
  const client = new KubeClient(loadKubeConfig());
  const path = `/apis/${SPINAPPS.group}/${SPINAPPS.version}/namespaces/${namespace}/${SPINAPPS.plural}`;
  let running = false;
  const reconcile = async (): Promise<void> => {
    const apps = (await client.request<{ items: SpinApp[] }>('GET', path, { verb: 'list', resource: SPINAPPS.plural })).items;
    for (const app of apps) {
      const name = `${app.metadata.name}-0`;
      let pod: V1Pod | undefined;
      try {
        pod = await api().core.readNamespacedPod({ namespace, name });
      } catch (error) {
        if (!isApiError(error, 404)) throw error;
        await api().core.createNamespacedPod({ namespace, body: podFor(app, options) });
        continue;
      }
      const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
      const reported = app.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
      if (ready === reported) continue;
      await client.request('PATCH', `${path}/${app.metadata.name}/status`, {
        verb: 'patch',
        resource: `${SPINAPPS.plural}/status`,
        contentType: 'application/merge-patch+json',
        body: {
          status: {
            conditions: [
              {
                type: 'Ready',
                status: ready ? 'True' : 'False',
                reason: ready ? 'Available' : 'Starting',
                observedGeneration: app.metadata.generation,
              },
            ],
          },
        },
      });
    }
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    reconcile()
      .catch((error: unknown) => process.stderr.write(`[spin-operator] ${(error as Error).message}\n`))
      .finally(() => {
        running = false;
      });
  }, options.everyMs ?? 250);
  return { stop: () => clearInterval(timer) };
}
