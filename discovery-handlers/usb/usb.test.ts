import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UsbSysfsFixture, type FixtureDevice } from '../../test/fixtures/usb/sysfs-fixture.ts';
import { RecordingSink } from '../../test/support/recording-sink.ts';
import { parseUsbDetails } from './details.ts';
import type { UsbDevice } from './sysfs.ts';
import { createUsbHandler, isSelected, matchesUsb, usbDevices, usbIdentities, type UsbHandlerOptions } from './usb.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const FTDI: FixtureDevice = {
  bus: 1,
  ports: [2],
  devnum: 4,
  vendorId: '0403',
  productId: '6001',
  serial: 'A50285BI',
  manufacturer: 'FTDI',
  product: 'FT232R USB UART',
  interfaces: [{ class: 0xff, subclass: 0xff, protocol: 0xff, driver: 'ftdi_sio', nodes: [{ kind: 'tty-usb-serial', name: 'ttyUSB0' }] }],
};
const CH340: FixtureDevice = {
  bus: 1,
  ports: [3, 1],
  devnum: 7,
  vendorId: '1a86',
  productId: '7523',
  product: 'USB Serial',
  interfaces: [{ class: 0xff, subclass: 1, protocol: 2, driver: 'ch341', nodes: [{ kind: 'tty-usb-serial', name: 'ttyUSB1' }] }],
};
const WEBCAM: FixtureDevice = {
  bus: 2,
  ports: [1],
  devnum: 2,
  vendorId: '046d',
  productId: '0825',
  serial: '6E1B2C30',
  manufacturer: 'Logitech',
  product: 'Webcam C270',
  deviceClass: 0xef,
  interfaces: [
    {
      class: 0x0e,
      subclass: 1,
      driver: 'uvcvideo',
      nodes: [
        { kind: 'video', name: 'video0' },
        { kind: 'video', name: 'video1' },
      ],
    },
    { class: 0x01, subclass: 1, driver: 'snd-usb-audio' },
  ],
};
const HUB: FixtureDevice = {
  bus: 1,
  ports: [3],
  devnum: 3,
  vendorId: '05e3',
  productId: '0610',
  deviceClass: 0x09,
  interfaces: [{ class: 0x09, driver: 'hub' }],
};

async function fixture(devices: readonly FixtureDevice[] = []): Promise<UsbSysfsFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'usb-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const f = new UsbSysfsFixture(join(dir, 'sys'));
  await f.init();
  for (const d of devices) await f.add(d);
  return f;
}

function start(f: UsbSysfsFixture, details: Record<string, unknown>, options: UsbHandlerOptions = {}): RecordingSink {
  const handler = createUsbHandler({ sysfsRoot: f.root, watchPaths: [f.devicesDir], ...options });
  const sink = new RecordingSink();
  const abort = new AbortController();
  const running = handler.run(handler.parseDetails(details), sink.context(abort.signal));
  cleanups.push(async () => {
    abort.abort();
    await running;
  });
  return sink;
}

const device = (over: Partial<UsbDevice>): UsbDevice => ({
  name: '1-2',
  sysfsPath: 'devices/pci0000:00/0000:00:14.0/usb1/1-2',
  controller: '0000:00:14.0',
  busnum: 1,
  devnum: 4,
  vendorId: '0403',
  productId: '6001',
  serial: undefined,
  manufacturer: 'FTDI',
  product: 'FT232R USB UART',
  deviceClass: 0,
  deviceSubclass: 0,
  deviceProtocol: 0,
  speed: '12',
  node: { subsystem: 'usb', devname: 'bus/usb/001/004' },
  interfaces: [
    { name: '1-2:1.0', class: 0xff, subclass: 0xff, protocol: 0xff, driver: 'ftdi_sio', nodes: [{ subsystem: 'tty', devname: 'ttyUSB0' }] },
  ],
  ...over,
});

describe('matching', () => {
  const ftdi = device({});
  const webcam = device({
    vendorId: '046d',
    deviceClass: 0xef,
    interfaces: [{ name: '1-2:1.0', class: 0x0e, subclass: 1, protocol: 0, driver: 'uvcvideo', nodes: [] }],
  });
  it.each([
    [{ vendorId: '0403' }, ftdi, true],
    [{ vendorId: '0403', productId: '6015' }, ftdi, false],
    [{ manufacturer: 'ftdi' }, ftdi, true],
    [{ product: '*UART' }, ftdi, true],
    [{ product: '/^FT2\\d+R/' }, ftdi, true],
    [{ serial: '*' }, ftdi, false], // no serial: a serial pattern cannot match
    [{ driver: 'ftdi_*' }, ftdi, true],
    [{ driver: 'cdc_acm' }, ftdi, false],
    [{ portPath: '1-*' }, ftdi, true],
    [{ class: 'vendor' }, ftdi, true], // on an interface
    [{ class: 'misc' }, webcam, true], // on the device descriptor
    [{ class: 'video', subclass: 1 }, webcam, true],
    [{ class: 'video', subclass: 2 }, webcam, false],
    [{ class: 'video' }, ftdi, false],
  ])('%j on %#', (raw, dev, expected) => {
    const [m] = parseUsbDetails({ match: [raw] }).match;
    expect(matchesUsb(dev, m!)).toBe(expected);
  });

  it('match is any-of, exclude wins, hubs are skipped by default', () => {
    const details = parseUsbDetails({ match: [{ vendorId: '0403' }, { vendorId: '046d' }], exclude: [{ class: 'video' }] });
    expect(isSelected(ftdi, details)).toBe(true);
    expect(isSelected(webcam, details)).toBe(false);
    const hub = device({ deviceClass: 9 });
    expect(isSelected(hub, parseUsbDetails({}))).toBe(false);
    expect(isSelected(hub, parseUsbDetails({ match: [{ class: 'hub' }] }))).toBe(true);
  });
});

