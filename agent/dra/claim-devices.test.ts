import { describe, expect, it } from 'vitest';
import { deviceName } from '../../api/names.ts';
import type { ServedDevice } from '../device.ts';
import { resolveClaimDevices, type ResourceClaim } from './claim-devices.ts';

const online = deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'on' });
const offline = deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'off' });
const served = new Map<string, ServedDevice>(
  [
    [online, true],
    [offline, false],
  ].map(([name, isOnline]) => [
    name as string,
    {
      name,
      namespace: 'ns',
      discovery: 'cams',
      deviceId: 'x',
      shared: false,
      capacity: 1,
      online: isOnline,
      properties: {},
      mounts: [],
      deviceNodes: [],
    } as ServedDevice,
  ]),
);

function claim(devices: string[], driver = 'tether.dev', uid = 'u1'): ResourceClaim {
  return {
    metadata: { uid },
    status: { allocation: { devices: { results: devices.map((device) => ({ request: 'req', driver, pool: 'ns.cams/n1', device })) } } },
  };
}

describe('resolveClaimDevices', () => {
  it('maps each tether.dev result to the served device', () => {
    const outcome = resolveClaimDevices(claim([online]), 'u1', (n) => served.get(n));
    expect(outcome).toEqual({
      devices: [{ result: claim([online]).status!.allocation!.devices!.results![0], device: served.get(online) }],
    });
  });

  it('ignores other drivers', () => {
    expect(resolveClaimDevices(claim(['gpu-0'], 'gpu.example.com'), 'u1', (n) => served.get(n))).toEqual({ devices: [] });
  });

  it.each([
    ['an unknown device', claim(['cams-00000000000000ff']), 'u1', /cams-00000000000000ff \(pool ns.cams\/n1\) is not served by this node/],
    ['a non-Tether name', claim(['gpu-0']), 'u1', /gpu-0 .* not served/],
    ['an offline device', claim([offline]), 'u1', /is offline on this node/],
    ['a replaced claim', claim([online]), 'u2', /uid u1, the kubelet asked for u2/],
    ['an unallocated claim', { metadata: { uid: 'u1' } }, 'u1', /not allocated/],
  ])('refuses %s with a clear error', (_what, c, uid, message) => {
    const outcome = resolveClaimDevices(c, uid, (n) => served.get(n));
    expect('error' in outcome && outcome.error).toMatch(message);
  });
});
