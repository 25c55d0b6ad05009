/** Builders shared by the controller's unit tests. */
import { API_VERSION, type Device, type DeviceDiscovery } from '../../api/schema.ts';
import type { NodeHealth, NodeInfo, NodeLookup } from '../../controller/nodes/nodes.ts';
import type { ObservedBroker } from '../../controller/devices/brokers/observe.ts';

export const DEVICE = 'cams-0123456789abcdef';
export const DEVICE_UID = 'device-uid';

export function discovery(overrides: Partial<DeviceDiscovery['spec']> = {}): DeviceDiscovery {
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceDiscovery',
    metadata: { name: 'cams', namespace: 'ns', uid: 'discovery-uid', generation: 3 },
    spec: { handler: 'onvif', capacity: 2, broker: { pod: { spec: { containers: [{ name: 'broker', image: 'b:1' }] } } }, ...overrides },
  };
}

export function device(nodes: string[], capacity = 2, extra: Partial<Device['spec']> = {}): Device {
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata: { name: DEVICE, namespace: 'ns', uid: DEVICE_UID, generation: 1 },
    spec: { discovery: 'cams', deviceId: 'urn:1', shared: true, capacity, nodes, ...extra },
  };
}

/** Every node Ready and schedulable unless listed. */
export function nodes(states: Record<string, NodeHealth | 'Cordoned'> = {}): NodeLookup {
  return (name): NodeInfo => {
    const state = states[name] ?? 'Ready';
    if (state === 'Cordoned') return { name, health: 'Ready', schedulable: false, labels: {} };
    return { name, health: state, schedulable: true, labels: {}, ...(state === 'NotReady' ? { lostAtMs: 10_000 } : {}) };
  };
}

export function broker(name: string, node: string, overrides: Partial<ObservedBroker> = {}): ObservedBroker {
  return {
    kind: 'Pod',
    name,
    uid: `uid-${name}`,
    node,
    templateHash: undefined,
    ownerUid: DEVICE_UID,
    phase: 'ready',
    recreations: 0,
    ...overrides,
  };
}
