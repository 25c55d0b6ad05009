/**
 * Tether on the real two-node e2e cluster of this machine (test/e2e: control plane, node 1 on
 * the host's network and filesystem, node 2 in its own namespaces, the device LAN), installed
 * by its Helm chart from its own image, as a user runs it. Needs root. Brings the nodes up
 * (reusing healthy ones); at the end uninstalls Tether, deletes its namespaces and stops the
 * nodes and the LAN unless TETHER_E2E_KEEP_NODE=1.
 *
 * - install: `helm install` (no --wait) → first broker Running, with the way there (agent
 *   Ready on node 1, controller leading, Device created, broker created); a fresh namespace
 *   and DeviceDiscovery per round, uninstalled and deleted after.
 * - availability: a debug-echo device whose availability file (under the host's
 *   /var/lib/tether, which the agent pod mounts) goes OFFLINE → broker deleted (minus the
 *   1 s offline grace), `online` → broker Running; the same through MQTT (a Home Assistant
 *   device's last will → gone, re-announced → back).
 * - agent restart: the agent pod on node 1 deleted with 6 devices and their brokers present →
 *   the DaemonSet's new pod Ready and serving (the kubelet's PodResources lists every
 *   device again); the writes Tether made meanwhile (Device events, broker creations and
 *   deletions, Events).
 *
 * Times are the arrival of watch events at this process. Figures are reported, never asserted.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { deviceResourceName } from '../../api/names.ts';
import { buildTetherImage } from '../../deploy/image/tether-image.ts';
import { e2eClusterUp, ensureE2eCacheDir, writeE2eChartValues } from '../../test/e2e/cluster.ts';
import { CHART, helmFor, type Helm } from '../../test/e2e/helm.ts';
import { importTetherImage } from '../../test/e2e/images.ts';
import { attachToLan, removeLan, startLanPeers, type LanPeers } from '../../test/e2e/lan.ts';
import { busyboxBroker, nodeLayout, type NodeLayout } from '../../test/e2e/layout.ts';
import { nodeDown, nodeUp } from '../../test/e2e/node.ts';
import { watchSetUntil } from '../../test/e2e/watch.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';
import {
  brokerSelector,
  createDiscovery,
  createNamespace,
  deleteNamespace,
  deleteTetherCrds,
  firstEventAt,
  isPodReady,
  listDevices,
  pollKubeletUntil,
  kubeletAllocatable,
  waitBrokers,
  WriteRecorder,
} from '../real-node/kube.ts';

const say = (message: string): void => void process.stderr.write(`[real-node bench] ${message}\n`);

const ROUNDS = 20;
const RELEASE = 'tether';
export const SYSTEM_NAMESPACE = 'tether-system';
const AGENT_SELECTOR = `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=agent`;
const CONTROLLER_LEASE = 'tether-controller';
const INSTALL_NAMESPACE = 'bench-rn-install';
const LIVE_NAMESPACE = 'bench-rn-live';
/** Node 1's and node 2's addresses on the device LAN (as the e2e global setup attaches them). */
const LAN_NODE_ADDRESSES = ['10.250.90.11', '10.250.90.12'] as const;
/** On the host's /var/lib/tether, which node 1's agent pod mounts at the same path. */
const AVAILABILITY_FILE = '/var/lib/tether/bench-real-node.availability';
const GRACE_S = 1;

/** Broker: idle until SIGTERM. */
const brokerTemplate = busyboxBroker();

/** The running cluster a real-node measure gets from {@link withRealNodes}: Tether's image imported, the chart not installed. */
export interface RealNodes {
  readonly kc: KubeConfig;
  readonly helm: Helm;
  readonly values: string;
  readonly layout1: NodeLayout;
  readonly node1: string;
}

type Samples = Record<string, number[]>;

function add(samples: Samples, name: string, value: number): void {
  (samples[name] ??= []).push(value);
}

export function onNode1(node: string): Record<string, unknown> {
  return { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] };
}

