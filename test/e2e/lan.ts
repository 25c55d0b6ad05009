/**
 * The simulated device LAN of the e2e suite, and the devices on it.
 *
 *   netns tether-e2e-lan                                   node namespaces
 *   ┌───────────────────────────────────────────┐
 *   │ bridge tlan0 10.250.90.1/24               │  veth   host:          te2e-lan 10.250.90.11/24
 *   │   (mcast_snooping 0, 224.0.0.0/4 via it)  ├─ tl-n1 ═ tether-e2e-n2: te2e-lan 10.250.90.12/24
 *   │ ports tl-<tag>                            ├─ tl-n2 ═ …
 *   │ mosquitto 10.250.90.1:1883 (anonymous)    │
 *   │ HA device process  → 10.250.90.1:1883     │
 *   │ ONVIF camera: WS-Discovery + SOAP on .1   │
 *   │ avahi-daemon (lan-printer.local → .1),    │
 *   │   avahi-publish-service: a DNS-SD printer │  (only with startLanPeers({ mdns: true }))
 *   └───────────────────────────────────────────┘
 *
 * Every node namespace sees the LAN through an interface of the same name, `te2e-lan`, so one
 * DeviceDiscovery (`interfaces: [te2e-lan]`) fits all nodes. Node namespaces get no multicast
 * or default route towards the LAN: the handlers pick the interface themselves, and nothing
 * of the test leaks to the machine's real interfaces. The bridge ports (`tl-<tag>`) live only
 * inside the LAN namespace, so their names cannot collide with anything on the host.
 *
 * The network functions are synchronous (like network.ts/isolation.ts) and idempotent; they
 * need root. The peers are processes started with `ip netns exec tether-e2e-lan …` and
 * stopped by `LanPeers.stop()` (or by `removeLan()`, which kills whatever runs in the LAN).
 *
 * WARNING: the names are fixed, not per run: two suites using the LAN at the same time on one
 * machine share (and tear down) the same LAN.
 */
import type { SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAvahi, type AvahiPeer, type AvahiService } from '../peers/avahi.ts';
import type { NetnsLink } from '../peers/netns.ts';
import { PeerGroup, run, startPeer, type PeerProcess } from '../peers/process.ts';
import { ip } from './network.ts';

export const LAN = {
  netns: 'tether-e2e-lan',
  bridge: 'tlan0',
  subnet: '10.250.90.0/24',
  address: '10.250.90.1',
  ifName: 'te2e-lan',
} as const;

