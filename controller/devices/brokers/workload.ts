/**
 * Workload brokers (pure): `spec.broker.workload`, one object of any namespaced kind per device
 * and node — Deployments, StatefulSets, custom resources such as SpinKube's SpinApp.
 *
 * The controller puts the device into the object where `inject` says (JSON pointers, RFC 6901,
 * starting at `/spec`):
 * - `podTemplates`: PodTemplateSpecs — broker labels, the device (extended resource on the first
 *   container, or the DRA claim) and the required node affinity, exactly as for a broker Pod.
 *   apps/v1 Deployment and StatefulSet default to `[/spec/template]`.
 * - `resources`: resource lists — `tether.dev/<device>: "1"`.
 * - `nodeSelector`: string maps — `kubernetes.io/hostname: <the node's hostname label>`.
 * - `env`: env var lists — TETHER_DEVICE, TETHER_DISCOVERY, TETHER_NODE.
 * A pointer that cannot be followed is an `InjectionError` naming the field and the pointer; the
 * reconciler reports it on the DeviceDiscovery (InvalidTemplate) and creates nothing.
 *
 * Deployments and StatefulSets without a `selector` get one on the broker labels that never
 * change (a selector is immutable); Deployments without a `strategy` get `Recreate`, so a roll
 * never needs a second slot of the device for the surge pod.
 */
import type { V1EnvVar, V1PodTemplateSpec } from '@kubernetes/client-node';
import type { BrokerInject, Device, DeviceDiscovery, WorkloadBroker } from '../../../api/schema.ts';
import { deviceResourceName } from '../../../api/names.ts';
import { COMPONENT_LABEL, DEVICE_LABEL, MANAGED_BY_LABEL, NODE_ANNOTATION, NODE_LABEL } from '../../../api/labels.ts';
import type { KubeObject } from '../../../kube/client.ts';
import { brokerPodSpec } from './pod-spec.ts';

/** Thrown when the template's `inject` cannot be applied: `field` is the spec field at fault. */
export class InjectionError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'InjectionError';
    this.field = field;
  }
}

/** Field path of the workload form, for messages. */
export const WORKLOAD_FIELD = 'spec.broker.workload';

