/**
 * `npm start`: Tether doing its real job on this machine, as a user would run it — the e2e
 * cluster (a control plane and two real kubelets), Tether's own image installed by its Helm
 * chart, simulated devices on a network-namespace LAN (a Home Assistant device on Mosquitto,
 * an ONVIF camera that wants a login), a shared debug-echo device, sample DeviceDiscoveries
 * with busybox brokers, and a live view of discoveries, devices, slots and brokers while the
 * LAN devices come and go on their own.
 *
 *   npm start                 # runs until Ctrl-C, which stops everything it started
 *   npm start -- --rounds 2   # two come-and-go rounds, then stop (for scripts)
 *
 * Needs root (kubelets, containerd, network namespaces); without it, says so and points at
 * `npm run demo`. Everything built (Kubernetes, images) is cached: a second start takes
 * seconds.
 */
import { parseArgs } from 'node:util';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { renderTable } from '../../agent/cli/table.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { buildTetherImage } from '../../deploy/image/tether-image.ts';
import { clusterDown } from '../cluster/cluster.ts';
import { e2eClusterUp, ensureE2eCacheDir, writeE2eChartValues } from './cluster.ts';
import { CHART, helmFor } from './helm.ts';
import { importTetherImage } from './images.ts';
import { attachToLan, removeLan, startLanPeers, type LanPeers } from './lan.ts';
import { busyboxBroker, nodeLayout } from './layout.ts';
import { nodeDown, nodeUp } from './node.ts';

const NAMESPACE = 'tether-start';
const SYSTEM = 'tether-system';
const GROUP = 'tether.dev';
const VERSION = 'v1alpha1';
const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '0' }, 'period-ms': { type: 'string', default: '12000' } } });
const rounds = Number(flags.rounds);
const periodMs = Number(flags['period-ms']);

const say = (message: string): void => void process.stderr.write(`[start] ${message}\n`);

if (process.getuid?.() !== 0) {
  process.stderr.write(
    'npm start runs real kubelets, containerd and network namespaces, so it needs root (sudo npm start).\n' +
      'Without root, `npm run demo` shows devices served to a mock kubelet over the real device-plugin gRPC API.\n',
  );
  process.exit(1);
}


function discoveries(lan: LanPeers): DeviceDiscovery[] {
  const make = (name: string, spec: Record<string, unknown>): DeviceDiscovery =>
    ({ apiVersion: `${GROUP}/${VERSION}`, kind: 'DeviceDiscovery', metadata: { name, namespace: NAMESPACE }, spec: { offlineGracePeriodSeconds: 1, ...spec } }) as DeviceDiscovery;
  return [
    make('echo', { handler: 'debug-echo', details: { descriptions: ['shared-cam'], shared: true }, capacity: 2, broker: busyboxBroker('DEBUG_ECHO_|TETHER_') }),
    make('ha', { handler: 'mqtt', details: { broker: lan.mqttUrl, homeAssistant: true }, capacity: 1, broker: busyboxBroker('MQTT_|HA_DEVICE') }),
    make('cameras', {
      handler: 'onvif',
      details: { interfaces: ['te2e-lan'] },
      properties: [
        { name: 'ONVIF_USERNAME', valueFrom: { secretKeyRef: { name: 'camera-login', key: 'username' } } },
        { name: 'ONVIF_PASSWORD', valueFrom: { secretKeyRef: { name: 'camera-login', key: 'password' } } },
      ],
      capacity: 1,
      broker: busyboxBroker('ONVIF_STREAM|ONVIF_DEVICE_UUID'),
    }),
  ];
}

async function ignoreConflict(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw error;
  }
}

/** The live view: what a user would otherwise piece together from kubectl. */
async function render(kc: KubeConfig, lastEvent: string): Promise<string> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const list = <T>(plural: string): Promise<T[]> =>
    custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NAMESPACE, plural }).then((r) => (r as { items: T[] }).items);
  const [dds, devices, pods, agents] = await Promise.all([
    list<DeviceDiscovery>('devicediscoveries'),
    list<Device>('devices'),
    core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'tether.dev/component=broker' }),
    apps.readNamespacedDaemonSet({ namespace: SYSTEM, name: 'tether-agent' }).catch(() => undefined),
  ]);
  const discoveryRows = dds.map((d) => [d.metadata?.name ?? '', d.spec.handler, String(devices.filter((x) => x.spec.discovery === d.metadata?.name).length)]);
  const deviceRows = devices.map((d) => {
    // A node without a nodeStates entry sees the device (agents write Offline transitions).
    const offline = new Set((d.status?.nodeStates ?? []).filter((s) => s.state === 'Offline').map((s) => s.node));
    const states = [...(d.spec.nodes ?? [])].sort().map((node) => (offline.has(node) ? `${node}:Offline` : `${node}:Online`)).join(' ');
    const slots = Object.entries(d.spec.slots ?? {}).map(([slot, node]) => `${slot}→${node}`).join(' ');
    return [d.metadata?.name ?? '', d.spec.deviceId.slice(0, 40), [...(d.spec.nodes ?? [])].sort().join(','), states || '-', `${slots || '-'} (of ${d.spec.capacity})`];
  });
  const podRows = pods.items.map((p: V1Pod) => [p.metadata?.name ?? '', p.spec?.nodeName ?? '-', p.metadata?.deletionTimestamp ? 'Terminating' : (p.status?.phase ?? '?')]);
  const ready = agents?.status === undefined ? '?' : `${agents.status.numberReady}/${agents.status.desiredNumberScheduled}`;
  return [
    `Tether on two real kubelets — agents ready ${ready} — ${new Date().toISOString().slice(11, 19)} — Ctrl-C stops everything`,
    `last: ${lastEvent}`,
    '',
    renderTable(['DISCOVERY', 'HANDLER', 'DEVICES'], discoveryRows),
    renderTable(['DEVICE', 'ID', 'NODES', 'STATE', 'SLOTS'], deviceRows),
    renderTable(['BROKER', 'NODE', 'PHASE'], podRows),
  ].join('\n');
}

