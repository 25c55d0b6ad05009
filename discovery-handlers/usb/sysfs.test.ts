import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UsbSysfsFixture } from '../../test/fixtures/usb/sysfs-fixture.ts';
import { NoUsbBusError, scanUsbDevices } from './sysfs.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function fixture(): Promise<UsbSysfsFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'usb-'));
  dirs.push(dir);
  const f = new UsbSysfsFixture(join(dir, 'sys'));
  await f.init();
  return f;
}

describe('scanUsbDevices', () => {
  it('reads devices (not root hubs or interfaces) with attributes, interfaces, drivers and child nodes', async () => {
    const f = await fixture();
    await f.add({
      bus: 1,
      ports: [1],
      devnum: 2,
      vendorId: '05e3',
      productId: '0610',
      deviceClass: 0x09,
      product: 'USB2.0 Hub',
      interfaces: [{ class: 0x09, driver: 'hub' }],
    });
    await f.add({
      bus: 1,
      ports: [1, 3],
      devnum: 5,
      vendorId: '0403',
      productId: '6001',
      serial: 'A50285BI',
      manufacturer: 'FTDI',
      product: 'FT232R USB UART',
      interfaces: [
        { class: 0xff, subclass: 0xff, protocol: 0xff, driver: 'ftdi_sio', nodes: [{ kind: 'tty-usb-serial', name: 'ttyUSB0' }] },
      ],
    });
    await f.add({
      bus: 2,
      ports: [4],
      devnum: 3,
      vendorId: '046d',
      productId: '0825',
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
        { class: 0x0e, subclass: 2, driver: 'uvcvideo' },
        { class: 0x03, driver: 'usbhid', nodes: [{ kind: 'hidraw', name: 'hidraw2' }] },
      ],
    });
    const devices = await scanUsbDevices(f.root);
    expect(devices.map((d) => d.name)).toEqual(['1-1', '1-1.3', '2-4']);
    const ftdi = devices[1]!;
    expect(ftdi).toMatchObject({
      sysfsPath: 'devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3',
      controller: '0000:00:14.0',
      busnum: 1,
      devnum: 5,
      vendorId: '0403',
      productId: '6001',
      serial: 'A50285BI',
      manufacturer: 'FTDI',
      product: 'FT232R USB UART',
      deviceClass: 0,
      node: { subsystem: 'usb', devname: 'bus/usb/001/005' },
      interfaces: [
        {
          name: '1-1.3:1.0',
          class: 0xff,
          subclass: 0xff,
          protocol: 0xff,
          driver: 'ftdi_sio',
          nodes: [{ subsystem: 'tty', devname: 'ttyUSB0' }],
        },
      ],
    });
    expect(devices[2]!.interfaces.map((i) => i.nodes)).toEqual([
      [
        { subsystem: 'video4linux', devname: 'video0' },
        { subsystem: 'video4linux', devname: 'video1' },
      ],
      [],
      [{ subsystem: 'hidraw', devname: 'hidraw2' }],
    ]);
  });

  it('skips a half-made device (no idVendor yet) and throws NoUsbBusError without a bus', async () => {
    const f = await fixture();
    const { mkdir, symlink } = await import('node:fs/promises');
    const half = f.deviceDir(1, [2]);
    await mkdir(half, { recursive: true });
    await symlink(half, join(f.devicesDir, '1-2'));
    expect(await scanUsbDevices(f.root)).toEqual([]);
    await expect(scanUsbDevices(join(f.root, 'nowhere'))).rejects.toBeInstanceOf(NoUsbBusError);
  });

  it('ignores an unsafe DEVNAME', async () => {
    const f = await fixture();
    await f.add({
      bus: 1,
      ports: [2],
      devnum: 9,
      vendorId: '1234',
      productId: '5678',
      interfaces: [{ class: 2, nodes: [{ kind: 'tty-acm', name: 'ttyACM0' }] }],
    });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(f.deviceDir(1, [2]), '1-2:1.0/tty/ttyACM0/uevent'), 'MAJOR=166\nMINOR=0\nDEVNAME=../sda\n');
    const [device] = await scanUsbDevices(f.root);
    expect(device!.interfaces[0]!.nodes).toEqual([]);
  });
});
