/**
 * Schemas of Tether's custom resources, `tether.dev/v1alpha1` (namespaced). These TypeBox
 * schemas ARE the CRDs' `openAPIV3Schema` (generate.ts serialises them) and the TypeScript
 * types are `Static<>` of the same objects: one source of truth. They follow the Kubernetes
 * structural-schema rules (every node typed; no anyOf/oneOf/const/$ref/patternProperties;
 * maps as `additionalProperties`; enums as `{type: string, enum}` via `Type.Unsafe`).
 * `Value.Check` (typebox/value) validates everything except the `x-kubernetes-validations` CEL
 * rules, which only the apiserver evaluates.
 *
 * Write model — one writer per field, never read-modify-write:
 * - DeviceDiscovery `spec`: users. `status`: the controller.
 * - Device: created and updated only by agents, with server-side apply (field manager
 *   `tether-agent/<node>`). Each agent applies the identity fields (`discovery`, `deviceId`,
 *   `shared`, `capacity`, `properties`, `mounts`, `deviceNodes`) — co-owned, identical on every
 *   node — plus ONLY its own entry in `spec.nodes` (a set) and ONLY the `spec.slots` keys it
 *   holds (a granular map). Claiming a slot another node holds, without force, is a 409
 *   conflict: that is how a slot race is refused. Leaving a key out of the next apply releases
 *   it. `status.nodeStates` works the same way: each agent applies its own entry.
 * - WARNING: a co-owned identity field that changes (say capacity, after the DeviceDiscovery
 *   changed) also conflicts for the agent that applies it first, and a forced apply would also
 *   steal any slot in the same request (and with one manager, omitting held slots from an
 *   apply releases them). So apply slots under a second manager, `tether-agent/<node>/slots`,
 *   never forced; apply identity fields and the node's `nodes` entry as `tether-agent/<node>`,
 *   which may force.
 * - WARNING: the `slots` CEL rule (keys < capacity) means capacity can only shrink after the
 *   slots above the new capacity are released; agents must release first, then resize.
 * - The controller writes Devices only by server-side apply, never by merge patch (Akri #801:
 *   mixing merge-patch with SSA owners 409s): its own `status.conditions[BrokersReady]` entry
 *   (manager `tether-controller`); node-loss releases, applied under the lost node's own
 *   managers (`tether-agent/<node>`, `tether-agent/<node>/slots`); and the deletion of a
 *   Device no node sees any more (uid + resourceVersion preconditions).
 */
import { Type, type Static, type TSchema } from 'typebox';
import type { V1ObjectMeta, V1ServiceSpec } from '@kubernetes/client-node';
import {
  DEVICE_NAME_SUFFIX_PATTERN,
  DISCOVERY_NAME_PATTERN,
  MAX_DEVICE_ID_LENGTH,
  MAX_DEVICE_NAME_LENGTH,
  MAX_DISCOVERY_NAME_LENGTH,
} from './names.ts';

import { MAX_NODE_REPORT_MESSAGE_LENGTH, type API_VERSION } from './group.ts';
import { cel, immutable, opaqueList, opaqueObject, stringEnum, stringMap } from './schema-builders.ts';
import { BrokerSchema, MAX_STATEFULSET_DISCOVERY_NAME_LENGTH } from './broker-schema.ts';

export {
  BrokerInjectSchema,
  BrokerSchema,
  BROKER_PATH_PATTERN,
  MAX_BROKER_PATHS,
  MAX_STATEFULSET_DISCOVERY_NAME_LENGTH,
  WorkloadBrokerSchema,
} from './broker-schema.ts';
export type { Broker, BrokerInject, WorkloadBroker } from './broker-schema.ts';

export { API_GROUP, API_VERSION, API_VERSION_NAME, MAX_NODE_REPORT_MESSAGE_LENGTH } from './group.ts';

/** Slots per device when the DeviceDiscovery does not say. */
export const DEFAULT_CAPACITY = 1;
/** Upper bound on slots per device (also bounds `spec.slots` for CEL cost). */
export const MAX_CAPACITY = 1024;
/** How long a device may be unseen before it is removed, when not set. */
export const DEFAULT_OFFLINE_GRACE_PERIOD_SECONDS = 60;
export const MAX_OFFLINE_GRACE_PERIOD_SECONDS = 86_400;
export const MAX_DISCOVERY_PROPERTIES = 64;
export const MAX_DEVICE_PROPERTIES = 128;
/** Upper bound on nodes sharing one device (bounds `spec.nodes` and `status.nodeStates`). */
export const MAX_NODES_PER_DEVICE = 1024;