function echoDiscovery(node: string, descriptions: string[], availabilityFile?: string): Record<string, unknown> {
  return {
    handler: 'debug-echo',
    details: { descriptions, ...(availabilityFile === undefined ? {} : { availabilityFile }) },
    capacity: 1,
    offlineGracePeriodSeconds: GRACE_S,
    nodeSelector: onNode1(node),
    broker: brokerTemplate,
  };
}

export async function install(env: RealNodes, wait: boolean): Promise<void> {
  await env.helm.run('install', RELEASE, CHART, '-n', SYSTEM_NAMESPACE, '-f', env.values, ...(wait ? ['--wait', '--timeout', '3m'] : []));
}

/** Uninstalls Tether and waits until none of its pods is left. */
export async function uninstall(env: RealNodes): Promise<void> {
  await env.helm.run('uninstall', RELEASE, '-n', SYSTEM_NAMESPACE, '--ignore-not-found', '--wait', '--timeout', '2m');
  await watchSetUntil(env.kc, {
    path: `/api/v1/namespaces/${SYSTEM_NAMESPACE}/pods`,
    labelSelector: `app.kubernetes.io/instance=${RELEASE}`,
    predicate: (pods) => pods.length === 0,
    timeoutMs: 120_000,
    description: 'Tether pods gone',
  });
}

/** Writes the availability file atomically (a rename: the handler sees one event with the whole content). */
async function setAvailability(content: 'OFFLINE' | 'online'): Promise<void> {
  await writeFile(`${AVAILABILITY_FILE}.tmp`, `${content}\n`);
  await rename(`${AVAILABILITY_FILE}.tmp`, AVAILABILITY_FILE);
}

export async function withRealNodes<T>(body: (env: RealNodes) => Promise<T>): Promise<T> {
  const layouts = [nodeLayout(), nodeLayout(process.env, 2)] as const;
  const log = (m: string): void => say(m);
  ensureE2eCacheDir(layouts[0]);
  const cluster = await e2eClusterUp(layouts[0]);
  const node1 = await nodeUp(cluster, { layout: layouts[0], log });
  await nodeUp(cluster, { layout: layouts[1], log });
  attachToLan({ address: LAN_NODE_ADDRESSES[0], tag: 'n1' });
  attachToLan({ netns: layouts[1].isolation?.netns, address: LAN_NODE_ADDRESSES[1], tag: 'n2' });
  const image = await buildTetherImage({ platforms: ['linux/amd64'], log: (m) => say(`[image] ${m}`) });
  for (const layout of layouts) importTetherImage(layout, image);
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  const env: RealNodes = {
    kc,
    helm: helmFor(cluster.binDir, cluster.kubeconfig),
    values: writeE2eChartValues(layouts[0], cluster.nodeServer),
    layout1: layouts[0],
    node1: node1.name,
  };
  try {
    return await body(env);
  } finally {
    say('cleaning up');
    for (const namespace of [INSTALL_NAMESPACE, LIVE_NAMESPACE])
      await deleteNamespace(kc, namespace).catch((error: unknown) => say(`deleting ${namespace}: ${String(error)}`));
    await uninstall(env).catch((error: unknown) => say(`uninstall: ${String(error)}`));
    await rm(AVAILABILITY_FILE, { force: true });
    env.helm.close();
    if (process.env.TETHER_E2E_KEEP_NODE !== '1') {
      removeLan();
      // Node 2 hangs off node 1's bridge: it goes first.
      await nodeDown({ layout: layouts[1], log });
      await nodeDown({ layout: layouts[0], log });
    }
  }
}