async function main(): Promise<void> {
  const layouts = [nodeLayout(), nodeLayout(process.env, 2)] as const;
  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
  let lan: LanPeers | undefined;
  const helm = { release: 'tether', run: undefined as ((...args: string[]) => Promise<string>) | undefined };
  try {
    say('control plane (Kubernetes binaries build once, ~15 min cold; progress below)…');
    ensureE2eCacheDir(layouts[0]);
    const cluster = await e2eClusterUp(layouts[0]);
    for (const layout of layouts) {
      const node = await nodeUp(cluster, { layout });
      say(`node ${node.name} ${node.reused ? 'reused' : 'started'}`);
    }
    attachToLan({ address: '10.250.90.11', tag: 'n1' });
    attachToLan({ netns: layouts[1].isolation?.netns, address: '10.250.90.12', tag: 'n2' });
    lan = await startLanPeers();
    say(`device LAN up: Mosquitto ${lan.mqttUrl}, Home Assistant device ${lan.ha.node}, ONVIF camera ${lan.camera.uuid}`);
    const image = await buildTetherImage({ platforms: ['linux/amd64'], log: (m) => say(`image: ${m}`) });
    for (const layout of layouts) importTetherImage(layout, image);
    say(`image ${image.reference} on both nodes`);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await ignoreConflict(core.createNamespace({ body: { metadata: { name: SYSTEM, labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } } }));
    const runner = helmFor(cluster.binDir, cluster.kubeconfig);
    helm.run = (...args) => runner.run(...args);
    // The e2e control plane applies its own CRDs; the chart installs them itself when they are not there.
    await runner.run('upgrade', '--install', helm.release, CHART, '-n', SYSTEM, '-f', writeE2eChartValues(layouts[0], cluster.nodeServer), '--set', 'crds.install=false', '--wait', '--timeout', '3m');
    say('Tether installed by its chart (agents on both nodes, two controllers)');
    await ignoreConflict(core.createNamespace({ body: { metadata: { name: NAMESPACE } } }));
    await ignoreConflict(core.createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: 'camera-login' }, stringData: { username: lan.camera.username, password: lan.camera.password } } }));
    for (const body of discoveries(lan)) {
      await ignoreConflict(custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NAMESPACE, plural: 'devicediscoveries', body }));
    }
    let lastEvent = 'sample DeviceDiscoveries created';
    const draw = async (): Promise<void> => {
      const screen = await render(kc, lastEvent).catch((error: unknown) => `(view failed: ${(error as Error).message})`);
      process.stdout.write(process.stdout.isTTY ? `\x1b[2J\x1b[H${screen}` : `${screen}\n`);
    };
    const view = setInterval(() => void draw(), 1_000);
    // Devices come and go: the HA device dies (its last will) and comes back, then the camera says Bye and Hello.
    const steps: [string, () => Promise<void>][] = [
      ['Home Assistant device killed (its last will: offline)', () => lan!.ha.dieAbruptly()],
      ['Home Assistant device announces itself again', () => lan!.ha.announce()],
      ['ONVIF camera says Bye', () => lan!.camera.bye()],
      ['ONVIF camera says Hello', () => lan!.camera.hello()],
    ];
    for (let step = 0; !stop.signal.aborted && (rounds === 0 || step < rounds * steps.length); step++) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, periodMs);
        stop.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (stop.signal.aborted) break;
      const [what, act] = steps[step % steps.length]!;
      await act();
      lastEvent = `${new Date().toISOString().slice(11, 19)} ${what}`;
    }
    clearInterval(view);
    await draw();
  } finally {
    say('stopping everything npm start started…');
    await lan?.stop().catch(() => undefined);
    await helm.run?.('uninstall', helm.release, '-n', SYSTEM, '--ignore-not-found', '--wait', '--timeout', '2m').catch((error: unknown) => say(`helm uninstall: ${(error as Error).message}`));
    removeLan();
    await nodeDown({ layout: layouts[1] });
    await nodeDown({ layout: layouts[0] });
    await clusterDown({ cacheDir: layouts[0].e2eDir });
    say('stopped (builds and images stay cached: the next start takes seconds)');
  }
}

await main();
