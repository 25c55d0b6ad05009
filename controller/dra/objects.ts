/**
 * The DRA objects the controller derives (pure): one DeviceClass per DRA DeviceDiscovery and one
 * ResourceClaimTemplate per device with brokers, and what to do about each given the cache.
 *
 * - DeviceClass `<namespace>.<discovery>.tether.dev` selects the discovery's devices with CEL on
 *   the standard attributes and carries `extendedResourceName: tether.dev/<discovery>`, so a pod
 *   asking for the extended resource is served through DRA unchanged (KEP-5004). It is
 *   cluster-scoped and a namespaced DeviceDiscovery cannot own it: it carries labels naming its
 *   discovery instead, and the controller deletes it when the discovery is gone or leaves the
 *   DRA backend — level-triggered, from the DeviceClass informer (a class whose discovery is
 *   missing enqueues that discovery), so a discovery deleted while no replica led is swept too.
 *   No finalizer: deleting a DeviceDiscovery never waits for the controller.
 * - ResourceClaimTemplate `<device>-claim` (owned by the Device: the garbage collector removes it
 *   with the Device) asks for one slot (`tether.dev/slots: 1`) of exactly that device.
 */
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { API_VERSION } from '../../api/group.ts';
import { brokerClaimTemplateName, deviceClassName, deviceSelector, discoverySelector, SLOTS_CAPACITY } from '../../api/dra-attributes.ts';
import { discoveryResourceName } from '../../api/names.ts';
import {
  APPLIED_HASH_ANNOTATION,
  DEVICE_LABEL,
  DISCOVERY_LABEL,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  stableHash,
} from '../../api/labels.ts';

/** On a DeviceClass: the namespace of the DeviceDiscovery it belongs to (the name is in `tether.dev/discovery`). */
export const DISCOVERY_NAMESPACE_LABEL = 'tether.dev/discovery-namespace';
/** Pod-level claim name of a DRA broker (`spec.resourceClaims[].name`). */
export const BROKER_CLAIM_NAME = 'tether-device';
/** The request inside a broker's claim. */
export const BROKER_REQUEST_NAME = 'device';

/** `resource.k8s.io/v1` DeviceClass, as the controller writes and reads it. */
export interface DeviceClass {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string };
  spec: { selectors: { cel: { expression: string } }[]; extendedResourceName?: string };
}

/** `resource.k8s.io/v1` ResourceClaimTemplate, as the controller writes and reads it. */
export interface ResourceClaimTemplate {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
    deletionTimestamp?: string;
  };
  spec: { spec: { devices: { requests: Record<string, unknown>[] } } };
}

/** What to do about one derived object. */
export type DerivedAction<T> =
  | { readonly kind: 'none' }
  | { readonly kind: 'apply'; readonly object: T }
  | { readonly kind: 'delete'; readonly name: string }
  /** An object of that name exists that the controller did not make: left alone, reported. */
  | { readonly kind: 'conflict'; readonly name: string };

/** True for a discovery that uses the DRA backend and is not being deleted. */
export function isDraDiscovery(discovery: DeviceDiscovery | undefined): discovery is DeviceDiscovery {
  return discovery !== undefined && discovery.metadata.deletionTimestamp == null && discovery.spec.backend === 'DRA';
}

function withHash<T extends { metadata: { annotations?: Record<string, string> } }>(object: T, hashed: unknown): T {
  object.metadata.annotations = { ...(object.metadata.annotations ?? {}), [APPLIED_HASH_ANNOTATION]: stableHash(hashed) };
  return object;
}

/**
 * Which DRA discovery named `name` holds the cluster-wide extended resource `tether.dev/<name>`
 * (`namespace/name`): the oldest live one, ties broken by namespace. Same-named discoveries in
 * other namespaces get DeviceClasses without it — two classes naming one extended resource would
 * leave the scheduler to pick between them.
 */
export function extendedResourceHolder(discoveries: Iterable<DeviceDiscovery>, name: string): string | undefined {
  let holder: DeviceDiscovery | undefined;
  for (const d of discoveries) {
    if (d.metadata.name !== name || !isDraDiscovery(d)) continue;
    if (holder === undefined || olderFirst(d, holder) < 0) holder = d;
  }
  return holder === undefined ? undefined : `${holder.metadata.namespace ?? ''}/${name}`;
}

/** Creation time in ms (the cache holds the apiserver's RFC 3339 string; the type says Date). */
function createdMs(d: DeviceDiscovery): number {
  const created = d.metadata.creationTimestamp as Date | string | undefined;
  return created === undefined ? 0 : new Date(created).getTime() || 0;
}