/** A workload broker object: any kind, spec opaque. */
export interface WorkloadObject extends KubeObject {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** Group of an apiVersion ('' for core `v1`). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/**
 * Identity of a workload kind for the planner: `Kind.group` (as kubectl spells it), so a change
 * of version keeps the brokers and a change of kind or group replaces them.
 */
export function workloadKindKey(apiVersion: string, kind: string): string {
  const group = groupOf(apiVersion);
  return group === '' ? kind : `${kind}.${group}`;
}

function hasAppsPodTemplate(workload: Pick<WorkloadBroker, 'apiVersion' | 'kind'>): boolean {
  return workload.apiVersion === 'apps/v1' && (workload.kind === 'Deployment' || workload.kind === 'StatefulSet');
}

/** `inject` with the defaults of the kind filled in. */
export function effectiveInject(workload: WorkloadBroker): Required<BrokerInject> {
  const inject = workload.inject ?? {};
  return {
    podTemplates: inject.podTemplates ?? (hasAppsPodTemplate(workload) ? ['/spec/template'] : []),
    resources: inject.resources ?? [],
    nodeSelector: inject.nodeSelector ?? [],
    env: inject.env ?? [],
  };
}

/** Tokens of a JSON pointer that starts at `/spec` (without the leading `spec`). */
export function parsePointer(pointer: string, field: string): string[] {
  if (!/^\/spec(\/([^/~]|~[01])+)+$/.test(pointer)) {
    throw new InjectionError(field, `${JSON.stringify(pointer)} is not a JSON pointer into /spec (like /spec/resources/limits)`);
  }
  return pointer
    .split('/')
    .slice(2)
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Replaces the value at `pointer` in `spec` with `update(current)`. Objects missing on the way
 * are created; a list is entered only through an existing index.
 */
function updateAt(spec: Record<string, unknown>, pointer: string, field: string, update: (current: unknown) => unknown): void {
  const tokens = parsePointer(pointer, field);
  let here: unknown = spec;
  let walked = '/spec';
  for (const [i, token] of tokens.entries()) {
    const last = i === tokens.length - 1;
    if (Array.isArray(here)) {
      const index = /^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : -1;
      if (index < 0 || index >= here.length) throw new InjectionError(field, `${pointer}: ${walked} has no element ${token}`);
      if (last) here[index] = update(here[index]);
      else here = here[index];
    } else if (isObject(here)) {
      if (last) here[token] = update(here[token]);
      else {
        here[token] ??= {};
        here = here[token];
      }
    } else {
      throw new InjectionError(field, `${pointer}: ${walked} is ${describe(here)}, not an object or a list`);
    }
    walked += `/${token}`;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'string' ? 'a string' : `a ${typeof value}`;
}

function asObject(value: unknown, field: string, pointer: string, what: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isObject(value)) throw new InjectionError(field, `${pointer} is ${describe(value)}, not ${what}`);
  return value;
}

/** Inputs of one workload broker. */
export interface WorkloadObjectInput {
  readonly device: Device;
  readonly discovery: DeviceDiscovery;
  readonly workload: WorkloadBroker;
  readonly node: string;
  /** The node's `kubernetes.io/hostname` label (its name when unknown). */
  readonly hostname: string;
  readonly dra: boolean;
  /** Labels and annotations of the broker object (already merged with the template's). */
  readonly metadata: Required<Pick<NonNullable<KubeObject['metadata']>, 'name' | 'labels' | 'annotations' | 'ownerReferences'>> & {
    namespace: string | undefined;
  };
}

/** Labels of a broker that never change for its name: the default selector of its pods. */
export function stableSelector(labels: Readonly<Record<string, string>>): Record<string, string> {
  const selector: Record<string, string> = {};
  for (const key of [MANAGED_BY_LABEL, COMPONENT_LABEL, DEVICE_LABEL, NODE_LABEL]) {
    const value = labels[key];
    if (value !== undefined) selector[key] = value;
  }
  return selector;
}

/** The object to apply for one placement, device injected. Throws `InjectionError`. */
export function workloadObject(input: WorkloadObjectInput): WorkloadObject {
  const { workload, device, node } = input;
  const spec = structuredClone(workload.spec);
  const inject = effectiveInject(workload);
  if (input.dra && inject.podTemplates.length === 0) {
    throw new InjectionError(
      `${WORKLOAD_FIELD}.inject`,
      'a DRA discovery gives the broker its device through a ResourceClaim, which needs a pod template: set inject.podTemplates',
    );
  }
  const podLabels = Object.fromEntries(Object.entries(input.metadata.labels));
  for (const [i, pointer] of inject.podTemplates.entries()) {
    const field = `${WORKLOAD_FIELD}.inject.podTemplates[${i}]`;
    updateAt(spec, pointer, field, (current) => {
      if (current === undefined) throw new InjectionError(field, `${pointer}: the spec has no pod template there`);
      const template = asObject(current, field, pointer, 'a pod template') as V1PodTemplateSpec;
      return {
        ...template,
        metadata: {
          ...(template.metadata ?? {}),
          labels: { ...(template.metadata?.labels ?? {}), ...podLabels },
          annotations: { ...(template.metadata?.annotations ?? {}), [NODE_ANNOTATION]: node },
        },
        spec: brokerPodSpec(template.spec ?? { containers: [] }, device, node, input.dra),
      };
    });
  }
  const resource = deviceResourceName(device.metadata.name ?? '');
  for (const [i, pointer] of inject.resources.entries()) {
    const field = `${WORKLOAD_FIELD}.inject.resources[${i}]`;
    updateAt(spec, pointer, field, (current) => ({ ...asObject(current, field, pointer, 'a resource list'), [resource]: '1' }));
  }
  for (const [i, pointer] of inject.nodeSelector.entries()) {
    const field = `${WORKLOAD_FIELD}.inject.nodeSelector[${i}]`;
    updateAt(spec, pointer, field, (current) => ({
      ...asObject(current, field, pointer, 'a string map'),
      'kubernetes.io/hostname': input.hostname,
    }));
  }
  const env: V1EnvVar[] = [
    { name: 'TETHER_DEVICE', value: device.metadata.name ?? '' },
    { name: 'TETHER_DISCOVERY', value: device.spec.discovery },
    { name: 'TETHER_NODE', value: node },
  ];
  for (const [i, pointer] of inject.env.entries()) {
    const field = `${WORKLOAD_FIELD}.inject.env[${i}]`;
    updateAt(spec, pointer, field, (current) => {
      if (current !== undefined && !Array.isArray(current))
        throw new InjectionError(field, `${pointer} is ${describe(current)}, not a list`);
      const names = new Set(env.map((e) => e.name));
      return [...((current as unknown[] | undefined) ?? []).filter((e) => !(isObject(e) && names.has(String(e.name)))), ...env];
    });
  }
  if (hasAppsPodTemplate(workload)) {
    spec.selector ??= { matchLabels: stableSelector(input.metadata.labels) };
    if (workload.kind === 'Deployment') spec.strategy ??= { type: 'Recreate' };
  }
  return { apiVersion: workload.apiVersion, kind: workload.kind, metadata: input.metadata, spec };
}
