/** What the handler reports for found devices: ids, nodes, properties, groupRecursive, bounds. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import type { DiscoveredDevice } from '../contract.ts';
import { parseUdevDetails } from './details.ts';
import { groupDevices, udevDevices } from './devices.ts';
import { scanNeeds } from './match.ts';
import type { UdevDevice } from './records.ts';
import { scanUdevDevices } from './sysfs.ts';

let dir: string;
let fixture: UdevFixture;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'udev-devices-'));
  fixture = new UdevFixture(dir);
  await fixture.init();
  await fixture.addAll([...usbController(), ...camera(), ...ftdiSerial(), ...arduinoAcm(), ...hidReceiver(), ...platformUart()]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CAM = `${XHCI}/usb1/1-2`;

async function report(details: Record<string, unknown>, devRoot = '/dev'): Promise<{ devices: DiscoveredDevice[]; dropped: number }> {
  const parsed = parseUdevDetails(details);
  const scan = await scanUdevDevices({ sysfsRoot: fixture.sysfsRoot, udevDataRoot: fixture.udevDataRoot }, scanNeeds(parsed.udevRules));
  return udevDevices(scan.candidates, scan.index, parsed, devRoot);
}

describe('devices, one per match (Akri: groupRecursive false)', () => {
  it('reports id = devpath, UDEV_DEVPATH, UDEV_DEVNODE, the node, and udev database properties', async () => {
    const { devices } = await report({ udevRules: ['SUBSYSTEM=="tty", KERNEL=="ttyUSB[0-9]*"'], permissions: 'rw' });
    const path = `${XHCI}/usb1/1-3/1-3:1.0/ttyUSB0/tty/ttyUSB0`;
    expect(devices).toEqual([
      {
        id: path,
        properties: {
          UDEV_DEVPATH: path,
          UDEV_DEVNODE: '/dev/ttyUSB0',
          UDEV_SUBSYSTEM: 'tty',
          UDEV_KERNEL: 'ttyUSB0',
          UDEV_DEVLINKS:
            '/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0 /dev/serial/by-path/pci-0000:00:14.0-usb-0:3:1.0-port0',
          UDEV_ID_BUS: 'usb',
          UDEV_ID_MODEL_ID: '6001',
          UDEV_ID_SERIAL: 'FTDI_FT232R_USB_UART_A50285BI',
          UDEV_ID_SERIAL_SHORT: 'A50285BI',
          UDEV_ID_USB_DRIVER: 'ftdi_sio',
          UDEV_ID_USB_INTERFACE_NUM: '00',
          UDEV_ID_VENDOR_ID: '0403',
        },
        deviceNodes: [{ containerPath: '/dev/ttyUSB0', hostPath: '/dev/ttyUSB0', permissions: 'rw' }],
      },
    ]);
  });

  it('gives every video node its own device, Akri permissions rwm by default, nodes under devRoot', async () => {
    const { devices } = await report({ udevRules: ['SUBSYSTEM=="video4linux"'] }, '/host/dev/');
    expect(devices.map((d) => d.id)).toEqual([`${CAM}/1-2:1.0/video4linux/video0`, `${CAM}/1-2:1.0/video4linux/video1`]);
    expect(devices.map((d) => d.properties['UDEV_DEVNODE'])).toEqual(['/host/dev/video0', '/host/dev/video1']);
    expect(devices[0]!.deviceNodes).toEqual([{ containerPath: '/host/dev/video0', hostPath: '/host/dev/video0', permissions: 'rwm' }]);
  });

  it('a match without a node stands for its nearest ancestor with one (Akri): the USB device, once', async () => {
    const { devices } = await report({ udevRules: ['SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_interface", DRIVER=="uvcvideo|usbhid"'] });
    expect(devices.map((d) => [d.id, d.properties['UDEV_DEVNODE'], d.properties['UDEV_ID_VENDOR_ID']])).toEqual([
      [CAM, '/dev/bus/usb/001/004', '046d'],
      [`${XHCI}/usb1/1-5`, '/dev/bus/usb/001/007', '046d'],
    ]);
  });

  it('KERNEL alone also matches the usb-serial port device named ttyUSB0, which stands for its USB device (as in Akri)', async () => {
    const { devices } = await report({ udevRules: ['KERNEL=="ttyUSB[0-9]*"'] });
    expect(devices.map((d) => d.properties['UDEV_DEVNODE'])).toEqual(['/dev/bus/usb/001/005', '/dev/ttyUSB0']);
  });

  it('a match with no node anywhere above is reported without one', async () => {
    const { devices } = await report({ udevRules: ['SUBSYSTEM=="platform"'] });
    expect(devices).toEqual([
      {
        id: '/devices/platform/serial8250',
        properties: {
          UDEV_DEVPATH: '/devices/platform/serial8250',
          UDEV_SUBSYSTEM: 'platform',
          UDEV_KERNEL: 'serial8250',
          UDEV_DRIVER: 'serial8250',
        },
        deviceNodes: [],
      },
    ]);
  });
});

describe('groupRecursive', () => {
  it('groups the camera and its video nodes under the topmost match, UDEV_DEVNODE_0.. in devpath order', async () => {
    const { devices } = await report({ udevRules: ['ATTRS{idVendor}=="046d", ATTRS{idProduct}=="0825"'], groupRecursive: true });
    expect(devices).toHaveLength(1);
    const [cam] = devices;
    expect(cam!.id).toBe(CAM);
    expect(cam!.properties).toMatchObject({
      UDEV_DEVPATH: CAM,
      UDEV_DEVNODE_0: '/dev/bus/usb/001/004',
      UDEV_DEVNODE_1: '/dev/video0',
      UDEV_DEVNODE_2: '/dev/video1',
      UDEV_DEVNODES: '/dev/bus/usb/001/004,/dev/video0,/dev/video1',
      UDEV_SUBSYSTEM: 'usb',
      UDEV_ID_SERIAL: 'Logitech_Webcam_C270_6E1B2C30',
    });
    expect(cam!.properties['UDEV_DEVNODE']).toBeUndefined();
    expect(cam!.deviceNodes!.map((n) => n.hostPath)).toEqual(['/dev/bus/usb/001/004', '/dev/video0', '/dev/video1']);
  });

  it('groups only what the rules find: sibling video nodes stay two devices; the interface brings its USB device', async () => {
    const siblings = await report({ udevRules: ['SUBSYSTEM=="video4linux"'], groupRecursive: true });
    expect(siblings.devices.map((d) => d.id)).toEqual([`${CAM}/1-2:1.0/video4linux/video0`, `${CAM}/1-2:1.0/video4linux/video1`]);
    expect(siblings.devices[0]!.properties).toMatchObject({ UDEV_DEVNODE_0: '/dev/video0' });
    const withParent = await report({ udevRules: ['SUBSYSTEM=="video4linux"', 'KERNEL=="1-2:1.0"'], groupRecursive: true });
    expect(withParent.devices.map((d) => [d.id, d.properties['UDEV_DEVNODES']])).toEqual([
      [CAM, '/dev/bus/usb/001/004,/dev/video0,/dev/video1'],
    ]);
  });

  it('a name that merely starts like another devpath is not its child (video1 vs video10)', () => {
    const d = (devpath: string): UdevDevice => ({
      devpath,
      sysname: devpath.split('/').pop()!,
      subsystem: 'video4linux',
      driver: undefined,
      devname: devpath.split('/').pop()!,
      env: new Map(),
      tags: new Set(),
      links: [],
      attrs: new Map(),
      parent: undefined,
      initialized: true,
    });
    const found = new Map(['/devices/v/video1', '/devices/v/video10', '/devices/v/video1/child'].map((p) => [p, d(p)]));
    expect(groupDevices(found).map((g) => g.map((x) => x.devpath))).toEqual([
      ['/devices/v/video1', '/devices/v/video1/child'],
      ['/devices/v/video10'],
    ]);
  });
});

describe('bounds', () => {
  it('reports at most maxDevices, the first by devpath, and says how many it dropped', async () => {
    const { devices, dropped } = await report({ udevRules: ['SUBSYSTEM=="tty"'], maxDevices: 2 });
    expect(devices.map((d) => d.properties['UDEV_KERNEL'])).toEqual(['ttyUSB0', 'ttyACM0']); // /devices/pci… before /devices/platform…
    expect(dropped).toBe(1);
  });
});
