/**
 * Tether's CRDs (deploy/crds/*.yaml) against a real kube-apiserver: OpenAPI
 * and CEL validation with the offending field path in the error, defaults,
 * server-side apply ownership of Device `nodes` and `slots` by several agents,
 * the status subresource, printer columns, and watches across an apiserver
 * restart.
 */
import { describe, expect, it } from 'vitest';
import {
  API_VERSION,
  GROUP,
  ResilientWatch,
  VERSION,
  api,
  apiFailure,
  createCustom,
  getCustom,
  kubectl,
  restartApiserver,
  serverSideApply,
  uniqueSuffix,
  useTestNamespace,
} from './support.ts';
import type { CustomObject } from './support.ts';

const namespace = useTestNamespace('it-crds');

const DISCOVERIES = 'devicediscoveries';
const DEVICES = 'devices';

type Spec = Record<string, unknown>;

const podBroker = { pod: { spec: { containers: [{ name: 'broker', image: 'busybox' }] } } };
const jobBroker = { job: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'broker', image: 'busybox' }] } } } } };

function discovery(name: string, spec: Spec): CustomObject {
  return { apiVersion: API_VERSION, kind: 'DeviceDiscovery', metadata: { name, namespace: namespace.name }, spec };
}

/** A valid spec with one field replaced (or removed, when the value is undefined). */
function specWith(field: string, value: unknown): Spec {
  const spec: Spec = { handler: 'usb', capacity: 2, broker: podBroker };
  if (value === undefined) delete spec[field];
  else spec[field] = value;
  return spec;
}

interface InvalidCase {
  what: string;
  name?: string;
  spec: Spec;
  /** The field path that the apiserver's message must name. */
  path: string;
}

const invalidDiscoveries: InvalidCase[] = [
  { what: 'two brokers', spec: specWith('broker', { ...podBroker, ...jobBroker }), path: 'spec.broker' },
  { what: 'a broker with neither pod nor job', spec: specWith('broker', {}), path: 'spec.broker' },
  { what: 'a pod broker without containers', spec: specWith('broker', { pod: { spec: {} } }), path: 'spec.broker.pod.spec.containers' },
  { what: 'capacity 0', spec: specWith('capacity', 0), path: 'spec.capacity' },
  { what: 'capacity above the maximum', spec: specWith('capacity', 100_000), path: 'spec.capacity' },
  { what: 'no handler', spec: specWith('handler', undefined), path: 'spec.handler' },
  { what: 'a handler name with a space', spec: specWith('handler', 'usb handler'), path: 'spec.handler' },
  { what: 'a handler name ending in a dash', spec: specWith('handler', 'debugEcho-'), path: 'spec.handler' },
  { what: 'an unknown handler source', spec: specWith('handlerSource', 'Remote'), path: 'spec.handlerSource' },
  { what: 'a negative offline grace period', spec: specWith('offlineGracePeriodSeconds', -1), path: 'spec.offlineGracePeriodSeconds' },
  {
    what: 'a property name that is not env-like',
    spec: specWith('properties', [{ name: '1-bad name', value: 'x' }]),
    path: 'spec.properties[0].name',
  },
  {
    what: 'a property with both value and valueFrom',
    spec: specWith('properties', [{ name: 'PASSWORD', value: 'x', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }]),
    path: 'spec.properties[0]',
  },
  { what: 'a property with neither value nor valueFrom', spec: specWith('properties', [{ name: 'PASSWORD' }]), path: 'spec.properties[0]' },
  {
    what: 'a property source with both secretKeyRef and configMapKeyRef',
    spec: specWith('properties', [
      { name: 'P', valueFrom: { secretKeyRef: { name: 's', key: 'k' }, configMapKeyRef: { name: 'c', key: 'k' } } },
    ]),
    path: 'spec.properties[0].valueFrom',
  },
  {
    what: 'two properties with the same name',
    spec: specWith('properties', [
      { name: 'P', value: 'a' },
      { name: 'P', value: 'b' },
    ]),
    path: 'spec.properties[1]',
  },
  {
    what: 'a node selector In requirement without values',
    spec: specWith('nodeSelector', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In' }] }] }),
    path: 'spec.nodeSelector.nodeSelectorTerms[0].matchExpressions[0]',
  },
  {
    what: 'an unknown node selector operator',
    spec: specWith('nodeSelector', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'Near' }] }] }),
    path: 'spec.nodeSelector.nodeSelectorTerms[0].matchExpressions[0].operator',
  },
  { what: 'a device service without ports', spec: specWith('deviceService', { type: 'ClusterIP' }), path: 'spec.deviceService.ports' },
  // metadata.name: tether.dev/<name>-<16 hex> must fit the 63-character name part.
  { what: 'a name longer than 40 characters', name: `d${'x'.repeat(40)}`, spec: specWith('capacity', 1), path: 'metadata.name' },
  { what: 'a name starting with a digit', name: '1camera', spec: specWith('capacity', 1), path: 'metadata.name' },
  { what: 'a name shaped like a Device name', name: 'camera-0123456789abcdef', spec: specWith('capacity', 1), path: 'metadata.name' },
];