/** Tether's names and Akri's (camelCase: debugEcho), as a handler may register them. */
const HANDLER_NAME_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$';

/** Where a DeviceDiscovery's handler comes from. */
export const HANDLER_SOURCES = ['Auto', 'BuiltIn', 'External'] as const;
export type HandlerSource = (typeof HANDLER_SOURCES)[number];

/** `spec.details`: structured, or YAML text as Akri's Configurations carry it. */
export type DiscoveryDetails = string | Record<string, unknown>;
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const ABSOLUTE_PATH = '^/';

function nodeName(description: string): ReturnType<typeof Type.String> {
  return Type.String({ description, minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN });
}

function int64(options: Record<string, unknown>): ReturnType<typeof Type.Integer> {
  return Type.Integer({ format: 'int64', ...options });
}

function int32(options: Record<string, unknown>): ReturnType<typeof Type.Integer> {
  return Type.Integer({ format: 'int32', ...options });
}

function discoveryNameString(options: Record<string, unknown>): ReturnType<typeof Type.String> {
  return Type.String({ minLength: 1, maxLength: MAX_DISCOVERY_NAME_LENGTH, pattern: DISCOVERY_NAME_PATTERN, ...options });
}

// ---------------------------------------------------------------------------------------------
// metav1.Condition

export const ConditionStatusSchema = stringEnum(['True', 'False', 'Unknown'] as const, {
  description: 'status of the condition.',
});

export const ConditionSchema = Type.Object(
  {
    type: Type.String({
      description: 'type of condition in CamelCase or in foo.example.com/CamelCase.',
      maxLength: 316,
      pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    }),
    status: ConditionStatusSchema,
    observedGeneration: Type.Optional(int64({ minimum: 0, description: 'metadata.generation the condition was set from.' })),
    lastTransitionTime: Type.String({
      format: 'date-time',
      description: 'Last time the condition changed from one status to another.',
    }),
    reason: Type.String({
      description: "Programmatic CamelCase identifier of the condition's last transition.",
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: Type.String({ description: 'Human-readable details about the transition.', maxLength: 32768 }),
  },
  { description: 'A metav1.Condition.' },
);

function conditionList(): ReturnType<typeof Type.Array<typeof ConditionSchema>> {
  return Type.Array(ConditionSchema, {
    description: 'Latest observations of the object state; one entry per type.',
    maxItems: 32,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  });
}

/**
 * metadata may only constrain name and generateName. Declaring both with a maxLength keeps
 * root-level CEL on `self.metadata.name` cheap (an undeclared name is costed as 3 MiB).
 */
function objectMeta(nameMaxLength: number): ReturnType<typeof Type.Unsafe<V1ObjectMeta>> {
  return Type.Unsafe<V1ObjectMeta>({
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: nameMaxLength },
      generateName: { type: 'string', maxLength: 253 },
    },
  });
}

// ---------------------------------------------------------------------------------------------
// DeviceDiscovery

