import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { explainDevice, explainDiscovery, explainPod, tetherRequests, type ClusterFacts } from './explain.ts';

const device = (name: string, extra: Partial<Device['spec']> = {}, status?: Device['status']): Device => ({
  apiVersion: 'tether.dev/v1alpha1',
  kind: 'Device',
  metadata: { name, namespace: 'cams' },
  spec: {
    discovery: 'cams',
    deviceId: `${name}-id`,
    shared: true,
    capacity: 1,
    nodes: ['n1', 'n2'],
    properties: { ONVIF_STREAM_URI: 'rtsp://x' },
    ...extra,
  },
  ...(status === undefined ? {} : { status }),
});

const pod = (name: string, resource: string, extra: Partial<V1Pod> = {}): V1Pod => ({
  metadata: { name, namespace: 'cams', uid: name },
  spec: { containers: [{ name: 'main', resources: { limits: { [resource]: '1', cpu: '1' } } }] },
  status: { phase: 'Pending' },
  ...extra,
});

const discovery: DeviceDiscovery = {
  apiVersion: 'tether.dev/v1alpha1',
  kind: 'DeviceDiscovery',
  metadata: { name: 'cams', namespace: 'cams' },
  spec: { handler: 'onvif' },
};

const event = (kind: string, name: string, reason: string, message: string, at: string): CoreV1Event => ({
  involvedObject: { kind, name },
  reason,
  message,
  type: 'Warning',
  lastTimestamp: new Date(at),
  metadata: {},
});

describe('explain', () => {
  it('counts the Tether resources of every container (limits over requests)', () => {
    const p: V1Pod = {
      spec: {
        containers: [
          { name: 'a', resources: { requests: { 'tether.dev/x': '1' }, limits: { 'tether.dev/x': '2' } } },
          { name: 'b', resources: { limits: { 'tether.dev/x': '1', memory: '1Gi' } } },
        ],
      },
    };
    expect([...tetherRequests(p)]).toEqual([['tether.dev/x', 3]]);
  });

  it('a Pending pod on an exhausted device: the device, who holds its slot, who else wants it, the scheduler’s reason', () => {
    const cam = device('cams-0123456789abcdef', { slots: { '0': 'n1' } });
    const waiting = pod('viewer-2', 'tether.dev/cams-0123456789abcdef');
    const running = pod('viewer-1', 'tether.dev/cams-0123456789abcdef', {
      spec: { nodeName: 'n1', containers: waiting.spec!.containers },
      status: { phase: 'Running' },
    });
    const facts: ClusterFacts = {
      devices: [cam],
      discoveries: [discovery],
      pods: [waiting, running],
      events: [
        event(
          'Pod',
          'viewer-2',
          'FailedScheduling',
          '0/2 nodes are available: 2 Insufficient tether.dev/cams-0123456789abcdef.',
          '2026-01-01T00:00:00Z',
        ),
      ],
    };
    expect(explainPod(waiting, facts)).toEqual([
      'Pod cams/viewer-2 is Pending.',
      'It asks for 1 × tether.dev/cams-0123456789abcdef: the device cams-0123456789abcdef.',
      '  Device cams-0123456789abcdef (cams-0123456789abcdef-id, discovery cams): seen by n1, n2; 1 of 1 slot(s) held (slot 0 by n1); 0 free.',
      '  Other pods asking for tether.dev/cams-0123456789abcdef: viewer-1 on n1.',
      'The scheduler says: 0/2 nodes are available: 2 Insufficient tether.dev/cams-0123456789abcdef.',
    ]);
  });

  it('a pod asking for a device that no longer exists says so', () => {
    const lines = explainPod(pod('p', 'tether.dev/cams-ffffffffffffffff'), { devices: [], discoveries: [discovery], pods: [], events: [] });
    expect(lines[1]).toContain('no Device or DeviceDiscovery named cams-ffffffffffffffff exists in cams');
    expect(lines.at(-1)).toBe('It is not scheduled yet and the scheduler has not said why.');
  });

  it('an offline device and its users', () => {
    const cam = device('cams-0123456789abcdef', {}, { nodeStates: [{ node: 'n2', state: 'Offline' }] });
    const lines = explainDevice(cam, { devices: [cam], discoveries: [discovery], pods: [pod('viewer', 'tether.dev/cams')], events: [] });
    expect(lines[0]).toContain('seen by n1, n2 (offline, within its grace period); all 1 slot(s) free');
    expect(lines).toContain('Its containers get 1 property as env vars: ONVIF_STREAM_URI.');
    expect(lines).toContain('No pod asks for tether.dev/cams-0123456789abcdef.');
    expect(lines).toContain('Pods asking for any device of cams: viewer (not scheduled).');
  });

  it('a discovery with bad details: no devices, and the agents’ warnings, newest last', () => {
    const facts: ClusterFacts = {
      devices: [],
      discoveries: [discovery],
      pods: [],
      events: [
        event(
          'DeviceDiscovery',
          'cams',
          'PropertiesUnresolved',
          'Could not resolve properties: Secret cams/login not found (node n1)',
          '2026-01-01T00:00:01Z',
        ),
        event(
          'DeviceDiscovery',
          'cams',
          'InvalidDetails',
          'Rejected discovery details: details.interfaces: must be a list (node n1)',
          '2026-01-01T00:00:02Z',
        ),
        event('DeviceDiscovery', 'other', 'InvalidDetails', 'not this one', '2026-01-01T00:00:03Z'),
      ],
    };
    expect(explainDiscovery(discovery, facts)).toEqual([
      'DeviceDiscovery cams/cams runs the onvif handler.',
      'It has found no device (yet).',
      'Last warnings:',
      '  PropertiesUnresolved: Could not resolve properties: Secret cams/login not found (node n1)',
      '  InvalidDetails: Rejected discovery details: details.interfaces: must be a list (node n1)',
    ]);
  });
});
