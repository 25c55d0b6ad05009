import { describe, expect, it } from 'vitest';
import { DEVICE, device, discovery } from '../../test/support/broker-fixtures.ts';
import { desiredDeviceService, desiredDiscoveryService, planService } from './services.ts';

const withServices = discovery({
  deviceService: { type: 'ClusterIP', ports: [{ name: 'rtsp', port: 554 }], selector: { ignored: 'yes' } },
  discoveryService: { ports: [{ name: 'rtsp', port: 554 }] },
});

describe('desired Services', () => {
  it('a device Service selects the device’s brokers and is owned by the Device', () => {
    const svc = desiredDeviceService(device(['a']), withServices, true)!;
    expect(svc.metadata?.name).toBe(`${DEVICE}-svc`);
    expect(svc.spec?.selector).toEqual({ 'tether.dev/component': 'broker', 'tether.dev/device': DEVICE });
    expect(svc.spec?.ports).toEqual([{ name: 'rtsp', port: 554 }]);
    expect(svc.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Device', uid: 'device-uid', controller: true });
    expect(svc.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'tether-controller', 'tether.dev/component': 'service' });
  });

  it('a discovery Service selects every broker of the discovery and is owned by it', () => {
    const svc = desiredDiscoveryService(withServices, true)!;
    expect(svc.metadata?.name).toBe('cams-svc');
    expect(svc.spec?.selector).toEqual({ 'tether.dev/component': 'broker', 'tether.dev/discovery': 'cams' });
    expect(svc.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'DeviceDiscovery', uid: 'discovery-uid' });
  });

  it.each([
    { what: 'no brokers', spec: withServices, brokers: false },
    { what: 'no service in the spec', spec: discovery(), brokers: true },
  ])('none with $what', ({ spec, brokers }) => {
    expect(desiredDeviceService(device(['a']), spec, brokers)).toBeUndefined();
    expect(desiredDiscoveryService(spec, brokers)).toBeUndefined();
  });
});

describe('planService', () => {
  const desired = desiredDeviceService(device(['a']), withServices, true)!;
  it.each([
    { what: 'missing → apply', observed: undefined, want: desired, action: 'apply' },
    { what: 'same hash and owner → nothing', observed: structuredClone(desired), want: desired, action: 'none' },
    {
      what: 'other hash → apply',
      observed: { ...desired, metadata: { ...desired.metadata, annotations: { 'tether.dev/applied-hash': 'old' } } },
      want: desired,
      action: 'apply',
    },
    {
      what: 'other owner → apply',
      observed: { ...desired, metadata: { ...desired.metadata, ownerReferences: [] } },
      want: desired,
      action: 'apply',
    },
    { what: 'unwanted → delete', observed: desired, want: undefined, action: 'delete' },
    { what: 'unwanted and absent → nothing', observed: undefined, want: undefined, action: 'none' },
  ])('$what', ({ observed, want, action }) => {
    expect(planService(want, observed).action).toBe(action);
  });
});