const KeySelectorSchema = Type.Object({
  name: Type.String({
    description: 'Name of the object in the DeviceDiscovery namespace.',
    minLength: 1,
    maxLength: 253,
    pattern: DNS_SUBDOMAIN,
  }),
  key: Type.String({ description: 'Key within the object.', minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' }),
  optional: Type.Optional(Type.Boolean({ description: 'If true, a missing object or key is not an error.' })),
});

export const PropertySourceSchema = Type.Object(
  {
    secretKeyRef: Type.Optional(KeySelectorSchema),
    configMapKeyRef: Type.Optional(KeySelectorSchema),
  },
  {
    description: 'Where the value comes from: exactly one of secretKeyRef, configMapKeyRef.',
    ...cel({
      rule: 'has(self.secretKeyRef) != has(self.configMapKeyRef)',
      message: 'exactly one of secretKeyRef or configMapKeyRef must be set',
    }),
  },
);

export const DiscoveryPropertySchema = Type.Object(
  {
    name: Type.String({
      description: 'Property name, passed to the handler (and usable as an environment variable name).',
      minLength: 1,
      maxLength: 128,
      pattern: '^[A-Za-z_][A-Za-z0-9_.-]*$',
    }),
    value: Type.Optional(Type.String({ description: 'Literal value.', maxLength: 4096 })),
    valueFrom: Type.Optional(PropertySourceSchema),
  },
  {
    description: 'A named input to the discovery handler (e.g. credentials).',
    ...cel({ rule: 'has(self.value) != has(self.valueFrom)', message: 'exactly one of value or valueFrom must be set' }),
  },
);

const NODE_SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const;

export const NodeSelectorRequirementSchema = Type.Object(
  {
    key: Type.String({ description: 'Label key (or field name for matchFields).', minLength: 1, maxLength: 317 }),
    operator: stringEnum(NODE_SELECTOR_OPERATORS, { description: 'How key relates to values.' }),
    values: Type.Optional(
      Type.Array(Type.String({ maxLength: 253 }), {
        description: 'In/NotIn: one or more values; Exists/DoesNotExist: none; Gt/Lt: one integer.',
        maxItems: 64,
        'x-kubernetes-list-type': 'atomic',
      }),
    ),
  },
  cel({
    rule:
      "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)" +
      " : self.operator in ['Exists', 'DoesNotExist'] ? (!has(self.values) || size(self.values) == 0)" +
      " : (has(self.values) && size(self.values) == 1 && self.values[0].matches('^-?[0-9]+$'))",
    message: 'In and NotIn need values, Exists and DoesNotExist take none, Gt and Lt take exactly one integer',
  }),
);

function requirementList(description: string): ReturnType<typeof Type.Array<typeof NodeSelectorRequirementSchema>> {
  return Type.Array(NodeSelectorRequirementSchema, { description, maxItems: 32, 'x-kubernetes-list-type': 'atomic' });
}

export const NodeSelectorTermSchema = Type.Object(
  {
    matchExpressions: Type.Optional(requirementList('Requirements on node labels (ANDed).')),
    matchFields: Type.Optional(requirementList('Requirements on node fields (ANDed).')),
  },
  { description: 'A node selector term; its requirements are ANDed.' },
);

export const NodeSelectorSchema = Type.Object(
  {
    nodeSelectorTerms: Type.Array(NodeSelectorTermSchema, {
      description: 'Terms are ORed.',
      minItems: 1,
      maxItems: 16,
      'x-kubernetes-list-type': 'atomic',
    }),
  },
  { description: 'Nodes that run discovery for this DeviceDiscovery (core NodeSelector); all nodes if unset.' },
);

function serviceSpec(description: string): ReturnType<typeof Type.Unsafe<V1ServiceSpec>> {
  return opaqueObject<V1ServiceSpec>(description, {
    properties: { ports: opaqueList('Service ports.', 64) },
    required: ['ports'],
  });
}

/** How a DeviceDiscovery's devices reach pods (docs/dra.md, "When to choose which backend"). */
export const BACKENDS = ['DevicePlugin', 'DRA'] as const;
export type Backend = (typeof BACKENDS)[number];
export const DEFAULT_BACKEND: Backend = 'DevicePlugin';

/** Types a DRA device attribute may have; a property is a `string` attribute unless typed. */
export const DRA_ATTRIBUTE_TYPES = ['string', 'int', 'bool', 'version'] as const;
export type DraAttributeType = (typeof DRA_ATTRIBUTE_TYPES)[number];

export const DraSchema = Type.Object(
  {
    evictOnOffline: Type.Optional(
      Type.Boolean({
        description:
          'Taint an offline device NoExecute (Kubernetes evicts the pods using it) instead of NoSchedule (running pods stay, no new allocations).',
        default: false,
      }),
    ),
    attributeTypes: Type.Optional(
      Type.Unsafe<Record<string, DraAttributeType>>({
        type: 'object',
        description:
          'Device property name to the type of its ResourceSlice attribute (string, int, bool, version); untyped properties are strings. A value that does not parse as its type is left out, so one attribute never has two types.',
        maxProperties: MAX_DEVICE_PROPERTIES,
        additionalProperties: { type: 'string', enum: [...DRA_ATTRIBUTE_TYPES] },
      }),
    ),
  },
  { description: 'Settings of the DRA backend (used only when backend is DRA).' },
);

export const DeviceDiscoverySpecSchema = Type.Object(
  {
    handler: Type.String({
      description:
        "Name of the discovery handler: a built-in (usb, udev, onvif, opcua, mdns, mqtt, debug-echo; Akri's debugEcho names debug-echo) or an external handler as it registers. Immutable.",
      minLength: 1,
      maxLength: 63,
      pattern: HANDLER_NAME_PATTERN,
      ...immutable('handler'),
    }),
    handlerSource: Type.Optional(
      stringEnum(HANDLER_SOURCES, {
        description:
          'Where the handler comes from: BuiltIn, External (registered over the Akri v0 protocol), or Auto (the built-in of that name if there is one, else an external handler).',
        default: 'Auto',
      }),
    ),
    details: Type.Optional(
      // Untyped: a structural schema cannot say "object or string", and CEL cannot see an
      // untyped field. Handlers refuse anything else (InvalidDetails, with the field path).
      Type.Unsafe<DiscoveryDetails>({
        description:
          "Handler-specific discovery settings, an object or a YAML string (Akri's discoveryDetails): built-in handlers parse and validate it; external handlers get it as YAML, a string unchanged.",
        'x-kubernetes-preserve-unknown-fields': true,
      }),
    ),
    properties: Type.Optional(
      Type.Array(DiscoveryPropertySchema, {
        description: 'Named inputs for the handler, literal or from Secrets/ConfigMaps.',
        maxItems: MAX_DISCOVERY_PROPERTIES,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      }),
    ),
    capacity: Type.Optional(
      Type.Integer({
        description: 'How many containers may use one device at once (slots per device).',
        minimum: 1,
        maximum: MAX_CAPACITY,
        default: DEFAULT_CAPACITY,
        format: 'int32',
      }),
    ),
    offlineGracePeriodSeconds: Type.Optional(
      Type.Integer({
        description: 'How long a device may go unseen before it is removed; 0 removes at once.',
        minimum: 0,
        maximum: MAX_OFFLINE_GRACE_PERIOD_SECONDS,
        default: DEFAULT_OFFLINE_GRACE_PERIOD_SECONDS,
        format: 'int32',
      }),
    ),
    backend: Type.Optional(
      stringEnum(BACKENDS, {
        description:
          'How devices reach pods: DevicePlugin (extended resources tether.dev/<device> and tether.dev/<discovery> through the device-plugin API) or DRA (ResourceSlices, a DeviceClass with extendedResourceName tether.dev/<discovery>, ResourceClaims).',
        default: DEFAULT_BACKEND,
      }),
    ),
    dra: Type.Optional(DraSchema),
    nodeSelector: Type.Optional(NodeSelectorSchema),
    broker: Type.Optional(BrokerSchema),
    deviceService: Type.Optional(serviceSpec('Service created per device, selecting its brokers.')),
    discoveryService: Type.Optional(serviceSpec('One Service selecting the brokers of all devices.')),
  },
  { description: 'What to discover, how, and what to run for each device.' },
);

/** Most nodes that may report a problem at once (bounds the object: ~500 bytes per entry). */
export const MAX_NODE_REPORTS = 1000;

/** A node's problem running a discovery; present only while the problem lasts. */
export const NodeReportSchema = Type.Object({
  node: nodeName('The node reporting.'),
  reason: Type.String({
    description: 'Why this node cannot run the discovery (InvalidDetails, PropertiesUnresolved, HandlerUnavailable).',
    minLength: 1,
    maxLength: 128,
    pattern: '^[A-Za-z][A-Za-z0-9]*$',
  }),
  message: Type.String({
    description: 'What went wrong, with the field path where there is one.',
    maxLength: MAX_NODE_REPORT_MESSAGE_LENGTH,
  }),
  since: Type.String({ format: 'date-time', description: 'When this node first reported this reason.' }),
});

export const DeviceDiscoveryStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(int64({ minimum: 0, description: 'Generation this status reflects.' })),
    conditions: Type.Optional(conditionList()),
    devices: Type.Optional(int32({ minimum: 0, description: 'Devices currently discovered.' })),
    brokers: Type.Optional(int32({ minimum: 0, description: 'Broker workloads currently running.' })),
    nodes: Type.Optional(int32({ minimum: 0, description: 'Nodes running discovery.' })),
    nodeReports: Type.Optional(
      Type.Array(NodeReportSchema, {
        description:
          'Problems of individual nodes running this discovery; each agent applies only its own entry, and removes it when the problem is gone.',
        maxItems: MAX_NODE_REPORTS,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['node'],
      }),
    ),
  },
  { description: 'Observed state: counts and conditions written by the controller, nodeReports by agents.' },
);

