/**
 * USB through the agent to the (mock) kubelet, on a sysfs fixture: plugged in → allocatable
 * with its device nodes; re-enumerated → the next Allocate gets the new paths (Akri #734);
 * unplugged → Unhealthy at once, gone after the grace period.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UsbSysfsFixture, type FixtureDevice } from '../../test/fixtures/usb/sysfs-fixture.ts';
import { startAgentWithHandler } from '../../test/support/handler-kit.ts';
import { createUsbHandler } from './usb.ts';

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
    const kit = await startAgentWithHandler({
      handler: createUsbHandler({ sysfsRoot: f.root, watchPaths: [f.devicesDir] }),
      discovery: 'serial-boards',
      details: { match: [{ class: 'cdc', driver: 'cdc_acm' }], pollIntervalSeconds: 60 },
      capacity: 1,
      offlineGraceMs: 300,
    });
    cleanups.push(() => kit.stop());

    await f.add(ARDUINO);
    const id = `usb:2341:0043:serial:${ARDUINO.serial}`;
    const name = kit.deviceName(id, 'node');
    const resource = kit.deviceResource(id, 'node');
    await kit.waitForSlots(resource, { healthy: 1, total: 1 }, 3_000);
    const first = await kit.allocate('flasher', resource);
    expect(first.devices).toEqual([
      { container_path: '/dev/bus/usb/001/006', host_path: '/dev/bus/usb/001/006', permissions: 'rw' },
      { container_path: '/dev/ttyACM0', host_path: '/dev/ttyACM0', permissions: 'rw' },
    ]);
    expect(first.envs['USB_TTY']).toBe('/dev/ttyACM0');
    kit.kubelet.removePod(kit.namespace, 'flasher');
    kit.agent.ledger.release([`${name}-0`]);

    // The board resets: new devnum, the kernel hands out ttyACM1.
    await f.reenumerate(1, [4], {
      devnum: 7,
      interfaces: [{ ...ARDUINO.interfaces![0]!, nodes: [{ kind: 'tty-acm', name: 'ttyACM1' }] }, ARDUINO.interfaces![1]!],
    });
    await kit.waitForReport(() => kit.agent.devices.device(name)?.properties['USB_TTY'] === '/dev/ttyACM1', 3_000, 'the new tty');
    await kit.waitForSlots(resource, { healthy: 1, total: 1 }, 3_000);
    const second = await kit.allocate('flasher-2', resource);
    expect(second.devices.map((d) => d.host_path)).toEqual(['/dev/bus/usb/001/007', '/dev/ttyACM1']);

    await f.remove(1, [4]);
    await kit.waitForSlots(resource, { healthy: 0, total: 1 }, 3_000);
    await kit.waitForResourceGone(resource, 3_000);
  });
});
