/**
 * Tether as a user runs it: its own image (deploy/image, `npm run image`)
 * imported into each node's containerd, installed by its Helm chart
 * (deploy/helm/tether) — the agent as DaemonSet pods on both e2e nodes, the
 * controller as the chart's two-replica, leader-elected Deployment, all under
 * the chart's RBAC. No Tether process runs on the host here.
 *
 * Devices: a shared debug-echo device, and on the simulated device LAN (lan.ts,
 * a third network namespace both nodes reach) a Home Assistant MQTT device on
 * Mosquitto and an ONVIF camera that wants credentials from a Secret.
 *
 * The scenarios build on each other and run in order; every wait watches the
 * world (objects, pod logs) with a deadline. The cluster has no kube-proxy, so
 * the chart's pods are told the apiserver's address (KUBERNETES_SERVICE_HOST/
 * PORT via extraEnv), as kube-proxy-free clusters do.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ApiextensionsV1Api, AppsV1Api, RbacAuthorizationV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deviceResourceName } from '../../api/names.ts';
import type { Device } from '../../api/schema.ts';
import { buildTetherImage } from '../../deploy/image/tether-image.ts';
import { api, isApiError, useTestNamespace, waitFor } from '../integration/support.ts';
import {
  agentPodOn,
  brokerPods,
  ChangeRecorder,
  componentPods,
  devicesOf,
  deviceSnapshot,
  isReady,
  leaderPod,
  leaseHolder,
  RELEASE,
  SYSTEM_NAMESPACE,
  waitAgentsReady,
  waitBrokers,
  waitControllersReady,
  waitLogLines,
  waitNodeState,
} from './chart-support.ts';
import { writeE2eChartValues } from './cluster.ts';
import { CHART, helmFor, type Helm } from './helm.ts';
import { importTetherImage } from './images.ts';
import { startLanPeers, type LanPeers } from './lan.ts';
import { busyboxBroker, nodeLayout } from './layout.ts';
import { setUplink } from './isolation.ts';
import { restartKubelet, startKubeletAgain, stopKubelet } from './node.ts';
import { createDiscovery, createPod, devicePod, kubeletAllocatableIds, waitPodRunning, waitPodUnschedulable } from './support.ts';

const execFileAsync = promisify(execFile);
const ns = useTestNamespace('chart');
const layout1 = nodeLayout();
const layout2 = nodeLayout(process.env, 2);
const [node1, node2] = [inject('e2eNodeName'), inject('e2eNode2Name')];
/** Controller: a NotReady node is lost after this long (the cluster marks a silent node NotReady after 10 s). */
const NODE_LOSS_GRACE_S = 5;

/** Brokers print the device's env, then idle. */
const brokerTemplate = busyboxBroker('TETHER_|DEBUG_ECHO_|MQTT_|HA_|ONVIF_');

let helm: Helm;
let lan: LanPeers;
const timings: Record<string, number> = {};

function uids(pods: V1Pod[]): string[] {
  return pods.map((p) => p.metadata?.uid ?? '').sort();
}

/** What a user passes on this cluster: its values file (the apiserver's address), a short node-loss grace. */
function installValues(): string[] {
  return [
    '-f',
    writeE2eChartValues(layout1, inject('e2eNodeServer')),
    '--set-json',
    `controller.extraArgs=["--node-loss-grace=${NODE_LOSS_GRACE_S}"]`,
  ];
}

/** The Device a discovery made for `deviceId` (found by its spec, not by recomputing its name). */
async function device(discovery: string, deviceId: string): Promise<Device> {
  const found = (await devicesOf(ns.name, discovery)).find((d) => d.spec.deviceId === deviceId);
  if (found === undefined) throw new Error(`no Device for ${discovery}/${deviceId}`);
  return found;
}

