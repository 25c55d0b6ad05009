/**
 * Support for the chart suite (chart.test.ts): Tether installed by its Helm
 * chart, with its own image, on the two e2e nodes — waits on the chart's
 * workloads, the controller's Lease, broker pods, and a recorder of every
 * change to Devices and brokers (to prove that restarts change nothing).
 */
import type { V1DaemonSet, V1Deployment, V1Pod, V1Node } from '@kubernetes/client-node';
import { inject } from 'vitest';
import type { Device } from '../../api/schema.ts';
import { buildTetherImage } from '../../deploy/image/tether-image.ts';
import { api, GROUP, isApiError, ResilientWatch, VERSION, waitFor, type WatchEvent } from '../integration/support.ts';
import { writeE2eChartValues } from './cluster.ts';
import { CHART, type Helm } from './helm.ts';
import { importTetherImage } from './images.ts';
import type { NodeLayout } from './layout.ts';
import { watchSetUntil, watchUntil } from './watch.ts';

export const RELEASE = 'tether';
export const SYSTEM_NAMESPACE = 'tether-system';
/** The Lease the chart's controller elects its leader on (values.yaml). */
export const LEASE = 'tether-controller';
export const AGENT_DAEMONSET = 'tether-agent';
export const CONTROLLER_DEPLOYMENT = 'tether-controller';

/** Both e2e nodes' names. */
export function nodeNames(): [string, string] {
  return [inject('e2eNodeName'), inject('e2eNode2Name')];
}

function podSummary(pod: V1Pod): string {
  return JSON.stringify({
    name: pod.metadata?.name,
    node: pod.spec?.nodeName,
    phase: pod.status?.phase,
    conditions: pod.status?.conditions?.map((c) => `${c.type}=${c.status}${c.reason ? `(${c.reason})` : ''}`),
    containers: pod.status?.containerStatuses?.map((c) => ({ restarts: c.restartCount, state: c.state })),
  });
}

/** Waits until the agent DaemonSet runs an up-to-date, ready pod on every node. */
export async function waitAgentsReady(timeoutMs = 120_000): Promise<V1DaemonSet> {
  return watchUntil<V1DaemonSet>(api().kc, {
    path: `/apis/apps/v1/namespaces/${SYSTEM_NAMESPACE}/daemonsets`,
    fieldSelector: `metadata.name=${AGENT_DAEMONSET}`,
    predicate: (ds, type) => {
      const s = ds.status;
      return (
        type !== 'DELETED' &&
        s !== undefined &&
        (s.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 1) &&
        s.desiredNumberScheduled === nodeNames().length &&
        s.numberReady === s.desiredNumberScheduled &&
        s.updatedNumberScheduled === s.desiredNumberScheduled &&
        (s.numberUnavailable ?? 0) === 0
      );
    },
    timeoutMs,
    description: `DaemonSet ${AGENT_DAEMONSET} ready on both nodes`,
  });
}