/** One round: a fresh namespace and discovery, then `helm install` → broker Running; uninstalled and deleted after. */
async function installRound(env: RealNodes, samples: Samples): Promise<void> {
  await createNamespace(env.kc, INSTALL_NAMESPACE);
  await createDiscovery(env.kc, INSTALL_NAMESPACE, 'install-echo', echoDiscovery(env.node1, ['install-1']));
  const started = Date.now();
  // Watches replay the current state first, so connecting after the install starts loses nothing.
  const milestones = {
    'agent Ready (node 1)': firstEventAt<V1Pod>(env.kc, {
      path: `/api/v1/namespaces/${SYSTEM_NAMESPACE}/pods`,
      labelSelector: AGENT_SELECTOR,
      predicate: (pod, type) => type !== 'DELETED' && pod.spec?.nodeName === env.node1 && isPodReady(pod),
      description: 'the agent Ready on node 1',
    }),
    'controller leading': firstEventAt<{ metadata?: { name?: string }; spec?: { holderIdentity?: string; acquireTime?: string } }>(env.kc, {
      path: `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NAMESPACE}/leases`,
      fieldSelector: `metadata.name=${CONTROLLER_LEASE}`,
      predicate: (lease, type) =>
        type !== 'DELETED' && (lease.spec?.holderIdentity ?? '') !== '' && Date.parse(lease.spec?.acquireTime ?? '') >= started - 1,
      description: 'a controller holding the Lease',
    }),
    'Device created': firstEventAt(env.kc, {
      path: `/apis/tether.dev/v1alpha1/namespaces/${INSTALL_NAMESPACE}/devices`,
      predicate: (_, type) => type !== 'DELETED',
      description: 'the Device',
    }),
    'broker created': firstEventAt(env.kc, {
      path: `/api/v1/namespaces/${INSTALL_NAMESPACE}/pods`,
      labelSelector: brokerSelector('install-echo'),
      predicate: (_, type) => type !== 'DELETED',
      description: 'the broker pod',
    }),
  };
  const helmAt = install(env, false).then(() => Date.now());
  const running = waitBrokers(env.kc, INSTALL_NAMESPACE, 'install-echo', 1, 180_000);
  // Awaited in turn below; a failure of one must not leave the others' rejections unhandled.
  for (const pending of [helmAt, running, ...Object.values(milestones)]) pending.catch(() => undefined);
  add(samples, 'install: helm install → first broker Running', ((await running).at - started) / 1_000);
  add(samples, 'install: helm install command returned', ((await helmAt) - started) / 1_000);
  for (const [name, at] of Object.entries(milestones)) add(samples, `install: helm install → ${name}`, ((await at) - started) / 1_000);
  await uninstall(env);
  await deleteNamespace(env.kc, INSTALL_NAMESPACE);
}

async function measureInstall(env: RealNodes): Promise<Measurement[]> {
  await uninstall(env); // a release left by an interrupted run
  await deleteNamespace(env.kc, INSTALL_NAMESPACE);
  await deleteTetherCrds(env.kc);
  await createNamespace(env.kc, SYSTEM_NAMESPACE, { 'pod-security.kubernetes.io/enforce': 'privileged' });
  // Warm-up, not timed: the chart installs the CRDs (kept on uninstall: crds.keep), so every
  // round can create its DeviceDiscovery before the clock starts.
  say('warm-up install (installs the CRDs)');
  await install(env, true);
  await uninstall(env);
  const samples: Samples = {};
  for (let round = 1; round <= ROUNDS; round++) {
    await installRound(env, samples);
    say(`install round ${round}/${ROUNDS}: ${samples['install: helm install → first broker Running']!.at(-1)} s`);
  }
  return Object.entries(samples).map(([name, values]) => summarize(name, 's', values));
}