describe('identity', () => {
  it('uses a unique serial, else the physical port — never devnum or tty numbers', () => {
    const a = device({ serial: 'S1' });
    const b = device({ name: '1-3', serial: 'DUP', devnum: 5 });
    const c = device({ name: '1-4.1', serial: 'DUP', devnum: 6 });
    const d = device({ name: '2-1', serial: undefined, controller: undefined, busnum: 2 });
    const ids = usbIdentities([a, b, c, d], 'auto');
    expect([...ids.values()]).toEqual([
      'usb:0403:6001:serial:S1',
      'usb:0403:6001:port:0000:00:14.0-3',
      'usb:0403:6001:port:0000:00:14.0-4.1',
      'usb:0403:6001:port:bus2-1',
    ]);
    expect(usbIdentities([a], 'port').get(a)).toBe('usb:0403:6001:port:0000:00:14.0-2');
    // Same device, re-enumerated: new devnum and tty, same id.
    const again = device({
      serial: 'S1',
      devnum: 9,
      interfaces: [{ ...a.interfaces[0]!, nodes: [{ subsystem: 'tty', devname: 'ttyUSB3' }] }],
    });
    expect(usbIdentities([again], 'auto').get(again)).toBe('usb:0403:6001:serial:S1');
  });

  it('identity: serial never reports one id twice', () => {
    const b = device({ name: '1-3', serial: 'DUP' });
    const c = device({ name: '1-4', serial: 'DUP' });
    expect(usbDevices([b, c], parseUsbDetails({ identity: 'serial' }), '/dev').map((d) => d.id)).toEqual(['usb:0403:6001:serial:DUP']);
  });
});

describe('device nodes and properties', () => {
  it('hands out the usb node and tty/video/hidraw children with the configured permissions', () => {
    const webcam = device({
      serial: 'W1',
      interfaces: [
        {
          name: '1-2:1.0',
          class: 0x0e,
          subclass: 1,
          protocol: 0,
          driver: 'uvcvideo',
          nodes: [
            { subsystem: 'video4linux', devname: 'video0' },
            { subsystem: 'video4linux', devname: 'video1' },
          ],
        },
        {
          name: '1-2:1.2',
          class: 0x03,
          subclass: 0,
          protocol: 0,
          driver: 'usbhid',
          nodes: [
            { subsystem: 'hidraw', devname: 'hidraw0' },
            { subsystem: 'input', devname: 'input/event5' },
          ],
        },
      ],
    });
    const [d] = usbDevices([webcam], parseUsbDetails({ permissions: 'r' }), '/dev');
    expect(d!.deviceNodes).toEqual(
      ['/dev/bus/usb/001/004', '/dev/video0', '/dev/video1', '/dev/hidraw0'].map((p) => ({
        containerPath: p,
        hostPath: p,
        permissions: 'r',
      })),
    );
    expect(d!.properties).toEqual({
      USB_VENDOR_ID: '0403',
      USB_PRODUCT_ID: '6001',
      USB_BUS: '1',
      USB_DEVICE_NUMBER: '4',
      USB_PORT_PATH: '1-2',
      USB_SYSFS_PATH: '/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2',
      USB_SERIAL: 'W1',
      USB_MANUFACTURER: 'FTDI',
      USB_PRODUCT: 'FT232R USB UART',
      USB_SPEED: '12',
      USB_DEVICE_CLASS: '00',
      USB_INTERFACE_CLASSES: '0e,03',
      USB_DRIVERS: 'usbhid,uvcvideo',
      USB_DEVICE_NODE: '/dev/bus/usb/001/004',
      USB_VIDEO: '/dev/video0,/dev/video1',
      USB_HIDRAW: '/dev/hidraw0',
    });
    const [inputs] = usbDevices([webcam], parseUsbDetails({ nodes: ['input'] }), '/host/dev');
    expect(inputs!.deviceNodes).toEqual([
      { containerPath: '/host/dev/input/event5', hostPath: '/host/dev/input/event5', permissions: 'rw' },
    ]);
  });
});