export const DeviceDiscoverySchema = Type.Object(
  {
    apiVersion: Type.Unsafe<typeof API_VERSION>({ type: 'string' }),
    kind: Type.Unsafe<'DeviceDiscovery'>({ type: 'string' }),
    metadata: objectMeta(253),
    spec: DeviceDiscoverySpecSchema,
    status: Type.Optional(DeviceDiscoveryStatusSchema),
  },
  {
    description: 'DeviceDiscovery: run a discovery handler on selected nodes and publish a Device per device found.',
    ...cel(
      {
        rule: `self.metadata.name.size() <= ${MAX_DISCOVERY_NAME_LENGTH}`,
        message:
          `metadata.name must be at most ${MAX_DISCOVERY_NAME_LENGTH} characters: device resource names are ` +
          'tether.dev/<name>-<16 hex> and the part after the slash must fit in 63 characters',
      },
      {
        rule: `self.metadata.name.matches('${DISCOVERY_NAME_PATTERN}')`,
        message: 'metadata.name must be a DNS-1035 label (lowercase letters, digits and -, starting with a letter)',
      },
      {
        rule: `!self.metadata.name.matches('${DEVICE_NAME_SUFFIX_PATTERN}')`,
        message: 'metadata.name must not end in -<16 hex digits>: that shape is reserved for Device names',
      },
      {
        rule:
          "!has(self.spec.broker) || !has(self.spec.broker.workload) || self.spec.broker.workload.apiVersion != 'apps/v1' || " +
          `self.spec.broker.workload.kind != 'StatefulSet' || self.metadata.name.size() <= ${MAX_STATEFULSET_DISCOVERY_NAME_LENGTH}`,
        message:
          `metadata.name must be at most ${MAX_STATEFULSET_DISCOVERY_NAME_LENGTH} characters when the brokers are StatefulSets: ` +
          'their names are <name>-<16 hex>-<10 hex>, and the StatefulSet controller needs names of at most 52 characters',
      },
    ),
  },
);

