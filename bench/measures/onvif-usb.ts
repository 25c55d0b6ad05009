/**
 * ONVIF and USB measures, end to end through the standalone agent to the mock kubelet:
 *
 * - onvif-hello-bye: a simulated camera (loopback multicast, digest auth) says Bye → its
 *   slots are Unhealthy at the kubelet; says Hello → Healthy again (includes the SOAP
 *   interrogation: date/time, device information, interfaces, services, profiles, stream URIs).
 * - onvif-200: 200 simulated cameras → time until the handler has reported all of them, and
 *   until the kubelet has a healthy device resource for each.
 * - usb-hot-add: a device appears in a sysfs fixture → allocatable at the kubelet (the
 *   directory watch triggers the rescan); removal → Unhealthy.
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { StandaloneAgent } from '../../agent/standalone.ts';
import { deviceName, deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import type { AnyDiscoveryHandler, DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { createOnvifHandler } from '../../discovery-handlers/onvif/onvif.ts';
import { createUsbHandler } from '../../discovery-handlers/usb/usb.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { SimulatedCamera } from '../../mocks/onvif-camera/camera.ts';
import { UsbSysfsFixture } from '../../test/fixtures/usb/sysfs-fixture.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';

const log = pino({ level: 'silent' });
const CAMERA_MAIN = fileURLToPath(new URL('../../mocks/onvif-camera/main.ts', import.meta.url));
const CREDS = { username: 'bench', password: 'bench-pass' };

interface Rig {
  kubelet: MockKubelet;
  agent: StandaloneAgent;
}

async function withAgent<T>(
  spec: { name: string; handler: AnyDiscoveryHandler; details: unknown; shared: boolean; properties?: Map<string, string> },
  body: (rig: Rig, nameOf: (id: string) => string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tbo-'));
  const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
  await kubelet.start();
  const agent = new StandaloneAgent({
    node: 'bench',
    pluginDir: join(dir, 'dp'),
    log,
    discoveries: [
      {
        namespace: 'default',
        name: spec.name,
        handler: spec.handler,
        details: spec.details,
        capacity: 1,
        offlineGraceMs: 3_600_000,
        properties: spec.properties ?? new Map(),
      },
    ],
  });
  agent.start();
  const nameOf = (id: string): string =>
    deviceResourceName(deviceName({ namespace: 'default', discovery: spec.name, deviceId: id, ...(spec.shared ? {} : { node: 'bench' }) }));
  try {
    return await body({ kubelet, agent }, nameOf);
  } finally {
    await agent.settled();
    await agent.stop();
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Resolves with the kubelet's receive time of the first update where `resource`'s first slot has `health`. */
function healthAt(kubelet: MockKubelet, resource: string, health: 'Healthy' | 'Unhealthy', timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      kubelet.off('devices', listener);
      reject(new Error(`${resource} not ${health} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (name: string, devices: { health: string }[], at: number): void => {
      if (name !== resource || devices[0]?.health !== health) return;
      clearTimeout(timer);
      kubelet.off('devices', listener);
      resolve(at);
    };
    kubelet.on('devices', listener);
  });
}

const subnet = (): string => `127.${randomInt(1, 255)}.${randomInt(1, 255)}`;

async function onvifHelloBye(): Promise<Measurement[]> {
  const port = randomInt(20_000, 30_000);
  const handler = createOnvifHandler({ port, lookupMac: () => Promise.resolve(undefined) }) as DiscoveryHandler<unknown>;
  const details = handler.parseDetails({ interfaces: ['lo'], probeIntervalSeconds: 3600, discoveryTimeoutSeconds: 0.1 });
  const properties = new Map([
    ['ONVIF_USERNAME', CREDS.username],
    ['ONVIF_PASSWORD', CREDS.password],
  ]);
  return withAgent({ name: 'cams', handler, details, shared: true, properties }, async ({ kubelet, agent }, nameOf) => {
    await agent.settled();
    const camera = new SimulatedCamera({ address: `${subnet()}.1`, wsDiscoveryPort: port, credentials: CREDS, helloOnStart: false });
    await camera.start();
    try {
      const resource = nameOf(camera.uuid);
      let healthy = healthAt(kubelet, resource, 'Healthy');
      await camera.sendHello();
      await healthy;
      const hello: number[] = [];
      const bye: number[] = [];
      for (let i = 0; i < 100; i++) {
        const unhealthy = healthAt(kubelet, resource, 'Unhealthy');
        let start = performance.now();
        await camera.sendBye();
        bye.push((await unhealthy) - start);
        healthy = healthAt(kubelet, resource, 'Healthy');
        start = performance.now();
        await camera.sendHello();
        hello.push((await healthy) - start);
      }
      return [summarize('onvif Hello → kubelet Healthy (incl. SOAP)', 'ms', hello), summarize('onvif Bye → kubelet Unhealthy', 'ms', bye)];
    } finally {
      await camera.stop({ bye: false });
    }
  });
}

/** Rejects after `ms` unless `promise` settles first. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function onvif200(jitterMs: number): Promise<Measurement[]> {
  const count = 200;
  const port = randomInt(20_000, 30_000);
  const net = subnet();
  // The cameras run in their own process, so the handler's figures are not its simulators' CPU time.
  const args = [
    CAMERA_MAIN,
    '--ws-port',
    String(port),
    '--no-hello',
    '--username',
    CREDS.username,
    '--password',
    CREDS.password,
    '--probe-reply-max-delay-ms',
    String(jitterMs),
  ];
  for (let i = 1; i <= count; i++) args.push('--address', `${net}.${i}`);
  const cameras = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await within(once(createInterface({ input: cameras.stdout }), 'line'), 60_000, 'camera process ready')) as [string];
  if (!line.includes('"ready"')) throw new Error(`camera process: ${line}`);
  const toHandler: number[] = [];
  const toKubelet: number[] = [];
  try {
    for (let round = 0; round < 3; round++) {
      const handler = createOnvifHandler({ port, lookupMac: () => Promise.resolve(undefined) });
      const seen = new Set<string>();
      let allSeen: () => void = () => undefined;
      const handlerDone = new Promise<void>((resolve) => (allSeen = resolve));
      const note = (ids: readonly string[]): void => {
        for (const id of ids) seen.add(id);
        if (seen.size === count) allSeen();
      };
      const observed: DiscoveryHandler<unknown> = {
        ...(handler as DiscoveryHandler<unknown>),
        run: (details, context) =>
          handler.run(details as never, {
            ...context,
            sink: {
              replaceAll: (devices) => (context.sink.replaceAll(devices), note(devices.map((d) => d.id))),
              upsert: (device) => (context.sink.upsert(device), note([device.id])),
              remove: (id) => context.sink.remove(id),
            },
          }),
      };
      const details = handler.parseDetails({ interfaces: ['lo'], probeIntervalSeconds: 3600, discoveryTimeoutSeconds: 0.2 });
      const properties = new Map([
        ['ONVIF_USERNAME', CREDS.username],
        ['ONVIF_PASSWORD', CREDS.password],
      ]);
      const start = performance.now();
      await withAgent({ name: 'fleet', handler: observed, details, shared: true, properties }, async ({ kubelet }) => {
        await within(handlerDone, 60_000, `${count} cameras at the handler`);
        toHandler.push(performance.now() - start);
        await kubelet.waitFor(
          () => (kubelet.resource(discoveryResourceName('fleet'))?.devices.filter((d) => d.health === 'Healthy').length ?? 0) === count,
          60_000,
          '200 cameras',
        );
        toKubelet.push(performance.now() - start);
      });
    }
  } finally {
    cameras.kill('SIGKILL');
    await once(cameras, 'exit');
  }
  const how = jitterMs === 0 ? 'all answer at once' : `answers spread over ${jitterMs} ms`;
  return [
    summarize(`onvif ${count} cameras (${how}) → all reported by the handler`, 'ms', toHandler, 0),
    summarize(`onvif ${count} cameras (${how}) → all healthy at the kubelet`, 'ms', toKubelet, 0),
  ];
}

async function usbHotAdd(): Promise<Measurement[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tbu-'));
  const fixture = new UsbSysfsFixture(join(dir, 'sys'));
  await fixture.init([1]);
  const handler = createUsbHandler({ sysfsRoot: fixture.root, watchPaths: [fixture.devicesDir] }) as DiscoveryHandler<unknown>;
  try {
    return await withAgent(
      { name: 'usb', handler, details: handler.parseDetails({ pollIntervalSeconds: 2 }), shared: false },
      async ({ kubelet, agent }, nameOf) => {
        await agent.settled();
        const add: number[] = [];
        const remove: number[] = [];
        for (let i = 0; i < 50; i++) {
          const serial = `BENCH${i}`;
          const resource = nameOf(`usb:0403:6001:serial:${serial}`);
          const healthy = healthAt(kubelet, resource, 'Healthy');
          let start = 0;
          await fixture.add(
            {
              bus: 1,
              ports: [1 + (i % 8)],
              devnum: 2 + i,
              vendorId: '0403',
              productId: '6001',
              serial,
              interfaces: [{ class: 0xff, driver: 'ftdi_sio', nodes: [{ kind: 'tty-usb-serial', name: `ttyUSB${i}` }] }],
            },
            // Timed from the moment the device appears in bus/usb/devices, as the kernel publishes it.
            { beforePublish: () => (start = performance.now()) },
          );
          add.push((await healthy) - start);
          const unhealthy = healthAt(kubelet, resource, 'Unhealthy');
          start = performance.now();
          await fixture.remove(1, [1 + (i % 8)]);
          remove.push((await unhealthy) - start);
        }
        return [
          summarize('usb hot-add → kubelet Healthy (watch)', 'ms', add),
          summarize('usb unplug → kubelet Unhealthy (watch)', 'ms', remove),
        ];
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const onvifUsbMeasures: Measure[] = [
  { name: 'onvif-hello-bye', description: 'simulated camera Hello/Bye → mock kubelet health (loopback multicast)', run: onvifHelloBye },
  {
    name: 'onvif-200',
    description: '200 simulated cameras → full discovery time (handler, kubelet), burst and WS-Discovery APP_MAX_DELAY',
    run: async () => [...(await onvif200(0)), ...(await onvif200(500))],
  },
  { name: 'usb-hot-add', description: 'sysfs fixture hot-add/unplug → mock kubelet health', run: usbHotAdd },
];