describe('DeviceDiscovery validation', () => {
  it.each(invalidDiscoveries)('rejects $what, naming $path', async ({ name, spec, path }) => {
    const body = discovery(name ?? `invalid-${uniqueSuffix()}`, spec);
    const failure = await apiFailure(createCustom(DISCOVERIES, namespace.name, body));
    expect(failure.code).toBe(422);
    expect(failure.reason).toBe('Invalid');
    expect(failure.message).toContain(path);
  });

  it('has at least ten invalid cases', () => {
    expect(invalidDiscoveries.length).toBeGreaterThanOrEqual(10);
  });

  const validDiscoveries: { what: string; spec: Spec }[] = [
    { what: 'a handler alone (no broker: devices only)', spec: { handler: 'mdns' } },
    { what: 'a pod broker', spec: specWith('capacity', 3) },
    // Akri's Configurations, as they are: a camelCase handler name and YAML text details.
    {
      what: "Akri's handler name and YAML details text",
      spec: { handler: 'debugEcho', handlerSource: 'External', details: 'descriptions:\n- foo0\n- foo1\n' },
    },
    {
      what: 'everything set',
      spec: {
        handler: 'onvif',
        details: { ipAddresses: { action: 'Include', items: ['10.0.0.1'] }, anything: [1, 'two'] },
        properties: [
          { name: 'USERNAME', value: 'admin' },
          { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'camera-secret', key: 'password', optional: false } } },
          { name: 'site.id', valueFrom: { configMapKeyRef: { name: 'site', key: 'id' } } },
        ],
        capacity: 5,
        offlineGracePeriodSeconds: 0,
        nodeSelector: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'zone', operator: 'In', values: ['a', 'b'] },
                { key: 'gpu', operator: 'DoesNotExist' },
              ],
            },
            { matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['edge-0'] }] },
          ],
        },
        broker: jobBroker,
        deviceService: { ports: [{ name: 'rtsp', port: 554 }] },
        discoveryService: { type: 'ClusterIP', ports: [{ name: 'rtsp', port: 554 }] },
      },
    },
  ];

  it.each(validDiscoveries)('accepts $what', async ({ spec }) => {
    const name = `valid-${uniqueSuffix()}`;
    const created = await createCustom(DISCOVERIES, namespace.name, discovery(name, spec));
    expect(created.metadata?.name).toBe(name);
    expect(created.spec?.handler).toBe(spec.handler);
  });

  it('defaults capacity to 1 and the offline grace period to 60 s', async () => {
    const created = await createCustom(DISCOVERIES, namespace.name, discovery(`defaults-${uniqueSuffix()}`, { handler: 'usb' }));
    expect(created.spec).toMatchObject({ capacity: 1, offlineGracePeriodSeconds: 60 });
  });

  it('refuses to change the handler, naming spec.handler', async () => {
    const name = `immutable-${uniqueSuffix()}`;
    const created = await createCustom(DISCOVERIES, namespace.name, discovery(name, specWith('capacity', 1)));
    const changed = { ...created, spec: { ...created.spec, handler: 'onvif' } };
    const failure = await apiFailure(
      api().custom.replaceNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: DISCOVERIES,
        namespace: namespace.name,
        name,
        body: changed,
      }),
    );
    expect(failure.code).toBe(422);
    expect(failure.message).toContain('spec.handler');
    expect(failure.message).toContain('immutable');
  });
});

/** 16 hex digits: the CRD only requires `<spec.discovery>-` as the name prefix. */
const HASH = '0123456789abcdef';

function device(name: string, spec: Spec): CustomObject {
  return { apiVersion: API_VERSION, kind: 'Device', metadata: { name, namespace: namespace.name }, spec };
}

/** What every agent applies identically (co-owned by all of them). */
function identity(discoveryName: string, capacity = 2): Spec {
  return { discovery: discoveryName, deviceId: '/sys/devices/usb1/1-1', shared: true, capacity };
}

