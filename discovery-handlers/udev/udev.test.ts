/** The udev handler on a fixture tree: first report, live add and remove through the database watch, polling. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  arduinoAcm,
  camera,
  ftdiSerial,
  hidReceiver,
  platformUart,
  UdevFixture,
  usbController,
  XHCI,
} from '../../test/fixtures/udev/udev-fixture.ts';
import { RecordingSink } from '../../test/support/recording-sink.ts';
import { createUdevHandler } from './udev.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fixture(withDb = true): Promise<UdevFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'udev-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const f = new UdevFixture(dir);
  await f.init(withDb);
  await f.addAll(usbController());
  return f;
}

function start(f: UdevFixture, details: unknown): RecordingSink {
  const handler = createUdevHandler({ sysfsRoot: f.sysfsRoot, udevDataRoot: f.udevDataRoot, devRoot: '/dev' });
  const sink = new RecordingSink();
  const abort = new AbortController();
  const running = handler.run(handler.parseDetails(details), sink.context(abort.signal));
  cleanups.push(async () => {
    abort.abort();
    await running;
  });
  return sink;
}

const TTYUSB0 = `${XHCI}/usb1/1-3/1-3:1.0/ttyUSB0/tty/ttyUSB0`;
const TTYACM0 = `${XHCI}/usb1/1-4/1-4:1.0/tty/ttyACM0`;

describe('udev handler', () => {
  it('reports serial ports, then follows a plug-in and an unplug through the udev database (no polling)', async () => {
    const f = await fixture();
    await f.addAll([...arduinoAcm(), ...platformUart(), ...camera()]);
    const sink = start(f, { udevRules: ['SUBSYSTEM=="tty", SUBSYSTEMS=="usb"'], pollIntervalSeconds: 600 });
    await sink.waitFor(() => sink.replaceAlls > 0, 5_000, 'first scan');
    expect([...sink.current.keys()]).toEqual([TTYACM0]);

    const ftdi = ftdiSerial();
    await f.addAll(ftdi); // sysfs first, the udev record last: the record is what wakes the handler
    await sink.waitFor(() => sink.current.has(TTYUSB0), 3_000, 'ttyUSB0 plugged in');
    expect(sink.current.get(TTYUSB0)!.properties).toMatchObject({ UDEV_DEVNODE: '/dev/ttyUSB0', UDEV_ID_SERIAL_SHORT: 'A50285BI' });
    expect(sink.counts.get('watch_event')).toBeGreaterThan(0);

    await f.remove(ftdi);
    await sink.waitFor(() => !sink.current.has(TTYUSB0), 3_000, 'ttyUSB0 unplugged');
    expect([...sink.current.keys()]).toEqual([TTYACM0]);
  });

  it('does not report a device udevd has not processed yet, and reports it once its record is written', async () => {
    const f = await fixture();
    const sink = start(f, { udevRules: ['SUBSYSTEM=="hidraw"'], pollIntervalSeconds: 600 });
    await sink.waitFor(() => sink.replaceAlls > 0, 5_000, 'first scan');
    const receiver = hidReceiver();
    await f.addAll(receiver.map((d) => (d.subsystem === 'hidraw' ? { ...d, db: undefined } : d)));
    // The kernel's part is there: a rescan woken by another device's record must not report it.
    const written = performance.now();
    await f.writeDb({ devpath: '/devices/other', subsystem: 'misc' }, { env: { X: '1' } });
    await sink.waitFor(() => sink.calls.some((c) => c.op === 'replaceAll' && c.at > written + 10), 3_000, 'a rescan after that record');
    expect(sink.current.size).toBe(0);
    for (const d of receiver.filter((x) => x.subsystem === 'hidraw')) await f.writeDb(d);
    await sink.waitFor(() => sink.current.size === 2, 3_000, 'both hidraw nodes');
  });

  it('groups the camera with its video nodes (groupRecursive, Akri YAML details)', async () => {
    const f = await fixture();
    await f.addAll(camera());
    const sink = start(f, 'groupRecursive: true\nudevRules:\n- ATTRS{idVendor}=="046d", ATTRS{idProduct}=="0825"\n');
    await sink.waitFor(() => sink.current.size > 0, 5_000, 'the camera');
    const [cam] = [...sink.current.values()];
    expect(cam!.id).toBe(`${XHCI}/usb1/1-2`);
    expect(cam!.deviceNodes!.map((n) => n.hostPath)).toEqual(['/dev/bus/usb/001/004', '/dev/video0', '/dev/video1']);
  });

  it('polls when there is no udev database (a node without udevd)', async () => {
    const f = await fixture(false);
    const sink = start(f, { udevRules: ['KERNEL=="ttyS[0-9]*"'], pollIntervalSeconds: 0.05 });
    await sink.waitFor(() => sink.replaceAlls > 0, 5_000, 'first scan');
    expect(sink.current.size).toBe(0);
    await f.addAll(platformUart());
    await sink.waitFor(() => sink.current.size === 1, 3_000, 'ttyS0 by polling');
    expect(sink.counts.get('watch_event')).toBeUndefined();
    expect(sink.logText.match(/Found no udev database/g)).toHaveLength(1);
  });

  it('reports no devices and warns once without sysfs', async () => {
    const handler = createUdevHandler({ sysfsRoot: '/nonexistent/sys', udevDataRoot: '/nonexistent/udev' });
    const sink = new RecordingSink();
    const abort = new AbortController();
    const running = handler.run(
      handler.parseDetails({ udevRules: ['SUBSYSTEM=="tty"'], pollIntervalSeconds: 0.05 }),
      sink.context(abort.signal),
    );
    await sink.waitFor(() => sink.replaceAlls >= 3, 3_000, 'several empty scans');
    expect(sink.current.size).toBe(0);
    expect(sink.logText.match(/Found no sysfs/g)).toHaveLength(1);
    abort.abort();
    await running;
  });

  it('warns when more devices match than maxDevices', async () => {
    const f = await fixture();
    await f.addAll([...arduinoAcm(), ...ftdiSerial(), ...platformUart()]);
    const sink = start(f, { udevRules: ['SUBSYSTEM=="tty"'], maxDevices: 1 });
    await sink.waitFor(() => sink.replaceAlls > 0, 5_000, 'first scan');
    expect(sink.current.size).toBe(1);
    expect(sink.counts.get('device_limit')).toBeGreaterThan(0);
    expect(sink.logText).toContain('Found more devices than maxDevices');
  });

  it('returns when stopped from inside the first report (as `tether discover` does)', async () => {
    const f = await fixture();
    const handler = createUdevHandler({ sysfsRoot: f.sysfsRoot, udevDataRoot: f.udevDataRoot });
    const sink = new RecordingSink();
    const abort = new AbortController();
    const context = sink.context(abort.signal);
    const running = handler.run(handler.parseDetails({ udevRules: ['SUBSYSTEM=="usb"'] }), {
      ...context,
      sink: { ...context.sink, replaceAll: () => abort.abort(), upsert: () => undefined, remove: () => undefined },
    });
    await expect(running).resolves.toBeUndefined();
  });
});
