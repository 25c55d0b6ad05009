/**
 * Sample objects for the CRDs: valid ones, and invalid ones labelled with what rejects them.
 * crds.test.ts checks them with `Value.Check`; an apiserver-backed test can create (or, with
 * `old`, update) each one and expect `expect === 'valid'`.
 *
 * - `schema-invalid`: rejected by the OpenAPI schema, so `Value.Check` fails too.
 * - `cel-invalid`: passes `Value.Check`; only the apiserver's CEL rules reject it.
 */
import { fileURLToPath } from 'node:url';
import { API_VERSION, type Device, type DeviceDiscovery } from '../../api/schema.ts';

export type Expectation = 'valid' | 'schema-invalid' | 'cel-invalid';

export interface CrdExample {
  readonly name: string;
  readonly kind: 'DeviceDiscovery' | 'Device';
  readonly expect: Expectation;
  /** The object to create (or the new object of an update when `old` is set). */
  readonly object: unknown;
  /** For update cases: the stored object. */
  readonly old?: unknown;
}

const NOW = '2026-01-02T03:04:05Z';

export function baseDiscovery(): DeviceDiscovery {
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceDiscovery',
    metadata: { name: 'cameras', namespace: 'default' },
    spec: { handler: 'onvif' },
  };
}

export function fullDiscovery(): DeviceDiscovery {
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceDiscovery',
    metadata: { name: 'cameras', namespace: 'default' },
    spec: {
      handler: 'onvif',
      details: { ipAddresses: { action: 'Include', items: ['10.0.0.1'] }, discoveryTimeoutSeconds: 1 },
      properties: [
        { name: 'ONVIF_USERNAME', valueFrom: { secretKeyRef: { name: 'onvif-creds', key: 'username' } } },
        { name: 'ONVIF_PASSWORD', valueFrom: { secretKeyRef: { name: 'onvif-creds', key: 'password', optional: true } } },
        { name: 'site.zone', valueFrom: { configMapKeyRef: { name: 'site', key: 'zone' } } },
        { name: 'RESOLUTION', value: '1080p' },
      ],
      capacity: 2,
      offlineGracePeriodSeconds: 300,
      nodeSelector: {
        nodeSelectorTerms: [
          {
            matchExpressions: [
              { key: 'tether.dev/edge', operator: 'Exists' },
              { key: 'kubernetes.io/arch', operator: 'In', values: ['amd64', 'arm64'] },
              { key: 'example.com/cores', operator: 'Gt', values: ['2'] },
            ],
            matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['control-plane'] }],
          },
        ],
      },
      broker: {
        pod: {
          metadata: { labels: { app: 'camera-broker' }, annotations: { 'example.com/note': 'x' } },
          spec: { containers: [{ name: 'broker', image: 'example.com/broker:1', resources: {} }] },
        },
      },
      deviceService: { type: 'ClusterIP', ports: [{ name: 'grpc', port: 8083, targetPort: 8083 }] },
      discoveryService: { ports: [{ name: 'grpc', port: 8083 }] },
    },
    status: {
      observedGeneration: 3,
      conditions: [{ type: 'Ready', status: 'True', observedGeneration: 3, lastTransitionTime: NOW, reason: 'Discovering', message: '' }],
      devices: 4,
      brokers: 4,
      nodes: 2,
    },
  };
}

export function baseDevice(): Device {
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata: { name: 'cameras-0123456789abcdef', namespace: 'default' },
    spec: { discovery: 'cameras', deviceId: 'urn:uuid:1', shared: true, capacity: 2 },
  };
}

