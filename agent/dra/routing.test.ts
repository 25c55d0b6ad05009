import { describe, expect, it } from 'vitest';
import { deviceName } from '../../api/names.ts';
import type { ServedDevice } from '../device.ts';
import { splitDraDevices } from './routing.ts';

function device(discovery: string, id: string): ServedDevice {
  const name = deviceName({ namespace: 'ns', discovery, deviceId: id });
  return {
    name,
    namespace: 'ns',
    discovery,
    deviceId: id,
    shared: true,
    capacity: 1,
    online: true,
    properties: {},
    mounts: [],
    deviceNodes: [],
  };
}

describe('splitDraDevices', () => {
  const cam = device('cams', 'a');
  const lamp = device('lamps', 'b');
  const resources = new Map([
    [`tether.dev/${cam.name}`, 1],
    ['tether.dev/cams', 2],
    [`tether.dev/${lamp.name}`, 3],
    ['tether.dev/lamps', 4],
  ]);

  it('takes DRA discoveries’ devices and their resources away from the device plugins', () => {
    const { dra, plugins } = splitDraDevices(resources, [cam, lamp], (_ns, d) => d === 'cams');
    expect(dra).toEqual([cam]);
    expect([...plugins.keys()]).toEqual([`tether.dev/${lamp.name}`, 'tether.dev/lamps']);
  });

  it('leaves everything to the device plugins without DRA discoveries', () => {
    expect(splitDraDevices(resources, [cam, lamp], () => false).plugins).toBe(resources);
  });
});
