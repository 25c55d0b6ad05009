/**
 * Brokers as any workload kind (#17) on the real nodes, with Tether installed by its chart and
 * its own image, as a user runs it:
 *   - a Home Assistant device announced on Mosquitto (lan.ts) → a **Wasm broker Deployment**
 *     (RuntimeClass `wasmtime`, the sample broker examples/wasm-broker run by Tether's shim
 *     deploy/wasm-shim on node 1's containerd 1.6) Running on the real kubelet, printing and
 *     serving the device's env the kubelet's Allocate gave it; last will → gone; back → Running;
 *   - the same device → a **SpinApp-shaped custom resource** (CRD installed here, the chart's
 *     `controller.brokerKinds` grant): the controller applies it with the device's resource, env
 *     and node; a stand-in operator (spin-operator.ts) turns it into a Wasm pod and reports
 *     Ready, so the Device's `BrokersReady` follows a custom kind's readiness; offline → gone;
 *     back → applied again and Running.
 * Discovery runs on node 1 only (the node with the wasmtime runtime).
 */
import { AppsV1Api, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Device } from '../../api/schema.ts';
import { loadKubeConfig, useTestNamespace } from '../integration/support.ts';
import { devicesOf, installTetherForSuite, RELEASE, SYSTEM_NAMESPACE, waitAgentsReady, waitControllersReady } from './chart-support.ts';
import { helmFor, type Helm } from './helm.ts';
import { startLanPeers, type LanPeers } from './lan.ts';
import { nodeLayout } from './layout.ts';
import { KubeClient } from '../../kube/client.ts';
import { Api } from '../../kube/resources.ts';
import { installSpinAppCrd, SPINAPPS } from '../support/spinapp.ts';
import { SPINAPP_OF_DISCOVERY, startSpinOperator, type SpinOperator } from './spin-operator.ts';
import { api, createDiscovery, waitFor, waitPodLogLines } from './support.ts';
import { ensureWasmRuntime, wasmRuntimeProblem, WASM_BROKER_IMAGE, WASM_RUNTIME_HANDLER } from './wasm.ts';

const ns = useTestNamespace('brokers');
const layout1 = nodeLayout();
const layout2 = nodeLayout(process.env, 2);
const node1 = (): string => inject('e2eNodeName');
const PORT = 8080;
/** A device may take this long to reach a Running broker on the busy 2-core machine (printed, not asserted). */
const BROKER_MS = 120_000;

let helm: Helm;
let lan: LanPeers;
let operator: SpinOperator | undefined;
const timings: Record<string, number> = {};

/** A DeviceDiscovery of the LAN's Home Assistant device on node 1 (the node with the wasmtime runtime), with `broker`. */
async function createHaDiscovery(name: string, broker: Record<string, unknown>): Promise<void> {
  await createDiscovery(ns.name, name, {
    handler: 'mqtt',
    details: { broker: lan.mqttUrl, homeAssistant: true },
    nodeSelector: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node1()] }] }] },
    capacity: 1,
    offlineGracePeriodSeconds: 1,
    broker,
  });
}

async function haDevice(discovery: string): Promise<Device | undefined> {
  return (await devicesOf(ns.name, discovery)).find((d) => d.spec.deviceId === lan.ha.deviceId);
}

/** Broker objects of a discovery, by the label every broker carries. */
async function brokerObjects(plural: 'deployments' | 'spinapps', discovery: string): Promise<{ metadata?: { name?: string } }[]> {
  const labelSelector = `tether.dev/component=broker,tether.dev/discovery=${discovery}`;
  if (plural === 'deployments') {
    return (await api().kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace: ns.name, labelSelector })).items;
  }
  const list = (await api().custom.listNamespacedCustomObject({ ...SPINAPPS, namespace: ns.name, labelSelector })) as { items: [] };
  return list.items;
}