/**
 * What agent `node` applies: the identity, its own `nodes` entry, the slots it
 * holds. Holding none, it leaves `slots` out: applying `slots: {}` when that
 * empties the map makes the apiserver store `null`, which the schema refuses
 * (422), so an agent must omit the field rather than send an empty map.
 */
function agentApply(name: string, discoveryName: string, node: string, slots: string[], force = false): Promise<CustomObject> {
  const spec: Spec = { ...identity(discoveryName), nodes: [node] };
  if (slots.length > 0) spec.slots = Object.fromEntries(slots.map((slot) => [slot, node]));
  return serverSideApply(DEVICES, device(name, spec), { fieldManager: `tether-agent/${node}`, force });
}

function newDeviceName(): { discoveryName: string; name: string } {
  const discoveryName = `cam-${uniqueSuffix()}`;
  return { discoveryName, name: `${discoveryName}-${HASH}` };
}

describe('Device validation', () => {
  const cases: { what: string; name?: (discoveryName: string) => string; spec: (discoveryName: string) => Spec; path: string }[] = [
    { what: 'a slot index not below capacity', spec: (d) => ({ ...identity(d), slots: { '2': 'node-a' } }), path: 'spec.slots' },
    { what: 'a slot index with a leading zero', spec: (d) => ({ ...identity(d), slots: { '01': 'node-a' } }), path: 'spec.slots' },
    { what: 'a node name that is not a DNS subdomain', spec: (d) => ({ ...identity(d), nodes: ['Node_A'] }), path: 'spec.nodes[0]' },
    { what: 'a name not prefixed by its discovery', name: () => `other-${HASH}`, spec: (d) => identity(d), path: 'metadata.name' },
    {
      what: 'a relative mount path',
      spec: (d) => ({ ...identity(d), mounts: [{ containerPath: 'dev', hostPath: '/dev' }] }),
      path: 'spec.mounts[0].containerPath',
    },
  ];

  it.each(cases)('rejects $what, naming $path', async ({ name, spec, path }) => {
    const ids = newDeviceName();
    const failure = await apiFailure(
      createCustom(DEVICES, namespace.name, device(name?.(ids.discoveryName) ?? ids.name, spec(ids.discoveryName))),
    );
    expect(failure.code).toBe(422);
    expect(failure.message).toContain(path);
  });
});

describe('Device server-side apply by several agents', () => {
  it('keeps each node entry and each slot of every agent', async () => {
    const { discoveryName, name } = newDeviceName();
    await agentApply(name, discoveryName, 'node-a', ['0']);
    await agentApply(name, discoveryName, 'node-b', ['1']);

    const merged = await getCustom({ plural: DEVICES, namespace: namespace.name, name });
    expect(merged.spec?.nodes).toEqual(expect.arrayContaining(['node-a', 'node-b']));
    expect(merged.spec?.slots).toEqual({ '0': 'node-a', '1': 'node-b' });

    // Re-applying A's unchanged intent must not drop B's entries.
    await agentApply(name, discoveryName, 'node-a', ['0']);
    const again = await getCustom({ plural: DEVICES, namespace: namespace.name, name });
    expect(again.spec?.slots).toEqual({ '0': 'node-a', '1': 'node-b' });
    expect(again.spec?.nodes).toHaveLength(2);
  });

  it('refuses, with 409, a node claiming a slot another node holds; a released slot can be claimed', async () => {
    const { discoveryName, name } = newDeviceName();
    await agentApply(name, discoveryName, 'node-a', ['0']);

    const conflict = await apiFailure(agentApply(name, discoveryName, 'node-b', ['0']));
    expect(conflict.code).toBe(409);
    expect(conflict.message).toContain('tether-agent/node-a');
    expect(conflict.message).toContain('.spec.slots');
    const unchanged = await getCustom({ plural: DEVICES, namespace: namespace.name, name });
    expect(unchanged.spec?.slots).toEqual({ '0': 'node-a' });

    // A leaves the key out of its next apply: the slot is released …
    await agentApply(name, discoveryName, 'node-a', []);
    const released = await getCustom({ plural: DEVICES, namespace: namespace.name, name });
    expect(released.spec?.slots ?? {}).toEqual({});
    // … and B's claim now succeeds without force.
    await agentApply(name, discoveryName, 'node-b', ['0']);
    const claimed = await getCustom({ plural: DEVICES, namespace: namespace.name, name });
    expect(claimed.spec?.slots).toEqual({ '0': 'node-b' });
  });

  it('records one field manager per agent', async () => {
    const { discoveryName, name } = newDeviceName();
    await agentApply(name, discoveryName, 'node-a', ['0']);
    await agentApply(name, discoveryName, 'node-b', ['1']);
    const object = await getCustom({ plural: DEVICES, namespace: namespace.name, name });
    const managers = (object.metadata?.managedFields ?? []).map((entry) => entry.manager);
    expect(managers).toEqual(expect.arrayContaining(['tether-agent/node-a', 'tether-agent/node-b']));
  });
});

