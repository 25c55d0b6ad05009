/**
 * The Helm chart (deploy/helm/tether) against the real test cluster: lint, render, server-side
 * dry-run, install/upgrade/uninstall, and its RBAC proven by running the real agent and the
 * real controller under tokens of the chart's ServiceAccounts, plus access reviews for what
 * they must not do. No kubelet runs, so the chart's own pods never start: the tests assert
 * objects, and run the components in-process with the chart's identities instead.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type CoreV1Event,
  type V1DaemonSet,
  type V1Deployment,
  type V1PolicyRule,
  type V1Pod,
  type V1ResourceAttributes,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ClusterAgent } from '../../agent/cluster-agent.ts';
import { createAgentMetrics } from '../../agent/metrics.ts';
import { DEFAULT_CONFIG, DEFAULT_LEADER_ELECTION } from '../../controller/runtime/config.ts';
import { REPORTING_CONTROLLER } from '../../controller/runtime/events.ts';
import { startController, type Controller } from '../../controller/main.ts';
import { CONTROLLER_RULES, LEADER_ELECTION_RULES, brokerKindRule, type PolicyRule } from '../../controller/runtime/rbac.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import type { AnyDiscoveryHandler, DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { builtinHandlers } from '../../discovery-handlers/registry.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import {
  api,
  apiFailure,
  API_VERSION,
  createNamespace,
  deleteNamespace,
  GROUP,
  isApiError,
  kubeconfigPath,
  kubectl,
  loadKubeConfig,
  ResilientWatch,
  uniqueSuffix,
  useTestNamespace,
  VERSION,
  waitFor,
} from './support.ts';

const CHART = fileURLToPath(new URL('../../deploy/helm/tether', import.meta.url));
const GENERATED_CRDS = fileURLToPath(new URL('../../deploy/crds', import.meta.url));
const log = pino({ level: process.env['TETHER_TEST_LOG'] ?? 'silent' });
const execFileAsync = promisify(execFile);
const ns = useTestNamespace('helm');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  rules?: V1PolicyRule[];
  [key: string]: unknown;
}

let helmHome = '';
beforeAll(async () => {
  helmHome = await mkdtemp(join(tmpdir(), 'helm-home-'));
});
afterAll(async () => {
  if (helmHome !== '') await rm(helmHome, { recursive: true, force: true });
});

/** Runs the cluster's helm (built at the pinned version) with the admin kubeconfig and a private home. */
async function helm(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(join(inject('clusterBinDir'), 'helm'), args, {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfigPath(),
        HELM_CACHE_HOME: join(helmHome, 'cache'),
        HELM_CONFIG_HOME: join(helmHome, 'config'),
        HELM_DATA_HOME: join(helmHome, 'data'),
      },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const { stderr = '', stdout = '' } = error as { stderr?: string; stdout?: string };
    throw new Error(`helm ${args.join(' ')} failed: ${stderr.trim() || stdout.trim()}`, { cause: error });
  }
}

/** `helm template` → the rendered objects. */
async function render(release: string, namespace: string, ...set: string[]): Promise<Manifest[]> {
  const text = await helm('template', release, CHART, '--namespace', namespace, ...set.flatMap((s) => ['--set', s]));
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

function find(manifests: readonly Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} in ${manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ')}`);
  return found;
}

/** Every (group, resource, verb, resourceNames) a set of rules grants, as sortable strings. */
function grants(rules: readonly (V1PolicyRule | PolicyRule)[], withNames = false): string[] {
  const out = new Set<string>();
  for (const r of rules) {
    for (const g of r.apiGroups ?? []) {
      for (const res of r.resources ?? []) {
        for (const v of r.verbs) {
          const names = withNames && 'resourceNames' in r && r.resourceNames !== undefined ? ` names=${r.resourceNames.join(',')}` : '';
          out.add(`${g}/${res}:${v}${names}`);
        }
      }
    }
  }
  return [...out].sort();
}

/** A KubeConfig for the test cluster that authenticates as a ServiceAccount (TokenRequest API). */
async function serviceAccountKubeConfig(namespace: string, name: string): Promise<KubeConfig> {
  const request = await api().core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = request.status?.token;
  if (token === undefined) throw new Error(`no token for ${namespace}/${name}`);
  const cluster = loadKubeConfig().getCurrentCluster();
  if (cluster === null) throw new Error('admin kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name, token }],
    contexts: [{ name, cluster: cluster.name, user: name }],
    currentContext: name,
  });
  return kc;
}

interface Access {
  readonly verb: string;
  readonly resource: string;
  readonly group?: string;
  readonly subresource?: string;
  /** Undefined: cluster-wide (all namespaces, or a cluster-scoped resource). */
  readonly namespace?: string;
  readonly name?: string;
}

const describeAccess = (a: Access): string =>
  `${a.verb} ${a.group ? `${a.resource}.${a.group}` : a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.name ? ` ${a.name}` : ''} in ${a.namespace ?? '(all)'}`;

/** What the token's own SelfSubjectAccessReview says. */
async function selfAllowed(kc: KubeConfig, a: Access): Promise<boolean> {
  const attributes: V1ResourceAttributes = { verb: a.verb, resource: a.resource, group: a.group ?? '' };
  if (a.subresource !== undefined) attributes.subresource = a.subresource;
  if (a.namespace !== undefined) attributes.namespace = a.namespace;
  if (a.name !== undefined) attributes.name = a.name;
  const review = await kc
    .makeApiClient(AuthorizationV1Api)
    .createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: attributes } } });
  return review.status?.allowed === true;
}

