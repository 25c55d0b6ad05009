/**
 * Property-based fuzzing of the sysfs files a USB device's firmware controls (string
 * descriptors) and the kernel's attribute files: whatever bytes they hold, scanUsbDevices
 * does not throw, skips what it cannot read, and keeps every value bounded and printable.
 */
import fc from 'fast-check';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsbSysfsFixture } from '../../test/fixtures/usb/sysfs-fixture.ts';
import { scanUsbDevices } from './sysfs.ts';
import { FUZZ_RUNS } from '../../test/support/fuzz.ts';

let dir: string;
let fixture: UsbSysfsFixture;
let deviceDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'usb-fuzz-'));
  fixture = new UsbSysfsFixture(join(dir, 'sys'));
  await fixture.init();
  await fixture.add({
    bus: 1,
    ports: [2],
    devnum: 4,
    vendorId: '0403',
    productId: '6001',
    serial: 'A1',
    interfaces: [{ class: 0xff, driver: 'ftdi_sio', nodes: [{ kind: 'tty-usb-serial', name: 'ttyUSB0' }] }],
  });
  deviceDir = join(fixture.devicesDir, '1-2');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Bytes as a device (string descriptors) or a confused kernel might leave them. */
const content = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.string({ unit: 'binary', maxLength: 300 }).map((s) => new TextEncoder().encode(s)),
  fc
    .constantFrom(
      '0403\n',
      'ffff',
      '',
      '\n',
      '-1',
      '1e3',
      '0x10',
      '9999999999999999999',
      'DEVNAME=../../etc/passwd\n',
      'DEVNAME=bus/usb/001/004\n',
      'DEVNAME=\n',
    )
    .map((s) => new TextEncoder().encode(s)),
);
const FILES = [
  'idVendor',
  'idProduct',
  'busnum',
  'devnum',
  'serial',
  'manufacturer',
  'product',
  'bDeviceClass',
  'speed',
  'uevent',
  '1-2:1.0/bInterfaceClass',
  '1-2:1.0/ttyUSB0/tty/ttyUSB0/uevent',
];

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

describe('sysfs under fuzzing (issue 13)', () => {
  it('any attribute contents: no throw; a device is skipped or read with bounded, printable values and a safe node', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom(...FILES), content, { maxKeys: FILES.length }), async (files) => {
        for (const [file, bytes] of Object.entries(files)) await writeFile(join(deviceDir, file), bytes);
        const devices = await scanUsbDevices(fixture.root);
        for (const d of devices) {
          for (const value of [d.vendorId, d.productId, d.serial, d.manufacturer, d.product, d.speed]) {
            if (value === undefined) continue;
            expect(value.length).toBeLessThanOrEqual(256);
            expect(value).not.toMatch(CONTROL);
          }
          expect(Number.isInteger(d.busnum) && Number.isInteger(d.devnum)).toBe(true);
          for (const node of [d.node, ...d.interfaces.flatMap((i) => i.nodes)]) {
            expect(node.devname.split('/')).not.toContain('..');
            expect(node.devname.startsWith('/')).toBe(false);
          }
        }
      }),
      { numRuns: Math.round(FUZZ_RUNS / 2) },
    );
  });
});
