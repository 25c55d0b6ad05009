import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { deviceName, deviceResourceName } from '../../api/names.ts';
import type { Device } from '../../api/schema.ts';
import { consumersToEvict, type SweepInput } from './consumers.ts';

const CAM_1 = deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'cam-1' });
const CAM_2 = deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'cam-2' });
const OTHER = deviceName({ namespace: 'ns', discovery: 'cams-x', deviceId: 'cam-1' });

function pod(
  name: string,
  resource: string,
  options: { node?: string; phase?: string; broker?: boolean; terminating?: boolean; init?: boolean } = {},
): V1Pod {
  const container = { name: 'c', image: 'i', resources: { requests: { [resource]: '1' } } };
  return {
    metadata: {
      name,
      namespace: 'ns',
      ...(options.broker ? { labels: { 'app.kubernetes.io/managed-by': 'tether-controller' } } : {}),
      ...(options.terminating ? { deletionTimestamp: new Date() } : {}),
    },
    spec: {
      nodeName: options.node ?? 'n1',
      containers: options.init ? [] : [container],
      ...(options.init ? { initContainers: [container] } : {}),
    },
    status: { phase: options.phase ?? 'Running' },
  };
}

function device(name: string, nodes: string[]): Device {
  return {
    apiVersion: 'tether.dev/v1alpha1',
    kind: 'Device',
    metadata: { name, namespace: 'ns' },
    spec: { discovery: 'cams', deviceId: name, shared: true, capacity: 1, nodes },
  };
}

const input = (over: Partial<SweepInput> = {}): SweepInput => ({
  discovery: 'cams',
  devices: [device(CAM_2, ['n2'])],
  existing: new Set([CAM_2]),
  discoveryWide: true,
  ...over,
});
const names = (pods: V1Pod[], sweep: SweepInput): string[] => consumersToEvict(pods, sweep).map((c) => c.pod.metadata!.name!);

describe('consumersToEvict', () => {
  it('picks running consumers of a device that no longer exists, and only them', () => {
    const pods = [pod('uses-gone', deviceResourceName(CAM_1)), pod('uses-live', deviceResourceName(CAM_2)), pod('unrelated', 'cpu')];
    expect(consumersToEvict(pods, input())).toEqual([{ pod: pods[0], resource: deviceResourceName(CAM_1), device: CAM_1 }]);
  });

  it('counts init containers and leaves brokers, finished and terminating pods alone', () => {
    const gone = deviceResourceName(CAM_1);
    const pods = [
      pod('init', gone, { init: true }),
      pod('broker', gone, { broker: true }),
      pod('done', gone, { phase: 'Succeeded' }),
      pod('failed', gone, { phase: 'Failed' }),
      pod('going', gone, { terminating: true }),
    ];
    expect(names(pods, input())).toEqual(['init']);
  });

  it('with known gone devices (the live path), only those', () => {
    const pods = [
      pod('a', deviceResourceName(CAM_1)),
      pod('b', deviceResourceName(deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'cam-3' }))),
    ];
    expect(names(pods, input({ gone: new Set([CAM_1]) }))).toEqual(['a']);
  });

  it('never a device of another discovery sharing the prefix, nor one that exists in another namespace', () => {
    const elsewhere = deviceName({ namespace: 'other', discovery: 'cams', deviceId: 'cam-1' });
    const pods = [pod('prefix', deviceResourceName(OTHER)), pod('elsewhere', deviceResourceName(elsewhere))];
    expect(names(pods, input({ existing: new Set([CAM_2, elsewhere]) }))).toEqual([]);
  });

  it('consumers of the discovery-wide resource on a node where no device of it is left', () => {
    const pods = [pod('on-empty-node', 'tether.dev/cams', { node: 'n1' }), pod('on-served-node', 'tether.dev/cams', { node: 'n2' })];
    expect(names(pods, input())).toEqual(['on-empty-node']);
    expect(names(pods, input({ discoveryWide: false }))).toEqual([]);
  });
});