/** What `kubectl auth can-i --as=system:serviceaccount:<ns>:<sa>` says (admin impersonating). */
async function kubectlCanI(user: string, a: Access): Promise<boolean> {
  const resource = `${a.group ? `${a.resource}.${a.group}` : a.resource}${a.name ? `/${a.name}` : ''}`;
  const args = ['auth', 'can-i', a.verb, resource, `--as=${user}`];
  if (a.subresource !== undefined) args.push(`--subresource=${a.subresource}`);
  args.push(...(a.namespace === undefined ? ['--all-namespaces'] : ['--namespace', a.namespace]));
  try {
    const { stdout } = await execFileAsync(join(inject('clusterBinDir'), 'kubectl'), args, {
      env: { ...process.env, KUBECONFIG: kubeconfigPath(), KUBERC: 'off' },
    });
    return stdout.trim() === 'yes';
  } catch (error) {
    // can-i exits 1 for "no".
    const { stdout = '', code } = error as { stdout?: string; code?: number };
    if (code === 1 && stdout.trim() === 'no') return false;
    throw error;
  }
}

/** Checks a table of expectations both ways; returns the rows that differ (empty = all as expected). */
async function accessMismatches(kc: KubeConfig, user: string, table: readonly (readonly [Access, boolean])[]): Promise<string[]> {
  const rows = await Promise.all(
    table.map(async ([access, expected]) => {
      const [self, impersonated] = await Promise.all([selfAllowed(kc, access), kubectlCanI(user, access)]);
      const problems: string[] = [];
      if (self !== expected)
        problems.push(
          `SelfSubjectAccessReview: ${describeAccess(access)} is ${self ? 'allowed' : 'denied'}, expected ${expected ? 'allowed' : 'denied'}`,
        );
      if (impersonated !== expected)
        problems.push(
          `kubectl auth can-i: ${describeAccess(access)} is ${impersonated ? 'yes' : 'no'}, expected ${expected ? 'yes' : 'no'}`,
        );
      return problems;
    }),
  );
  return rows.flat();
}

// ---------------------------------------------------------------------------------------------