export type ConditionStatus = Static<typeof ConditionStatusSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type PropertySource = Static<typeof PropertySourceSchema>;
export type DiscoveryProperty = Static<typeof DiscoveryPropertySchema>;
export type NodeSelectorRequirement = Static<typeof NodeSelectorRequirementSchema>;
export type NodeSelectorTerm = Static<typeof NodeSelectorTermSchema>;
export type NodeSelector = Static<typeof NodeSelectorSchema>;
export type DeviceDiscoverySpec = Static<typeof DeviceDiscoverySpecSchema>;
export type DraSettings = Static<typeof DraSchema>;
export type DeviceDiscoveryStatus = Static<typeof DeviceDiscoveryStatusSchema>;
export type NodeReport = Static<typeof NodeReportSchema>;
export type DeviceDiscovery = Static<typeof DeviceDiscoverySchema>;

// ---------------------------------------------------------------------------------------------
// Device

export const DeviceMountSchema = Type.Object({
  containerPath: Type.String({ description: 'Absolute path in the container.', minLength: 1, maxLength: 4096, pattern: ABSOLUTE_PATH }),
  hostPath: Type.String({ description: 'Absolute path on the node.', minLength: 1, maxLength: 4096, pattern: ABSOLUTE_PATH }),
  readOnly: Type.Optional(Type.Boolean({ default: false })),
});

export const DeviceNodeSchema = Type.Object({
  containerPath: Type.String({ description: 'Device node path in the container.', minLength: 1, maxLength: 4096, pattern: ABSOLUTE_PATH }),
  hostPath: Type.String({ description: 'Device node path on the node.', minLength: 1, maxLength: 4096, pattern: ABSOLUTE_PATH }),
  permissions: Type.Optional(
    Type.String({
      description: 'Cgroup permissions: any of r (read), w (write), m (mknod), in that order.',
      minLength: 1,
      maxLength: 3,
      pattern: '^r?w?m?$',
      default: 'rw',
    }),
  ),
});