/** Waits until every controller replica is up to date and ready. */
export async function waitControllersReady(timeoutMs = 120_000): Promise<V1Deployment> {
  return watchUntil<V1Deployment>(api().kc, {
    path: `/apis/apps/v1/namespaces/${SYSTEM_NAMESPACE}/deployments`,
    fieldSelector: `metadata.name=${CONTROLLER_DEPLOYMENT}`,
    predicate: (d, type) => {
      const s = d.status;
      const want = d.spec?.replicas ?? 1;
      return (
        type !== 'DELETED' &&
        s !== undefined &&
        (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
        s.readyReplicas === want &&
        s.updatedReplicas === want &&
        (s.replicas ?? 0) === want
      );
    },
    timeoutMs,
    description: `Deployment ${CONTROLLER_DEPLOYMENT} ready`,
  });
}

/** Pods of one chart component (agent or controller), not terminating. */
export async function componentPods(component: 'agent' | 'controller'): Promise<V1Pod[]> {
  const list = await api().core.listNamespacedPod({
    namespace: SYSTEM_NAMESPACE,
    labelSelector: `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=${component}`,
  });
  return list.items.filter((pod) => pod.metadata?.deletionTimestamp == null);
}

/** The agent pod on `node`. */
export async function agentPodOn(node: string): Promise<V1Pod> {
  const pod = (await componentPods('agent')).find((p) => p.spec?.nodeName === node);
  if (pod === undefined) throw new Error(`no agent pod on ${node}`);
  return pod;
}

/** The controller Lease's holder identity (pod name + suffix), if any. */
export async function leaseHolder(): Promise<string | undefined> {
  try {
    const lease = await api().coordination.readNamespacedLease({ namespace: SYSTEM_NAMESPACE, name: LEASE });
    return lease.spec?.holderIdentity ?? undefined;
  } catch {
    return undefined;
  }
}

/** The controller pod leading now (its name prefixes the Lease holder identity). */
export async function leaderPod(timeoutMs = 30_000): Promise<V1Pod> {
  return waitFor(
    async () => {
      const holder = await leaseHolder();
      if (holder === undefined || holder === '') return undefined;
      return (await componentPods('controller')).find((pod) => holder.startsWith(pod.metadata?.name ?? '\0'));
    },
    { timeoutMs, description: 'a controller pod holding the Lease' },
  );
}

/** Broker pods of a discovery (not terminating). */
export async function brokerPods(namespace: string, discovery: string): Promise<V1Pod[]> {
  const list = await api().core.listNamespacedPod({
    namespace,
    labelSelector: `tether.dev/component=broker,tether.dev/discovery=${discovery}`,
  });
  return list.items.filter((pod) => pod.metadata?.deletionTimestamp == null);
}

/**
 * Waits (watching) until the discovery's live broker pods are exactly `count`,
 * all Running with ready containers (count 0: none left in the API, terminating
 * ones included). `at`: when the watch saw it.
 */
export async function waitBrokers(
  namespace: string,
  discovery: string,
  count: number,
  timeoutMs = 60_000,
): Promise<{ pods: V1Pod[]; at: number }> {
  const { objects, at } = await watchSetUntil<V1Pod>(api().kc, {
    path: `/api/v1/namespaces/${namespace}/pods`,
    labelSelector: `tether.dev/component=broker,tether.dev/discovery=${discovery}`,
    predicate: (pods) => {
      if (count === 0) return pods.length === 0;
      const live = pods.filter((pod) => pod.metadata?.deletionTimestamp == null);
      return (
        live.length === count &&
        live.every((pod) => pod.status?.phase === 'Running' && (pod.status.containerStatuses ?? []).every((c) => c.ready))
      );
    },
    timeoutMs,
    description: `${count} Running broker(s) of ${discovery}`,
    describe: (pods) => pods.map(podSummary).join('\n') || 'none',
  });
  return { pods: objects.filter((pod) => pod.metadata?.deletionTimestamp == null), at };
}

/** Waits until a pod's log (main container) contains all `lines` (whole lines). */
export async function waitLogLines(
  namespace: string,
  pod: string,
  container: string,
  lines: readonly string[],
  timeoutMs = 30_000,
): Promise<string> {
  let log = '';
  try {
    return await waitFor(
      async () => {
        log = await api().core.readNamespacedPodLog({ namespace, name: pod, container });
        const have = new Set(log.split('\n'));
        return lines.every((line) => have.has(line)) ? log : undefined;
      },
      { timeoutMs, description: `log lines of ${pod}` },
    );
  } catch (error) {
    throw new Error(`pod ${pod} log lacks some of ${JSON.stringify(lines)}; log:\n${log}`, { cause: error });
  }
}

/** The Device objects of a discovery. */
export async function devicesOf(namespace: string, discovery: string): Promise<Device[]> {
  const list = (await api().custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'devices' })) as {
    items: Device[];
  };
  return list.items.filter((d) => d.spec.discovery === discovery || d.metadata?.labels?.['tether.dev/discovery'] === discovery);
}

/** Watches a Node until `predicate` accepts it. */
export async function waitNodeState(
  node: string,
  predicate: (n: V1Node) => boolean,
  description: string,
  timeoutMs = 60_000,
): Promise<V1Node> {
  return watchUntil<V1Node>(api().kc, {
    path: '/api/v1/nodes',
    fieldSelector: `metadata.name=${node}`,
    predicate: (n, type) => type !== 'DELETED' && predicate(n),
    timeoutMs,
    description,
    describe: (n) => JSON.stringify({ allocatable: n.status?.allocatable, ready: n.status?.conditions?.find((c) => c.type === 'Ready') }),
  });
}

export function isReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/**
 * Every change to Devices and broker pods in a namespace from the moment
 * `start` returns: restarts of Tether must add none that matter.
 */
