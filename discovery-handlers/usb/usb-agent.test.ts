/**
 * USB through the agent to the (mock) kubelet, on a sysfs fixture: plugged in → allocatable
 * with its device nodes; re-enumerated → the next Allocate gets the new paths (Akri #734);
 * unplugged → Unhealthy at once, gone after the grace period.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StandaloneAgent } from '../../agent/standalone.ts';
import { deviceName, deviceResourceName } from '../../api/names.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { UsbSysfsFixture, type FixtureDevice } from '../../test/fixtures/usb/sysfs-fixture.ts';
import type { DiscoveryHandler } from '../contract.ts';
import { createUsbHandler, type UsbDetails } from './usb.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ARDUINO: FixtureDevice = {
  bus: 1,
  ports: [4],
  devnum: 6,
  vendorId: '2341',
  productId: '0043',
  serial: '75833353035351C0E1A1',
  manufacturer: 'Arduino (www.arduino.cc)',
  interfaces: [
    { class: 0x02, subclass: 2, protocol: 1, driver: 'cdc_acm', nodes: [{ kind: 'tty-acm', name: 'ttyACM0' }] },
    { class: 0x0a, driver: 'cdc_acm' },
  ],
};

describe('usb through the agent', () => {
  it('plugged in → allocatable with device nodes; re-enumerated → new paths; unplugged → Unhealthy, then gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tu-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const f = new UsbSysfsFixture(join(dir, 'sys'));
    await f.init();
    const kubelet = new MockKubelet({ pluginDir: join(dir, 'dp') });
    await kubelet.start();
    cleanups.push(() => kubelet.stop());
    const usb = createUsbHandler({ sysfsRoot: f.root, watchPaths: [f.devicesDir] });
    // Observe what the handler reports (the agent applies it synchronously) to wait on events, not time.
    const reports = new EventEmitter();
    const handler: DiscoveryHandler<UsbDetails> = {
      ...usb,
      run: (details, context) =>
        usb.run(details, {
          ...context,
          sink: {
            replaceAll: (devices) => (context.sink.replaceAll(devices), reports.emit('report')),
            upsert: (device) => (context.sink.upsert(device), reports.emit('report')),
            remove: (id) => (context.sink.remove(id), reports.emit('report')),
          },
        }),
    };
    const reported = (predicate: () => boolean, what: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!predicate()) return;
          clearTimeout(timer);
          reports.off('report', check);
          resolve();
        };
        const timer = setTimeout(() => {
          reports.off('report', check);
          reject(new Error(`timed out waiting for ${what}`));
        }, 3_000);
        reports.on('report', check);
        check();
      });
    const agent = new StandaloneAgent({
      node: 'edge-1',
      pluginDir: join(dir, 'dp'),
      log: pino({ level: 'silent' }),
      discoveries: [
        {
          namespace: 'default',
          name: 'serial-boards',
          handler,
          details: handler.parseDetails({ match: [{ class: 'cdc', driver: 'cdc_acm' }], pollIntervalSeconds: 60 }),
          capacity: 1,
          offlineGraceMs: 300,
          properties: new Map(),
        },
      ],
    });
    agent.start();
    cleanups.push(() => agent.stop());
    await agent.settled();

    await f.add(ARDUINO);
    const id = `usb:2341:0043:serial:${ARDUINO.serial}`;
    const name = deviceName({ namespace: 'default', discovery: 'serial-boards', deviceId: id, node: 'edge-1' });
    const resource = deviceResourceName(name);
    const health = (): string => (kubelet.resource(resource)?.devices ?? []).map((d) => d.health).join();
    await kubelet.waitFor(() => health() === 'Healthy', 3_000, 'board allocatable');
    const first = await kubelet.allocate({ namespace: 'default', name: 'flasher' }, resource, 1);
    expect(first.devices).toEqual([
      { container_path: '/dev/bus/usb/001/006', host_path: '/dev/bus/usb/001/006', permissions: 'rw' },
      { container_path: '/dev/ttyACM0', host_path: '/dev/ttyACM0', permissions: 'rw' },
    ]);
    expect(first.envs['USB_TTY']).toBe('/dev/ttyACM0');
    kubelet.removePod('default', 'flasher');
    agent.ledger.release([`${name}-0`]);

    // The board resets: new devnum, the kernel hands out ttyACM1.
    await f.reenumerate(1, [4], { devnum: 7, interfaces: [{ ...ARDUINO.interfaces![0]!, nodes: [{ kind: 'tty-acm', name: 'ttyACM1' }] }, ARDUINO.interfaces![1]!] });
    await reported(() => agent.devices.device(name)?.properties['USB_TTY'] === '/dev/ttyACM1', 'the new tty');
    await kubelet.waitFor(() => health() === 'Healthy', 3_000, 'allocatable after the reset');
    const second = await kubelet.allocate({ namespace: 'default', name: 'flasher-2' }, resource, 1);
    expect(second.devices.map((d) => d.host_path)).toEqual(['/dev/bus/usb/001/007', '/dev/ttyACM1']);

    await f.remove(1, [4]);
    await kubelet.waitFor(() => health() === 'Unhealthy', 3_000, 'Unhealthy when unplugged');
    await kubelet.waitFor(() => kubelet.resource(resource)?.connected === false, 3_000, 'gone after the grace period');
  });
});
