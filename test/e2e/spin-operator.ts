/**
 * A stand-in for SpinKube's operator (test/support/spinapp.ts has the CRD): each SpinApp becomes one Pod (owned by it, so the garbage collector
 * removes it with the SpinApp) running `spec.image` under a RuntimeClass with `spec.variables` as
 * env, `spec.resources` and `spec.deploymentConfig.nodeSelector`, as SpinKube's operator copies
 * them into its Deployment; when the Pod is Ready, the SpinApp gets `Ready` True. Enough for the
 * e2e to prove that a custom-kind broker reaches a real kubelet with its device; not a SpinKube.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { KubeClient } from '../../kube/client.ts';
import { api, isApiError, loadKubeConfig } from '../integration/support.ts';
import { SPINAPPS } from '../support/spinapp.ts';

/** Label on the stand-in's pods: the `tether.dev/discovery` of the SpinApp they run. */
export const SPINAPP_OF_DISCOVERY = 'e2e.tether.dev/spinapp-of';

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