export class ChangeRecorder {
  private readonly devices: ResilientWatch;
  private readonly pods: ResilientWatch;
  private readonly namespace: string;

  constructor(namespace: string) {
    this.namespace = namespace;
    this.devices = new ResilientWatch(api().kc, `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/devices`);
    this.pods = new ResilientWatch(api().kc, `/api/v1/namespaces/${namespace}/pods`);
  }

  async start(): Promise<void> {
    const devices = (await api().custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: this.namespace,
      plural: 'devices',
    })) as {
      metadata?: { resourceVersion?: string };
    };
    const pods = await api().core.listNamespacedPod({ namespace: this.namespace });
    await this.devices.start(devices.metadata?.resourceVersion);
    await this.pods.start(pods.metadata?.resourceVersion);
  }

  stop(): void {
    this.devices.stop();
    this.pods.stop();
  }

  /** Device events (deletions, re-creations, spec changes); status-only updates are not churn. */
  deviceChurn(before: Map<string, Device>): string[] {
    return this.devices.events
      .filter((event: WatchEvent) => {
        const device = event.object as unknown as Device;
        const was = before.get(device.metadata?.name ?? '');
        return event.type !== 'MODIFIED' || was === undefined || specKey(was) !== specKey(device);
      })
      .map(
        (event) =>
          `${event.type} ${event.object.metadata?.name ?? '?'} ${JSON.stringify((event.object as unknown as Device).spec?.nodes ?? {})}`,
      );
  }

  /** Broker pods created, deleted or restarted. */
  brokerChurn(): string[] {
    return this.pods.events
      .filter((event) => event.object.metadata?.labels?.['tether.dev/component'] === 'broker')
      .filter((event) => {
        const pod = event.object as unknown as V1Pod;
        const restarted = (pod.status?.containerStatuses ?? []).some((c) => c.restartCount > 0);
        return event.type !== 'MODIFIED' || restarted || pod.metadata?.deletionTimestamp != null;
      })
      .map((event) => `${event.type} ${event.object.metadata?.name ?? '?'}`);
  }
}

/** A Device's spec with its node set in a fixed order (a set's order carries no meaning). */
function specKey(device: Device): string {
  return JSON.stringify({ ...device.spec, nodes: [...(device.spec.nodes ?? [])].sort() });
}

/** Devices of a namespace by name, as they are now. */
export async function deviceSnapshot(namespace: string): Promise<Map<string, Device>> {
  const list = (await api().custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'devices' })) as {
    items: Device[];
  };
  return new Map(list.items.map((d) => [d.metadata?.name ?? '', d]));
}

/**
 * Installs Tether's chart as the suites after chart.test.ts do: its image imported into both
 * nodes, a leftover release removed, the system namespace made, and the CRDs the e2e control
 * plane applied left to it (chart.test.ts checks the chart installing them). `extra`: more
 * `helm install` arguments (`--set …`).
 */
export async function installTetherForSuite(helm: Helm, layouts: readonly NodeLayout[], ...extra: string[]): Promise<void> {
  const image = await buildTetherImage({ platforms: ['linux/amd64'], log: (m) => process.stderr.write(`[image] ${m}\n`) });
  for (const layout of layouts) importTetherImage(layout, image);
  await helm.run('uninstall', RELEASE, '-n', SYSTEM_NAMESPACE, '--ignore-not-found', '--wait', '--timeout', '2m');
  // A Lease left held by an older tree's controllers would make the new ones wait out its
  // duration (today's do not re-create the chart's Lease that helm uninstall deleted: leader.ts).
  await api()
    .coordination.deleteNamespacedLease({ namespace: SYSTEM_NAMESPACE, name: 'tether-controller' })
    .catch(() => undefined);
  await api()
    .core.createNamespace({
      body: { metadata: { name: SYSTEM_NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } },
    })
    .catch((error: unknown) => {
      if (!isApiError(error, 409)) throw error;
    });
  const values = writeE2eChartValues(layouts[0]!, inject('e2eNodeServer'));
  await helm.run(
    'install',
    RELEASE,
    CHART,
    '-n',
    SYSTEM_NAMESPACE,
    '-f',
    values,
    '--set',
    'crds.install=false',
    ...extra,
    '--wait',
    '--timeout',
    '3m',
  );
}
