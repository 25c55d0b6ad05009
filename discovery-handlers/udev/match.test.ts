/**
 * The rule subset on a sysfs + udev database fixture (a webcam, two serial adapters, a HID
 * receiver, a platform UART): which devices each rule finds.
 */
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
import { parseUdevDetails } from './details.ts';
import { foundDevices } from './devices.ts';
import { matchesRule, scanNeeds } from './match.ts';
import type { UdevDevice } from './records.ts';
import { parseUdevRule } from './rules.ts';
import { scanUdevDevices } from './sysfs.ts';

let dir: string;
let fixture: UdevFixture;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'udev-match-'));
  fixture = new UdevFixture(dir);
  await fixture.init();
  await fixture.addAll([...usbController(), ...camera(), ...ftdiSerial(), ...arduinoAcm(), ...hidReceiver(), ...platformUart()]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const USB = `${XHCI}/usb1`;
const VIDEO0 = `${USB}/1-2/1-2:1.0/video4linux/video0`;
const VIDEO1 = `${USB}/1-2/1-2:1.0/video4linux/video1`;
const TTYUSB0 = `${USB}/1-3/1-3:1.0/ttyUSB0/tty/ttyUSB0`;
const TTYACM0 = `${USB}/1-4/1-4:1.0/tty/ttyACM0`;
const HIDRAW0 = `${USB}/1-5/1-5:1.0/0003:046D:C52B.0001/hidraw/hidraw0`;
const HIDRAW1 = `${USB}/1-5/1-5:1.1/0003:046D:C52B.0002/hidraw/hidraw1`;
const TTYS0 = '/devices/platform/serial8250/tty/ttyS0';

/** The devpaths the rules find (after Akri's devnode fallback), sorted. */
async function found(...rules: string[]): Promise<string[]> {
  const details = parseUdevDetails({ udevRules: rules });
  const scan = await scanUdevDevices({ sysfsRoot: fixture.sysfsRoot, udevDataRoot: fixture.udevDataRoot }, scanNeeds(details.udevRules));
  return [...foundDevices(scan.candidates, scan.index, details).keys()].sort();
}

describe('device keys', () => {
  it.each([
    ['KERNEL', 'KERNEL=="video[0-9]*"', [VIDEO0, VIDEO1]],
    ['KERNEL !=', 'SUBSYSTEM=="tty", KERNEL!="ttyUSB*"', [TTYACM0, TTYS0]],
    ['KERNEL alternatives', 'KERNEL=="ttyACM*|hidraw1"', [HIDRAW1, TTYACM0]],
    ['SUBSYSTEM', 'SUBSYSTEM=="hidraw"', [HIDRAW0, HIDRAW1]],
    ['SUBSYSTEM glob', 'SUBSYSTEM=="video4*"', [VIDEO0, VIDEO1]],
    ['DRIVER (the device itself: a tty has none)', 'DRIVER=="ftdi_sio"', [`${USB}/1-3`]], // interface + port device fall back to the USB device node
    ['DRIVER != with no driver', 'SUBSYSTEM=="tty", DRIVER!="x"', [TTYACM0, TTYS0, TTYUSB0]],
    ['DEVPATH', `DEVPATH=="${USB}/1-4/*"`, [`${USB}/1-4`, TTYACM0]],
    ['ATTR', 'SUBSYSTEM=="video4linux", ATTR{index}=="1"', [VIDEO1]],
    ['ATTR !=', 'SUBSYSTEM=="video4linux", ATTR{index}!="1"', [VIDEO0]],
    ['ATTR missing never matches, even !=', 'SUBSYSTEM=="tty", ATTR{index}!="1"', []],
    ['ATTR on a link reads its name', 'SUBSYSTEM=="usb", ATTR{driver}=="cdc_acm"', [`${USB}/1-4`]],
    ['ENV from the udev database', 'ENV{ID_V4L_CAPABILITIES}==":capture:"', [VIDEO0]],
    [
      'ENV from the uevent',
      'ENV{DEVTYPE}=="usb_device", ENV{PRODUCT}!="x"',
      [`${USB}`, `${USB}/1-2`, `${USB}/1-3`, `${USB}/1-4`, `${USB}/1-5`],
    ],
    ['ENV{DEVNAME} is the absolute path', 'ENV{DEVNAME}=="/dev/ttyS0"', [TTYS0]],
    ['ENV missing is empty', 'SUBSYSTEM=="tty", ENV{ID_SERIAL}==""', [TTYACM0, TTYS0]],
    ['ENV set and not empty', 'SUBSYSTEM=="tty", ENV{ID_SERIAL}=="?*"', [TTYUSB0]],
    ['ENV{DEVLINKS}', 'ENV{DEVLINKS}=="*serial/by-id/*"', [TTYACM0, TTYUSB0]],
    ['TAG', 'TAG=="uaccess"', [HIDRAW0, HIDRAW1, VIDEO0, VIDEO1]],
    ['TAG !=', 'SUBSYSTEM=="video4linux|tty", TAG!="uaccess"', [TTYACM0, TTYS0, TTYUSB0]],
    ['every expression must hold', 'SUBSYSTEM=="video4linux", KERNEL=="video0"', [VIDEO0]],
  ])('%s: %s', async (_what, rule, expected) => {
    expect(await found(rule)).toEqual([...expected].sort());
  });

  it('a device is found when any rule matches', async () => {
    expect(await found('KERNEL=="ttyS0"', 'KERNEL=="hidraw0"')).toEqual([HIDRAW0, TTYS0]);
  });
});

describe('parent keys', () => {
  it.each([
    ['KERNELS', 'SUBSYSTEM=="tty", KERNELS=="1-3"', [TTYUSB0]],
    ['SUBSYSTEMS', 'SUBSYSTEM=="tty", SUBSYSTEMS=="usb-serial"', [TTYUSB0]],
    ['SUBSYSTEMS not USB', 'SUBSYSTEM=="tty", SUBSYSTEMS=="platform"', [TTYS0]],
    ['DRIVERS', 'SUBSYSTEM=="tty", DRIVERS=="cdc_acm"', [TTYACM0]],
    ['DRIVERS !=: no ancestor has it', 'SUBSYSTEM=="tty", DRIVERS!="ftdi_sio"', [TTYACM0, TTYS0]],
    ['ATTRS', 'SUBSYSTEM=="tty", ATTRS{idVendor}=="0403"', [TTYUSB0]],
    ['ATTRS on the device itself', 'SUBSYSTEM=="video4linux", ATTRS{index}=="0"', [VIDEO0]],
    ['ATTRS !=', 'SUBSYSTEM=="tty", ATTRS{idVendor}!="0403"', [TTYACM0, TTYS0]],
    ['ATTRS up to the PCI controller', 'SUBSYSTEM=="hidraw", ATTRS{vendor}=="0x8086"', [HIDRAW0, HIDRAW1]],
    ['TAGS', 'SUBSYSTEM=="video4linux", TAGS=="seat"', [VIDEO0, VIDEO1]],
    ['KERNELS with an interface glob', 'SUBSYSTEM=="hidraw", KERNELS=="1-5:1.1"', [HIDRAW1]],
    // Both on the FTDI device: found. Vendor of the FTDI, serial of the Arduino: never on one device.
    ['ATTRS on the same ancestor', 'SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{serial}=="A50285BI"', [TTYUSB0]],
    ['ATTRS on different ancestors do not combine', 'SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{serial}=="85736323838351F0A1C1"', []],
    ['KERNELS and DRIVERS on the same ancestor', 'SUBSYSTEM=="tty", KERNELS=="1-3:1.0", DRIVERS=="ftdi_sio"', [TTYUSB0]],
    // The interface is 1-3:1.0 and the usb-serial port carries the driver too, but the PCI controller's driver is elsewhere.
    ['KERNELS and DRIVERS on different ancestors', 'SUBSYSTEM=="tty", KERNELS=="1-3", DRIVERS=="xhci_hcd"', []],
  ])('%s: %s', async (_what, rule, expected) => {
    expect(await found(rule)).toEqual([...expected].sort());
  });
});

describe('udev semantics on records', () => {
  const device = (over: Partial<UdevDevice>): UdevDevice => ({
    devpath: '/devices/x/y',
    sysname: 'y',
    subsystem: 'tty',
    driver: undefined,
    devname: 'y',
    env: new Map(),
    tags: new Set(),
    links: [],
    attrs: new Map(),
    parent: '/devices/x',
    initialized: true,
    ...over,
  });
  const parent = device({
    devpath: '/devices/x',
    sysname: 'x',
    subsystem: 'usb',
    driver: 'usb',
    devname: undefined,
    parent: undefined,
    attrs: new Map([['serial', 'S1']]),
  });
  const index = new Map([
    ['/devices/x', parent],
    ['/devices/x/y', device({})],
  ]);
  it.each([
    ['SUBSYSTEMS=="usb"', true],
    ['SUBSYSTEMS!="usb"', false],
    ['SUBSYSTEMS=="usb", KERNELS=="y"', false], // usb is x, kernel y is the device: not one ancestor
    ['SUBSYSTEMS=="tty", KERNELS=="y"', true],
    ['DRIVER==""', true],
    ['DRIVERS=="usb"', true],
    ['ATTRS{serial}=="S1"', true],
    ['ATTRS{serial}=="S2"', false],
    ['KERNEL=="y", KERNELS=="x"', true],
  ])('%s → %s', (rule, expected) => {
    expect(matchesRule(parseUdevRule(rule, 'r'), index.get('/devices/x/y')!, index)).toBe(expected);
  });

  it('a parent chain with a loop or a missing link ends', () => {
    const looped = new Map([['/devices/a', device({ devpath: '/devices/a', parent: '/devices/a' })]]);
    expect(matchesRule(parseUdevRule('KERNELS=="nope"', 'r'), looped.get('/devices/a')!, looped)).toBe(false);
    const orphan = device({ parent: '/devices/gone' });
    expect(matchesRule(parseUdevRule('KERNELS=="y"', 'r'), orphan, new Map())).toBe(true);
  });
});

describe('scanNeeds', () => {
  it('lists only pinned subsystems, and every attribute', () => {
    const rules = (...r: string[]): ReturnType<typeof parseUdevDetails>['udevRules'] => parseUdevDetails({ udevRules: r }).udevRules;
    expect(scanNeeds(rules('SUBSYSTEM=="tty", ATTRS{idVendor}=="0403"', 'SUBSYSTEM=="video4linux|hidraw", ATTR{index}=="0"'))).toEqual({
      attrs: ['idVendor', 'index'],
      subsystems: ['hidraw', 'tty', 'video4linux'],
    });
    expect(scanNeeds(rules('SUBSYSTEM=="tty"', 'KERNEL=="video0"')).subsystems).toBeUndefined();
    expect(scanNeeds(rules('SUBSYSTEM=="tty*"')).subsystems).toBeUndefined();
    expect(scanNeeds(rules('SUBSYSTEM!="tty"')).subsystems).toBeUndefined();
  });
});