/** Offline → broker deleted, back → broker Running, `rounds` times; `offline`/`online` change the device. */
async function availabilityRounds(
  env: RealNodes,
  label: string,
  discovery: string,
  change: { offline: () => Promise<void>; online: () => Promise<number | void> },
  samples: Samples,
): Promise<void> {
  const core = env.kc.makeApiClient(CoreV1Api);
  const path = `/api/v1/namespaces/${LIVE_NAMESPACE}/pods`;
  for (let round = 1; round <= ROUNDS; round++) {
    const { pods } = await waitBrokers(env.kc, LIVE_NAMESPACE, discovery, 1);
    const uid = pods[0]?.metadata?.uid;
    const list = await core.listNamespacedPod({ namespace: LIVE_NAMESPACE, labelSelector: brokerSelector(discovery) });
    let deleteRequested = 0;
    const deleted = firstEventAt<V1Pod>(env.kc, {
      path,
      labelSelector: brokerSelector(discovery),
      resourceVersion: list.metadata?.resourceVersion,
      predicate: (pod, type) => {
        if (pod.metadata?.uid !== uid) return false;
        if (deleteRequested === 0 && (pod.metadata?.deletionTimestamp != null || type === 'DELETED')) deleteRequested = Date.now();
        return type === 'DELETED';
      },
      description: `the ${discovery} broker deleted`,
      timeoutMs: 60_000,
    });
    deleted.catch(() => undefined);
    const offlineAt = Date.now();
    await change.offline();
    const deletedAt = await deleted;
    add(samples, `${label}: offline → broker delete requested (after grace)`, deleteRequested - offlineAt - GRACE_S * 1_000);
    add(samples, `${label}: offline → broker DELETED (after grace)`, deletedAt - offlineAt - GRACE_S * 1_000);

    const again = await core.listNamespacedPod({ namespace: LIVE_NAMESPACE, labelSelector: brokerSelector(discovery) });
    const created = firstEventAt<V1Pod>(env.kc, {
      path,
      labelSelector: brokerSelector(discovery),
      resourceVersion: again.metadata?.resourceVersion,
      predicate: (_, type) => type === 'ADDED',
      description: `a new ${discovery} broker`,
    });
    created.catch(() => undefined);
    let onlineAt = Date.now();
    onlineAt = (await change.online()) ?? onlineAt;
    const { at } = await waitBrokers(env.kc, LIVE_NAMESPACE, discovery, 1, 60_000);
    add(samples, `${label}: back → broker created`, (await created) - onlineAt);
    add(samples, `${label}: back → broker Running`, at - onlineAt);
  }
}

/** Resources node 1's kubelet lists now, for the Devices of the live namespace. */
async function deviceResources(env: RealNodes): Promise<Map<string, string[]>> {
  const listed = await kubeletAllocatable(env.layout1.podResourcesSocket);
  const devices = await listDevices(env.kc, LIVE_NAMESPACE);
  return new Map(devices.map((d) => deviceResourceName(d.metadata?.name ?? '')).map((r) => [r, listed.get(r) ?? []]));
}

async function agentRestartRounds(env: RealNodes, samples: Samples): Promise<void> {
  const core = env.kc.makeApiClient(CoreV1Api);
  const before = await deviceResources(env);
  const local = [...before].filter(([, ids]) => ids.length > 0);
  say(`agent restart: ${before.size} Devices, ${local.length} allocatable on node 1`);
  const recorder = new WriteRecorder(env.kc);
  await recorder.start();
  let previousServing: number | undefined;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const agents = await core.listNamespacedPod({ namespace: SYSTEM_NAMESPACE, labelSelector: AGENT_SELECTOR });
      const old = agents.items.find((p) => p.spec?.nodeName === env.node1 && p.metadata?.deletionTimestamp == null);
      if (old === undefined) throw new Error('no agent pod on node 1');
      const ready = firstEventAt<V1Pod>(env.kc, {
        path: `/api/v1/namespaces/${SYSTEM_NAMESPACE}/pods`,
        labelSelector: AGENT_SELECTOR,
        predicate: (pod, type) =>
          type !== 'DELETED' && pod.spec?.nodeName === env.node1 && pod.metadata?.uid !== old.metadata?.uid && isPodReady(pod),
        description: 'a new agent Ready on node 1',
        timeoutMs: 120_000,
      });
      ready.catch(() => undefined);
      const deletedAt = Date.now();
      if (previousServing !== undefined)
        add(samples, 'agent restart: writes after serving, until the next restart', recorder.between(previousServing, deletedAt).length);
      await core.deleteNamespacedPod({ namespace: SYSTEM_NAMESPACE, name: old.metadata?.name ?? '' });
      const readyAt = await ready;
      const servingAt = await pollKubeletUntil(
        env.layout1.podResourcesSocket,
        (ids) => local.every(([resource, was]) => JSON.stringify(ids.get(resource) ?? []) === JSON.stringify(was)),
        'every device of node 1 allocatable again',
      );
      const writes = recorder.between(deletedAt, servingAt);
      add(samples, 'agent restart: pod deleted → new agent Ready (s)', (readyAt - deletedAt) / 1_000);
      add(samples, 'agent restart: pod deleted → serving the kubelet (s)', (servingAt - deletedAt) / 1_000);
      add(samples, 'agent restart: apiserver writes until serving', writes.length);
      say(
        `agent restart ${round}/${ROUNDS}: Ready ${readyAt - deletedAt} ms, serving ${servingAt - deletedAt} ms, writes ${writes.length}${writes.length > 0 ? ` (${writes.map((w) => `${w.what} ${w.name}`).join('; ')})` : ''}`,
      );
      previousServing = servingAt;
    }
    // The last round's tail: until every broker is confirmed Running and unchanged.
    await waitBrokers(env.kc, LIVE_NAMESPACE, 'restart-echo', 4);
    add(samples, 'agent restart: writes after serving, until the next restart', recorder.between(previousServing ?? 0, Date.now()).length);
    const late = recorder.writes.filter((w) => w.at > (previousServing ?? 0));
    if (late.length > 0) say(`writes after the last restart served: ${late.map((w) => `${w.what} ${w.name}`).join('; ')}`);
    if (recorder.errors.length > 0) say(`write recorder watch errors (counts may be short): ${recorder.errors.join('; ')}`);
  } finally {
    recorder.stop();
  }
}