/** The Running, Ready pod of a broker (Deployment pods carry the broker labels through the template). */
async function waitBrokerPod(discovery: string, description: string): Promise<V1Pod> {
  return waitFor(
    async () => {
      const pods = (await api().core.listNamespacedPod({ namespace: ns.name })).items.filter(
        (p) =>
          p.metadata?.deletionTimestamp == null &&
          (p.metadata?.labels?.['tether.dev/discovery'] === discovery || p.metadata?.labels?.[SPINAPP_OF_DISCOVERY] === discovery),
      );
      const ready = pods.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      return ready.length === 1 && pods.length === 1 ? ready[0] : undefined;
    },
    { timeoutMs: BROKER_MS, description },
  );
}

async function waitNoBrokers(plural: 'deployments' | 'spinapps', discovery: string, description: string): Promise<void> {
  await waitFor(async () => (await brokerObjects(plural, discovery)).length === 0, { timeoutMs: 60_000, description });
}

async function waitBrokersReady(discovery: string): Promise<Device> {
  return waitFor(
    async () => {
      const d = await haDevice(discovery);
      return d?.status?.conditions?.some((c) => c.type === 'BrokersReady' && c.status === 'True') ? d : undefined;
    },
    { timeoutMs: BROKER_MS, description: `the ${discovery} Device BrokersReady` },
  );
}

/** The device's env as the broker prints and serves it: what the kubelet's Allocate gave the container. */
function expectedLines(): string[] {
  return [`MQTT_BROKER_URL=${lan.mqttUrl}`, `HA_DEVICE_ID=${lan.ha.node}`, 'HA_MANUFACTURER=espressif'];
}

async function expectServedEnv(pod: V1Pod): Promise<void> {
  expect(pod.spec?.runtimeClassName).toBe(WASM_RUNTIME_HANDLER);
  expect(pod.spec?.nodeName).toBe(node1());
  await waitPodLogLines(ns.name, pod.metadata?.name ?? '', expectedLines(), 30_000);
  const response = await fetch(`http://${pod.status?.podIP ?? ''}:${PORT}/`, { signal: AbortSignal.timeout(10_000) });
  expect(response.status).toBe(200);
  const served = (await response.text()).split('\n');
  for (const line of expectedLines()) expect(served).toContain(line);
}

beforeAll(async () => {
  const problem = wasmRuntimeProblem(layout1);
  if (problem !== undefined) throw new Error(`node 1 cannot run Wasm pods: ${problem}`);
  await ensureWasmRuntime(layout1);
  helm = helmFor(inject('clusterBinDir'), inject('kubeconfig'));
  await installSpinAppCrd(new Api(new KubeClient(loadKubeConfig())));
  lan = await startLanPeers();
  await installTetherForSuite(
    helm,
    [layout1, layout2],
    '--set-json',
    `controller.brokerKinds=[{"apiGroup":"${SPINAPPS.group}","resources":["${SPINAPPS.plural}"]}]`,
  );
  await waitAgentsReady();
  await waitControllersReady();
}, 900_000);

afterAll(async () => {
  operator?.stop();
  await api()
    .core.deleteCollectionNamespacedPod({ namespace: ns.name, gracePeriodSeconds: 0 })
    .catch(() => undefined);
  await helm?.run('uninstall', RELEASE, '-n', SYSTEM_NAMESPACE, '--wait', '--timeout', '2m').catch(() => undefined);
  helm?.close();
  await lan?.stop();
  process.stderr.write(`[brokers] timings (s): ${JSON.stringify(timings)}\n`);
});