describe('usb handler on a sysfs fixture', () => {
  it('reports what is plugged in, follows hot-add and removal through the watch (no polling needed)', async () => {
    const f = await fixture([FTDI, HUB]);
    const sink = start(f, { pollIntervalSeconds: 60 });
    await sink.waitFor(() => sink.replaceAlls > 0, 5_000, 'first scan');
    expect([...sink.current.keys()]).toEqual(['usb:0403:6001:serial:A50285BI']);
    expect(sink.current.get('usb:0403:6001:serial:A50285BI')!.deviceNodes!.map((n) => n.hostPath)).toEqual([
      '/dev/bus/usb/001/004',
      '/dev/ttyUSB0',
    ]);

    await f.add(CH340);
    await sink.waitFor(() => sink.current.has('usb:1a86:7523:port:0000:00:14.0-3.1'), 2_000, 'hot-added CH340 (no serial: port identity)');
    expect(sink.current.get('usb:1a86:7523:port:0000:00:14.0-3.1')!.properties['USB_TTY']).toBe('/dev/ttyUSB1');
    expect(sink.counts.get('watch_event')).toBeGreaterThan(0);

    await f.remove(1, [2]);
    await sink.waitFor(() => !sink.current.has('usb:0403:6001:serial:A50285BI'), 2_000, 'FTDI unplugged');
    expect([...sink.current.keys()]).toEqual(['usb:1a86:7523:port:0000:00:14.0-3.1']);
  });

  it('a re-enumerated device keeps its id and gets its new node paths (Akri #734)', async () => {
    const f = await fixture([FTDI]);
    const sink = start(f, { pollIntervalSeconds: 60 });
    const id = 'usb:0403:6001:serial:A50285BI';
    await sink.waitFor(() => sink.current.has(id), 5_000, 'FTDI');
    await f.reenumerate(1, [2], {
      devnum: 11,
      interfaces: [{ ...FTDI.interfaces![0]!, nodes: [{ kind: 'tty-usb-serial', name: 'ttyUSB4' }] }],
    });
    await sink.waitFor(() => sink.current.get(id)?.properties['USB_TTY'] === '/dev/ttyUSB4', 2_000, 'new tty');
    expect(sink.current.get(id)!.deviceNodes!.map((n) => n.hostPath)).toEqual(['/dev/bus/usb/001/011', '/dev/ttyUSB4']);
    expect(sink.current.size).toBe(1);
  });

  it('polls when no watch is available', async () => {
    const f = await fixture();
    const sink = start(f, { match: [{ class: 'video' }], pollIntervalSeconds: 0.05 }, { watchPaths: [] });
    await sink.waitFor(() => sink.replaceAlls > 0, 5_000, 'first scan');
    expect(sink.current.size).toBe(0);
    await f.add(WEBCAM);
    await sink.waitFor(() => sink.current.has('usb:046d:0825:serial:6E1B2C30'), 2_000, 'webcam by polling');
    expect(sink.counts.get('watch_event')).toBeUndefined();
    expect(sink.current.get('usb:046d:0825:serial:6E1B2C30')!.properties['USB_VIDEO']).toBe('/dev/video0,/dev/video1');
  });

  it('starts watching a directory that appears after the handler started (udevd started later)', async () => {
    const f = await fixture();
    const udevData = join(f.root, '..', 'run-udev-data');
    const sink = start(f, { pollIntervalSeconds: 0.05 }, { watchPaths: [udevData] });
    await sink.waitFor(() => sink.replaceAlls > 0, 5_000, 'first scan');
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(udevData);
    // Once the poll has picked the directory up, a udev record written there is seen as an event.
    const writeRecords = async (): Promise<void> => {
      for (let i = 0; (sink.counts.get('watch_event') ?? 0) === 0 && i < 200; i++) {
        await writeFile(join(udevData, 'c189:3'), `I:${i}\n`);
        await sink.waitFor(() => sink.replaceAlls > i + 1, 2_000, 'a poll');
      }
    };
    await writeRecords();
    expect(sink.counts.get('watch_event')).toBeGreaterThan(0);
  });

  it('returns when stopped from inside the first report (as `tether discover` does)', async () => {
    const f = await fixture([FTDI]);
    const handler = createUsbHandler({ sysfsRoot: f.root, watchPaths: [f.devicesDir] });
    const sink = new RecordingSink();
    const abort = new AbortController();
    const context = sink.context(abort.signal);
    const running = handler.run(handler.parseDetails({}), {
      ...context,
      sink: { ...context.sink, replaceAll: () => abort.abort(), upsert: () => undefined, remove: () => undefined },
    });
    await expect(running).resolves.toBeUndefined();
  });

  it('reports no devices (and does not fail) on a machine without a USB bus', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'usb-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const handler = createUsbHandler({ sysfsRoot: dir, watchPaths: [] });
    const sink = new RecordingSink();
    const abort = new AbortController();
    const running = handler.run(handler.parseDetails({ pollIntervalSeconds: 0.05 }), sink.context(abort.signal));
    await sink.waitFor(() => sink.replaceAlls >= 3, 2_000, 'several empty scans');
    expect(sink.current.size).toBe(0);
    expect(sink.logText.match(/No USB bus/g)).toHaveLength(1);
    abort.abort();
    await running;
  });
});
