/**
 * OPC UA measures (#16), through StandaloneAgent to the mock kubelet over real gRPC, against
 * Python asyncua in a network namespace (needs root, iproute2, python3 + PyPI for asyncua):
 *
 * - opcua-latency: a server registers with the LDS → its slot Healthy at the kubelet; a server
 *   stops answering → Unhealthy (queryIntervalSeconds 0.5, offlineAfterFailedQueries 1: the
 *   figures are bounded by that interval — an LDS has no events to wait on).
 * - opcua-100: 100 servers behind one LDS → all 100 at the kubelet, from the agent's start
 *   (a child process: this repo's StandaloneAgent + the opcua handler); its RSS then.
 * - opcua-import: RSS node-opcua adds once imported (what an agent pays only while an OPC UA
 *   discovery runs).
 *
 * The servers are test/peers/opcua/asyncua_peer.py's `fleet`: one asyncua server listening on
 * many ports, each answering GetEndpoints as its own application (building 100 asyncua address
 * spaces would take minutes of CPU).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { StandaloneAgent } from '../../agent/standalone.ts';
import { deviceName, discoveryResourceName } from '../../api/names.ts';
import { createOpcuaHandler } from '../../discovery-handlers/opcua/opcua.ts';
import { AsyncuaPeer, asyncuaPython, startLds } from '../../test/peers/asyncua.ts';
import { createNetnsLink, type NetnsLink } from '../../test/peers/netns.ts';
import { PeerGroup } from '../../test/peers/process.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../test/peers/opcua/asyncua_peer.py', import.meta.url));
const BASE_PORT = 5000;
const fleetUri = (i: number): string => `urn:tether-fleet:${i}`;

async function startFleet(link: NetnsLink, count: number, register: boolean): Promise<AsyncuaPeer> {
  const python = await asyncuaPython();
  const conf = { lds: `opc.tcp://${link.peerAddress}:4840`, basePort: BASE_PORT, count, register };
  const process = link.spawn(`asyncua fleet of ${count}`, python, [SCRIPT, 'fleet', link.peerAddress, JSON.stringify(conf)]);
  await process.waitForOutput(/^ready$/m, 300_000);
  return new AsyncuaPeer(process);
}

type Devices = { ID: string; health: string }[];

/** Resolves with the time the kubelet got a ListAndWatch update for `resource` satisfying `ok`. */
function nextUpdate(kubelet: MockKubelet, resource: string, ok: (devices: Devices) => boolean): Promise<number> {
  return new Promise((resolve) => {
    const listener = (name: string, devices: Devices, at: number): void => {
      if (name !== resource || !ok(devices)) return;
      kubelet.off('devices', listener);
      resolve(at);
    };
    kubelet.on('devices', listener);
  });
}

const slot = (uri: string, discovery: string): string => `${deviceName({ namespace: 'default', discovery, deviceId: uri })}-0`;

async function latency(): Promise<Measurement[]> {
  const peers = new PeerGroup();
  try {
    const link = await createNetnsLink(peers, 'opcua');
    await startLds(link);
    const fleet = await startFleet(link, 21, false);
    const dir = await mkdtemp(join(tmpdir(), 'tether-bench-opcua-'));
    peers.defer('dir', () => rm(dir, { recursive: true, force: true }));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
    await kubelet.start();
    peers.defer('kubelet', () => kubelet.stop());
    const handler = createOpcuaHandler();
    const details = {
      opcuaDiscoveryMethod: { standard: { discoveryUrls: [`opc.tcp://${link.peerAddress}:4840/`] } },
      queryIntervalSeconds: 0.5,
      offlineAfterFailedQueries: 1,
      requestTimeoutSeconds: 2,
    };
    const agent = new StandaloneAgent({
      node: 'bench',
      pluginDir: join(dir, 'dp'),
      log: pino({ level: 'silent' }),
      discoveries: [
        {
          namespace: 'default',
          name: 'opcua',
          handler,
          details: handler.parseDetails(details),
          capacity: 1,
          offlineGraceMs: 3_600_000,
          properties: new Map(),
        },
      ],
    });
    agent.start();
    peers.defer('agent', () => agent.stop());
    const resource = discoveryResourceName('opcua');
    const healthy = (id: string) => (devices: Devices) => devices.some((d) => d.ID === id && d.health === 'Healthy');
    const unhealthy = (id: string) => (devices: Devices) => devices.some((d) => d.ID === id && d.health === 'Unhealthy');
    const toKubelet: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const seen = nextUpdate(kubelet, resource, healthy(slot(fleetUri(i), 'opcua')));
      const started = performance.now();
      await fleet.command('register', fleetUri(i));
      toKubelet.push((await seen) - started);
    }
    const toUnhealthy: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const gone = nextUpdate(kubelet, resource, unhealthy(slot(fleetUri(i), 'opcua')));
      const started = performance.now();
      await fleet.command('stop', fleetUri(i));
      toUnhealthy.push((await gone) - started);
    }
    return [
      summarize('opcua register with LDS → kubelet Healthy (interval 0.5 s)', 'ms', toKubelet),
      summarize('opcua server stopped → Unhealthy (interval 0.5 s, 1 failure)', 'ms', toUnhealthy),
    ];
  } finally {
    await peers.close();
  }
}

