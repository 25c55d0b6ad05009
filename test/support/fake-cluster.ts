/**
 * Test and benchmark stand-ins for the parts of a cluster the integration control plane lacks
 * (it has no kubelet): Node objects that stay Ready (Lease heartbeats, like a kubelet's) with
 * extended resources in allocatable; a fake kubelet that runs, fails and finishes deleting the
 * broker Pods bound to those nodes; agents' server-side applies of Devices; and a kubeconfig
 * for a ServiceAccount bound to exactly the controller's RBAC rules.
 *
 * Not used by the controller itself.
 */
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION } from '../../api/schema.ts';
import { isApiError, objectPath, type KubeClient } from '../../kube/client.ts';
import { Informer } from '../../kube/informer.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../api/labels.ts';
import { agentManager, agentSlotsManager } from '../../api/field-managers.ts';
import { CONTROLLER_RULES, LEADER_ELECTION_RULES, type PolicyRule } from '../../controller/runtime/rbac.ts';
import { microTime, rfc3339 } from '../../controller/runtime/time.ts';

const MERGE_PATCH = 'application/merge-patch+json';

async function mergePatch(
  client: KubeClient,
  type: (typeof RESOURCES)[keyof typeof RESOURCES],
  namespace: string | undefined,
  name: string,
  body: unknown,
  subresource?: string,
): Promise<void> {
  await client.request('PATCH', objectPath(type, namespace, name, subresource), {
    verb: 'patch',
    resource: subresource === undefined ? type.plural : `${type.plural}/${subresource}`,
    body,
    contentType: MERGE_PATCH,
  });
}

async function ignoring<T>(call: Promise<T>, ...codes: number[]): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (isApiError(error, ...codes)) return undefined;
    throw error;
  }
}

/** Fake Nodes: Ready, with allocatable resources, kept alive by Lease renewals. */
export class FakeNodes {
  readonly #api: Api;
  /** Nodes this instance created (deleted on close). */
  readonly #created = new Set<string>();
  /** Nodes whose Lease is renewed (Ready ones). */
  readonly #names = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(api: Api) {
    this.#api = api;
  }

  /** Creates (or resets) a Ready node with `allocatable` on top of cpu/memory/pods. */
  async add(name: string, allocatable: Record<string, string> = {}, labels: Record<string, string> = {}): Promise<void> {
    await ignoring(
      this.#api.create(RESOURCES.nodes, undefined, {
        metadata: { name, labels: { 'kubernetes.io/hostname': name, 'tether.dev/test-node': 'true', ...labels } },
      }),
      409,
    );
    this.#created.add(name);
    this.#names.add(name);
    await this.setStatus(name, 'True', allocatable);
    await this.#renew(name);
    this.#timer ??= setInterval(() => void this.#renewAll(), 10_000).unref();
  }

  /** Sets the Ready condition (and optionally allocatable/capacity). */
  async setStatus(
    name: string,
    ready: 'True' | 'False' | 'Unknown',
    allocatable?: Record<string, string>,
    transitionAt = Date.now(),
  ): Promise<void> {
    const now = rfc3339(Date.now());
    const resources =
      allocatable === undefined
        ? {}
        : {
            allocatable: { cpu: '64', memory: '256Gi', pods: '1000', ...allocatable },
            capacity: { cpu: '64', memory: '256Gi', pods: '1000', ...allocatable },
          };
    await mergePatch(
      this.#api.client,
      RESOURCES.nodes,
      undefined,
      name,
      {
        status: {
          ...resources,
          conditions: [
            {
              type: 'Ready',
              status: ready,
              reason: ready === 'True' ? 'KubeletReady' : 'KubeletNotReady',
              message: 'fake node',
              lastHeartbeatTime: now,
              lastTransitionTime: rfc3339(transitionAt),
            },
          ],
        },
      },
      'status',
    );
  }

  /** Stops heartbeats for `name` and sets it NotReady since `since`. */
  async setNotReady(name: string, since = Date.now()): Promise<void> {
    this.#names.delete(name);
    await this.setStatus(name, 'False', undefined, since);
  }

  async delete(name: string): Promise<void> {
    this.#names.delete(name);
    this.#created.delete(name);
    await ignoring(this.#api.delete(RESOURCES.nodes, undefined, name, { gracePeriodSeconds: 0 }), 404);
    await ignoring(this.#api.delete(RESOURCES.leases, 'kube-node-lease', name), 404);
  }

  /** Deletes every node this instance created and stops the heartbeats. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#created].map((n) => this.delete(n)));
  }

  async #renewAll(): Promise<void> {
    await Promise.all(
      [...this.#names].map((n) =>
        this.#renew(n)
          .then(() => this.#reportReady(n))
          .catch(() => undefined),
      ),
    );
  }

  /**
   * As a kubelet's status sync does: a live node whose Ready condition is no longer True (the
   * node lifecycle controller set it Unknown, e.g. after an apiserver outage) posts Ready again.
   */
  async #reportReady(name: string): Promise<void> {
    const node = await this.#api.get<V1Node>(RESOURCES.nodes, undefined, name);
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    if (ready !== 'True' && this.#names.has(name)) await this.setStatus(name, 'True');
  }

  async #renew(name: string): Promise<void> {
    const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime(Date.now()) };
    const created = await ignoring(
      this.#api.create(RESOURCES.leases, 'kube-node-lease', { metadata: { name, namespace: 'kube-node-lease' }, spec }),
      409,
    );
    if (created === undefined) await mergePatch(this.#api.client, RESOURCES.leases, 'kube-node-lease', name, { spec });
  }
}