const PORT_PREFIX = 'tl-';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** Node 24 (the machine's `node` may be older). */
const NODE = join(REPO, 'node_modules/.bin/node');

interface IpLink {
  ifname: string;
  ifindex: number;
  /** For a veth: the peer's ifindex (in the peer's namespace). */
  link_index?: number;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/** The link, or undefined when it (or its namespace) does not exist. */
function findLink(name: string, netns?: string): IpLink | undefined {
  if (netns !== undefined && !netnsExists(netns)) return undefined;
  try {
    return (JSON.parse(ip(['-j', 'addr', 'show', 'dev', name], netns)) as IpLink[])[0];
  } catch {
    return undefined;
  }
}

function netnsExists(netns: string): boolean {
  return existsSync(`/run/netns/${netns}`);
}

/**
 * Creates the LAN namespace and its bridge (`mcast_snooping 0`, so multicast floods to every
 * port whatever IGMP says; lo up; 10.250.90.1/24; route 224.0.0.0/4 via the bridge for the
 * peers' own multicast). Idempotent: repairs whatever part is missing.
 */
export function ensureLan(): void {
  if (!netnsExists(LAN.netns)) ip(['netns', 'add', LAN.netns]);
  ip(['link', 'set', 'lo', 'up'], LAN.netns);
  if (findLink(LAN.bridge, LAN.netns) === undefined) ip(['link', 'add', LAN.bridge, 'type', 'bridge', 'mcast_snooping', '0'], LAN.netns);
  else ip(['link', 'set', LAN.bridge, 'type', 'bridge', 'mcast_snooping', '0'], LAN.netns);
  ip(['addr', 'replace', `${LAN.address}/24`, 'dev', LAN.bridge], LAN.netns);
  ip(['link', 'set', LAN.bridge, 'up'], LAN.netns);
  ip(['route', 'replace', '224.0.0.0/4', 'dev', LAN.bridge], LAN.netns);
}

/** What {@link attachToLan} attaches. */
export interface LanAttachment {
  /** Network namespace (`ip netns` name); undefined = the namespace this process runs in (the host). */
  readonly netns?: string;
  /** IPv4 address in 10.250.90.0/24 (not .1, the LAN's own) for `te2e-lan`, as a /24. */
  readonly address: string;
  /** Short name ([a-z0-9-], ≤ 12 chars) unique per attachment: the bridge port is `tl-<tag>`. */
  readonly tag: string;
}

/**
 * Attaches a namespace to the LAN (creating the LAN first if needed) with a veth: the end in
 * the namespace is `te2e-lan` with `address`/24, the other end is bridge port `tl-<tag>` in
 * the LAN namespace. Idempotent: an existing, correctly paired veth is kept (its address set
 * to `address`); a stale one (a LAN that was recreated, another tag) is replaced. Adds no
 * multicast or default route in the target namespace.
 */
export function attachToLan(target: LanAttachment): void {
  if (!/^[a-z0-9][a-z0-9-]{0,11}$/.test(target.tag)) throw new Error(`LAN tag must be [a-z0-9-], at most 12 characters: ${target.tag}`);
  const octets = /^10\.250\.90\.(\d{1,3})$/.exec(target.address);
  if (octets === null || Number(octets[1]) < 2 || Number(octets[1]) > 254)
    throw new Error(`LAN address must be 10.250.90.2–254: ${target.address}`);
  if (target.netns !== undefined && !netnsExists(target.netns)) throw new Error(`network namespace ${target.netns} does not exist`);
  ensureLan();
  const port = `${PORT_PREFIX}${target.tag}`;
  const end = findLink(LAN.ifName, target.netns);
  const bridgePort = findLink(port, LAN.netns);
  const paired =
    end !== undefined && bridgePort !== undefined && end.link_index === bridgePort.ifindex && bridgePort.link_index === end.ifindex;
  if (!paired) {
    // Deleting one end of a veth deletes the other, synchronously.
    if (end !== undefined) ip(['link', 'del', LAN.ifName], target.netns);
    if (findLink(port, LAN.netns) !== undefined) ip(['link', 'del', port], LAN.netns);
    ip(['link', 'add', LAN.ifName, 'type', 'veth', 'peer', 'name', port, 'netns', LAN.netns], target.netns);
  }
  ip(['link', 'set', port, 'master', LAN.bridge, 'up'], LAN.netns);
  const addresses = (findLink(LAN.ifName, target.netns)?.addr_info ?? []).filter((a) => a.family === 'inet');
  if (!(addresses.length === 1 && addresses[0]!.local === target.address && addresses[0]!.prefixlen === 24)) {
    ip(['-4', 'addr', 'flush', 'dev', LAN.ifName], target.netns);
    ip(['addr', 'add', `${target.address}/24`, 'dev', LAN.ifName], target.netns);
  }
  ip(['link', 'set', LAN.ifName, 'up'], target.netns);
}

/**
 * Deletes the LAN: every bridge port (and so every `te2e-lan` in the node namespaces), the
 * processes running in the LAN namespace (SIGKILL: peers not stopped before are killed), the
 * namespace itself, and a leftover `te2e-lan` on the host. Safe when nothing exists.
 */
export function removeLan(): void {
  if (netnsExists(LAN.netns)) {
    const links = JSON.parse(ip(['-j', 'link', 'show'], LAN.netns)) as IpLink[];
    for (const link of links) if (link.ifname.startsWith(PORT_PREFIX)) ip(['link', 'del', link.ifname], LAN.netns);
    killLanProcesses();
    ip(['netns', 'del', LAN.netns]);
  }
  if (findLink(LAN.ifName) !== undefined) ip(['link', 'del', LAN.ifName]);
}

/** SIGKILLs whatever runs in the LAN namespace (peers of an earlier, killed run hold its ports). */
function killLanProcesses(): void {
  for (const pid of ip(['netns', 'pids', LAN.netns]).split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** A simulated ESPHome-style Home Assistant device (mocks/mqtt-devices/main.ts) in its own process. */
export interface LanHaDevice {
  /** ESPHome node name: topics `homeassistant/{sensor,switch}/<node>/<node>_{temperature,relay}/config`. */
  readonly node: string;
  /** Tether's device id: `ha/<node>` (the first device identifier). */
  readonly deviceId: string;
  /** `<node>/status`: retained `online`, last will `offline`. */
  readonly statusTopic: string;
  readonly clientId: string;
  /** True while the device process runs. */
  readonly running: boolean;
  /** Starts the device process (no-op if running); resolves once its configs and `online` are acknowledged by the broker. */
  announce(): Promise<void>;
  /** SIGKILLs the process; resolves once the broker logged the lost connection (it then publishes the will `offline`). */
  dieAbruptly(): Promise<void>;
}

/** The simulated ONVIF camera (mocks/onvif-camera/main.ts), driven by its stdin commands. */
export interface LanCamera {
  /** Endpoint reference uuid (bare, lower case) = Tether's `ONVIF_DEVICE_UUID` and device id. */
  readonly uuid: string;
  readonly address: string;
  /** `http://10.250.90.1:<port>/onvif/device_service` (the port is chosen at start). */
  readonly serviceUrl: string;
  /** RTSP URI of the first profile: `rtsp://10.250.90.1:554/stream/profile_main`. */
  readonly streamUri: string;
  /** Credentials the camera requires on every SOAP call but GetSystemDateAndTime. */
  readonly username: string;
  readonly password: string;
  readonly auth: 'ws-security' | 'http-digest';
  /** `online all`: answers Probes and SOAP again and multicasts Hello. */
  hello(): Promise<void>;
  /** `offline all bye`: multicasts Bye, then stops answering (Probes and SOAP). */
  bye(): Promise<void>;
}

/**
 * A DNS-SD service on the LAN, published by a real avahi-daemon running in the LAN namespace
 * (its own mount namespace and D-Bus system bus: test/peers/avahi.ts) through
 * `avahi-publish-service`, as a printer's firmware would register it.
 */
export interface LanMdnsService {
  /** Instance name: `Lobby Printer`. */
  readonly instance: string;
  /** `_ipp._tcp` */
  readonly type: string;
  readonly port: number;
  /** `<instance>.<type>.local`: Tether's device id and `MDNS_FULL_NAME`. */
  readonly fullName: string;
  /** The SRV target avahi answers for: `lan-printer.local` → 10.250.90.1. */
  readonly host: string;
  /** TXT records as published (`key=value`). */
  readonly txt: readonly string[];
  /** True while avahi-publish-service runs (the service is announced). */
  readonly published: boolean;
  /** Starts avahi-publish-service (no-op if running); resolves once avahi reports the service established. */
  publish(): Promise<void>;
  /** Stops avahi-publish-service; avahi withdraws the service with goodbye packets (TTL 0). */
  withdraw(): Promise<void>;
}

/** The service the LAN's avahi publishes. */
export const LAN_MDNS_SERVICE = {
  name: 'Lobby Printer',
  type: '_ipp._tcp',
  port: 631,
  txt: ['rp=ipp/print', 'ty=Tether LAN Printer', 'UUID=e2e1a4c0-0000-4000-8000-0000000000a1'],
} as const satisfies AvahiService;
const LAN_MDNS_HOST = 'lan-printer';

export interface LanPeers {
  /** `mqtt://10.250.90.1:1883`, anonymous. */
  readonly mqttUrl: string;
  readonly ha: LanHaDevice;
  readonly camera: LanCamera;
  /** The DNS-SD printer; only with `startLanPeers({ mdns: true })`. */
  readonly mdns?: LanMdnsService;
  /** Output tails of every peer process, for failure messages. */
  logs(): string;
  /** Stops every peer (camera: Bye; HA device: clean `offline`; broker) and removes the temp dir. */
  stop(): Promise<void>;
}

export interface LanPeersOptions {
  readonly haNode?: string;
  readonly cameraUuid?: string;
  readonly username?: string;
  readonly password?: string;
  readonly auth?: 'ws-security' | 'http-digest';
  /** Also start avahi-daemon and publish {@link LAN_MDNS_SERVICE} (needs avahi-daemon, avahi-utils, dbus-daemon). */
  readonly mdns?: boolean;
}

/** What the camera and HA device are started with (the options, defaults filled in). */
type CameraOptions = Required<Omit<LanPeersOptions, 'mdns'>>;

const MQTT_PORT = 1883;
const READY_TIMEOUT_MS = 15_000;

/** The peer processes of one `startLanPeers`, for cleanup and log tails. */
interface Peers {
  readonly group: PeerGroup;
  readonly started: PeerProcess[];
}

function inLan(peers: Peers, name: string, command: string, args: readonly string[], options: SpawnOptions = {}): PeerProcess {
  const peer = startPeer(peers.group, name, 'ip', ['netns', 'exec', LAN.netns, command, ...args], { cwd: REPO, ...options });
  peers.started.push(peer);
  return peer;
}

function logTails(peers: Peers): string {
  return peers.started.map((p) => `--- ${p.name} (${p.running ? 'running' : 'exited'}):\n${p.output.slice(-3000)}`).join('\n');
}

function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

async function startBroker(peers: Peers, dir: string): Promise<PeerProcess> {
  // As in test/peers/mosquitto.ts: keep root (else mosquitto cannot read the temp dir), no
  // pid_file, no persistence, everything on stderr; an explicit listener (2.x without one is
  // local only).
  const config = join(dir, 'mosquitto.conf');
  const lines = [
    'user root',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    `listener ${MQTT_PORT} ${LAN.address}`,
    'allow_anonymous true',
  ];
  await writeFile(config, `${lines.join('\n')}\n`);
  const broker = inLan(peers, 'lan mosquitto', 'mosquitto', ['-c', config]);
  await broker.waitForOutput(/mosquitto version \S+ running/, READY_TIMEOUT_MS);
  return broker;
}

function haDevice(peers: Peers, broker: PeerProcess, node: string): LanHaDevice {
  const mqttUrl = `mqtt://${LAN.address}:${MQTT_PORT}`;
  const clientId = `esphome-${node}`;
  let current: PeerProcess | undefined;
  return {
    node,
    deviceId: `ha/${node}`,
    statusTopic: `${node}/status`,
    clientId,
    get running() {
      return current?.running === true;
    },
    announce: async () => {
      if (current?.running === true) return;
      current = inLan(peers, `lan HA device ${node}`, NODE, ['mocks/mqtt-devices/main.ts', '--url', mqttUrl, '--node', node]);
      await current.waitForOutput(/"event":"ready"/, READY_TIMEOUT_MS);
    },
    dieAbruptly: async () => {
      if (current?.running !== true) throw new Error(`HA device ${node} is not running`);
      // Mosquitto publishes the will when it notices the dropped connection, which it logs.
      const lost = new RegExp(`Client ${clientId} (closed its connection|disconnected)`, 'g');
      const count = (output: string): number => output.match(lost)?.length ?? 0;
      const before = count(broker.output);
      await current.stop('SIGKILL');
      await broker.waitFor((output) => count(output) > before, READY_TIMEOUT_MS, `logging that ${clientId} is gone`);
    },
  };
}

async function startCamera(peers: Peers, options: CameraOptions): Promise<LanCamera> {
  const args = [
    'mocks/onvif-camera/main.ts',
    '--address',
    LAN.address,
    '--uuid',
    options.cameraUuid,
    '--username',
    options.username,
    '--password',
    options.password,
    '--auth',
    options.auth,
  ];
  const camera = inLan(peers, 'lan ONVIF camera', NODE, args);
  await camera.waitForOutput(/"event":"ready"/, READY_TIMEOUT_MS);
  const ready = jsonLines(camera.output).find((e) => e['event'] === 'ready') as { cameras: { uuid: string; serviceUrl: string }[] };
  const serviceUrl = ready.cameras[0]!.serviceUrl;
  const command = async (line: string): Promise<void> => {
    const acknowledged = (): number =>
      jsonLines(camera.output).filter((e) => e['line'] === line && (e['event'] === 'done' || e['event'] === 'error')).length;
    const before = acknowledged();
    camera.child.stdin!.write(`${line}\n`);
    await camera.waitFor(() => acknowledged() > before, READY_TIMEOUT_MS, `acknowledging "${line}"`);
    const last = jsonLines(camera.output)
      .filter((e) => e['line'] === line)
      .at(-1);
    if (last?.['event'] === 'error') throw new Error(`camera refused "${line}": ${String(last['message'])}`);
  };
  return {
    uuid: options.cameraUuid,
    address: LAN.address,
    serviceUrl,
    streamUri: `rtsp://${LAN.address}:554/stream/profile_main`,
    username: options.username,
    password: options.password,
    auth: options.auth,
    hello: () => command('online all'),
    bye: () => command('offline all bye'),
  };
}

/**
 * avahi-daemon on the LAN bridge (host name `lan-printer`), and the printer published through
 * its D-Bus by avahi-publish-service — every process inside the LAN namespace, so
 * `removeLan()` kills them whatever happened before.
 */
async function startMdns(peers: Peers): Promise<LanMdnsService> {
  const link: NetnsLink = {
    ns: LAN.netns,
    hostIf: '',
    hostAddress: '',
    peerIf: LAN.bridge,
    peerAddress: LAN.address,
    spawn: (name, command, args, options) => inLan(peers, `lan ${name}`, command, args, options),
    exec: (command, args) => run('ip', ['netns', 'exec', LAN.netns, command, ...args]),
  };
  const avahi: AvahiPeer = await startAvahi(peers.group, link, {}, { hostName: LAN_MDNS_HOST });
  const service = LAN_MDNS_SERVICE;
  let current: PeerProcess | undefined;
  return {
    instance: service.name,
    type: service.type,
    port: service.port,
    fullName: `${service.name}.${service.type}.local`,
    host: `${avahi.hostName}.local`,
    txt: service.txt,
    get published() {
      return current?.running === true;
    },
    publish: async () => {
      if (current?.running === true) return;
      const args = [
        'DBUS_SYSTEM_BUS_ADDRESS=' + avahi.busAddress,
        'avahi-publish-service',
        service.name,
        service.type,
        String(service.port),
        ...service.txt,
      ];
      current = inLan(peers, `lan avahi-publish-service ${service.name}`, 'env', args);
      await current.waitForOutput(/Established under name/, READY_TIMEOUT_MS);
    },
    withdraw: async () => {
      await current?.stop();
    },
  };
}

/**
 * Starts the LAN's peers inside the LAN namespace (which must exist: {@link ensureLan}):
 * Mosquitto on 10.250.90.1:1883, one Home Assistant device announced on it, one ONVIF camera
 * answering on 10.250.90.1 and requiring credentials, and with `mdns: true` an avahi-daemon
 * publishing {@link LAN_MDNS_SERVICE}. Resolves when all are ready (broker log line, device
 * acknowledged, camera sockets bound, service established) — no sleeps.
 */
export async function startLanPeers(options: LanPeersOptions = {}): Promise<LanPeers> {
  if (!netnsExists(LAN.netns)) throw new Error(`LAN namespace ${LAN.netns} does not exist: call ensureLan() first`);
  killLanProcesses();
  const resolved: CameraOptions = {
    haNode: options.haNode ?? 'lan-esp32',
    cameraUuid: (options.cameraUuid ?? 'e2e1a4c0-0000-4000-8000-000000000001').toLowerCase(),
    username: options.username ?? 'tether-e2e',
    password: options.password ?? 'lan-camera-secret',
    auth: options.auth ?? 'ws-security',
  };
  const peers: Peers = { group: new PeerGroup(), started: [] };
  const group = peers.group;
  const dir = await mkdtemp(join(tmpdir(), 'tether-e2e-lan-'));
  group.defer(`LAN peers dir ${dir}`, () => rm(dir, { recursive: true, force: true }));
  try {
    const broker = await startBroker(peers, dir);
    const [ha, camera, mdns] = await Promise.all([
      (async () => {
        const device = haDevice(peers, broker, resolved.haNode);
        await device.announce();
        return device;
      })(),
      startCamera(peers, resolved),
      options.mdns === true
        ? (async () => {
            const printer = await startMdns(peers);
            await printer.publish();
            return printer;
          })()
        : undefined,
    ]);
    return {
      mqttUrl: `mqtt://${LAN.address}:${MQTT_PORT}`,
      ha,
      camera,
      ...(mdns === undefined ? {} : { mdns }),
      logs: () => logTails(peers),
      stop: () => group.close(),
    };
  } catch (error) {
    const logs = logTails(peers);
    await group.close().catch(() => undefined);
    throw new Error(`LAN peers did not start: ${(error as Error).message}\n${logs}`, { cause: error });
  }
}
