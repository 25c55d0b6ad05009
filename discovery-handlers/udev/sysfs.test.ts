/** Reading sysfs and the udev database: what udev would see, and odd or hostile trees. */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { camera, ftdiSerial, platformUart, UdevFixture, usbController, XHCI } from '../../test/fixtures/udev/udev-fixture.ts';
import { parseUdevDb, parseUevent, udevDbName } from './records.ts';
import { scanUdevDevices } from './sysfs.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function fixture(withDb = true): Promise<UdevFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'udev-sysfs-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const f = new UdevFixture(dir);
  await f.init(withDb);
  return f;
}

const scan = (f: UdevFixture, attrs: string[] = [], subsystems?: string[]): ReturnType<typeof scanUdevDevices> =>
  scanUdevDevices({ sysfsRoot: f.sysfsRoot, udevDataRoot: f.udevDataRoot }, { attrs, subsystems });

const VIDEO0 = `${XHCI}/usb1/1-2/1-2:1.0/video4linux/video0`;

describe('records', () => {
  it('parses uevent and udev database files, skipping malformed lines', () => {
    expect([...parseUevent('MAJOR=81\nMINOR=0\nDEVNAME=video0\nbroken line\n=x\nA B=1\n')]).toEqual([
      ['MAJOR', '81'],
      ['MINOR', '0'],
      ['DEVNAME', 'video0'],
    ]);
    const db = parseUdevDb('S:v4l/by-id/x\nS:../../etc/passwd\nI:1\nE:ID_SERIAL=S1\nE:bad key=1\nG:uaccess\nQ:seat\nV:1\n');
    expect([...db.env]).toEqual([['ID_SERIAL', 'S1']]);
    expect([...db.tags]).toEqual(['uaccess', 'seat']);
    expect(db.links).toEqual(['v4l/by-id/x']);
  });

  it.each([
    [{ MAJOR: '81', MINOR: '0' }, 'video4linux', 'video0', 'c81:0'],
    [{ MAJOR: '8', MINOR: '0' }, 'block', 'sda', 'b8:0'],
    [{ IFINDEX: '2' }, 'net', 'eth0', 'n2'],
    [{}, 'usb', '1-2:1.0', '+usb:1-2:1.0'],
    [{}, undefined, 'x', undefined],
  ])('names the database record of %j %s %s: %s', (uevent, subsystem, name, expected) => {
    expect(udevDbName(new Map(Object.entries(uevent)), subsystem, name)).toBe(expected);
  });
});