describe('Device status subresource', () => {
  it('updates status without bumping metadata.generation; spec changes do bump it', async () => {
    const { discoveryName, name } = newDeviceName();
    const created = await agentApply(name, discoveryName, 'node-a', ['0']);
    const generation = created.metadata?.generation;
    expect(generation).toBe(1);

    const status = {
      observedGeneration: generation,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Seen',
          message: 'seen by node-a',
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      ],
      nodeStates: [{ node: 'node-a', state: 'Online' }],
    };
    const withStatus = await serverSideApply(
      DEVICES,
      { ...device(name, {}), spec: undefined, status },
      { fieldManager: 'tether-agent/node-a', status: true },
    );
    expect(withStatus.metadata?.generation).toBe(generation);
    expect(withStatus.status).toMatchObject({ observedGeneration: 1, nodeStates: [{ node: 'node-a', state: 'Online' }] });

    // Status sent to the main resource is ignored.
    const ignored = await serverSideApply(
      DEVICES,
      { ...device(name, identity(discoveryName)), status: { observedGeneration: 99 } },
      { fieldManager: 'sneaky' },
    );
    expect(ignored.status?.observedGeneration).toBe(1);

    const resized = await serverSideApply(DEVICES, device(name, identity(discoveryName, 3)), {
      fieldManager: 'tether-agent/node-a',
      force: true,
    });
    expect(resized.metadata?.generation).toBe(2);
  });
});

describe('printer columns', () => {
  it('shows Device columns in kubectl get', async () => {
    const { discoveryName, name } = newDeviceName();
    await agentApply(name, discoveryName, 'node-a', ['0']);
    const table = await kubectl('get', DEVICES, '-n', namespace.name, name);
    const [header, row] = table.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'DISCOVERY', 'SHARED', 'CAPACITY', 'NODES', 'AGE']);
    expect(row).toMatch(new RegExp(`^${name}\\s+${discoveryName}\\s+true\\s+2\\s+\\["node-a"\\]\\s+\\d+s`));
  });

  it('shows DeviceDiscovery columns in kubectl get', async () => {
    const name = `columns-${uniqueSuffix()}`;
    await createCustom(DISCOVERIES, namespace.name, discovery(name, specWith('capacity', 4)));
    const table = await kubectl('get', DISCOVERIES, '-n', namespace.name, name);
    const [header, row] = table.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'HANDLER', 'CAPACITY', 'DEVICES', 'BROKERS', 'READY', 'AGE']);
    expect(row).toMatch(new RegExp(`^${name}\\s+usb\\s+4\\s+`));
  });
});

describe('watches across an apiserver restart', () => {
  it('observes an object created after the apiserver came back', async () => {
    const { custom, kc } = api();
    const list = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: namespace.name,
      plural: DISCOVERIES,
    })) as {
      metadata?: { resourceVersion?: string };
    };
    const watch = new ResilientWatch(kc, `/apis/${GROUP}/${VERSION}/namespaces/${namespace.name}/${DISCOVERIES}`);
    await watch.start(list.metadata?.resourceVersion);
    try {
      const before = `before-${uniqueSuffix()}`;
      await createCustom(DISCOVERIES, namespace.name, discovery(before, specWith('capacity', 1)));
      await watch.next((event) => event.type === 'ADDED' && event.object.metadata?.name === before);

      const reconnectsBefore = watch.reconnects;
      await restartApiserver();
      const after = `after-${uniqueSuffix()}`;
      await createCustom(DISCOVERIES, namespace.name, discovery(after, specWith('capacity', 1)));

      const event = await watch.next((candidate) => candidate.type === 'ADDED' && candidate.object.metadata?.name === after, {
        timeoutMs: 60_000,
      });
      expect(event.object.spec?.handler).toBe('usb');
      expect(watch.reconnects).toBeGreaterThan(reconnectsBefore);
    } finally {
      watch.stop();
    }
  });
});
