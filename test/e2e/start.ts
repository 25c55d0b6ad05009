/**
 * `npm start`: Tether doing its real job on this machine, as a user would run it — the e2e
 * cluster (a control plane and two real kubelets), Tether's own image installed by its Helm
 * chart, simulated devices on a network-namespace LAN (a Home Assistant device on Mosquitto,
 * an ONVIF camera that wants a login, a DNS-SD printer published by a real avahi-daemon), a
 * shared debug-echo device, sample DeviceDiscoveries with busybox brokers, and a live view of
 * discoveries, devices, slots and brokers while the LAN devices come and go on their own.
 *
 *   npm start                 # runs until Ctrl-C, which stops everything it started
 *   npm start -- --rounds 1   # one come-and-go round of every LAN device, then stop (scripts)
 *
 * Needs root (kubelets, containerd, network namespaces); without it, says so and points at
 * `npm run demo`. Everything built (Kubernetes binaries, Tether's image, the node images in
 * containerd) is cached under ~/.cache/tether: a second start takes well under a minute.
 * Everything it started (control plane, nodes, LAN, peers) is stopped on exit, Ctrl-C included;
 * a control plane that was already running (the e2e suite keeps its own) is reused and left running.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { renderTable } from '../../agent/cli/table.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { clusterDown } from '../cluster/cluster.ts';
import { formatElapsed } from '../cluster/progress.ts';
import { e2eClusterUp, ensureE2eCacheDir, writeE2eChartValues } from './cluster.ts';
import { CHART, helmFor, type Helm } from './helm.ts';
import { buildE2eImage } from './image-build.ts';
import { loadTetherImage } from './images.ts';
import { attachToLan, removeLan, startLanPeers, type LanPeers } from './lan.ts';
import { busyboxBroker, nodeLayout } from './layout.ts';
import { nodeDown, nodeUp } from './node.ts';

const NAMESPACE = 'tether-start';
const SYSTEM = 'tether-system';
const GROUP = 'tether.dev';
const VERSION = 'v1alpha1';
const EVENTS_SHOWN = 8;

const say = (message: string): void => void process.stderr.write(`[start] ${message}\n`);

/** Commands npm start runs, and the Debian package of each (`sudo npm run prerequisites` installs them all). */
const COMMANDS: Readonly<Record<string, string>> = {
  containerd: 'containerd',
  ctr: 'containerd',
  runc: 'runc',
  busybox: 'busybox-static',
  mosquitto: 'mosquitto',
  'avahi-daemon': 'avahi-daemon',
  'avahi-publish-service': 'avahi-utils',
  'dbus-daemon': 'dbus',
  nsenter: 'util-linux',
  ip: 'iproute2',
};

/** Packages whose command is on no PATH directory (root's PATH includes the sbin directories). */
function missingPackages(): string[] {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter(Boolean);
  const missing = Object.entries(COMMANDS).filter(([command]) => !dirs.some((dir) => existsSync(join(dir, command))));
  return [...new Set(missing.map(([, pkg]) => pkg))];
}

/** The sample DeviceDiscoveries: one per handler the LAN has a device for, and a shared debug-echo device. */
function discoveries(lan: LanPeers): DeviceDiscovery[] {
  const make = (name: string, spec: Record<string, unknown>): DeviceDiscovery =>
    ({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DeviceDiscovery',
      metadata: { name, namespace: NAMESPACE },
      spec: { offlineGracePeriodSeconds: 1, ...spec },
    }) as DeviceDiscovery;
  return [
    make('echo', {
      handler: 'debug-echo',
      details: { descriptions: ['shared-cam'], shared: true },
      capacity: 2,
      broker: busyboxBroker('DEBUG_ECHO_|TETHER_'),
    }),
    make('ha', {
      handler: 'mqtt',
      details: { broker: lan.mqttUrl, homeAssistant: true },
      capacity: 1,
      broker: busyboxBroker('MQTT_|HA_DEVICE'),
    }),
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
    // Only the LAN: the nodes' other interfaces may see real printers.
    make('printers', {
      handler: 'mdns',
      details: { serviceTypes: ['_ipp._tcp'], interfaces: ['te2e-lan'] },
      capacity: 1,
      broker: busyboxBroker('MDNS_'),
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

/** What the view shows, read from the apiserver. */
interface ClusterView {
  discoveries: DeviceDiscovery[];
  devices: Device[];
  brokers: V1Pod[];
  agentsReady: string;
}

async function fetchView(kc: KubeConfig): Promise<ClusterView> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const list = <T>(plural: string): Promise<T[]> =>
    custom
      .listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NAMESPACE, plural })
      .then((r) => (r as { items: T[] }).items);
  const [discoveries, devices, pods, agents] = await Promise.all([
    list<DeviceDiscovery>('devicediscoveries'),
    list<Device>('devices'),
    kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'tether.dev/component=broker' }),
    kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDaemonSet({ namespace: SYSTEM, name: 'tether-agent' })
      .catch(() => undefined),
  ]);
  const agentsReady = agents?.status === undefined ? '?' : `${agents.status.numberReady}/${agents.status.desiredNumberScheduled}`;
  return { discoveries, devices, brokers: pods.items, agentsReady };
}