export function fullDevice(): Device {
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata: { name: 'cameras-0123456789abcdef', namespace: 'default' },
    spec: {
      discovery: 'cameras',
      deviceId: 'urn:uuid:1',
      shared: true,
      capacity: 3,
      properties: { ONVIF_DEVICE_SERVICE_URL: 'http://10.0.0.1/onvif/device_service', 'mdns.txt-path': '/' },
      mounts: [{ containerPath: '/data', hostPath: '/var/lib/cam', readOnly: true }],
      deviceNodes: [
        { containerPath: '/dev/video0', hostPath: '/dev/video0', permissions: 'rw' },
        { containerPath: '/dev/ttyUSB0', hostPath: '/dev/ttyUSB1', permissions: 'rwm' },
      ],
      nodes: ['node-a', 'node-b.example.com'],
      slots: { '0': 'node-a', '2': 'node-b.example.com' },
    },
    status: {
      observedGeneration: 1,
      conditions: [{ type: 'Healthy', status: 'Unknown', lastTransitionTime: NOW, reason: 'Probing', message: 'waiting' }],
      nodeStates: [
        { node: 'node-a', state: 'Online', lastSeenTime: NOW },
        { node: 'node-b.example.com', state: 'Offline' },
      ],
    },
  };
}

/** Deep-clones `object` and sets `path` (dot-separated, numeric segments index arrays). */
function withValue(object: unknown, path: string, value: unknown): unknown {
  const copy = structuredClone(object) as Record<string, unknown>;
  const keys = path.split('.');
  let node: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  const last = keys.at(-1) as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

function dd(name: string, expect: Expectation, path: string, value: unknown, full = false): CrdExample {
  return { name, kind: 'DeviceDiscovery', expect, object: withValue(full ? fullDiscovery() : baseDiscovery(), path, value) };
}

function dev(name: string, expect: Expectation, path: string, value: unknown, full = false): CrdExample {
  return { name, kind: 'Device', expect, object: withValue(full ? fullDevice() : baseDevice(), path, value) };
}

const expr = (operator: string, values?: string[]): unknown => ({
  nodeSelectorTerms: [{ matchExpressions: [values === undefined ? { key: 'k', operator } : { key: 'k', operator, values }] }],
});

export function crdExamples(): CrdExample[] {
  return [
    // ---- DeviceDiscovery: valid
    { name: 'minimal discovery', kind: 'DeviceDiscovery', expect: 'valid', object: baseDiscovery() },
    { name: 'full discovery', kind: 'DeviceDiscovery', expect: 'valid', object: fullDiscovery() },
    dd('40-character name', 'valid', 'metadata.name', 'a'.repeat(40)),
    dd('job broker', 'valid', 'spec.broker', { job: { spec: { template: { spec: { containers: [] } } } } }),
    dd('capacity at maximum', 'valid', 'spec.capacity', 1024),
    dd('Deployment broker', 'valid', 'spec.broker', {
      workload: { apiVersion: 'apps/v1', kind: 'Deployment', spec: { template: { spec: { containers: [{}] } } } },
    }),
    dd('custom-kind broker with inject paths', 'valid', 'spec.broker', {
      workload: {
        apiVersion: 'core.spinkube.dev/v1alpha1',
        kind: 'SpinApp',
        spec: { image: 'app:1' },
        inject: { resources: ['/spec/resources/limits'], env: ['/spec/variables'], nodeSelector: ['/spec/a~1b'] },
      },
    }),

    dd('grace period zero', 'valid', 'spec.offlineGracePeriodSeconds', 0),
    dd('Lt with negative integer', 'valid', 'spec.nodeSelector', expr('Lt', ['-3'])),
    dd('empty property value', 'valid', 'spec.properties', [{ name: 'EMPTY', value: '' }]),
    dd('DRA backend', 'valid', 'spec.backend', 'DRA'),
    dd('DRA settings', 'valid', 'spec.dra', { evictOnOffline: true, attributeTypes: { PORT: 'int', FIRMWARE: 'version', READY: 'bool' } }),
    // ---- DeviceDiscovery: rejected by the schema
    dd('missing handler', 'schema-invalid', 'spec.handler', undefined),
    dd('handler not a DNS label', 'schema-invalid', 'spec.handler', 'On VIF'),
    dd('capacity zero', 'schema-invalid', 'spec.capacity', 0),
    dd('capacity above maximum', 'schema-invalid', 'spec.capacity', 1025),
    dd('capacity not an integer', 'schema-invalid', 'spec.capacity', 1.5),
    dd('negative grace period', 'schema-invalid', 'spec.offlineGracePeriodSeconds', -1),
    // Untyped on purpose (object or YAML text); the handler refuses anything else.
    dd('details as YAML text', 'valid', 'spec.details', 'descriptions: [a]'),
    dd("Akri's camelCase handler name", 'valid', 'spec.handler', 'debugEcho'),
    dd('handler name with a space', 'schema-invalid', 'spec.handler', 'debug echo'),
    dd('handlerSource External', 'valid', 'spec.handlerSource', 'External'),
    dd('unknown handlerSource', 'schema-invalid', 'spec.handlerSource', 'Remote'),
    dd('unknown backend', 'schema-invalid', 'spec.backend', 'Cdi'),
    dd('unknown DRA attribute type', 'schema-invalid', 'spec.dra', { attributeTypes: { PORT: 'float' } }),
    dd('evictOnOffline not a boolean', 'schema-invalid', 'spec.dra', { evictOnOffline: 'yes' }),
    dd('property name with space', 'schema-invalid', 'spec.properties', [{ name: 'A B', value: 'x' }]),
    dd('property name starting with digit', 'schema-invalid', 'spec.properties', [{ name: '1A', value: 'x' }]),
    dd('property without name', 'schema-invalid', 'spec.properties', [{ value: 'x' }]),
    dd('secretKeyRef without key', 'schema-invalid', 'spec.properties', [{ name: 'A', valueFrom: { secretKeyRef: { name: 's' } } }]),
    dd('unknown operator', 'schema-invalid', 'spec.nodeSelector', expr('Near', ['x'])),
    dd('empty nodeSelectorTerms', 'schema-invalid', 'spec.nodeSelector', { nodeSelectorTerms: [] }),
    dd('pod broker without containers', 'schema-invalid', 'spec.broker', { pod: { spec: {} } }),
    dd('job broker without template', 'schema-invalid', 'spec.broker', { job: { spec: {} } }),
    dd('workload broker path outside /spec', 'schema-invalid', 'spec.broker', {
      workload: { apiVersion: 'example.com/v1', kind: 'Thing', spec: {}, inject: { resources: ['/status/x'] } },
    }),
    dd('workload broker path with a bad escape', 'schema-invalid', 'spec.broker', {
      workload: { apiVersion: 'example.com/v1', kind: 'Thing', spec: {}, inject: { resources: ['/spec/a~2'] } },
    }),
    dd('workload broker kind in lowercase', 'schema-invalid', 'spec.broker', {
      workload: { apiVersion: 'apps/v1', kind: 'deployment', spec: {} },
    }),
    dd('workload broker without spec', 'schema-invalid', 'spec.broker', { workload: { apiVersion: 'apps/v1', kind: 'Deployment' } }),
    dd('service without ports', 'schema-invalid', 'spec.deviceService', { type: 'ClusterIP' }),
    dd('label value not a string', 'schema-invalid', 'spec.broker', {
      pod: { metadata: { labels: { a: 1 } }, spec: { containers: [{}] } },
    }),
    dd('condition status not in enum', 'schema-invalid', 'status', {
      conditions: [{ type: 'Ready', status: 'Yes', lastTransitionTime: NOW, reason: 'R', message: '' }],
    }),
    dd('condition time not date-time', 'schema-invalid', 'status', {
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: 'yesterday', reason: 'R', message: '' }],
    }),
    dd('condition without reason', 'schema-invalid', 'status', {
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: NOW, message: '' }],
    }),
    dd('negative device count', 'schema-invalid', 'status', { devices: -1 }),
    dd('name over 253 characters', 'schema-invalid', 'metadata.name', 'a'.repeat(254)),
    // ---- DeviceDiscovery: rejected only by CEL
    dd('name over 40 characters', 'cel-invalid', 'metadata.name', 'a'.repeat(41)),
    dd('name starting with a digit', 'cel-invalid', 'metadata.name', '1wire'),
    dd('name with a dot', 'cel-invalid', 'metadata.name', 'cams.example'),
    dd('name shaped like a device name', 'cel-invalid', 'metadata.name', 'cams-0123456789abcdef'),
    dd('property with value and valueFrom', 'cel-invalid', 'spec.properties', [
      { name: 'A', value: 'x', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
    ]),
    dd('property with neither value nor valueFrom', 'cel-invalid', 'spec.properties', [{ name: 'A' }]),
    dd('valueFrom with both refs', 'cel-invalid', 'spec.properties', [
      { name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' }, configMapKeyRef: { name: 'c', key: 'k' } } },
    ]),
    dd('valueFrom with no ref', 'cel-invalid', 'spec.properties', [{ name: 'A', valueFrom: {} }]),
    dd('broker with pod and job', 'cel-invalid', 'spec.broker', { pod: { spec: { containers: [{}] } }, job: { spec: { template: {} } } }),
    dd('broker with neither', 'cel-invalid', 'spec.broker', {}),
    dd('broker with pod and workload', 'cel-invalid', 'spec.broker', {
      pod: { spec: { containers: [{}] } },
      workload: { apiVersion: 'apps/v1', kind: 'Deployment', spec: {} },
    }),
    {
      name: 'StatefulSet broker of a discovery with a 25-character name',
      kind: 'DeviceDiscovery',
      expect: 'cel-invalid',
      object: withValue(withValue(baseDiscovery(), 'metadata.name', 'a'.repeat(25)), 'spec.broker', {
        workload: { apiVersion: 'apps/v1', kind: 'StatefulSet', spec: { template: {} } },
      }),
    },
    {
      name: 'StatefulSet broker of a discovery with a 24-character name',
      kind: 'DeviceDiscovery',
      expect: 'valid',
      object: withValue(withValue(baseDiscovery(), 'metadata.name', 'a'.repeat(24)), 'spec.broker', {
        workload: { apiVersion: 'apps/v1', kind: 'StatefulSet', spec: { template: {} } },
      }),
    },
    dd('workload broker of kind Pod', 'cel-invalid', 'spec.broker', { workload: { apiVersion: 'v1', kind: 'Pod', spec: {} } }),
    dd('custom-kind broker without inject', 'cel-invalid', 'spec.broker', {
      workload: { apiVersion: 'core.spinkube.dev/v1alpha1', kind: 'SpinApp', spec: {} },
    }),
    dd('custom-kind broker with only env injected', 'cel-invalid', 'spec.broker', {
      workload: { apiVersion: 'core.spinkube.dev/v1alpha1', kind: 'SpinApp', spec: {}, inject: { env: ['/spec/variables'] } },
    }),
    dd('In without values', 'cel-invalid', 'spec.nodeSelector', expr('In')),
    dd('Exists with values', 'cel-invalid', 'spec.nodeSelector', expr('Exists', ['x'])),
    dd('Gt with two values', 'cel-invalid', 'spec.nodeSelector', expr('Gt', ['1', '2'])),
    dd('Gt with non-integer', 'cel-invalid', 'spec.nodeSelector', expr('Gt', ['high'])),
    {
      name: 'handler changed',
      kind: 'DeviceDiscovery',
      expect: 'cel-invalid',
      old: baseDiscovery(),
      object: withValue(baseDiscovery(), 'spec.handler', 'usb'),
    },
    {
      name: 'capacity changed',
      kind: 'DeviceDiscovery',
      expect: 'valid',
      old: baseDiscovery(),
      object: withValue(baseDiscovery(), 'spec.capacity', 4),
    },

    // ---- Device: valid
    { name: 'minimal device', kind: 'Device', expect: 'valid', object: baseDevice() },
    { name: 'full device', kind: 'Device', expect: 'valid', object: fullDevice() },
    dev('local device', 'valid', 'spec.shared', false),
    dev('slot at capacity - 1', 'valid', 'spec.slots', { '1': 'node-a' }),
    dev('1024-character device id', 'valid', 'spec.deviceId', 'x'.repeat(1024)),
    dev('empty slots', 'valid', 'spec.slots', {}),
    // ---- Device: rejected by the schema
    dev('missing discovery', 'schema-invalid', 'spec.discovery', undefined),
    dev('missing shared', 'schema-invalid', 'spec.shared', undefined),
    dev('missing capacity', 'schema-invalid', 'spec.capacity', undefined),
    dev('empty device id', 'schema-invalid', 'spec.deviceId', ''),
    dev('device id too long', 'schema-invalid', 'spec.deviceId', 'x'.repeat(1025)),
    dev('discovery name too long', 'schema-invalid', 'spec.discovery', 'a'.repeat(41)),
    dev('name longer than 57', 'schema-invalid', 'metadata.name', `cameras-${'a'.repeat(50)}`),
    dev('property value not a string', 'schema-invalid', 'spec.properties', { A: 1 }),
    dev('relative mount path', 'schema-invalid', 'spec.mounts', [{ containerPath: 'data', hostPath: '/x' }]),
    dev('bad device-node permissions', 'schema-invalid', 'spec.deviceNodes', [
      { containerPath: '/dev/a', hostPath: '/dev/a', permissions: 'wr' },
    ]),
    dev('node name with uppercase', 'schema-invalid', 'spec.nodes', ['Node-A']),
    dev('slot holder empty', 'schema-invalid', 'spec.slots', { '0': '' }),
    dev('node state not in enum', 'schema-invalid', 'status', { nodeStates: [{ node: 'node-a', state: 'Gone' }] }),
    dev('node state without node', 'schema-invalid', 'status', { nodeStates: [{ state: 'Online' }] }),
    // ---- Device: rejected only by CEL
    dev('slot equal to capacity', 'cel-invalid', 'spec.slots', { '2': 'node-a' }),
    dev('slot key not a number', 'cel-invalid', 'spec.slots', { first: 'node-a' }),
    dev('slot key with leading zero', 'cel-invalid', 'spec.slots', { '01': 'node-a' }),
    dev('slot key negative', 'cel-invalid', 'spec.slots', { '-1': 'node-a' }),
    dev('property name with space', 'cel-invalid', 'spec.properties', { 'A B': 'x' }),
    dev('name not prefixed by discovery', 'cel-invalid', 'metadata.name', 'other-0123456789abcdef'),
    {
      name: 'deviceId changed',
      kind: 'Device',
      expect: 'cel-invalid',
      old: baseDevice(),
      object: withValue(baseDevice(), 'spec.deviceId', 'urn:uuid:2'),
    },
    {
      name: 'shared changed',
      kind: 'Device',
      expect: 'cel-invalid',
      old: baseDevice(),
      object: withValue(baseDevice(), 'spec.shared', false),
    },
    {
      name: 'discovery changed',
      kind: 'Device',
      expect: 'cel-invalid',
      old: baseDevice(),
      object: withValue(baseDevice(), 'spec.discovery', 'camera'),
    },
    {
      name: 'slot claimed and capacity grown',
      kind: 'Device',
      expect: 'valid',
      old: baseDevice(),
      object: withValue(withValue(baseDevice(), 'spec.capacity', 8), 'spec.slots', { '7': 'node-a' }),
    },
  ];
}

// `node deploy/crds/examples.ts` prints the examples as JSON (input of deploy/crds/verify).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(JSON.stringify(crdExamples()));
}
