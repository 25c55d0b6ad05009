/**
 * udev through the agent to the (mock) kubelet, on a sysfs + udev database fixture: a camera
 * plugged in → allocatable, Allocate gives an Akri broker UDEV_DEVNODE / UDEV_DEVPATH and the
 * device node; unplugged → Unhealthy at once, gone after the grace period.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { camera, UdevFixture, usbController, XHCI } from '../../test/fixtures/udev/udev-fixture.ts';
import { startAgentWithHandler } from '../../test/support/handler-kit.ts';
import { createUdevHandler } from './udev.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('udev through the agent', () => {
  it('plugged in → allocatable with UDEV_DEVNODE and the node; unplugged → Unhealthy, then gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tud-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const f = new UdevFixture(dir);
    await f.init();
    await f.addAll(usbController());
    const kit = await startAgentWithHandler({
      handler: createUdevHandler({ sysfsRoot: f.sysfsRoot, udevDataRoot: f.udevDataRoot }),
      discovery: 'webcams',
      // Akri's discoveryDetails, as YAML text.
      details: `udevRules:\n- 'SUBSYSTEM=="video4linux", ENV{ID_V4L_CAPABILITIES}=="*:capture:*"'\npollIntervalSeconds: 600\n`,
      capacity: 1,
      offlineGraceMs: 300,
    });
    cleanups.push(() => kit.stop());

    const cam = camera();
    await f.addAll(cam);
    const id = `${XHCI}/usb1/1-2/1-2:1.0/video4linux/video0`;
    const resource = kit.deviceResource(id, 'node');
    await kit.waitForSlots(resource, { healthy: 1, total: 1 }, 3_000);
    const allocation = await kit.allocate('streamer', resource);
    expect(allocation.devices).toEqual([{ container_path: '/dev/video0', host_path: '/dev/video0', permissions: 'rwm' }]);
    expect(allocation.envs['UDEV_DEVNODE']).toBe('/dev/video0');
    expect(allocation.envs['UDEV_DEVPATH']).toBe(id);

    await f.remove(cam);
    await kit.waitForSlots(resource, { healthy: 0, total: 1 }, 3_000);
    await kit.waitForResourceGone(resource, 3_000);
  });
});
