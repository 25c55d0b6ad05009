/**
 * `tether demo`: the whole device path on one machine, no cluster. debug-echo devices are
 * served by Tether's device plugins to the mock kubelet over real gRPC; a scripted tenant
 * allocates, takes devices offline and back, deletes pods and restarts the kubelet, while
 * a live table shows what the kubelet sees.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import { createDebugEchoHandler, parseDebugEchoDetails } from '../../discovery-handlers/debug-echo/debug-echo.ts';
import { MockKubelet } from '../kubelet/mock-kubelet.ts';
import { StandaloneAgent } from '../standalone.ts';
import { renderTable } from './table.ts';

export interface DemoOptions {
  readonly devices: number;
  readonly capacity: number;
  /** Milliseconds between steps. */
  readonly stepMs: number;
  /** Stop after this many steps (0 = loop until aborted). */
  readonly steps: number;
  readonly log: Logger;
  readonly write: (text: string) => void;
  readonly clearScreen: boolean;
  readonly signal: AbortSignal;
}

interface Step {
  readonly say: string;
  readonly run: () => Promise<void>;
}

function snapshot(kubelet: MockKubelet, agent: StandaloneAgent): string {
  const holders = new Map([...agent.ledger.entries()].map(([slot, h]) => [slot, h.resource]));
  const pods = new Map<string, string>();
  for (const pod of kubelet.listPods()) {
    for (const c of pod.containers) for (const d of c.devices) for (const id of d.device_ids) pods.set(id, `${pod.namespace}/${pod.name}`);
  }
  const rows = kubelet.resourceNames().map((resource) => {
    const r = kubelet.resource(resource)!;
    const healthy = r.devices.filter((d) => d.health === 'Healthy').length;
    const used = r.devices.filter((d) => holders.get(d.ID) === resource).map((d) => `${d.ID.slice(-3)}→${pods.get(d.ID) ?? '?'}`);
    return [
      resource,
      r.connected ? 'yes' : 'no',
      `${healthy}/${r.devices.length}`,
      String(kubelet.freeDevices(resource).length),
      used.join(' '),
    ];
  });
  return renderTable(['RESOURCE', 'CONNECTED', 'HEALTHY', 'FREE', 'ALLOCATED (slot→pod)'], rows);
}

function waitAbortable(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

export async function demo(options: DemoOptions): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-demo-'));
  const availability = join(dir, 'availability');
  const pluginDir = join(dir, 'device-plugins');
  const kubelet = new MockKubelet({ pluginDir, podResourcesDir: join(dir, 'pod-resources') });
  await kubelet.start();
  const descriptions = Array.from({ length: options.devices }, (_, i) => `camera-${i + 1}`);
  const agent = new StandaloneAgent({
    node: 'demo-node',
    pluginDir,
    log: options.log,
    podResourcesSocket: kubelet.podResourcesSocket!,
    reconcileIntervalMs: 0,
    slotGraceMs: 0,
    discoveries: [
      {
        namespace: 'default',
        name: 'cameras',
        handler: createDebugEchoHandler(),
        details: parseDebugEchoDetails({ descriptions, availabilityFile: availability }),
        capacity: options.capacity,
        offlineGraceMs: 30_000,
        properties: new Map(),
      },
    ],
  });
  agent.start();
  const any = discoveryResourceName('cameras');
  let pod = 0;
  const firstDevice = (): string => agent.devices.devices()[0]?.name ?? '';
  const steps: Step[] = [
    {
      say: 'pod-1 asks for any camera (tether.dev/cameras)',
      run: async () => void (await kubelet.allocate({ namespace: 'default', name: `pod-${++pod}` }, any, 1)),
    },
    {
      say: `pod-2 asks for one specific camera`,
      run: async () => void (await kubelet.allocate({ namespace: 'default', name: `pod-${++pod}` }, deviceResourceName(firstDevice()), 1)),
    },
    { say: 'all cameras go OFFLINE (slots turn Unhealthy, kept for the grace period)', run: () => writeFile(availability, 'OFFLINE') },
    { say: 'cameras come back ONLINE', run: () => writeFile(availability, 'ONLINE') },
    { say: 'kubelet restarts (sockets wiped) — every plugin re-registers', run: () => kubelet.restart() },
    {
      say: 'pods are deleted — the ledger frees their slots from the kubelet PodResources answer',
      run: async () => {
        for (let i = 1; i <= pod; i++) kubelet.removePod('default', `pod-${i}`);
        await agent.reconcileLedger();
      },
    },
  ];
  try {
    // Registered and listed: each plugin streams its devices to the kubelet after registering.
    const listed = (): boolean =>
      kubelet.resourceNames().length === options.devices + 1 &&
      kubelet.resourceNames().every((name) => (kubelet.resource(name)?.devices.length ?? 0) > 0);
    await kubelet.waitFor(listed, 10_000, 'plugins registered and their devices listed');
    for (let i = 0; !options.signal.aborted && (options.steps === 0 || i < options.steps); i++) {
      const step = steps[i % steps.length]!;
      let outcome = 'ok';
      try {
        await step.run();
        await agent.settled();
      } catch (error) {
        outcome = `failed: ${(error as Error).message}`;
      }
      await waitAbortable(Math.min(300, options.stepMs), options.signal);
      const frame = `Tether demo — ${options.devices} debug-echo devices × capacity ${options.capacity}, mock kubelet in ${dir}\n\nstep ${i + 1}: ${step.say} … ${outcome}\n\n${snapshot(kubelet, agent)}`;
      options.write(options.clearScreen ? `\x1b[2J\x1b[H${frame}` : `${frame}\n`);
      await waitAbortable(Math.max(0, options.stepMs - 300), options.signal);
    }
  } finally {
    await agent.stop();
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