function olderFirst(a: DeviceDiscovery, b: DeviceDiscovery): number {
  const at = createdMs(a);
  const bt = createdMs(b);
  return at !== bt ? at - bt : (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '');
}

/** The DeviceClass of a DRA discovery; `extendedResource`: whether it carries `tether.dev/<discovery>`. */
export function desiredDeviceClass(discovery: DeviceDiscovery, extendedResource = true): DeviceClass {
  const namespace = discovery.metadata.namespace ?? '';
  const name = discovery.metadata.name ?? '';
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [DISCOVERY_LABEL]: name, [DISCOVERY_NAMESPACE_LABEL]: namespace };
  const spec = {
    selectors: [{ cel: { expression: discoverySelector(namespace, name) } }],
    ...(extendedResource ? { extendedResourceName: discoveryResourceName(name) } : {}),
  };
  return withHash<DeviceClass>(
    { apiVersion: 'resource.k8s.io/v1', kind: 'DeviceClass', metadata: { name: deviceClassName(namespace, name), labels }, spec },
    { labels, spec },
  );
}

/** True when the controller made `object` (its managed-by label). */
function ours(object: { metadata: { labels?: Record<string, string> } }): boolean {
  return object.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

/** Compares by the applied-hash annotation: a changed desired object, or drift that removed it, re-applies. */
function sameHash(
  a: { metadata: { annotations?: Record<string, string> } },
  b: { metadata: { annotations?: Record<string, string> } },
): boolean {
  return a.metadata.annotations?.[APPLIED_HASH_ANNOTATION] === b.metadata.annotations?.[APPLIED_HASH_ANNOTATION];
}

/** What to do about the DeviceClass of `namespace/name`, given the discovery and the cached class. */
export function planDeviceClass(
  namespace: string,
  name: string,
  discovery: DeviceDiscovery | undefined,
  cached: DeviceClass | undefined,
  extendedResource = true,
): DerivedAction<DeviceClass> {
  const className = deviceClassName(namespace, name);
  if (cached !== undefined && !ours(cached)) return isDraDiscovery(discovery) ? { kind: 'conflict', name: className } : { kind: 'none' };
  if (!isDraDiscovery(discovery)) {
    return cached === undefined || cached.metadata.deletionTimestamp != null ? { kind: 'none' } : { kind: 'delete', name: className };
  }
  const desired = desiredDeviceClass(discovery, extendedResource);
  return cached !== undefined && sameHash(cached, desired) ? { kind: 'none' } : { kind: 'apply', object: desired };
}

/** The claim template a DRA broker of `device` uses: one slot of exactly this device. */
export function desiredClaimTemplate(device: Device): ResourceClaimTemplate {
  const namespace = device.metadata.namespace ?? '';
  const name = device.metadata.name ?? '';
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [DISCOVERY_LABEL]: device.spec.discovery, [DEVICE_LABEL]: name };
  const request = {
    name: BROKER_REQUEST_NAME,
    exactly: {
      deviceClassName: deviceClassName(namespace, device.spec.discovery),
      allocationMode: 'ExactCount',
      count: 1,
      selectors: [{ cel: { expression: deviceSelector(name) } }],
      capacity: { requests: { [SLOTS_CAPACITY]: '1' } },
    },
  };
  const spec = { spec: { devices: { requests: [request] } } };
  return withHash<ResourceClaimTemplate>(
    {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaimTemplate',
      metadata: {
        name: brokerClaimTemplateName(name),
        namespace,
        labels,
        ownerReferences: [{ apiVersion: API_VERSION, kind: 'Device', name, uid: device.metadata.uid ?? '', controller: true }],
      },
      spec,
    },
    { labels, spec, owner: device.metadata.uid },
  );
}

/**
 * What to do about a device's claim template: present while its discovery is DRA and has a
 * broker template, gone otherwise (the Device's deletion removes it through its owner reference).
 */
export function planClaimTemplate(
  device: Device,
  discovery: DeviceDiscovery | undefined,
  cached: ResourceClaimTemplate | undefined,
): DerivedAction<ResourceClaimTemplate> {
  const name = brokerClaimTemplateName(device.metadata.name ?? '');
  if (cached !== undefined && !ours(cached)) return { kind: 'conflict', name };
  if (!isDraDiscovery(discovery) || discovery.spec.broker === undefined) {
    return cached === undefined || cached.metadata.deletionTimestamp != null ? { kind: 'none' } : { kind: 'delete', name };
  }
  const desired = desiredClaimTemplate(device);
  return cached !== undefined && sameHash(cached, desired) ? { kind: 'none' } : { kind: 'apply', object: desired };
}