async function rssMiB(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

/** The agent whose RSS opcua-100 reads: StandaloneAgent + the opcua handler and nothing else. */
const AGENT_MODULE = `
import { once } from 'node:events';
import { pino } from 'pino';
import { StandaloneAgent } from ${JSON.stringify(new URL('../../agent/standalone.ts', import.meta.url).href)};
import { createOpcuaHandler } from ${JSON.stringify(new URL('../../discovery-handlers/opcua/opcua.ts', import.meta.url).href)};
const [pluginDir, lds] = process.argv.slice(1);
const handler = createOpcuaHandler();
const agent = new StandaloneAgent({
  node: 'scale', pluginDir, log: pino({ level: 'silent' }),
  discoveries: [{
    namespace: 'default', name: 'fleet', handler, capacity: 1, offlineGraceMs: 3_600_000, properties: new Map(),
    details: handler.parseDetails({ opcuaDiscoveryMethod: { standard: { discoveryUrls: [lds] } }, queryIntervalSeconds: 2 }),
  }],
});
agent.start();
await once(process, 'SIGTERM');
await agent.stop();
`;

async function hundred(): Promise<Measurement[]> {
  const peers = new PeerGroup();
  try {
    const link = await createNetnsLink(peers, 'opcua');
    await startLds(link);
    await startFleet(link, 100, true);
    const dir = await mkdtemp(join(tmpdir(), 'tether-bench-opcua-'));
    peers.defer('dir', () => rm(dir, { recursive: true, force: true }));
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
    await kubelet.start();
    peers.defer('kubelet', () => kubelet.stop());
    const all = nextUpdate(
      kubelet,
      discoveryResourceName('fleet'),
      (devices) => devices.filter((d) => d.health === 'Healthy').length === 100,
    );
    const started = performance.now();
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', AGENT_MODULE, join(dir, 'dp'), `opc.tcp://${link.peerAddress}:4840/`],
      {
        cwd: REPO,
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    peers.defer('agent', async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    });
    const at = await all;
    const rss = await rssMiB(child.pid!);
    return [
      summarize('opcua 100 servers behind one LDS → all at the kubelet (from agent start)', 'ms', [at - started]),
      summarize('opcua agent RSS with 100 servers', 'MiB', [rss]),
    ];
  } finally {
    await peers.close();
  }
}

async function importCost(): Promise<Measurement[]> {
  const script = `const before = process.memoryUsage().rss; const t = performance.now(); await import('node-opcua-client'); await import('node-opcua-certificate-manager'); process.stdout.write(JSON.stringify({ ms: performance.now() - t, mib: (process.memoryUsage().rss - before) / 1048576 }));`;
  const samples: { ms: number; mib: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await once(child, 'exit');
    samples.push(JSON.parse(out) as { ms: number; mib: number });
  }
  return [
    summarize(
      'node-opcua import time',
      'ms',
      samples.map((s) => s.ms),
    ),
    summarize(
      'node-opcua import RSS',
      'MiB',
      samples.map((s) => s.mib),
    ),
  ];
}

export const opcuaMeasures: Measure[] = [
  {
    name: 'opcua-latency',
    description: 'OPC UA register with LDS → kubelet, server stopped → Unhealthy (asyncua in a netns)',
    onlyWhenNamed: true,
    run: latency,
  },
  {
    name: 'opcua-100',
    description: '100 OPC UA servers behind one LDS → all at the kubelet; agent RSS',
    onlyWhenNamed: true,
    run: hundred,
  },
  { name: 'opcua-import', description: 'RSS and time node-opcua costs once imported', onlyWhenNamed: true, run: importCost },
];