const brokerPhase = (pod: V1Pod): string => (pod.metadata?.deletionTimestamp ? 'Terminating' : (pod.status?.phase ?? '?'));

/** The tables of the live view (pure). */
function renderView(view: ClusterView): string {
  const { devices } = view;
  const discoveryRows = view.discoveries.map((d) => [
    d.metadata?.name ?? '',
    d.spec.handler,
    String(devices.filter((x) => x.spec.discovery === d.metadata?.name).length),
  ]);
  const deviceRows = devices.map((d) => {
    // A node without a nodeStates entry sees the device (agents write Offline transitions).
    const offline = new Set((d.status?.nodeStates ?? []).filter((s) => s.state === 'Offline').map((s) => s.node));
    const states = [...(d.spec.nodes ?? [])]
      .sort()
      .map((node) => (offline.has(node) ? `${node}:Offline` : `${node}:Online`))
      .join(' ');
    const slots = Object.entries(d.spec.slots ?? {})
      .map(([slot, node]) => `${slot}→${node}`)
      .join(' ');
    return [d.metadata?.name ?? '', d.spec.deviceId.slice(0, 40), states || '-', `${slots || '-'} (of ${d.spec.capacity})`];
  });
  const podRows = view.brokers.map((p) => [p.metadata?.name ?? '', p.spec?.nodeName ?? '-', brokerPhase(p)]);
  return [
    renderTable(['DISCOVERY', 'HANDLER', 'DEVICES'], discoveryRows),
    renderTable(['DEVICE', 'ID', 'NODES', 'SLOTS'], deviceRows),
    renderTable(['BROKER', 'NODE', 'PHASE'], podRows),
  ].join('\n');
}

/** What changed between two views, as event lines (pure): Devices and brokers that came, went or changed phase. */
function viewChanges(before: ClusterView, after: ClusterView): string[] {
  const devices = (view: ClusterView): Map<string, string> => new Map(view.devices.map((d) => [d.metadata?.name ?? '', d.spec.deviceId]));
  const brokers = (view: ClusterView): Map<string, string> =>
    new Map(view.brokers.map((p) => [p.metadata?.name ?? '', `${brokerPhase(p)}${p.spec?.nodeName ? ` on ${p.spec.nodeName}` : ''}`]));
  const changes: string[] = [];
  const [d0, d1] = [devices(before), devices(after)];
  for (const [name, id] of d1) if (!d0.has(name)) changes.push(`Device ${name} created (${id})`);
  for (const [name, id] of d0) if (!d1.has(name)) changes.push(`Device ${name} deleted (${id})`);
  const [b0, b1] = [brokers(before), brokers(after)];
  for (const [name, phase] of b1) if (b0.get(name) !== phase) changes.push(`broker ${name} ${phase}`);
  for (const name of b0.keys()) if (!b1.has(name)) changes.push(`broker ${name} gone`);
  return changes;
}