/** What the fake kubelet does with a broker Pod bound to one of its nodes. */
export type PodFate = 'run' | 'fail' | 'ignore';

/**
 * A fake kubelet for broker Pods on fake nodes: runs them (Running + Ready), fails them (as a
 * crashed container: Failed with a terminated state), and completes graceful deletions (what
 * a kubelet confirms by deleting with grace 0). Counts the Pods it saw created.
 */
export class FakeKubelet {
  readonly #api: Api;
  readonly #informer: Informer<V1Pod>;
  readonly #fate: (pod: V1Pod) => PodFate;
  readonly #handled = new Set<string>();
  /** uid → creation time (ms) of every broker Pod seen. */
  readonly seen = new Map<string, { name: string; at: number }>();

  constructor(client: KubeClient, log: Logger, namespace: string, fate: (pod: V1Pod) => PodFate) {
    this.#api = new Api(client);
    this.#fate = fate;
    this.#informer = new Informer<V1Pod>({
      client,
      type: RESOURCES.pods,
      namespace,
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`,
      log,
    });
    this.#informer.onEvent((e) => {
      if (e.type === 'deleted') return;
      void this.#handle(e.object).catch((error: unknown) => log.debug({ err: error }, 'fake kubelet'));
    });
  }

  async start(): Promise<void> {
    this.#informer.start();
    await this.#informer.synced();
  }

  async stop(): Promise<void> {
    await this.#informer.stop();
  }

  async #handle(pod: V1Pod): Promise<void> {
    const meta = pod.metadata ?? {};
    const uid = meta.uid ?? '';
    if (!this.seen.has(uid)) this.seen.set(uid, { name: meta.name ?? '', at: Date.now() });
    if (meta.deletionTimestamp != null) {
      await this.#finishDeletion(pod);
      return;
    }
    if (pod.spec?.nodeName === undefined || pod.status?.phase !== 'Pending' || this.#handled.has(uid)) return;
    const fate = this.#fate(pod);
    if (fate === 'ignore') return;
    this.#handled.add(uid);
    const status = kubeletStatus(fate, pod.spec.containers[0]?.name ?? 'c');
    await ignoring(mergePatch(this.#api.client, RESOURCES.pods, meta.namespace, meta.name ?? '', { status }, 'status'), 404, 409);
  }

  /** What a kubelet confirms once the containers stopped: the final delete, grace 0. */
  async #finishDeletion(pod: V1Pod): Promise<void> {
    const uid = pod.metadata?.uid ?? '';
    if (this.#handled.has(`${uid}/deleted`)) return;
    this.#handled.add(`${uid}/deleted`);
    await ignoring(
      this.#api.delete(RESOURCES.pods, pod.metadata?.namespace, pod.metadata?.name ?? '', {
        gracePeriodSeconds: 0,
        preconditions: { uid },
      }),
      404,
      409,
    );
  }
}

/** The status a kubelet reports for a Pod it started (`run`) or that crashed at once (`fail`). */
function kubeletStatus(fate: 'run' | 'fail', container: string): Record<string, unknown> {
  const now = rfc3339(Date.now());
  if (fate === 'run') {
    return {
      phase: 'Running',
      startTime: now,
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
      containerStatuses: [
        { name: container, image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: now } } },
      ],
    };
  }
  return {
    phase: 'Failed',
    startTime: now,
    containerStatuses: [
      {
        name: container,
        image: 'x',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { terminated: { exitCode: 1, reason: 'Error', startedAt: now, finishedAt: now } },
      },
    ],
  };
}

/** What one agent applies for a device it sees (identity, its nodes entry, its slots, its state). */
export interface AgentView {
  readonly namespace: string;
  readonly name: string;
  readonly discovery: string;
  readonly deviceId: string;
  readonly shared: boolean;
  readonly capacity: number;
  readonly node: string;
  readonly slots?: readonly number[];
}

/** Applies a Device exactly as agent `view.node` would (three field managers). */
export async function applyAsAgent(api: Api, view: AgentView): Promise<void> {
  const metadata = { name: view.name, namespace: view.namespace };
  const base = { apiVersion: API_VERSION, kind: 'Device', metadata };
  await api.apply(
    RESOURCES.devices,
    {
      ...base,
      spec: { discovery: view.discovery, deviceId: view.deviceId, shared: view.shared, capacity: view.capacity, nodes: [view.node] },
    } as never,
    {
      fieldManager: agentManager(view.node),
      force: true,
    },
  );
  if (view.slots !== undefined) {
    const slots = Object.fromEntries(view.slots.map((s) => [String(s), view.node]));
    await api.apply(RESOURCES.devices, { ...base, spec: { slots } } as never, { fieldManager: agentSlotsManager(view.node), force: false });
  }
  await api.apply(
    RESOURCES.devices,
    { ...base, status: { nodeStates: [{ node: view.node, state: 'Online', lastSeenTime: rfc3339(Date.now()) }] } } as never,
    {
      fieldManager: agentManager(view.node),
      force: true,
      subresource: 'status',
    },
  );
}

/**
 * Creates a ServiceAccount in `namespace` bound to exactly the controller's rules (ClusterRole
 * `name`, with `extraRules` such as the chart's `controller.brokerKinds` grant, plus a Role for
 * Leases in `namespace`) and returns a kubeconfig using its token.
 * `cleanup` removes the cluster-scoped objects.
 */
export async function controllerServiceAccount(
  admin: KubeConfig,
  api: Api,
  namespace: string,
  name: string,
  extraRules: readonly PolicyRule[] = [],
): Promise<{ kubeConfig: KubeConfig; cleanup: () => Promise<void> }> {
  const rbac = (kind: string, plural: string, namespaced: boolean) => ({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    plural,
    kind,
    namespaced,
  });
  const subject = [{ kind: 'ServiceAccount', name, namespace }];
  await ignoring(
    api.create({ group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true }, namespace, {
      metadata: { name, namespace },
    }),
    409,
  );
  await ignoring(
    api.create(rbac('ClusterRole', 'clusterroles', false), undefined, {
      metadata: { name },
      rules: [...CONTROLLER_RULES, ...extraRules],
    } as never),
    409,
  );
  await ignoring(
    api.create(rbac('ClusterRoleBinding', 'clusterrolebindings', false), undefined, {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: subject,
    } as never),
    409,
  );
  await ignoring(
    api.create(rbac('Role', 'roles', true), namespace, { metadata: { name, namespace }, rules: LEADER_ELECTION_RULES } as never),
    409,
  );
  await ignoring(
    api.create(rbac('RoleBinding', 'rolebindings', true), namespace, {
      metadata: { name, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: subject,
    } as never),
    409,
  );
  const token = await api.client.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      verb: 'create',
      resource: 'serviceaccounts/token',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 7200 } },
    },
  );
  const cluster = admin.getCurrentCluster()!;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ ...cluster, name: 'test' }],
    users: [{ name, token: token.status.token }],
    contexts: [{ name: 'test', cluster: 'test', user: name }],
    currentContext: 'test',
  });
  const cleanup = async (): Promise<void> => {
    await ignoring(api.delete(rbac('ClusterRoleBinding', 'clusterrolebindings', false), undefined, name), 404);
    await ignoring(api.delete(rbac('ClusterRole', 'clusterroles', false), undefined, name), 404);
  };
  return { kubeConfig, cleanup };
}
