import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DEVICE, DEVICE_UID, device, discovery } from '../../test/support/broker-fixtures.ts';
import { brokerObject, templateHash } from '../devices/brokers/desired.ts';
import {
  desiredClaimTemplate,
  desiredDeviceClass,
  extendedResourceHolder,
  planClaimTemplate,
  planDeviceClass,
  type DeviceClass,
} from './objects.ts';

const dra = (extra = {}): ReturnType<typeof discovery> => discovery({ backend: 'DRA', ...extra });

describe('DeviceClass', () => {
  it('selects the discovery by CEL and names the extended resource', () => {
    expect(desiredDeviceClass(dra())).toMatchObject({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'DeviceClass',
      metadata: {
        name: 'ns.cams.tether.dev',
        labels: {
          'app.kubernetes.io/managed-by': 'tether-controller',
          'tether.dev/discovery': 'cams',
          'tether.dev/discovery-namespace': 'ns',
        },
      },
      spec: {
        selectors: [
          {
            cel: {
              expression:
                'device.driver == "tether.dev" && device.attributes["tether.dev"].namespace == "ns" && device.attributes["tether.dev"].discovery == "cams"',
            },
          },
        ],
        extendedResourceName: 'tether.dev/cams',
      },
    });
  });

  const ours = desiredDeviceClass(dra());
  const foreign: DeviceClass = { metadata: { name: 'ns.cams.tether.dev' }, spec: { selectors: [] } };
  const stale: DeviceClass = { ...ours, metadata: { ...ours.metadata, annotations: { 'tether.dev/applied-hash': 'old' } } };
  it.each([
    ['DRA, no class yet', dra(), undefined, 'apply'],
    ['DRA, class up to date', dra(), ours, 'none'],
    ['DRA, class changed', dra(), stale, 'apply'],
    ['DRA, a class of that name made by someone else', dra(), foreign, 'conflict'],
    ['device plugin, our class left over', discovery(), ours, 'delete'],
    ['discovery gone, our class left over (the sweep)', undefined, ours, 'delete'],
    ['discovery gone, foreign class', undefined, foreign, 'none'],
    ['discovery gone, nothing there', undefined, undefined, 'none'],
  ] as const)('%s → %s', (_what, d, cached, expected) => {
    expect(planDeviceClass('ns', 'cams', d, cached).kind).toBe(expected);
  });
});

describe('same-named DRA discoveries in several namespaces: one holds tether.dev/<name>', () => {
  const at = (namespace: string, created: string, extra = {}): ReturnType<typeof discovery> => {
    const d = dra(extra);
    return { ...d, metadata: { ...d.metadata, namespace, creationTimestamp: new Date(created) } };
  };

  it('the oldest live DRA discovery of that name holds it; namespaces break ties; others and other names do not count', () => {
    const older = at('b', '2026-01-01T00:00:00Z');
    const younger = at('a', '2026-02-01T00:00:00Z');
    const twin = at('a', '2026-01-01T00:00:00Z');
    expect(extendedResourceHolder([younger, older], 'cams')).toBe('b/cams');
    expect(extendedResourceHolder([older, twin], 'cams')).toBe('a/cams');
    const pluginOnly = { ...at('c', '2025-01-01T00:00:00Z'), spec: discovery().spec };
    const deleting = at('d', '2025-01-01T00:00:00Z');
    deleting.metadata.deletionTimestamp = new Date('2026-03-01T00:00:00Z');
    expect(extendedResourceHolder([younger, pluginOnly, deleting], 'cams')).toBe('a/cams');
    expect(extendedResourceHolder([younger], 'other')).toBeUndefined();
  });

  it('a discovery that does not hold it gets a class without extendedResourceName, re-applied when that changes', () => {
    const without = desiredDeviceClass(dra(), false);
    expect(without.spec.extendedResourceName).toBeUndefined();
    expect(planDeviceClass('ns', 'cams', dra(), without, false).kind).toBe('none');
    expect(planDeviceClass('ns', 'cams', dra(), without, true).kind).toBe('apply');
  });
});

describe('broker ResourceClaimTemplate', () => {
  it('asks for one slot of exactly this device, owned by the Device', () => {
    const template = desiredClaimTemplate(device(['a']));
    expect(template.metadata).toMatchObject({
      name: `${DEVICE}-claim`,
      namespace: 'ns',
      ownerReferences: [{ kind: 'Device', name: DEVICE, uid: DEVICE_UID, controller: true }],
    });
    expect(template.spec.spec.devices.requests).toEqual([
      {
        name: 'device',
        exactly: {
          deviceClassName: 'ns.cams.tether.dev',
          allocationMode: 'ExactCount',
          count: 1,
          selectors: [{ cel: { expression: `device.attributes["tether.dev"].device == "${DEVICE}"` } }],
          capacity: { requests: { 'tether.dev/slots': '1' } },
        },
      },
    ]);
  });

  it.each([
    ['DRA with a broker template', dra(), false, 'apply'],
    ['DRA without brokers', dra({ broker: undefined }), true, 'delete'],
    ['device plugin', discovery(), true, 'delete'],
    ['device plugin, none there', discovery(), false, 'none'],
  ] as const)('%s → %s', (_what, d, exists, expected) => {
    const dev = device(['a']);
    expect(planClaimTemplate(dev, d, exists ? desiredClaimTemplate(dev) : undefined).kind).toBe(expected);
  });
});

describe('DRA brokers', () => {
  const input = { device: device(['a']), placement: { node: 'a', name: 'b-1' }, templateHash: 'h', recreations: 0 };

  it('claim the device through its template instead of the extended resource', () => {
    const pod = brokerObject({ ...input, discovery: dra() }) as V1Pod;
    expect(pod.spec?.resourceClaims).toEqual([{ name: 'tether-device', resourceClaimTemplateName: `${DEVICE}-claim` }]);
    expect(pod.spec?.containers[0]?.resources).toEqual({ claims: [{ name: 'tether-device' }] });
    expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toHaveLength(1);
  });

  it('device-plugin brokers keep the extended resource and their template hash', () => {
    const pod = brokerObject({ ...input, discovery: discovery() }) as V1Pod;
    expect(pod.spec?.resourceClaims).toBeUndefined();
    expect(pod.spec?.containers[0]?.resources?.limits).toEqual({ [`tether.dev/${DEVICE}`]: '1' });
    expect(templateHash(dra())).not.toBe(templateHash(discovery()));
  });
});