async function waitDeviceState(
  discovery: string,
  deviceId: string,
  predicate: (d: Device) => boolean,
  description: string,
  timeoutMs = 60_000,
): Promise<Device> {
  let last: Device | undefined;
  try {
    return await waitFor(
      async () => {
        last = await device(discovery, deviceId);
        return predicate(last) ? last : undefined;
      },
      { timeoutMs, description },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; Device: ${JSON.stringify(last?.spec ?? 'none')} ${JSON.stringify(last?.status ?? {})}`, {
      cause: error,
    });
  }
}

function nodesOf(d: Device): string[] {
  return [...(d.spec.nodes ?? [])].sort();
}

const CRDS = ['devicediscoveries.tether.dev', 'devices.tether.dev'];
/** The README's first DeviceDiscovery. */
const EXAMPLE = fileURLToPath(new URL('../../deploy/examples/debug-echo.yaml', import.meta.url));
const EXAMPLE_NAMESPACE = 'tether-demo';

/** `kubectl apply -f`, as the README has users do. */
async function kubectlApply(file: string): Promise<void> {
  await execFileAsync(join(inject('clusterBinDir'), 'kubectl'), ['apply', '-f', file], {
    env: { ...process.env, KUBECONFIG: inject('kubeconfig'), KUBERC: 'off' },
  });
}

async function deleteTetherCrds(): Promise<void> {
  const ext = api().kc.makeApiClient(ApiextensionsV1Api);
  for (const name of CRDS) {
    try {
      await ext.deleteCustomResourceDefinition({ name });
    } catch (error) {
      if (!isApiError(error, 404)) throw error;
    }
  }
  await waitFor(
    async () => {
      const left = await Promise.all(
        CRDS.map((name) =>
          ext.readCustomResourceDefinition({ name }).then(
            () => name,
            () => undefined,
          ),
        ),
      );
      return left.every((name) => name === undefined);
    },
    { timeoutMs: 60_000, description: 'the Tether CRDs deleted' },
  );
}

beforeAll(async () => {
  helm = helmFor(inject('clusterBinDir'), inject('kubeconfig'));
  const image = await buildTetherImage({ platforms: ['linux/amd64'], log: (m) => process.stderr.write(`[image] ${m}\n`) });
  for (const layout of [layout1, layout2]) importTetherImage(layout, image);
  lan = await startLanPeers();
  // A release left by an interrupted run would block the install.
  await helm.run('uninstall', RELEASE, '-n', SYSTEM_NAMESPACE, '--ignore-not-found', '--wait', '--timeout', '2m');
  // …and so would a Lease an older chart's controllers left (not the release's).
  await api()
    .coordination.deleteNamespacedLease({ namespace: SYSTEM_NAMESPACE, name: 'tether-controller' })
    .catch(() => undefined);
  // A fresh cluster, as a user's: the chart installs the CRDs (the e2e control plane applied its own).
  await deleteTetherCrds();
  try {
    await api().core.createNamespace({
      body: { metadata: { name: SYSTEM_NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } },
    });
  } catch (error) {
    if (!isApiError(error, 409)) throw error;
  }
}, 900_000);

afterAll(async () => {
  await api()
    .core.deleteNamespace({ name: EXAMPLE_NAMESPACE })
    .catch(() => undefined);
  await helm?.run('uninstall', RELEASE, '-n', SYSTEM_NAMESPACE, '--wait', '--timeout', '2m').catch(() => undefined);
  await lan?.stop();
  helm?.close();
  process.stderr.write(`[chart] timings (s): ${JSON.stringify(timings)}\n`);
});

describe('Tether installed by its Helm chart on two nodes', () => {
  it('installs: agent pods on both nodes, two controllers with one leader', async () => {
    const started = Date.now();
    await helm.run('install', RELEASE, CHART, '-n', SYSTEM_NAMESPACE, ...installValues(), '--wait', '--timeout', '3m');
    timings['install'] = (Date.now() - started) / 1_000;
    await waitAgentsReady();
    await waitControllersReady();
    const agents = await componentPods('agent');
    expect(agents.map((p) => p.spec?.nodeName).sort()).toEqual([node1, node2].sort());
    // The image the chart names by default, run as the chart says.
    for (const pod of agents) expect(pod.spec?.containers[0]?.image).toBe('ghcr.io/tether-dev/tether:0.1.0');
    const controllers = await componentPods('controller');
    expect(controllers).toHaveLength(2);
    const leader = await leaderPod();
    expect(controllers.map((p) => p.metadata?.name)).toContain(leader.metadata?.name);
    // The controller runs as the image's non-root user.
    expect(controllers[0]?.status?.containerStatuses?.[0]?.ready).toBe(true);
  });

  it('the README’s first DeviceDiscovery (deploy/examples/debug-echo.yaml, applied with kubectl) gives Devices on both nodes', async () => {
    await kubectlApply(EXAMPLE);
    const devices = await waitFor(
      async () => {
        const found = await devicesOf(EXAMPLE_NAMESPACE, 'echo');
        return found.length === 4 ? found : undefined;
      },
      { timeoutMs: 60_000, description: '2 echo devices on each of the 2 nodes' },
    );
    expect(devices.map((d) => `${d.spec.deviceId}@${nodesOf(d).join(',')}`).sort()).toEqual(
      ['cam-1', 'cam-2'].flatMap((id) => [node1, node2].map((node) => `${id}@${node}`)).sort(),
    );
  });

  it('a shared debug-echo device seen by both nodes: one Device, a broker per node within capacity, Services', async () => {
    await createDiscovery(ns.name, 'shared-echo', {
      handler: 'debug-echo',
      details: { descriptions: ['shared-1'], shared: true },
      capacity: 2,
      offlineGracePeriodSeconds: 1,
      broker: brokerTemplate,
      deviceService: { ports: [{ name: 'http', port: 80 }] },
      discoveryService: { ports: [{ name: 'http', port: 80 }] },
    });
    const d = await waitDeviceState('shared-echo', 'shared-1', (x) => nodesOf(x).length === 2, 'the shared Device listing both nodes');
    expect(nodesOf(d)).toEqual([node1, node2].sort());
    const { pods } = await waitBrokers(ns.name, 'shared-echo', 2);
    expect(pods.map((p) => p.spec?.nodeName).sort()).toEqual([node1, node2].sort());
    const name = d.metadata?.name ?? '';
    const suffix = name.slice(-16).toUpperCase();
    for (const pod of pods) {
      await waitLogLines(ns.name, pod.metadata?.name ?? '', 'broker', [
        'DEBUG_ECHO_DESCRIPTION=shared-1',
        `DEBUG_ECHO_DESCRIPTION_${suffix}=shared-1`,
        `TETHER_DEVICES=${name}`,
      ]);
    }
    // Both slots held, one per node.
    const held = await waitDeviceState('shared-echo', 'shared-1', (x) => Object.keys(x.spec.slots ?? {}).length === 2, 'both slots held');
    expect(Object.values(held.spec.slots ?? {}).sort()).toEqual([node1, node2].sort());
    await waitFor(async () => (await api().core.readNamespacedService({ namespace: ns.name, name: `${name}-svc` })).spec?.selector, {
      description: 'the device Service',
    });
    await waitFor(async () => (await api().core.readNamespacedService({ namespace: ns.name, name: 'shared-echo-svc' })).spec?.selector, {
      description: 'the discovery Service',
    });
  });

  it('MQTT: a Home Assistant device on Mosquitto → broker with its env; last will → gone; back → Running', async () => {
    await lan.ha.announce();
    await createDiscovery(ns.name, 'ha', {
      handler: 'mqtt',
      details: { broker: lan.mqttUrl, homeAssistant: true },
      capacity: 1,
      offlineGracePeriodSeconds: 1,
      broker: brokerTemplate,
    });
    const { pods } = await waitBrokers(ns.name, 'ha', 1, 90_000);
    await waitLogLines(ns.name, pods[0]?.metadata?.name ?? '', 'broker', [
      `MQTT_BROKER_URL=${lan.mqttUrl}`,
      `HA_DEVICE_ID=${lan.ha.node}`,
      'HA_MANUFACTURER=espressif',
    ]);
    let started = Date.now();
    await lan.ha.dieAbruptly();
    await waitBrokers(ns.name, 'ha', 0);
    timings['mqtt last will → brokers gone'] = (Date.now() - started) / 1_000;
    started = Date.now();
    await lan.ha.announce();
    await waitBrokers(ns.name, 'ha', 1);
    timings['mqtt re-announce → broker Running'] = (Date.now() - started) / 1_000;
  });

  it('ONVIF: a camera with credentials from a Secret → broker with ONVIF_STREAM_URI; Bye → gone; Hello → back', async () => {
    await api().core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'lan-camera' }, stringData: { username: lan.camera.username, password: lan.camera.password } },
    });
    await createDiscovery(ns.name, 'cameras', {
      handler: 'onvif',
      details: { interfaces: ['te2e-lan'] },
      properties: [
        { name: 'ONVIF_USERNAME', valueFrom: { secretKeyRef: { name: 'lan-camera', key: 'username' } } },
        { name: 'ONVIF_PASSWORD', valueFrom: { secretKeyRef: { name: 'lan-camera', key: 'password' } } },
      ],
      capacity: 1,
      offlineGracePeriodSeconds: 1,
      broker: brokerTemplate,
    });
    const { pods } = await waitBrokers(ns.name, 'cameras', 1, 90_000);
    await waitLogLines(ns.name, pods[0]?.metadata?.name ?? '', 'broker', [
      `ONVIF_STREAM_URI=${lan.camera.streamUri}`,
      `ONVIF_DEVICE_UUID=${lan.camera.uuid}`,
    ]);
    let started = Date.now();
    await lan.camera.bye();
    await waitBrokers(ns.name, 'cameras', 0);
    timings['onvif Bye → brokers gone'] = (Date.now() - started) / 1_000;
    started = Date.now();
    await lan.camera.hello();
    await waitBrokers(ns.name, 'cameras', 1);
    timings['onvif Hello → broker Running'] = (Date.now() - started) / 1_000;
  });

  it('capacity 2 with 3 consumer pods: 2 Running, the third Pending with the scheduler’s reason', async () => {
    await createDiscovery(ns.name, 'cap', {
      handler: 'debug-echo',
      details: { descriptions: ['cap-1'] },
      capacity: 2,
      nodeSelector: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node1] }] }] },
    });
    const d = await waitDeviceState('cap', 'cap-1', (x) => nodesOf(x).length === 1, 'the node-local Device', 60_000);
    const resource = deviceResourceName(d.metadata?.name ?? '');
    await waitNodeState(node1, (n) => n.status?.allocatable?.[resource] === '2', `${resource} allocatable on ${node1}`);
    for (const name of ['consumer-1', 'consumer-2']) await createPod(ns.name, devicePod(name, resource, 'env | grep ^TETHER_DEVICES='));
    for (const name of ['consumer-1', 'consumer-2']) await waitPodRunning(ns.name, name);
    await createPod(ns.name, devicePod('consumer-3', resource, 'true'));
    const reason = await waitPodUnschedulable(ns.name, 'consumer-3');
    expect(reason).toContain(`Insufficient ${resource}`);
    const held = await waitDeviceState(
      'cap',
      'cap-1',
      (x) => Object.keys(x.spec.slots ?? {}).length === 2,
      'both slots held by the consumers',
    );
    expect(Object.values(held.spec.slots ?? {})).toEqual([node1, node1]);
  });

  it('the last slot of a shared device, asked for on both nodes at once: exactly one pod gets it', async () => {
    await createDiscovery(ns.name, 'race', { handler: 'debug-echo', details: { descriptions: ['race-1'], shared: true }, capacity: 1 });
    const d = await waitDeviceState('race', 'race-1', (x) => nodesOf(x).length === 2, 'the shared Device on both nodes');
    const resource = deviceResourceName(d.metadata?.name ?? '');
    for (const node of [node1, node2])
      await waitNodeState(node, (n) => n.status?.allocatable?.[resource] === '1', `${resource} allocatable on ${node}`);
    // Bound to their nodes directly (no scheduler): both kubelets admit and Allocate at once.
    const pods = [node1, node2].map((node, i) => ({
      ...devicePod(`racer-${i + 1}`, resource, 'true'),
      spec: { ...devicePod(`racer-${i + 1}`, resource, 'true').spec!, nodeName: node },
    }));
    await Promise.all(pods.map((pod) => createPod(ns.name, pod)));
    const settled = await waitFor(
      async () => {
        const list = await Promise.all(['racer-1', 'racer-2'].map((name) => api().core.readNamespacedPod({ namespace: ns.name, name })));
        const running = list.filter((p) => p.status?.phase === 'Running');
        const refused = list.filter((p) => p.status?.phase === 'Failed');
        return running.length === 1 && refused.length === 1 ? { running: running[0]!, refused: refused[0]! } : undefined;
      },
      { timeoutMs: 60_000, description: 'one racer Running, the other refused by its kubelet' },
    );
    expect(settled.refused.status?.reason).toBe('UnexpectedAdmissionError');
    const winner = settled.running.spec?.nodeName;
    const held = await waitDeviceState('race', 'race-1', (x) => Object.keys(x.spec.slots ?? {}).length === 1, 'the slot held');
    expect(held.spec.slots).toEqual({ '0': winner });
  });

  it('agent pod deleted: the DaemonSet recreates it; no Device deleted or changed, no broker restarted, slots kept', async () => {
    const before = await deviceSnapshot(ns.name);
    const brokersBefore = uids(
      (await brokerPods(ns.name, 'shared-echo')).concat(await brokerPods(ns.name, 'ha'), await brokerPods(ns.name, 'cameras')),
    );
    const recorder = new ChangeRecorder(ns.name);
    await recorder.start();
    try {
      const old = await agentPodOn(node1);
      const deleted = Date.now();
      await api().core.deleteNamespacedPod({ namespace: SYSTEM_NAMESPACE, name: old.metadata?.name ?? '' });
      // Ready = the new agent read its Devices back and started its sessions (/readyz).
      const fresh = await waitFor(
        async () => {
          const pod = await agentPodOn(node1).catch(() => undefined);
          const ready = pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
          return pod !== undefined && pod.metadata?.uid !== old.metadata?.uid && ready ? pod : undefined;
        },
        { timeoutMs: 60_000, description: 'a new, ready agent pod on node 1' },
      );
      timings['agent pod deleted → new agent Ready'] = (Date.now() - deleted) / 1_000;
      // It serves the kubelet again: the shared device is allocatable through its fresh plugin.
      const shared = await device('shared-echo', 'shared-1');
      await waitFor(
        async () => (await kubeletAllocatableIds(layout1.podResourcesSocket, deviceResourceName(shared.metadata?.name ?? ''))).length > 0,
        {
          timeoutMs: 30_000,
          description: 'the shared device registered by the new agent',
        },
      );
      expect(fresh.metadata?.name).not.toBe(old.metadata?.name);
      expect(recorder.deviceChurn(before)).toEqual([]);
      expect(recorder.brokerChurn()).toEqual([]);
    } finally {
      recorder.stop();
    }
    const after = await deviceSnapshot(ns.name);
    for (const [name, d] of before) expect(after.get(name)?.spec.slots ?? {}).toEqual(d.spec.slots ?? {});
    expect(
      uids((await brokerPods(ns.name, 'shared-echo')).concat(await brokerPods(ns.name, 'ha'), await brokerPods(ns.name, 'cameras'))),
    ).toEqual(brokersBefore);
  });

  it('controller leader pod deleted: the standby leads within the lease; brokers untouched', async () => {
    const leader = await leaderPod();
    const brokersBefore = uids(await brokerPods(ns.name, 'shared-echo'));
    const recorder = new ChangeRecorder(ns.name);
    await recorder.start();
    try {
      const started = Date.now();
      await api().core.deleteNamespacedPod({ namespace: SYSTEM_NAMESPACE, name: leader.metadata?.name ?? '' });
      const next = await waitFor(
        async () => {
          const pod = await leaderPod(5_000).catch(() => undefined);
          return pod !== undefined && pod.metadata?.name !== leader.metadata?.name ? pod : undefined;
        },
        // The released lease is taken at the standby's next try (--retry-period, 30 s); an
        // unreleased one would take the lease duration (90 s), past this.
        { timeoutMs: 45_000, description: 'another controller pod holding the Lease' },
      );
      timings['leader deleted → standby leads'] = (Date.now() - started) / 1_000;
      expect(next.metadata?.name).not.toBe(leader.metadata?.name);
      await waitControllersReady();
      expect(recorder.brokerChurn()).toEqual([]);
    } finally {
      recorder.stop();
    }
    expect(uids(await brokerPods(ns.name, 'shared-echo'))).toEqual(brokersBefore);
  });

  it('kubelet restart on node 1: plugins re-register, running brokers untouched', async () => {
    const d = await device('shared-echo', 'shared-1');
    const resource = deviceResourceName(d.metadata?.name ?? '');
    const brokersBefore = await brokerPods(ns.name, 'shared-echo');
    const idsBefore = await kubeletAllocatableIds(layout1.podResourcesSocket, resource);
    expect(idsBefore).toHaveLength(1); // the other slot is held on node 2: Unhealthy here
    const restart = await restartKubelet({ layout: layout1 });
    // The restarted kubelet starts with no devices (it deletes every plugin socket): the
    // device back in its own view means the agent re-registered on fresh sockets.
    await waitFor(
      async () => JSON.stringify(await kubeletAllocatableIds(layout1.podResourcesSocket, resource)) === JSON.stringify(idsBefore),
      {
        timeoutMs: 30_000,
        description: `${resource} allocatable again in the restarted kubelet`,
      },
    );
    timings['kubelet restart → Ready'] = restart.readyMs / 1_000;
    timings['kubelet restart → device allocatable'] = (Date.now() - restart.startedAt) / 1_000;
    const after = await brokerPods(ns.name, 'shared-echo');
    expect(uids(after)).toEqual(uids(brokersBefore));
    for (const pod of after) expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  });

  it('node loss: node 2 stops → its entries and slots are released, node 1 untouched; back → it rejoins, and a pod that outlived the outage gets its slot recorded again', async () => {
    const brokers1 = (await brokerPods(ns.name, 'shared-echo')).filter((p) => p.spec?.nodeName === node1);
    expect(brokers1).toHaveLength(1);
    // A consumer on node 2 that is not a broker: the controller leaves it alone, so it outlives the outage.
    await createDiscovery(ns.name, 'outage', { handler: 'debug-echo', details: { descriptions: ['outage-1'], shared: true }, capacity: 2 });
    const outage = await waitDeviceState('outage', 'outage-1', (x) => nodesOf(x).length === 2, 'the outage Device on both nodes');
    const outageResource = deviceResourceName(outage.metadata?.name ?? '');
    await waitNodeState(node2, (n) => n.status?.allocatable?.[outageResource] === '2', `${outageResource} allocatable on ${node2}`);
    const survivor = devicePod('survivor', outageResource, 'true');
    await createPod(ns.name, { ...survivor, spec: { ...survivor.spec!, nodeName: node2 } });
    await waitFor(async () => (await api().core.readNamespacedPod({ namespace: ns.name, name: 'survivor' })).status?.phase === 'Running', {
      timeoutMs: 60_000,
      description: 'the survivor pod Running on node 2',
    });
    await waitDeviceState('outage', 'outage-1', (x) => Object.values(x.spec.slots ?? {}).includes(node2), 'the survivor’s slot recorded');
    const survivorUid = (await api().core.readNamespacedPod({ namespace: ns.name, name: 'survivor' })).metadata?.uid;
    const started = Date.now();
    await stopKubelet({ layout: layout2 });
    setUplink(layout2, false);
    try {
      await waitNodeState(node2, (n) => !isReady(n), `${node2} NotReady`, 60_000);
      const released = await waitDeviceState(
        'shared-echo',
        'shared-1',
        (x) => !nodesOf(x).includes(node2) && !Object.values(x.spec.slots ?? {}).includes(node2),
        `${node2} released from the shared Device`,
        60_000,
      );
      timings['node stopped → released'] = (Date.now() - started) / 1_000;
      expect(nodesOf(released)).toEqual([node1]);
      expect(Object.values(released.spec.slots ?? {})).toEqual([node1]);
      const still = (await brokerPods(ns.name, 'shared-echo')).filter((p) => p.spec?.nodeName === node1);
      expect(uids(still)).toEqual(uids(brokers1));
      await waitDeviceState(
        'outage',
        'outage-1',
        (x) => !Object.values(x.spec.slots ?? {}).includes(node2),
        'the survivor’s slot released while node 2 is lost',
        30_000,
      );
    } finally {
      setUplink(layout2, true);
      await startKubeletAgain({ layout: layout2 });
    }
    await waitNodeState(node2, isReady, `${node2} Ready again`, 90_000);
    const rejoined = await waitDeviceState(
      'shared-echo',
      'shared-1',
      (x) => nodesOf(x).includes(node2),
      `${node2} back in the shared Device`,
      90_000,
    );
    expect(nodesOf(rejoined)).toEqual([node1, node2].sort());
    // The controller released node 2's slots while it was lost; the survivor still holds its
    // device, so node 2's agent records the slot again (else another node could take it).
    const restored = await waitDeviceState(
      'outage',
      'outage-1',
      (x) => Object.values(x.spec.slots ?? {}).includes(node2),
      'the survivor’s slot recorded again',
      60_000,
    );
    expect(Object.values(restored.spec.slots ?? {})).toEqual([node2]);
    expect((await api().core.readNamespacedPod({ namespace: ns.name, name: 'survivor' })).metadata?.uid).toBe(survivorUid);
    // The same holds for the race winner of the earlier case, if it ran on node 2.
    await waitDeviceState('race', 'race-1', (x) => Object.keys(x.spec.slots ?? {}).length === 1, 'the race winner’s slot recorded', 60_000);
    await waitFor(
      async () =>
        (await brokerPods(ns.name, 'shared-echo')).filter((p) => p.spec?.nodeName === node2 && p.status?.phase === 'Running').length === 1,
      { timeoutMs: 90_000, description: `a Running broker on ${node2} again` },
    );
    await waitAgentsReady();
  });

  it('helm upgrade with a changed value rolls the agents with no Device churn', async () => {
    const before = await deviceSnapshot(ns.name);
    const agentsBefore = uids(await componentPods('agent'));
    const recorder = new ChangeRecorder(ns.name);
    await recorder.start();
    try {
      await helm.run(
        'upgrade',
        RELEASE,
        CHART,
        '-n',
        SYSTEM_NAMESPACE,
        ...installValues(),
        '--set',
        'logLevel=debug',
        '--wait',
        '--timeout',
        '3m',
      );
      await waitAgentsReady();
      await waitControllersReady();
      const agentsAfter = await componentPods('agent');
      expect(uids(agentsAfter).filter((uid) => agentsBefore.includes(uid))).toEqual([]);
      for (const pod of agentsAfter) expect(pod.spec?.containers[0]?.args).toContain('--log-level=debug');
      expect(recorder.deviceChurn(before)).toEqual([]);
      expect(recorder.brokerChurn()).toEqual([]);
    } finally {
      recorder.stop();
    }
  });

  it('helm uninstall removes everything it installed and keeps the CRDs', async () => {
    await helm.run('uninstall', RELEASE, '-n', SYSTEM_NAMESPACE, '--wait', '--timeout', '2m');
    const selector = `app.kubernetes.io/instance=${RELEASE}`;
    await waitFor(async () => (await componentPods('agent')).length === 0 && (await componentPods('controller')).length === 0, {
      timeoutMs: 60_000,
      description: 'chart pods gone',
    });
    const apps = api().kc.makeApiClient(AppsV1Api);
    const rbac = api().kc.makeApiClient(RbacAuthorizationV1Api);
    expect((await apps.listNamespacedDaemonSet({ namespace: SYSTEM_NAMESPACE, labelSelector: selector })).items).toEqual([]);
    expect((await apps.listNamespacedDeployment({ namespace: SYSTEM_NAMESPACE, labelSelector: selector })).items).toEqual([]);
    expect((await api().core.listNamespacedServiceAccount({ namespace: SYSTEM_NAMESPACE, labelSelector: selector })).items).toEqual([]);
    expect((await api().core.listNamespacedService({ namespace: SYSTEM_NAMESPACE, labelSelector: selector })).items).toEqual([]);
    expect((await rbac.listClusterRole({ labelSelector: selector })).items).toEqual([]);
    expect((await rbac.listClusterRoleBinding({ labelSelector: selector })).items).toEqual([]);
    const ext = api().kc.makeApiClient(ApiextensionsV1Api);
    // The controllers' Lease goes with the release: a reinstall leads at once.
    await waitFor(
      async () =>
        (await leaseHolder()) === undefined &&
        (await api()
          .coordination.readNamespacedLease({ namespace: SYSTEM_NAMESPACE, name: 'tether-controller' })
          .then(
            () => false,
            () => true,
          )),
      {
        timeoutMs: 30_000,
        description: 'the controller Lease deleted',
      },
    );
    for (const crd of CRDS) expect((await ext.readCustomResourceDefinition({ name: crd })).metadata?.name).toBe(crd);
  });
});