describe('scanUdevDevices', () => {
  it('finds class and bus devices with their ancestors, env from uevent + database, tags, links, attributes', async () => {
    const f = await fixture();
    await f.addAll([...usbController(), ...camera()]);
    const s = await scan(f, ['index', 'idVendor']);
    expect(s.sysfs && s.udevDb && !s.truncated).toBe(true);
    const video = s.index.get(VIDEO0)!;
    expect(video).toMatchObject({
      sysname: 'video0',
      subsystem: 'video4linux',
      driver: undefined,
      devname: 'video0',
      parent: `${XHCI}/usb1/1-2/1-2:1.0`,
      initialized: true,
    });
    expect(video.env.get('DEVNAME')).toBe('/dev/video0');
    expect(video.env.get('MAJOR')).toBe('81');
    expect(video.env.get('ID_V4L_CAPABILITIES')).toBe(':capture:');
    expect(video.env.get('DEVPATH')).toBe(VIDEO0);
    expect(video.env.get('TAGS')).toBe(':uaccess:seat:');
    expect(video.attrs.get('index')).toBe('0'); // trailing newline trimmed
    expect(video.attrs.get('idVendor')).toBeUndefined();
    expect(s.index.get(`${XHCI}/usb1/1-2`)!.attrs.get('idVendor')).toBe('046d');
    expect(s.index.get('/devices/pci0000:00')).toMatchObject({ subsystem: undefined, parent: undefined });
    // Candidates: class and bus entries only (the bare PCI root has no subsystem: not one).
    expect(s.candidates.map((d) => d.devpath)).not.toContain('/devices/pci0000:00');
    expect(s.candidates.map((d) => d.devpath)).toContain(VIDEO0);
  });

  it('lists only the pinned subsystems', async () => {
    const f = await fixture();
    await f.addAll([...usbController(), ...camera(), ...platformUart()]);
    const s = await scan(f, [], ['tty']);
    expect(s.candidates.map((d) => d.devpath)).toEqual(['/devices/platform/serial8250/tty/ttyS0']);
  });

  it('hides a device with a node until udevd has recorded it (as udev enumerates), shows one without a node', async () => {
    const f = await fixture();
    await f.addAll(usbController());
    const [usb, intf, port, tty] = ftdiSerial();
    for (const d of [usb!, intf!, port!, tty!]) await f.addSysfs(d); // the kernel's part only
    await f.add({ ...tty!, db: undefined });
    const s = await scan(f);
    expect(s.index.get(tty!.devpath)!.initialized).toBe(false);
    expect(s.index.get(port!.devpath)!.initialized).toBe(true);
    await f.writeDb(tty!);
    expect((await scan(f)).index.get(tty!.devpath)!.initialized).toBe(true);
  });

  it('without a udev database: every device counts, ENV is the uevent', async () => {
    const f = await fixture(false);
    await f.addAll([...usbController(), ...camera()]);
    const s = await scan(f);
    expect(s.udevDb).toBe(false);
    const video = s.index.get(VIDEO0)!;
    expect(video.initialized).toBe(true);
    expect(video.env.get('ID_V4L_CAPABILITIES')).toBeUndefined();
    expect(video.tags.size).toBe(0);
  });

  it('without sysfs: an empty scan, no error', async () => {
    const s = await scanUdevDevices(
      { sysfsRoot: '/nonexistent/sys', udevDataRoot: '/nonexistent/udev' },
      { attrs: [], subsystems: undefined },
    );
    expect(s).toMatchObject({ sysfs: false, candidates: [] });
  });

  it('survives hostile trees: unsafe DEVNAME, links out of the tree and in loops, directories as attributes, huge files', async () => {
    const f = await fixture();
    const sys = f.sysfsRoot;
    await f.add({
      devpath: '/devices/virtual/tty/evil',
      subsystem: 'tty',
      uevent: { MAJOR: '4', MINOR: '99', DEVNAME: '../../etc/passwd' },
      db: {},
    });
    await mkdir(join(sys, 'devices/virtual/tty/evil/index'));
    await writeFile(join(sys, 'devices/virtual/tty/evil/name'), 'x'.repeat(100_000));
    await writeFile(join(f.udevDataRoot, 'c4:99'), `E:ID_SERIAL=${'y'.repeat(50_000)}\n${'E:K=V\n'.repeat(10_000)}`);
    await symlink('/etc', join(sys, 'class/tty/outside'));
    await symlink('loop', join(sys, 'class/tty/loop'));
    await symlink('../../devices/nothing', join(sys, 'class/tty/dangling'));
    await mkdir(join(sys, 'class/tty/plain-dir'));
    const s = await scan(f, ['index', 'name', '../escape']);
    expect(s.candidates.map((d) => d.devpath)).toEqual(['/devices/virtual/tty/evil']);
    const evil = s.candidates[0]!;
    expect(evil.devname).toBeUndefined();
    expect(evil.env.get('DEVNAME')).toBe('../../etc/passwd'); // as the kernel wrote it; never used as a node
    expect(evil.attrs.get('index')).toBeUndefined();
    expect(evil.attrs.get('name')!.length).toBe(4096);
    expect(evil.env.get('ID_SERIAL')!.length).toBeLessThanOrEqual(1024);
  });

  it('bounds the parent walk of a very deep tree', async () => {
    const f = await fixture();
    let path = '/devices';
    for (let i = 0; i < 100; i++) {
      path += `/d${i}`;
      await mkdir(join(f.sysfsRoot, path), { recursive: true });
      await writeFile(join(f.sysfsRoot, path, 'uevent'), '');
    }
    await f.add({ devpath: `${path}/tty/deep`, subsystem: 'tty', db: {} });
    const s = await scan(f);
    expect(s.candidates).toHaveLength(1);
    expect(s.index.size).toBeLessThanOrEqual(66);
  });
});