export const DeviceSpecSchema = Type.Object(
  {
    discovery: discoveryNameString({
      description: 'Name of the DeviceDiscovery that found this device. Immutable.',
      ...immutable('discovery'),
    }),
    deviceId: Type.String({
      description: 'Raw device id reported by the handler. Immutable.',
      minLength: 1,
      maxLength: MAX_DEVICE_ID_LENGTH,
      ...immutable('deviceId'),
    }),
    shared: Type.Boolean({
      description: 'True if several nodes can reach the device (e.g. an IP camera). Immutable: it is part of the name.',
      ...immutable('shared'),
    }),
    capacity: Type.Integer({
      description: 'Slots: containers that may use the device at once.',
      minimum: 1,
      maximum: MAX_CAPACITY,
      format: 'int32',
    }),
    properties: Type.Optional(
      stringMap('Properties reported by the handler, exposed to containers as environment variables.', MAX_DEVICE_PROPERTIES, 4096, {
        ...cel({
          rule: "self.all(k, k.size() <= 128 && k.matches('^[A-Za-z_][A-Za-z0-9_.-]*$'))",
          message: 'property names must match ^[A-Za-z_][A-Za-z0-9_.-]*$ and have at most 128 characters',
        }),
      }),
    ),
    mounts: Type.Optional(
      Type.Array(DeviceMountSchema, {
        description: 'Host paths mounted into containers that use the device.',
        maxItems: 32,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['containerPath'],
      }),
    ),
    deviceNodes: Type.Optional(
      Type.Array(DeviceNodeSchema, {
        description: 'Device nodes made available to containers that use the device.',
        maxItems: 32,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['containerPath'],
      }),
    ),
    nodes: Type.Optional(
      Type.Array(nodeName('A node that sees the device.'), {
        description: 'Nodes that currently see the device. Each agent applies only its own entry.',
        maxItems: MAX_NODES_PER_DEVICE,
        'x-kubernetes-list-type': 'set',
      }),
    ),
    slots: Type.Optional(
      Type.Unsafe<Record<string, string>>({
        type: 'object',
        description:
          'Slot index ("0".."capacity-1") to the node holding it. Each agent applies only the keys it holds; ' +
          'applying a key another node holds conflicts (409), which refuses the race.',
        maxProperties: MAX_CAPACITY,
        additionalProperties: { type: 'string', minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN },
        'x-kubernetes-map-type': 'granular',
      }),
    ),
  },
  {
    description: 'A discovered device. Written only by agents with server-side apply.',
    ...cel({
      rule: "!has(self.slots) || self.slots.all(k, k.matches('^(0|[1-9][0-9]{0,3})$') && int(k) < self.capacity)",
      message: 'slots keys must be decimal slot indexes without leading zeros, less than capacity',
      fieldPath: '.slots',
    }),
  },
);

export const NodeStateSchema = Type.Object({
  node: nodeName('The node this entry is about.'),
  state: stringEnum(['Online', 'Offline'] as const, { description: 'Whether the node currently sees the device.' }),
  lastSeenTime: Type.Optional(Type.String({ format: 'date-time', description: 'When the node last saw the device.' })),
});

export const DeviceStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(int64({ minimum: 0, description: 'Generation this status reflects.' })),
    conditions: Type.Optional(conditionList()),
    nodeStates: Type.Optional(
      Type.Array(NodeStateSchema, {
        description: 'Per-node view of the device; each agent applies only its own entry.',
        maxItems: MAX_NODES_PER_DEVICE,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['node'],
      }),
    ),
  },
  { description: 'Observed state, written by agents.' },
);

export const DeviceSchema = Type.Object(
  {
    apiVersion: Type.Unsafe<typeof API_VERSION>({ type: 'string' }),
    kind: Type.Unsafe<'Device'>({ type: 'string' }),
    metadata: objectMeta(MAX_DEVICE_NAME_LENGTH),
    spec: DeviceSpecSchema,
    status: Type.Optional(DeviceStatusSchema),
  },
  {
    description: 'Device: one device found by a DeviceDiscovery, named <discovery>-<16 hex>.',
    ...cel({
      rule: "self.metadata.name.startsWith(self.spec.discovery + '-')",
      message: 'metadata.name must be <spec.discovery>-<hash> (see api/names.ts deviceName)',
    }),
  },
);

export type DeviceMount = Static<typeof DeviceMountSchema>;
export type DeviceNode = Static<typeof DeviceNodeSchema>;
export type NodeState = Static<typeof NodeStateSchema>;
export type DeviceSpec = Static<typeof DeviceSpecSchema>;
export type DeviceStatus = Static<typeof DeviceStatusSchema>;
export type Device = Static<typeof DeviceSchema>;

/** Every root schema, for tests and the generator. */
export const rootSchemas: { readonly DeviceDiscovery: TSchema; readonly Device: TSchema } = {
  DeviceDiscovery: DeviceDiscoverySchema,
  Device: DeviceSchema,
};