describe('chart', () => {
  it('passes helm lint --strict, with defaults and with every optional part on', async () => {
    await helm('lint', '--strict', CHART);
    await helm(
      'lint',
      '--strict',
      CHART,
      '--set',
      'agent.rbac.secretsNamespaces={a,b}',
      '--set',
      'agent.rbac.secretNames={creds}',
      '--set',
      'metrics.serviceMonitor.enabled=true',
      '--set',
      'agent.watchNamespace=a',
      '--set',
      'controller.watchNamespace=a',
      '--set',
      'controller.brokerKinds[0].apiGroup=core.spinkube.dev',
      '--set',
      'controller.brokerKinds[0].resources={spinapps}',
    );
  });

  it('renders the agent DaemonSet, the controller Deployment, RBAC, Services and the CRDs', async () => {
    const objects = await render('r', 'tether-system');
    const kinds = objects.map((m) => `${m.kind}/${m.metadata.name}`).sort();
    expect(kinds).toEqual(
      [
        'ClusterRole/r-tether-agent',
        'ClusterRole/r-tether-agent-nodes',
        'ClusterRole/r-tether-controller',
        'ClusterRole/r-tether-controller-nodes',
        'ClusterRoleBinding/r-tether-agent',
        'ClusterRoleBinding/r-tether-agent-nodes',
        'ClusterRoleBinding/r-tether-controller',
        'ClusterRoleBinding/r-tether-controller-nodes',
        'CustomResourceDefinition/devicediscoveries.tether.dev',
        'CustomResourceDefinition/devices.tether.dev',
        'DaemonSet/r-tether-agent',
        'Deployment/r-tether-controller',
        'Lease/tether-controller',
        'PodDisruptionBudget/r-tether-controller',
        'Role/r-tether-controller-leader-election',
        'RoleBinding/r-tether-controller-leader-election',
        'Service/r-tether-agent-metrics',
        'Service/r-tether-controller-metrics',
        'ServiceAccount/r-tether-agent',
        'ServiceAccount/r-tether-controller',
      ].sort(),
    );
    const agent = find(objects, 'DaemonSet', 'r-tether-agent') as unknown as V1DaemonSet;
    const pod = agent.spec!.template.spec!;
    const container = pod.containers[0]!;
    expect(container.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
    expect(container.args).toEqual(
      expect.arrayContaining([
        'agent',
        '--device-plugin-dir=/var/lib/kubelet/device-plugins',
        '--pod-resources-socket=/var/lib/kubelet/pod-resources/kubelet.sock',
        '--registration-socket=/var/lib/tether/agent-registration.sock',
      ]),
    );
    expect(container.securityContext?.privileged).toBe(false);
    expect(container.securityContext?.capabilities?.drop).toEqual(['ALL']);
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(pod.priorityClassName).toBe('system-node-critical');
    const mounts = Object.fromEntries((container.volumeMounts ?? []).map((m) => [m.mountPath, m.readOnly === true ? 'ro' : 'rw']));
    expect(mounts).toEqual({
      '/var/lib/kubelet/device-plugins': 'rw',
      '/var/lib/kubelet/pod-resources': 'ro',
      '/var/lib/tether': 'rw',
      '/sys': 'ro',
      '/run/udev': 'ro',
      '/dev': 'ro',
      '/tmp': 'rw',
    });
    const controller = find(objects, 'Deployment', 'r-tether-controller') as unknown as V1Deployment;
    expect(controller.spec?.replicas).toBe(2);
    expect(controller.spec?.template.spec?.containers[0]?.args).toEqual(
      expect.arrayContaining([
        'controller',
        '--leader-election-namespace=tether-system',
        `--leader-election-id=${DEFAULT_LEADER_ELECTION.name}`,
      ]),
    );
    expect(objects.some((m) => m.kind === 'ServiceMonitor')).toBe(false);
  });

  it('renders the CRDs of deploy/crds (kept on uninstall), or none with crds.install=false', async () => {
    const objects = await render('r', 'tether-system');
    for (const file of (await readdir(GENERATED_CRDS)).filter((f) => f.endsWith('.yaml'))) {
      const generated = parse(await readFile(join(GENERATED_CRDS, file), 'utf8')) as Manifest;
      const rendered = find(objects, 'CustomResourceDefinition', generated.metadata.name);
      expect(rendered.spec).toEqual(generated.spec);
      expect(rendered.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
      expect(rendered.metadata.labels).toMatchObject(generated.metadata.labels ?? {});
    }
    const without = await render('r', 'tether-system', 'crds.install=false');
    expect(without.filter((m) => m.kind === 'CustomResourceDefinition')).toEqual([]);
  });

  it('grants the controller exactly the rules of controller/runtime/rbac.ts', async () => {
    const objects = await render('r', 'tether-system');
    const clusterRules = [
      ...find(objects, 'ClusterRole', 'r-tether-controller').rules!,
      ...find(objects, 'ClusterRole', 'r-tether-controller-nodes').rules!,
    ];
    expect(grants(clusterRules)).toEqual(grants(CONTROLLER_RULES));
    expect(grants(find(objects, 'Role', 'r-tether-controller-leader-election').rules!)).toEqual(grants(LEADER_ELECTION_RULES));
    // Without eviction, that one rule goes.
    const noEviction = await render('r', 'tether-system', 'controller.rbac.podEviction=false');
    expect(grants(find(noEviction, 'ClusterRole', 'r-tether-controller').rules!)).not.toContain('/pods/eviction:create');
    // Workload broker kinds of controller.brokerKinds: exactly brokerKindRule for each, nothing else of their groups.
    const withKinds = await render(
      'r',
      'tether-system',
      'controller.brokerKinds[0].apiGroup=core.spinkube.dev',
      'controller.brokerKinds[0].resources={spinapps}',
      'controller.brokerKinds[1].apiGroup=example.com',
      'controller.brokerKinds[1].resources={things,gadgets}',
    );
    const extended = [
      ...find(withKinds, 'ClusterRole', 'r-tether-controller').rules!,
      ...find(withKinds, 'ClusterRole', 'r-tether-controller-nodes').rules!,
    ];
    expect(grants(extended)).toEqual(
      grants([
        ...CONTROLLER_RULES,
        brokerKindRule('core.spinkube.dev', ['spinapps']),
        brokerKindRule('example.com', ['things', 'gadgets']),
      ]),
    );
    await expect(render('r', 'tether-system', 'controller.brokerKinds[0].resources={spinapps}')).rejects.toThrow(
      /controller\.brokerKinds\[\]\.apiGroup is required/,
    );
  });

  it('narrows the agent: Secrets/ConfigMaps by namespace (Roles) and by name; everything by watchNamespace', async () => {
    const wide = await render('r', 'tether-system');
    expect(grants(find(wide, 'ClusterRole', 'r-tether-agent').rules!)).toEqual(
      [
        '/configmaps:list',
        '/configmaps:watch',
        '/events:create',
        '/secrets:list',
        '/secrets:watch',
        'tether.dev/devicediscoveries/status:patch',
        'tether.dev/devicediscoveries:list',
        'tether.dev/devicediscoveries:watch',
        'tether.dev/devices/status:patch',
        'tether.dev/devices:create',
        'tether.dev/devices:delete',
        'tether.dev/devices:list',
        'tether.dev/devices:patch',
        'tether.dev/devices:watch',
      ].sort(),
    );
    const narrow = await render('r', 'tether-system', 'agent.rbac.secretsNamespaces={cams,plant}', 'agent.rbac.secretNames={onvif-creds}');
    expect(grants(find(narrow, 'ClusterRole', 'r-tether-agent').rules!).filter((g) => /secrets|configmaps/.test(g))).toEqual([]);
    const roles = narrow.filter((m) => m.kind === 'Role' && m.metadata.name === 'r-tether-agent-properties');
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['cams', 'plant']);
    for (const role of roles) {
      expect(grants(role.rules!, true)).toEqual([
        '/configmaps:list',
        '/configmaps:watch',
        '/secrets:list names=onvif-creds',
        '/secrets:watch names=onvif-creds',
      ]);
    }
    const oneNamespace = await render('r', 'tether-system', 'agent.watchNamespace=cams');
    const binding = oneNamespace.find((m) => m.metadata.name === 'r-tether-agent' && m.kind.endsWith('Binding'));
    expect(binding?.kind).toBe('RoleBinding');
    expect(binding?.metadata.namespace).toBe('cams');
    expect(find(oneNamespace, 'ClusterRoleBinding', 'r-tether-agent-nodes').kind).toBe('ClusterRoleBinding');
  });

  it('renders ServiceMonitors only when asked, and refuses several controllers without leader election', async () => {
    const objects = await render('r', 'tether-system', 'metrics.serviceMonitor.enabled=true');
    expect(
      objects
        .filter((m) => m.kind === 'ServiceMonitor')
        .map((m) => m.metadata.name)
        .sort(),
    ).toEqual(['r-tether-agent-metrics', 'r-tether-controller-metrics']);
    await expect(render('r', 'tether-system', 'controller.leaderElection.enabled=false')).rejects.toThrow(
      /needs controller.leaderElection.enabled/,
    );
    const single = await render('r', 'tether-system', 'controller.leaderElection.enabled=false', 'controller.replicas=1');
    expect(single.some((m) => m.kind === 'Role')).toBe(false);
    expect(
      (find(single, 'Deployment', 'r-tether-controller') as unknown as V1Deployment).spec?.template.spec?.containers[0]?.args,
    ).toContain('--no-leader-elect');
  });

  it('is accepted by the real apiserver (kubectl apply --dry-run=server), CRDs included', async () => {
    const text = await helm('template', 'dry', CHART, '--namespace', ns.name);
    const dir = await mkdtemp(join(tmpdir(), 'helm-dry-'));
    try {
      await writeFile(join(dir, 'all.yaml'), text);
      const out = await kubectl('apply', '--dry-run=server', '--namespace', ns.name, '-f', join(dir, 'all.yaml'));
      for (const expected of [
        'daemonset.apps/dry-tether-agent',
        'deployment.apps/dry-tether-controller',
        'clusterrole.rbac.authorization.k8s.io/dry-tether-agent',
        'customresourcedefinition.apiextensions.k8s.io/devices.tether.dev',
      ]) {
        expect(out).toContain(expected);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** Reports one device whose TOKEN property is the resolved TOKEN property: shows what the handler got. */
const propertyEcho: DiscoveryHandler<Record<string, unknown>> = {
  name: 'property-echo',
  parseDetails: (raw) => (raw ?? {}) as Record<string, unknown>,
  isShared: () => false,
  run: async (_details, { sink, signal, properties }) => {
    sink.replaceAll([{ id: 'token-device', properties: { TOKEN: properties.get('TOKEN') ?? '' } }]);
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  },
};

/**
 * One release for the whole block, in order: install, admission, the components at work,
 * access reviews, a narrowing upgrade, uninstall.
 */
describe('installed release', () => {
  const release = `helm-${uniqueSuffix()}`;
  const fullname = `${release}-tether`;
  const agentSa = `${fullname}-agent`;
  const controllerSa = `${fullname}-controller`;
  const node = `helm-node-${uniqueSuffix()}`;
  const other = { name: '' };
  const stops: (() => Promise<void>)[] = [];
  let installed = false;

  beforeAll(async () => {
    other.name = `helm-other-${uniqueSuffix()}`;
    await createNamespace(other.name);
    await helm(
      'install',
      release,
      CHART,
      '--namespace',
      ns.name,
      '--set',
      'crds.install=false',
      '--set',
      'image.repository=tether.invalid/tether',
    );
    installed = true;
    // The node the in-process agents run as (no kubelet: only the Node object), and the
    // Secret and ConfigMap that DeviceDiscovery properties reference.
    await api().core.createNode({ body: { metadata: { name: node, labels: { 'tether.dev/helm-test': 'edge' } } } });
    await api().core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'cam-creds' }, stringData: { password: 's3cret', token: 'tok-1' } },
    });
    await api().core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'site' }, data: { zone: 'north' } } });
  });

  afterAll(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    if (installed) await helm('uninstall', release, '--namespace', ns.name).catch(() => undefined);
    await api()
      .core.deleteNode({ name: node })
      .catch(() => undefined);
    await deleteNamespace(other.name);
  });

  async function devices(namespace: string): Promise<Device[]> {
    const list = (await api().custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: 'devices' })) as {
      items: Device[];
    };
    return list.items;
  }

  async function createDiscovery(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
    await api().custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'devicediscoveries',
      body: { apiVersion: API_VERSION, kind: 'DeviceDiscovery', metadata: { name }, spec },
    });
  }

  /** The real agent on `node`, with its own mock kubelet; returns its stop function. */
  async function startAgent(kc: KubeConfig, namespace: string): Promise<() => Promise<void>> {
    const dir = await mkdtemp(join(tmpdir(), 'helm-agent-'));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
    await kubelet.start();
    const handlers = new Map<string, AnyDiscoveryHandler>([...builtinHandlers(), ['property-echo', propertyEcho]]);
    const agent = new ClusterAgent({
      node,
      kc,
      log: log.child({ node, namespace }),
      pluginDir: join(dir, 'dp'),
      podResourcesSocket: kubelet.podResourcesSocket!,
      namespace,
      handlers,
      metrics: createAgentMetrics({ defaultMetrics: false }),
      startupTimeoutMs: 1_000,
      reconcileIntervalMs: 0,
      slotGraceMs: 0,
    });
    await agent.start();
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      await agent.stop();
      await kubelet.stop();
      await rm(dir, { recursive: true, force: true });
    };
    stops.push(stop);
    return stop;
  }

  async function warningEvents(namespace: string, discovery: string): Promise<CoreV1Event[]> {
    const list = await api().core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${discovery}` });
    return list.items.filter((e) => e.type === 'Warning');
  }

  it('installs (crds.install=false): DaemonSet, Deployment, ServiceAccounts, RBAC, Services, PDB', async () => {
    const apps = api().kc.makeApiClient(AppsV1Api);
    const rbac = api().kc.makeApiClient(RbacAuthorizationV1Api);
    const daemonSet = await apps.readNamespacedDaemonSet({ name: `${fullname}-agent`, namespace: ns.name });
    expect(daemonSet.spec?.template.spec?.serviceAccountName).toBe(agentSa);
    const deployment = await apps.readNamespacedDeployment({ name: `${fullname}-controller`, namespace: ns.name });
    expect(deployment.spec?.replicas).toBe(2);
    expect(deployment.spec?.template.spec?.serviceAccountName).toBe(controllerSa);
    await api().core.readNamespacedServiceAccount({ name: agentSa, namespace: ns.name });
    await api().core.readNamespacedServiceAccount({ name: controllerSa, namespace: ns.name });
    for (const name of [`${fullname}-agent`, `${fullname}-agent-nodes`, `${fullname}-controller`, `${fullname}-controller-nodes`]) {
      await rbac.readClusterRole({ name });
      const binding = await rbac.readClusterRoleBinding({ name });
      expect(binding.subjects?.[0]).toMatchObject({ kind: 'ServiceAccount', namespace: ns.name });
    }
    await rbac.readNamespacedRole({ name: `${fullname}-controller-leader-election`, namespace: ns.name });
    await api().core.readNamespacedService({ name: `${fullname}-agent-metrics`, namespace: ns.name });
    await api().core.readNamespacedService({ name: `${fullname}-controller-metrics`, namespace: ns.name });
    await api()
      .kc.makeApiClient(PolicyV1Api)
      .readNamespacedPodDisruptionBudget({ name: `${fullname}-controller`, namespace: ns.name });
    const status = await helm('status', release, '--namespace', ns.name);
    expect(status).toMatch(/STATUS: deployed/);
    // NOTES.txt: how to follow the rollout, and that CRDs were left to the operator.
    expect(status).toContain(`rollout status daemonset/${fullname}-agent`);
    expect(status).toContain('crds.install=false');
  });

  it('pod templates pass admission: the agent in its (privileged) namespace, the controller under the restricted Pod Security level', async () => {
    const apps = api().kc.makeApiClient(AppsV1Api);
    const agentTemplate = (await apps.readNamespacedDaemonSet({ name: `${fullname}-agent`, namespace: ns.name })).spec!.template;
    const agentPod: V1Pod = {
      metadata: { name: 'agent-dry-run', labels: agentTemplate.metadata?.labels ?? {} },
      spec: { ...agentTemplate.spec!, nodeName: node },
    };
    const acceptedAgent = await api().core.createNamespacedPod({ namespace: ns.name, body: agentPod, dryRun: 'All' });
    expect(acceptedAgent.spec?.priorityClassName).toBe('system-node-critical');

    await api().core.patchNamespace(
      {
        name: other.name,
        body: {
          metadata: {
            labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const controllerTemplate = (await apps.readNamespacedDeployment({ name: `${fullname}-controller`, namespace: ns.name })).spec!.template;
    const controllerPod: V1Pod = {
      metadata: { name: 'controller-dry-run' },
      spec: { ...controllerTemplate.spec!, serviceAccountName: 'default' },
    };
    await api().core.createNamespacedPod({ namespace: other.name, body: controllerPod, dryRun: 'All' });
    // The same check rejects the agent there (host paths, host network): the check is real.
    const refused = await apiFailure(
      api().core.createNamespacedPod({
        namespace: other.name,
        body: { ...agentPod, spec: { ...agentPod.spec!, serviceAccountName: 'default' } },
        dryRun: 'All',
      }),
    );
    expect(refused.message).toMatch(/violates PodSecurity "restricted.*hostPath/);
    await api().core.patchNamespace(
      {
        name: other.name,
        body: { metadata: { labels: { 'pod-security.kubernetes.io/enforce': null, 'pod-security.kubernetes.io/enforce-version': null } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  });

  it('the agent and the controller do their whole job under the chart ServiceAccounts', async () => {
    await api().core.patchNodeStatus(
      {
        name: node,
        body: {
          status: {
            conditions: [
              {
                type: 'Ready',
                status: 'True',
                reason: 'KubeletReady',
                message: 'test node',
                lastHeartbeatTime: new Date(),
                lastTransitionTime: new Date(),
              },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const edgeOnly = { nodeSelectorTerms: [{ matchExpressions: [{ key: 'tether.dev/helm-test', operator: 'In', values: ['edge'] }] }] };
    // debug-echo with properties from a Secret and a ConfigMap: no session (no Devices) unless both resolve.
    await createDiscovery(ns.name, 'cams', {
      handler: 'debug-echo',
      details: { descriptions: ['cam-1', 'cam-2'] },
      properties: [
        { name: 'ONVIF_PASSWORD', valueFrom: { secretKeyRef: { name: 'cam-creds', key: 'password' } } },
        { name: 'SITE', valueFrom: { configMapKeyRef: { name: 'site', key: 'zone' } } },
      ],
      nodeSelector: edgeOnly,
      offlineGracePeriodSeconds: 2,
    });
    await createDiscovery(ns.name, 'token-echo', {
      handler: 'property-echo',
      properties: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'cam-creds', key: 'token' } } }],
      nodeSelector: edgeOnly,
      broker: { pod: { spec: { containers: [{ name: 'broker', image: 'tether.invalid/broker:1' }] } } },
      discoveryService: { ports: [{ name: 'grpc', port: 8083 }] },
    });
    await createDiscovery(ns.name, 'broken', { handler: 'debug-echo', details: { descriptions: 'not-a-list' } });

    const stopAgent = await startAgent(await serviceAccountKubeConfig(ns.name, agentSa), ns.name);
    // Agent: Devices created (SSA), the Secret and ConfigMap resolved, its Node's labels read.
    const published = await waitFor(
      async () => {
        const all = await devices(ns.name);
        const cams = all.filter((d) => d.spec.discovery === 'cams');
        const token = all.find((d) => d.spec.discovery === 'token-echo');
        return cams.length === 2 && token !== undefined ? { cams, token } : undefined;
      },
      { description: 'Devices published by the agent' },
    );
    expect(published.token.spec.properties?.['TOKEN']).toBe('tok-1');
    expect(published.cams.map((d) => d.spec.nodes)).toEqual([[node], [node]]);
    // Agent: events (a Warning about the bad details).
    const warning = await waitFor(async () => (await warningEvents(ns.name, 'broken')).find((e) => e.reason === 'InvalidDetails'), {
      description: 'InvalidDetails event',
    });
    expect(warning.source?.component).toBe('tether-agent');

    // Agent: a device that goes away is marked Offline in its status (status patch), then
    // deleted after the grace period (delete, with a precondition).
    const watch = new ResilientWatch(api().kc, `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/devices`);
    await watch.start(
      (
        (await api().custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns.name, plural: 'devices' })) as {
          metadata: { resourceVersion: string };
        }
      ).metadata.resourceVersion,
    );
    try {
      await api().custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace: ns.name,
          plural: 'devicediscoveries',
          name: 'cams',
          body: { spec: { details: { descriptions: ['cam-1'] } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const offline = await watch.next(
        (e) =>
          e.type === 'MODIFIED' && (e.object as Device).status?.nodeStates?.some((s) => s.node === node && s.state === 'Offline') === true,
        {
          description: 'cam-2 Offline in status.nodeStates',
        },
      );
      expect((offline.object as Device).spec.deviceId).toBe('cam-2');
      await watch.next((e) => e.type === 'DELETED' && (e.object as Device).spec.deviceId === 'cam-2', {
        description: 'agent deleted cam-2',
      });
    } finally {
      watch.stop();
    }

    const identity = `helm-test_${uniqueSuffix()}`;
    const controller: Controller = await startController(
      {
        ...DEFAULT_CONFIG,
        namespace: ns.name,
        httpPort: -1,
        nodeLossGraceMs: 1_000,
        leaderElection: {
          ...DEFAULT_LEADER_ELECTION,
          namespace: ns.name,
          identity,
          leaseDurationSeconds: 5,
          renewDeadlineMs: 2_000,
          retryPeriodMs: 500,
        },
      },
      { kubeConfig: await serviceAccountKubeConfig(ns.name, controllerSa), log: log.child({ component: 'controller' }) },
    );
    stops.push(() => controller.stop());

    // Controller: the Lease (create, then get+update on renewals).
    const leaseApi = api().coordination;
    const first = await waitFor(
      async () => {
        const lease = await leaseApi.readNamespacedLease({ name: DEFAULT_LEADER_ELECTION.name, namespace: ns.name });
        return lease.spec?.holderIdentity === identity ? lease : undefined;
      },
      { description: 'controller holds the Lease' },
    );
    await waitFor(
      async () => {
        const lease = await leaseApi.readNamespacedLease({ name: DEFAULT_LEADER_ELECTION.name, namespace: ns.name });
        return lease.spec?.holderIdentity === identity && String(lease.spec.renewTime) !== String(first.spec?.renewTime);
      },
      { description: 'controller renews the Lease' },
    );
    // Controller: broker Pod (create), discovery Service (apply), DeviceDiscovery status (apply).
    const brokerSelector = `app.kubernetes.io/managed-by=tether-controller,tether.dev/discovery=token-echo`;
    await waitFor(
      async () => (await api().core.listNamespacedPod({ namespace: ns.name, labelSelector: brokerSelector })).items.length === 1,
      { description: 'broker Pod' },
    );
    await waitFor(
      async () => (await api().core.listNamespacedService({ namespace: ns.name, labelSelector: brokerSelector })).items.length === 1,
      { description: 'discovery Service' },
    );
    // Controller: events.k8s.io Events.
    await waitFor(
      async () =>
        (await api().core.listNamespacedEvent({ namespace: ns.name })).items.some(
          (e) => e.reason === 'BrokerCreated' && e.reportingComponent === REPORTING_CONTROLLER,
        ),
      { description: 'BrokerCreated event from the controller' },
    );
    await waitFor(
      async () => {
        const discovery = (await api().custom.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: ns.name,
          plural: 'devicediscoveries',
          name: 'token-echo',
        })) as { status?: { devices?: number } };
        return discovery.status?.devices === 1;
      },
      { description: 'DeviceDiscovery status written by the controller' },
    );

    // Controller: node loss. The agent stops (deleting nothing), the node goes NotReady: the
    // controller releases the node from its Devices as the agent's field managers (patch,
    // status patch), deletes the Devices no node sees (delete) and their brokers (pod delete).
    await stopAgent();
    await api().core.patchNodeStatus(
      {
        name: node,
        body: {
          status: {
            conditions: [
              {
                type: 'Ready',
                status: 'False',
                reason: 'KubeletNotReady',
                message: 'test',
                lastHeartbeatTime: new Date(),
                lastTransitionTime: new Date(),
              },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    await waitFor(async () => (await devices(ns.name)).length === 0, {
      description: 'controller deleted the lost node’s Devices',
      timeoutMs: 60_000,
    });
    await waitFor(
      async () =>
        (await api().core.listNamespacedPod({ namespace: ns.name, labelSelector: brokerSelector })).items.every(
          (p) => p.metadata?.deletionTimestamp != null,
        ),
      {
        description: 'broker Pod deleted',
      },
    );
    await controller.stop();
  });

  it('the agent can do nothing beyond its job', async () => {
    const kc = await serviceAccountKubeConfig(ns.name, agentSa);
    const here = ns.name;
    const table: (readonly [Access, boolean])[] = [
      [{ verb: 'list', resource: 'devicediscoveries', group: GROUP }, true],
      [{ verb: 'watch', resource: 'devicediscoveries', group: GROUP, namespace: other.name }, true],
      [{ verb: 'create', resource: 'devices', group: GROUP, namespace: here }, true],
      [{ verb: 'patch', resource: 'devices', group: GROUP, subresource: 'status', namespace: here }, true],
      [{ verb: 'delete', resource: 'devices', group: GROUP, namespace: here }, true],
      [{ verb: 'watch', resource: 'nodes' }, true],
      [{ verb: 'list', resource: 'secrets', namespace: other.name }, true],
      [{ verb: 'create', resource: 'events', namespace: here }, true],
      [{ verb: 'patch', resource: 'devicediscoveries', group: GROUP, subresource: 'status', namespace: here }, true],
      // Not its job:
      [{ verb: 'list', resource: 'pods' }, false],
      [{ verb: 'list', resource: 'pods', namespace: here }, false],
      [{ verb: 'create', resource: 'pods', namespace: here }, false],
      [{ verb: 'delete', resource: 'devicediscoveries', group: GROUP, namespace: here }, false],
      [{ verb: 'update', resource: 'devicediscoveries', group: GROUP, namespace: here }, false],
      [{ verb: 'patch', resource: 'devicediscoveries', group: GROUP, namespace: here }, false],
      [{ verb: 'update', resource: 'devices', group: GROUP, namespace: here }, false],
      [{ verb: 'deletecollection', resource: 'devices', group: GROUP, namespace: here }, false],
      [{ verb: 'patch', resource: 'nodes', name: node }, false],
      [{ verb: 'create', resource: 'secrets', namespace: here }, false],
      [{ verb: 'update', resource: 'configmaps', namespace: here }, false],
      [{ verb: 'create', resource: 'leases', group: 'coordination.k8s.io', namespace: here }, false],
      [{ verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: here, name: agentSa }, false],
      [{ verb: 'list', resource: 'customresourcedefinitions', group: 'apiextensions.k8s.io' }, false],
    ];
    expect(await accessMismatches(kc, `system:serviceaccount:${ns.name}:${agentSa}`, table)).toEqual([]);
    // And for real: the apiserver refuses to list pods for it.
    await expect(kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns.name })).rejects.toMatchObject({ code: 403 });
  });

  it('the controller can run brokers but cannot read Secrets', async () => {
    const kc = await serviceAccountKubeConfig(ns.name, controllerSa);
    const here = ns.name;
    const lease = DEFAULT_LEADER_ELECTION.name;
    const table: (readonly [Access, boolean])[] = [
      [{ verb: 'create', resource: 'pods', namespace: other.name }, true],
      [{ verb: 'delete', resource: 'pods', namespace: here }, true],
      [{ verb: 'create', resource: 'pods', subresource: 'eviction', namespace: here }, true],
      [{ verb: 'create', resource: 'jobs', group: 'batch', namespace: here }, true],
      [{ verb: 'patch', resource: 'services', namespace: here }, true],
      [{ verb: 'list', resource: 'nodes' }, true],
      [{ verb: 'patch', resource: 'devicediscoveries', group: GROUP, subresource: 'status', namespace: here }, true],
      [{ verb: 'patch', resource: 'devices', group: GROUP, namespace: here }, true],
      [{ verb: 'delete', resource: 'devices', group: GROUP, namespace: here }, true],
      [{ verb: 'create', resource: 'events', group: 'events.k8s.io', namespace: other.name }, true],
      [{ verb: 'create', resource: 'leases', group: 'coordination.k8s.io', namespace: here }, true],
      [{ verb: 'update', resource: 'leases', group: 'coordination.k8s.io', namespace: here, name: lease }, true],
      // Not its job:
      [{ verb: 'get', resource: 'secrets', namespace: here }, false],
      [{ verb: 'list', resource: 'secrets' }, false],
      [{ verb: 'list', resource: 'configmaps', namespace: here }, false],
      [{ verb: 'create', resource: 'devices', group: GROUP, namespace: here }, false],
      [{ verb: 'update', resource: 'devicediscoveries', group: GROUP, namespace: here }, false],
      [{ verb: 'delete', resource: 'devicediscoveries', group: GROUP, namespace: here }, false],
      [{ verb: 'update', resource: 'pods', namespace: here }, false],
      [{ verb: 'patch', resource: 'nodes', name: node }, false],
      [{ verb: 'update', resource: 'leases', group: 'coordination.k8s.io', namespace: here, name: 'kube-scheduler' }, false],
      [{ verb: 'create', resource: 'leases', group: 'coordination.k8s.io', namespace: other.name }, false],
      [{ verb: 'create', resource: 'rolebindings', group: 'rbac.authorization.k8s.io', namespace: here }, false],
    ];
    expect(await accessMismatches(kc, `system:serviceaccount:${ns.name}:${controllerSa}`, table)).toEqual([]);
  });

  it('narrowed by agent.rbac.secretsNamespaces/secretNames (helm upgrade): the agent reads only those Secrets', async () => {
    await helm(
      'upgrade',
      release,
      CHART,
      '--namespace',
      ns.name,
      '--reuse-values',
      '--set',
      `agent.rbac.secretsNamespaces={${ns.name}}`,
      '--set',
      'agent.rbac.secretNames={cam-creds}',
    );
    const kc = await serviceAccountKubeConfig(ns.name, agentSa);
    const here = ns.name;
    const table: (readonly [Access, boolean])[] = [
      [{ verb: 'list', resource: 'secrets', namespace: here, name: 'cam-creds' }, true],
      [{ verb: 'watch', resource: 'secrets', namespace: here, name: 'cam-creds' }, true],
      [{ verb: 'list', resource: 'configmaps', namespace: here }, true],
      [{ verb: 'list', resource: 'secrets', namespace: here }, false],
      [{ verb: 'list', resource: 'secrets', namespace: here, name: 'other-creds' }, false],
      [{ verb: 'list', resource: 'secrets', namespace: other.name, name: 'cam-creds' }, false],
      [{ verb: 'list', resource: 'secrets' }, false],
      [{ verb: 'list', resource: 'configmaps', namespace: other.name }, false],
      [{ verb: 'get', resource: 'secrets', namespace: here, name: 'cam-creds' }, false],
    ];
    expect(await accessMismatches(kc, `system:serviceaccount:${ns.name}:${agentSa}`, table)).toEqual([]);

    // The real agent still resolves the granted Secret (its metadata.name field-selector list
    // and watch pass the resourceNames rule) and follows a change of it.
    await createDiscovery(ns.name, 'narrow-echo', {
      handler: 'property-echo',
      properties: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'cam-creds', key: 'token' } } }],
    });
    await startAgent(kc, ns.name);
    const tokenOf = async (): Promise<string | undefined> =>
      (await devices(ns.name)).find((d) => d.spec.discovery === 'narrow-echo')?.spec.properties?.['TOKEN'];
    await waitFor(async () => (await tokenOf()) === 'tok-1', {
      description: 'narrow-echo Device with the Secret read under the narrowed Role',
    });
    await api().core.replaceNamespacedSecret({
      name: 'cam-creds',
      namespace: ns.name,
      body: { metadata: { name: 'cam-creds' }, stringData: { password: 's3cret', token: 'tok-2' } },
    });
    await waitFor(async () => (await tokenOf()) === 'tok-2', {
      description: 'narrow-echo Device after the Secret changed (watch allowed)',
    });
    // A discovery elsewhere, whose Secret the agent may not read: no Devices, a Warning instead.
    await api().core.createNamespacedSecret({
      namespace: other.name,
      body: { metadata: { name: 'cam-creds' }, stringData: { token: 'elsewhere' } },
    });
    await createDiscovery(other.name, 'token-echo', {
      handler: 'property-echo',
      properties: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'cam-creds', key: 'token' } } }],
    });
    await startAgent(kc, other.name);
    const refused = await waitFor(
      async () => (await warningEvents(other.name, 'token-echo')).find((e) => e.reason === 'PropertiesUnresolved'),
      {
        description: 'PropertiesUnresolved event for the unreadable Secret',
      },
    );
    // Refused, not absent: the message says so (it used to say "not found").
    expect(refused.message).toMatch(/Secret .*\/cam-creds cannot be read: forbidden to the agent/);
    expect(await devices(other.name)).toEqual([]);
    // The agent's report on the discovery's status, under the same RBAC.
    await waitFor(
      async () => {
        const d = (await api().custom.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: other.name,
          plural: 'devicediscoveries',
          name: 'token-echo',
        })) as DeviceDiscovery;
        return d.status?.nodeReports?.some((r) => r.reason === 'PropertiesUnresolved' && r.message.includes('cannot be read: forbidden'));
      },
      { description: 'the nodeReports entry for the unreadable Secret' },
    );
  });

  it('helm uninstall removes everything it installed', async () => {
    await helm('uninstall', release, '--namespace', ns.name, '--wait');
    installed = false;
    const rbac = api().kc.makeApiClient(RbacAuthorizationV1Api);
    const apps = api().kc.makeApiClient(AppsV1Api);
    const gone = async (read: Promise<unknown>): Promise<boolean> => {
      try {
        await read;
        return false;
      } catch (error) {
        if (isApiError(error, 404)) return true;
        throw error;
      }
    };
    const checks: [string, () => Promise<unknown>][] = [
      ['DaemonSet', () => apps.readNamespacedDaemonSet({ name: `${fullname}-agent`, namespace: ns.name })],
      ['Deployment', () => apps.readNamespacedDeployment({ name: `${fullname}-controller`, namespace: ns.name })],
      ['agent ServiceAccount', () => api().core.readNamespacedServiceAccount({ name: agentSa, namespace: ns.name })],
      ['controller ServiceAccount', () => api().core.readNamespacedServiceAccount({ name: controllerSa, namespace: ns.name })],
      ['agent metrics Service', () => api().core.readNamespacedService({ name: `${fullname}-agent-metrics`, namespace: ns.name })],
      ['leader-election Role', () => rbac.readNamespacedRole({ name: `${fullname}-controller-leader-election`, namespace: ns.name })],
      ['agent properties Role', () => rbac.readNamespacedRole({ name: `${fullname}-agent-properties`, namespace: ns.name })],
      ...[`${fullname}-agent`, `${fullname}-agent-nodes`, `${fullname}-controller`, `${fullname}-controller-nodes`].flatMap(
        (name): [string, () => Promise<unknown>][] => [
          [`ClusterRole ${name}`, () => rbac.readClusterRole({ name })],
          [`ClusterRoleBinding ${name}`, () => rbac.readClusterRoleBinding({ name })],
        ],
      ),
    ];
    const left: string[] = [];
    for (const [what, read] of checks) if (!(await gone(read()))) left.push(what);
    expect(left).toEqual([]);
    expect((await helm('list', '--namespace', ns.name, '--short')).trim()).toBe('');
    // The CRDs were not the release's (crds.install=false): still there.
    await kubectl('get', 'crd', 'devices.tether.dev');
  });
});
