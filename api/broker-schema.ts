/**
 * `spec.broker` of a DeviceDiscovery: exactly one of `pod`, `job`, or `workload` (any namespaced
 * kind, with `inject` saying where the device goes: docs/brokers.md). Part of the CRD schema
 * (api/schema.ts re-exports it).
 */
import { Type, type Static } from 'typebox';
import type { V1JobSpec, V1PodSpec } from '@kubernetes/client-node';
import { cel, opaqueList, opaqueObject, stringMap } from './schema-builders.ts';

const BrokerMetadataSchema = Type.Object(
  {
    labels: Type.Optional(stringMap('Labels added to the broker.', 64, 63)),
    annotations: Type.Optional(stringMap('Annotations added to the broker.', 64, 4096)),
  },
  { description: 'Labels and annotations for the broker objects.' },
);

/**
 * Where the controller injects into a workload broker's spec: JSON pointers (RFC 6901, `~1` for
 * `/`, `~0` for `~`) that start at `/spec`; a numeric token indexes a list. Missing objects on
 * the way are created; a missing list element or a non-object on the way is an error reported
 * on the DeviceDiscovery with the pointer.
 */
/**
 * Longest DeviceDiscovery name whose brokers may be StatefulSets: the StatefulSet controller
 * labels pods with `controller-revision-hash: <name>-<up to 10 chars>` (≤ 63), so a StatefulSet
 * name must be ≤ 52; a broker name is `<discovery>-<16 hex>-<10 hex>` while it fits.
 */
export const MAX_STATEFULSET_DISCOVERY_NAME_LENGTH = 52 - 17 - 11;

export const BROKER_PATH_PATTERN = '^/spec(/([^/~]|~[01])+)+$';
export const MAX_BROKER_PATHS = 16;

function brokerPaths(description: string): ReturnType<typeof Type.Array<ReturnType<typeof Type.String>>> {
  return Type.Array(Type.String({ pattern: BROKER_PATH_PATTERN, maxLength: 512 }), {
    description,
    minItems: 1,
    maxItems: MAX_BROKER_PATHS,
    'x-kubernetes-list-type': 'atomic',
  });
}

export const BrokerInjectSchema = Type.Object(
  {
    podTemplates: Type.Optional(
      brokerPaths(
        "Pod templates (PodTemplateSpec): each gets the broker labels, the device (its extended resource on the first container, or its ResourceClaim for DRA discoveries) and a required node affinity to the broker's node. Default for apps/v1 Deployment and StatefulSet: [/spec/template].",
      ),
    ),
    resources: Type.Optional(
      brokerPaths("Resource lists (e.g. /spec/resources/limits): each gets 1 of the device's extended resource, tether.dev/<device>."),
    ),
    nodeSelector: Type.Optional(
      brokerPaths("String maps read as a pod nodeSelector: each gets kubernetes.io/hostname of the broker's node."),
    ),
    env: Type.Optional(
      brokerPaths(
        'Env var lists ([{name, value}]): each gets TETHER_DEVICE, TETHER_DISCOVERY and TETHER_NODE (replacing same-named entries).',
      ),
    ),
  },
  { description: "Where the controller puts the device into a workload broker's spec (docs/brokers.md)." },
);

const APPS_POD_TEMPLATE_KINDS = "self.apiVersion == 'apps/v1' && (self.kind == 'Deployment' || self.kind == 'StatefulSet')";

export const WorkloadBrokerSchema = Type.Object(
  {
    apiVersion: Type.String({
      description: 'apiVersion of the broker objects, e.g. apps/v1 or core.spinkube.dev/v1alpha1.',
      minLength: 2,
      maxLength: 316,
      pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?v[0-9]+((alpha|beta)[0-9]+)?$',
    }),
    kind: Type.String({
      description: 'Kind of the broker objects (namespaced), e.g. Deployment, StatefulSet, SpinApp.',
      minLength: 1,
      maxLength: 63,
      pattern: '^[A-Z][A-Za-z0-9]*$',
    }),
    metadata: Type.Optional(BrokerMetadataSchema),
    spec: opaqueObject<Record<string, unknown>>('The spec of the kind, validated by the apiserver when the broker is applied.'),
    inject: Type.Optional(BrokerInjectSchema),
  },
  {
    description:
      'Run one object of any namespaced kind per device and node, applied by server-side apply (docs/brokers.md). Pods and Jobs use pod and job.',
    ...cel(
      {
        rule: "!(self.apiVersion == 'v1' && self.kind == 'Pod') && !(self.apiVersion.startsWith('batch/') && self.kind == 'Job')",
        message: 'use spec.broker.pod or spec.broker.job for Pods and Jobs',
      },
      {
        rule: `(${APPS_POD_TEMPLATE_KINDS}) || (has(self.inject) && (has(self.inject.podTemplates) || has(self.inject.resources)))`,
        message:
          'a kind other than apps/v1 Deployment or StatefulSet needs inject.podTemplates or inject.resources: where the device goes in its spec',
        fieldPath: '.inject',
      },
    ),
  },
);

export const BrokerSchema = Type.Object(
  {
    pod: Type.Optional(
      Type.Object(
        {
          metadata: Type.Optional(BrokerMetadataSchema),
          spec: opaqueObject<V1PodSpec>('A core PodSpec, validated when the Pod is created.', {
            properties: { containers: opaqueList('Containers of the broker Pod.', 64) },
            required: ['containers'],
          }),
        },
        { description: 'Run one long-lived broker Pod per device (or per slot holder).' },
      ),
    ),
    job: Type.Optional(
      Type.Object(
        {
          metadata: Type.Optional(BrokerMetadataSchema),
          spec: opaqueObject<V1JobSpec>('A batch JobSpec, validated when the Job is created.', {
            properties: { template: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            required: ['template'],
          }),
        },
        { description: 'Run a broker Job per device.' },
      ),
    ),
    workload: Type.Optional(WorkloadBrokerSchema),
  },
  {
    description: 'Workload started for each discovered device: exactly one of pod, job, workload.',
    ...cel({
      rule: '[has(self.pod), has(self.job), has(self.workload)].exists_one(x, x)',
      message: 'exactly one of pod, job or workload must be set',
    }),
  },
);

export type Broker = Static<typeof BrokerSchema>;
export type WorkloadBroker = Static<typeof WorkloadBrokerSchema>;
export type BrokerInject = Static<typeof BrokerInjectSchema>;
