/**
 * Desired Services (pure): a per-device Service from `spec.deviceService` and a per-discovery
 * Service from `spec.discoveryService`, each existing only while brokers exist, selecting the
 * broker labels. Applied by the controller with server-side apply; the `applied-hash`
 * annotation lets it skip applies that would change nothing.
 */
import type { V1Service, V1ServiceSpec } from '@kubernetes/client-node';
import { API_VERSION } from '../../api/group.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import {
  APPLIED_HASH_ANNOTATION,
  COMPONENT_LABEL,
  DEVICE_LABEL,
  DISCOVERY_LABEL,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  deviceServiceName,
  discoveryServiceName,
  stableHash,
} from '../../api/labels.ts';

interface Owner {
  readonly kind: 'Device' | 'DeviceDiscovery';
  readonly name: string;
  readonly uid: string;
}

function service(
  name: string,
  namespace: string,
  owner: Owner,
  template: V1ServiceSpec,
  labels: Record<string, string>,
  selector: Record<string, string>,
): V1Service {
  const spec: V1ServiceSpec = { ...structuredClone(template), selector };
  const metadata = {
    name,
    namespace,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [COMPONENT_LABEL]: 'service', ...labels },
    ownerReferences: [{ apiVersion: API_VERSION, kind: owner.kind, name: owner.name, uid: owner.uid, controller: true }],
  };
  const hash = stableHash({ metadata, spec });
  return { apiVersion: 'v1', kind: 'Service', metadata: { ...metadata, annotations: { [APPLIED_HASH_ANNOTATION]: hash } }, spec };
}

/** The device's Service, or undefined when it should not exist. */
export function desiredDeviceService(device: Device, discovery: DeviceDiscovery | undefined, brokersExist: boolean): V1Service | undefined {
  const template = discovery?.spec.deviceService;
  if (template === undefined || !brokersExist) return undefined;
  const name = device.metadata.name ?? '';
  return service(
    deviceServiceName(name),
    device.metadata.namespace ?? '',
    { kind: 'Device', name, uid: device.metadata.uid ?? '' },
    template,
    { [DISCOVERY_LABEL]: device.spec.discovery, [DEVICE_LABEL]: name },
    { [COMPONENT_LABEL]: 'broker', [DEVICE_LABEL]: name },
  );
}

/** The discovery's Service, or undefined when it should not exist. */
export function desiredDiscoveryService(discovery: DeviceDiscovery, brokersExist: boolean): V1Service | undefined {
  const template = discovery.spec.discoveryService;
  if (template === undefined || !brokersExist) return undefined;
  const name = discovery.metadata.name ?? '';
  return service(
    discoveryServiceName(name),
    discovery.metadata.namespace ?? '',
    { kind: 'DeviceDiscovery', name, uid: discovery.metadata.uid ?? '' },
    template,
    { [DISCOVERY_LABEL]: name },
    { [COMPONENT_LABEL]: 'broker', [DISCOVERY_LABEL]: name },
  );
}

export type ServiceAction =
  | { readonly action: 'apply'; readonly service: V1Service }
  | { readonly action: 'delete'; readonly name: string }
  | { readonly action: 'none' };

/** What to do to make `observed` match `desired`. */
export function planService(desired: V1Service | undefined, observed: V1Service | undefined): ServiceAction {
  if (desired === undefined) {
    if (observed === undefined || observed.metadata?.deletionTimestamp != null) return { action: 'none' };
    return { action: 'delete', name: observed.metadata?.name ?? '' };
  }
  return isUpToDate(desired, observed) ? { action: 'none' } : { action: 'apply', service: desired };
}

function isUpToDate(desired: V1Service, observed: V1Service | undefined): boolean {
  const meta = observed?.metadata;
  if (meta === undefined || meta.deletionTimestamp != null) return false;
  const want = desired.metadata?.annotations?.[APPLIED_HASH_ANNOTATION];
  const ownerUid = desired.metadata?.ownerReferences?.[0]?.uid;
  return meta.annotations?.[APPLIED_HASH_ANNOTATION] === want && (meta.ownerReferences ?? []).some((r) => r.uid === ownerUid);
}