describe('brokers of any workload kind on the real nodes', () => {
  it('MQTT device → a Wasm broker Deployment (RuntimeClass wasmtime) Running with the device env; last will → gone; back → Running', async () => {
    await lan.ha.announce();
    let started = Date.now();
    await createHaDiscovery('wasm-ha', {
      workload: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'wasm-ha' } },
          template: {
            metadata: { labels: { app: 'wasm-ha' } },
            spec: {
              runtimeClassName: WASM_RUNTIME_HANDLER,
              containers: [
                {
                  name: 'main',
                  image: WASM_BROKER_IMAGE,
                  imagePullPolicy: 'Never',
                  env: [{ name: 'PORT', value: String(PORT) }],
                  ports: [{ containerPort: PORT, name: 'http' }],
                },
              ],
            },
          },
        },
      },
    });
    const pod = await waitBrokerPod('wasm-ha', 'a Ready Wasm broker pod of the wasm-ha Deployment');
    timings['discovery created → Wasm broker Ready'] = (Date.now() - started) / 1_000;
    const [deployment] = (await brokerObjects('deployments', 'wasm-ha')) as V1Deployment[];
    const device = await haDevice('wasm-ha');
    expect(deployment?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Device', name: device?.metadata?.name, controller: true });
    await expectServedEnv(pod);
    await waitBrokersReady('wasm-ha');

    started = Date.now();
    await lan.ha.dieAbruptly();
    await waitNoBrokers('deployments', 'wasm-ha', 'the Wasm broker Deployment deleted after the last will');
    timings['last will → Wasm broker Deployment gone'] = (Date.now() - started) / 1_000;

    started = Date.now();
    await lan.ha.announce();
    const back = await waitBrokerPod('wasm-ha', 'a Ready Wasm broker pod again after the device came back');
    timings['device back → Wasm broker Ready'] = (Date.now() - started) / 1_000;
    expect(back.metadata?.uid).not.toBe(pod.metadata?.uid);
    await expectServedEnv(back);
  });

  it('the same device → a SpinApp-shaped custom resource, run by a stand-in operator as a Wasm pod; Ready → BrokersReady; offline → gone; back → applied again', async () => {
    await createHaDiscovery('spin-ha', {
      workload: {
        apiVersion: `${SPINAPPS.group}/${SPINAPPS.version}`,
        kind: 'SpinApp',
        spec: { image: WASM_BROKER_IMAGE, executor: 'containerd-shim-spin', replicas: 1 },
        inject: {
          resources: ['/spec/resources/limits'],
          env: ['/spec/variables'],
          nodeSelector: ['/spec/deploymentConfig/nodeSelector'],
        },
      },
    });
    operator = startSpinOperator(ns.name, { runtimeClassName: WASM_RUNTIME_HANDLER, port: PORT });
    const started = Date.now();
    const [app] = (await waitFor(
      async () => {
        const apps = await brokerObjects('spinapps', 'spin-ha');
        return apps.length === 1 ? apps : undefined;
      },
      { timeoutMs: BROKER_MS, description: 'one SpinApp broker applied' },
    )) as { metadata?: { name?: string; ownerReferences?: { kind: string; name: string }[] }; spec?: Record<string, unknown> }[];
    const device = await haDevice('spin-ha');
    const name = device?.metadata?.name ?? '';
    expect(app?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Device', name });
    expect(app?.spec).toMatchObject({
      image: WASM_BROKER_IMAGE,
      resources: { limits: { [`tether.dev/${name}`]: '1' } },
      deploymentConfig: { nodeSelector: { 'kubernetes.io/hostname': node1() } },
    });
    expect(app?.spec?.['variables']).toEqual(
      expect.arrayContaining([
        { name: 'TETHER_DEVICE', value: name },
        { name: 'TETHER_DISCOVERY', value: 'spin-ha' },
        { name: 'TETHER_NODE', value: node1() },
      ]),
    );
    const pod = await waitBrokerPod('spin-ha', "the stand-in operator's Wasm pod Ready");
    await expectServedEnv(pod);
    await waitBrokersReady('spin-ha');
    timings['discovery created → SpinApp broker Ready'] = (Date.now() - started) / 1_000;

    await lan.ha.dieAbruptly();
    await waitNoBrokers('spinapps', 'spin-ha', 'the SpinApp deleted after the last will');
    await lan.ha.announce();
    await waitFor(async () => (await brokerObjects('spinapps', 'spin-ha')).length === 1, {
      timeoutMs: BROKER_MS,
      description: 'the SpinApp applied again when the device came back',
    });
    const back = await waitBrokerPod('spin-ha', "the stand-in operator's Wasm pod Ready again");
    await expectServedEnv(back);
  });
});