/** The come-and-go steps, one per period: each LAN device leaves and comes back. */
function lanSteps(lan: LanPeers): [string, () => Promise<void>][] {
  const printer = lan.mdns!;
  return [
    ['Home Assistant device killed (its MQTT last will: offline)', () => lan.ha.dieAbruptly()],
    ['Home Assistant device announces itself again', () => lan.ha.announce()],
    ['ONVIF camera says Bye (WS-Discovery)', () => lan.camera.bye()],
    ['ONVIF camera says Hello', () => lan.camera.hello()],
    [`mDNS printer withdrawn (avahi sends goodbyes for ${printer.fullName})`, () => printer.withdraw()],
    ['mDNS printer published again (avahi-publish-service)', () => printer.publish()],
  ];
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** Thrown between set-up steps once Ctrl-C was pressed. */
class Stopped extends Error {}

async function main(): Promise<number> {
  const { values: flags } = parseArgs({
    options: { rounds: { type: 'string', default: '0' }, 'period-ms': { type: 'string', default: '10000' } },
  });
  const rounds = Number(flags.rounds);
  const periodMs = Number(flags['period-ms']);
  if (!Number.isInteger(rounds) || rounds < 0 || !(periodMs >= 1000)) {
    process.stderr.write('usage: npm start [-- --rounds N (0 = until Ctrl-C)] [--period-ms MS (≥ 1000)]\n');
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      'npm start runs real kubelets, containerd and network namespaces, so it needs root (sudo npm start); ' +
        'without root, `npm run demo` shows Tether serving devices to a simulated kubelet over the real device-plugin gRPC API.\n',
    );
    return 1;
  }
  const missing = missingPackages();
  if (missing.length > 0) {
    process.stderr.write(
      `npm start needs these Debian packages: ${missing.join(' ')} — install them with \`sudo npm run prerequisites\` (or apt-get install).\n`,
    );
    return 1;
  }
  const layouts = [nodeLayout(), nodeLayout(process.env, 2)] as const;
  const stop = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    // npm forwards the terminal's SIGINT to us as well: the first one (or two) start the stop.
    if (interrupts++ === 0) {
      process.stderr.write(`\n[start] ${signal}: stopping everything npm start started (a few seconds)…\n`);
      stop.abort();
    } else if (interrupts === 3) {
      process.stderr.write('[start] still stopping; Ctrl-\\ abandons it (then `node_modules/.bin/node test/e2e/main.ts down` cleans up)\n');
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const checkpoint = (): void => {
    if (stop.signal.aborted) throw new Stopped('stopped');
  };
  const timings: string[] = [];
  const timed = async <T>(what: string, step: () => Promise<T> | T): Promise<T> => {
    checkpoint();
    const started = performance.now();
    const result = await step();
    timings.push(`${what} ${formatElapsed(performance.now() - started)}`);
    checkpoint();
    return result;
  };
  const started = performance.now();
  let lan: LanPeers | undefined;
  let helm: Helm | undefined;
  let view: NodeJS.Timeout | undefined;
  /** A control plane that already ran before this start (the e2e suite keeps its own) is left running. */
  let keepControlPlane = false;
  try {
    say(
      'bringing up a control plane, two real kubelets, Tether by its Helm chart and a device LAN (first run: builds Kubernetes, ~15 min on 2 cores; then cached)',
    );
    ensureE2eCacheDir(layouts[0]);
    const cluster = await timed('control plane', () => e2eClusterUp(layouts[0], { signal: stop.signal }));
    keepControlPlane = cluster.reused;
    const image = await timed('image', () => buildE2eImage({ signal: stop.signal }));
    await timed('nodes', async () => {
      for (const layout of layouts) {
        checkpoint();
        const node = await nodeUp(cluster, { layout });
        say(`node ${node.name} ${node.reused ? 'reused' : 'started'}`);
      }
    });
    await timed('image load', async () => {
      const loaded = await loadTetherImage(layouts, image);
      if (loaded.length === 0) say(`both nodes already hold ${image.reference} (${image.indexDigest.slice(0, 19)}): nothing to load`);
    });
    lan = await timed('device LAN', async () => {
      attachToLan({ address: '10.250.90.11', tag: 'n1' });
      attachToLan({ netns: layouts[1].isolation?.netns, address: '10.250.90.12', tag: 'n2' });
      return startLanPeers({ mdns: true });
    });
    say(
      `device LAN up (netns tether-e2e-lan): Mosquitto ${lan.mqttUrl} with Home Assistant device ${lan.ha.node}, ONVIF camera ${lan.camera.uuid}, mDNS printer "${lan.mdns!.fullName}" on ${lan.mdns!.host}`,
    );
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    helm = helmFor(cluster.binDir, cluster.kubeconfig);
    const chart = helm;
    await timed('helm install', async () => {
      await ignoreConflict(
        core.createNamespace({ body: { metadata: { name: SYSTEM, labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } } }),
      );
      // The e2e control plane applies its own CRDs; the chart installs them itself when they are not there.
      await chart.run(
        'upgrade',
        '--install',
        'tether',
        CHART,
        '-n',
        SYSTEM,
        '-f',
        writeE2eChartValues(layouts[0], cluster.nodeServer),
        '--set',
        'crds.install=false',
        '--wait',
        '--timeout',
        '3m',
      );
    });
    say('Tether installed by its chart: an agent on each node, two controllers');
    await ignoreConflict(core.createNamespace({ body: { metadata: { name: NAMESPACE } } }));
    await ignoreConflict(
      core.createNamespacedSecret({
        namespace: NAMESPACE,
        body: { metadata: { name: 'camera-login' }, stringData: { username: lan.camera.username, password: lan.camera.password } },
      }),
    );
    for (const body of discoveries(lan)) {
      await ignoreConflict(
        custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NAMESPACE, plural: 'devicediscoveries', body }),
      );
    }
    say(`ready in ${formatElapsed(performance.now() - started)} (${timings.join(', ')})`);
    say(
      `look around from another terminal: export KUBECONFIG=${cluster.kubeconfig} PATH=${cluster.binDir}:$PATH; kubectl get devicediscoveries,devices,pods -n ${NAMESPACE}`,
    );
    checkpoint();

    // The live view: on a terminal, redrawn in place every second; otherwise printed when it changes.
    const tty = process.stdout.isTTY === true;
    const events: string[] = [];
    let lastAction = { text: 'sample DeviceDiscoveries created', at: performance.now() };
    const note = (text: string): void => void events.push(`${new Date().toISOString().slice(11, 19)} ${text}`);
    note(`→ ${lastAction.text}`);
    let previous: ClusterView | undefined;
    let printed = '';
    const draw = async (): Promise<void> => {
      let body: string;
      try {
        const current = await fetchView(kc);
        if (previous !== undefined) {
          const since = formatElapsed(performance.now() - lastAction.at);
          for (const change of viewChanges(previous, current)) note(`    ${change} (+${since})`);
        }
        previous = current;
        body = `${renderView(current)}\nEVENTS\n${events.slice(-EVENTS_SHOWN).join('\n')}\n`;
        if (!tty && `${current.agentsReady}\n${body}` === printed) return;
        const header = `Tether on two real kubelets — agents ready ${current.agentsReady} — ${new Date().toISOString().slice(11, 19)} — ${rounds === 0 ? 'Ctrl-C stops everything' : `${rounds} round(s), then stop`}\n\n`;
        printed = `${current.agentsReady}\n${body}`;
        process.stdout.write(tty ? `\x1b[H${`${header}${body}`.replaceAll('\n', '\x1b[K\n')}\x1b[J` : `${header}${body}\n`);
      } catch (error) {
        process.stdout.write(`(view failed: ${(error as Error).message})\n`);
      }
    };
    if (tty) process.stdout.write('\x1b[2J');
    view = setInterval(() => void draw(), 1_000);
    const steps = lanSteps(lan);
    for (let step = 0; !stop.signal.aborted && (rounds === 0 || step < rounds * steps.length); step++) {
      await pause(periodMs, stop.signal);
      if (stop.signal.aborted) break;
      const [what, act] = steps[step % steps.length]!;
      lastAction = { text: what, at: performance.now() };
      note(`→ ${what}`);
      await act();
    }
    // Let the last step show in the view before stopping.
    await pause(periodMs, stop.signal);
    clearInterval(view);
    await draw();
    return 0;
  } catch (error) {
    if (error instanceof Stopped || stop.signal.aborted) return 130;
    say(`failed: ${(error as Error).stack ?? String(error)}`);
    return 1;
  } finally {
    clearInterval(view);
    if (view !== undefined && process.stdout.isTTY === true) process.stdout.write('\n');
    const stopping = performance.now();
    say(`stopping everything npm start started: LAN peers, Tether, both nodes, the LAN${keepControlPlane ? '' : ', the control plane'}…`);
    const attempt = async (what: string, step: () => unknown): Promise<void> => {
      try {
        await step();
      } catch (error) {
        say(`${what}: ${(error as Error).message}`);
      }
    };
    await attempt('LAN peers', () => lan?.stop());
    helm?.close();
    // The nodes go with their pods (CRI removes every sandbox); the cluster's etcd data goes with
    // the control plane, so there is nothing to uninstall first.
    await attempt('node 2', () => nodeDown({ layout: layouts[1] }));
    await attempt('node 1', () => nodeDown({ layout: layouts[0] }));
    await attempt('device LAN', () => removeLan());
    if (keepControlPlane)
      say(
        `the control plane was running before npm start, so it is left running (TETHER_CACHE=${layouts[0].e2eDir} npm run cluster:down stops it)`,
      );
    else await attempt('control plane', () => clusterDown({ cacheDir: layouts[0].e2eDir }));
    say(
      `stopped in ${formatElapsed(performance.now() - stopping)}; nothing this run started is left running. Builds and images stay cached in ${layouts[0].cacheDir}: the next start reuses them.`,
    );
  }
}

process.exitCode = await main();