async function measureLive(env: RealNodes): Promise<Measurement[]> {
  await setAvailability('online');
  await install(env, true);
  await createNamespace(env.kc, LIVE_NAMESPACE);
  const lan: LanPeers = await startLanPeers();
  const samples: Samples = {};
  try {
    await createDiscovery(env.kc, LIVE_NAMESPACE, 'avail-echo', echoDiscovery(env.node1, ['avail-1'], AVAILABILITY_FILE));
    await createDiscovery(env.kc, LIVE_NAMESPACE, 'ha', {
      handler: 'mqtt',
      details: { broker: lan.mqttUrl, homeAssistant: true },
      capacity: 1,
      offlineGracePeriodSeconds: GRACE_S,
      broker: brokerTemplate,
    });
    await waitBrokers(env.kc, LIVE_NAMESPACE, 'avail-echo', 1, 180_000);
    await waitBrokers(env.kc, LIVE_NAMESPACE, 'ha', 1, 180_000);
    say('availability: debug-echo file');
    await availabilityRounds(
      env,
      'debug-echo file',
      'avail-echo',
      { offline: () => setAvailability('OFFLINE'), online: () => setAvailability('online') },
      samples,
    );
    say('availability: MQTT last will / re-announce');
    await availabilityRounds(
      env,
      'mqtt',
      'ha',
      {
        offline: () => lan.ha.dieAbruptly(),
        // Back once the device is announced again (its process start is not Tether's).
        online: async () => {
          await lan.ha.announce();
          return Date.now();
        },
      },
      samples,
    );
    await createDiscovery(
      env.kc,
      LIVE_NAMESPACE,
      'restart-echo',
      echoDiscovery(env.node1, ['restart-1', 'restart-2', 'restart-3', 'restart-4']),
    );
    await waitBrokers(env.kc, LIVE_NAMESPACE, 'restart-echo', 4);
    say('agent pod restarts');
    await agentRestartRounds(env, samples);
  } finally {
    await lan.stop();
  }
  return Object.entries(samples).map(([name, values]) => {
    const unit = name.endsWith('(s)') ? 's' : name.includes('writes') ? 'writes' : 'ms';
    return summarize(name.replace(/ \(s\)$/, ''), unit, values);
  });
}

export const realNodeMeasures: Measure[] = [
  {
    name: 'real-node',
    description:
      'Tether installed by its chart on the two real e2e nodes: install → broker, device offline/back → broker, agent restart writes (needs root)',
    onlyWhenNamed: true,
    run: () =>
      withRealNodes(async (env) => {
        const started = Date.now();
        const results = [...(await measureInstall(env)), ...(await measureLive(env))];
        say(`measured in ${((Date.now() - started) / 1_000).toFixed(0)} s`);
        return results;
      }),
  },
];
