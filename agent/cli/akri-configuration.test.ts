import { readFileSync } from 'node:fs';
import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DeviceDiscoverySchema, type DeviceDiscovery } from '../../api/schema.ts';
import { convertAkriConfiguration, importAkriDocuments, jsonPointerToPath, type ImportOptions } from './akri-configuration.ts';
import { parseDocuments } from './import-akri.ts';

const fixture = (name: string): string => readFileSync(new URL(`../../test/fixtures/akri/${name}.yaml`, import.meta.url), 'utf8');

/** The fixture's one Configuration, converted; its warnings without the common prefix. */
function convertFixture(
  name: string,
  options: ImportOptions = {},
): { discovery: DeviceDiscovery; warnings: string[]; notes: readonly string[] } {
  const { documents, errors: parseErrors } = parseDocuments(fixture(name));
  expect(parseErrors).toEqual([]);
  const result = importAkriDocuments(documents, options);
  expect(result.errors).toEqual([]);
  expect(result.discoveries).toHaveLength(1);
  const [{ discovery, notes, source }] = result.discoveries as [(typeof result.discoveries)[number]];
  expect(Value.Check(DeviceDiscoverySchema, discovery)).toBe(true);
  return { discovery, notes, warnings: result.warnings.map((w) => w.replace(`${source}: `, '')) };
}

/** The Akri source text of a fixture's discoveryDetails, as the YAML parser reads it. */
function akriDetails(name: string): string {
  const doc = parseYaml(fixture(name)) as { spec: { discoveryHandler: { discoveryDetails: string } } };
  return doc.spec.discoveryHandler.discoveryDetails;
}

const brokerContainers = (d: DeviceDiscovery): Record<string, unknown>[] =>
  (d.spec.broker?.pod?.spec.containers ?? []) as unknown as Record<string, unknown>[];

describe('the fixtures (Configurations as Akri documents them)', () => {
  it('debugEcho: handler as is, details byte for byte, capacity, broker without the placeholder, services, no warnings', () => {
    const { discovery, warnings, notes } = convertFixture('debug-echo');
    expect(discovery.apiVersion).toBe('tether.dev/v1alpha1');
    expect(discovery.kind).toBe('DeviceDiscovery');
    expect(discovery.metadata).toEqual({ name: 'akri-debug-echo' });
    expect(discovery.spec.handler).toBe('debugEcho');
    expect(discovery.spec.handlerSource).toBeUndefined();
    expect(discovery.spec.details).toBe(akriDetails('debug-echo'));
    expect(parseYaml(discovery.spec.details as string)).toEqual({ descriptions: ['foo0', 'foo1'] });
    expect(discovery.spec.capacity).toBe(2);
    expect(brokerContainers(discovery)).toEqual([
      {
        name: 'akri-debug-echo-broker',
        image: 'nginx:latest',
        resources: { requests: { memory: '10Mi', cpu: '10m' }, limits: { memory: '30Mi', cpu: '29m' } },
      },
    ]);
    expect(discovery.spec.deviceService?.ports).toEqual([
      { name: 'akri-debug-echo-foo-instance-service', port: 6052, protocol: 'TCP', targetPort: 6052 },
    ]);
    expect(discovery.spec.discoveryService?.type).toBe('ClusterIP');
    expect(warnings).toEqual([]);
    expect(notes).toContainEqual(expect.stringContaining('"{{PLACEHOLDER}}" dropped'));
    expect(notes).toContainEqual(expect.stringContaining("Runs Tether's built-in debug-echo handler"));
  });

  it('udev: the video rule reaches the built-in udev handler unchanged; the privileged broker stays', () => {
    const { discovery, warnings } = convertFixture('udev');
    expect(discovery.metadata.name).toBe('akri-udev-video');
    expect(discovery.spec.handler).toBe('udev');
    expect(discovery.spec.details).toBe(akriDetails('udev'));
    expect(parseYaml(discovery.spec.details as string)).toEqual({
      groupRecursive: false,
      udevRules: ['KERNEL=="video[0-9]*"'],
      permissions: 'rwm',
    });
    expect(brokerContainers(discovery)[0]).toMatchObject({ securityContext: { privileged: true } });
    expect(JSON.stringify(discovery)).not.toContain('PLACEHOLDER');
    expect(warnings).toEqual([]);
  });

  it('ONVIF: filters in the details, credentials as properties; Helm marks, other-namespace Secret and broker properties warned', () => {
    const { discovery, warnings } = convertFixture('onvif');
    expect(discovery.metadata).toEqual({
      name: 'akri-onvif',
      namespace: 'default',
      labels: { site: 'plant-1' },
      annotations: { team: 'vision' },
    });
    expect(discovery.spec.handler).toBe('onvif');
    expect(discovery.spec.details).toBe(akriDetails('onvif'));
    expect(parseYaml(discovery.spec.details as string)).toMatchObject({
      ipAddresses: { action: 'Exclude', items: ['10.0.0.1'] },
      macAddresses: { action: 'Exclude', items: ['00:11:22:33:44:55'] },
      scopes: {
        action: 'Include',
        items: ['onvif://www.onvif.org/name/GreatONVIFCamera', 'onvif://www.onvif.org/name/AwesomeONVIFCamera'],
      },
      discoveryTimeoutSeconds: 2,
    });
    expect(discovery.spec.properties).toEqual([
      { name: 'device_credential_list', value: '[ "secret_list1" ]\n' },
      { name: 'secret_list1', valueFrom: { secretKeyRef: { name: 'onvif-auth-secret', key: 'secret_list1', optional: false } } },
      {
        name: 'device_credential_ref_list',
        valueFrom: { configMapKeyRef: { name: 'onvif-auth-configmap', key: 'device_credential_ref_list', optional: true } },
      },
    ]);
    expect(discovery.spec.broker?.pod?.spec.volumes).toEqual([{ name: 'credentials', secret: { secretName: 'onvif-auth-secret' } }]);
    expect(warnings).toEqual([
      expect.stringMatching(
        /^metadata: Helm's ownership marks of the Akri release not carried over \(label app\.kubernetes\.io\/managed-by, annotation meta\.helm\.sh\/release-name, annotation meta\.helm\.sh\/release-namespace\)/,
      ),
      'spec.discoveryHandler.discoveryProperties[1].valueFrom.secretKeyRef.namespace: secret_list1: namespace onvif-auth-secret-namespace ' +
        "not carried over (Tether reads Secrets only from the DeviceDiscovery's namespace, default: copy Secret " +
        'onvif-auth-secret-namespace/onvif-auth-secret there)',
      expect.stringMatching(/^spec\.brokerProperties: not carried over \(.*CREDENTIAL_DIRECTORY, CREDENTIAL_CONFIGMAP_DIRECTORY/),
    ]);
  });

  it('OPC UA: runs Tether’s built-in opcua handler on the same details', () => {
    const { discovery, warnings } = convertFixture('opcua');
    expect(discovery.spec.handler).toBe('opcua');
    expect(discovery.spec.details).toBe(akriDetails('opcua'));
    expect(parseYaml(discovery.spec.details as string)).toEqual({
      opcuaDiscoveryMethod: { standard: { discoveryUrls: ['opc.tcp://10.1.2.3:50000/', 'opc.tcp://10.1.2.3:50001/'] } },
      applicationNames: { action: 'Exclude', items: ['Duke'] },
    });
    expect(brokerContainers(discovery)[0]).toMatchObject({
      volumeMounts: [{ name: 'credentials', mountPath: '/etc/opcua-certs/client-pki', readOnly: false }],
    });
    expect(warnings).toEqual([expect.stringMatching(/^spec\.brokerProperties: not carried over .*IDENTIFIER, NAMESPACE_INDEX/)]);
  });

  it('--handler-source External sets spec.handlerSource and warns that Akri’s handler must stay', () => {
    const { discovery, warnings } = convertFixture('debug-echo', { handlerSource: 'External' });
    expect(discovery.spec.handlerSource).toBe('External');
    expect(warnings).toEqual([
      expect.stringContaining("debugEcho runs Akri's external debugEcho discovery handler (handlerSource External)"),
    ]);
  });
});

/** A minimal Akri Configuration with `spec` merged in. */
function configuration(spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'cams' }): Record<string, unknown> {
  return { apiVersion: 'akri.sh/v0', kind: 'Configuration', metadata, spec: { discoveryHandler: { name: 'debugEcho' }, ...spec } };
}

const container = (name: string, placeholder?: string): Record<string, unknown> => ({
  name,
  image: 'nginx',
  ...(placeholder === undefined ? {} : { resources: { limits: { '{{PLACEHOLDER}}': placeholder, cpu: '1' } } }),
});

/** Asymmetric matchers for expected messages (strings match exactly). */
const matching = (patterns: readonly (string | RegExp)[]): unknown[] =>
  patterns.map((p): unknown => (typeof p === 'string' ? p : expect.stringMatching(p)));

const strip = (messages: readonly string[]): string[] => messages.map((m) => m.replace(/^Configuration \S+: /, ''));

describe('convertAkriConfiguration', () => {
  it.each<{ what: string; spec: Record<string, unknown>; containers: string[]; warnings: (string | RegExp)[] }>([
    { what: 'placeholder on the only container', spec: { containers: [container('a', '1')] }, containers: ['a'], warnings: [] },
    {
      what: 'placeholder on the second container: moved first',
      spec: { containers: [container('sidecar'), container('broker', '1')] },
      containers: ['broker', 'sidecar'],
      warnings: [/^spec\.brokerSpec\.brokerPodSpec\.containers\[1\]: moved to containers\[0\] \(broker\)/],
    },
    {
      what: 'placeholder on two containers: the first keeps the device',
      spec: { containers: [container('a', '1'), container('b', '1')] },
      containers: ['a', 'b'],
      warnings: [/^spec\.brokerSpec\.brokerPodSpec\.containers\[1\]: their device requests are not carried over/],
    },
    {
      what: 'placeholder on an init container',
      spec: { initContainers: [container('init', '1')], containers: [container('a', '1')] },
      containers: ['a'],
      warnings: [/^spec\.brokerSpec\.brokerPodSpec\.initContainers\[0\]: its device request is not carried over/],
    },
    {
      what: 'no placeholder: a Tether broker still takes a slot',
      spec: { containers: [container('a')] },
      containers: ['a'],
      warnings: [/^spec\.brokerSpec\.brokerPodSpec\.containers: no container requests the device/],
    },
    {
      what: 'placeholder value other than 1',
      spec: { containers: [container('a', '2')] },
      containers: ['a'],
      warnings: [/^spec\.brokerSpec\.brokerPodSpec\.containers\[0\]\.resources: "\{\{PLACEHOLDER\}\}": "2" not carried over/],
    },
  ])('broker pod: $what', ({ spec, containers, warnings }) => {
    const result = convertAkriConfiguration(configuration({ brokerSpec: { brokerPodSpec: spec } }));
    expect(result.errors).toEqual([]);
    const pod = result.discovery!.spec.broker!.pod!.spec;
    expect(pod.containers.map((c) => c.name)).toEqual(containers);
    expect(JSON.stringify(pod)).not.toContain('PLACEHOLDER');
    const placeholderHolder = pod.containers.find((c) => c.name === containers[0] && c.resources !== undefined);
    if (placeholderHolder !== undefined) expect(placeholderHolder.resources).toEqual({ limits: { cpu: '1' } });
    expect(strip(result.warnings)).toEqual(matching(warnings));
  });

  it('brokerJobSpec becomes broker.job with the placeholder dropped from the pod template', () => {
    const job = { template: { spec: { containers: [container('a', '1')], restartPolicy: 'OnFailure' } }, backoffLimit: 2, parallelism: 1 };
    const result = convertAkriConfiguration(configuration({ brokerSpec: { brokerJobSpec: job } }));
    expect(result.warnings).toEqual([]);
    expect(result.discovery!.spec.broker).toEqual({
      job: {
        spec: {
          template: {
            spec: { containers: [{ name: 'a', image: 'nginx', resources: { limits: { cpu: '1' } } }], restartPolicy: 'OnFailure' },
          },
          backoffLimit: 2,
          parallelism: 1,
        },
      },
    });
  });

  it('warns that a Job broker runs per node, up to capacity, when capacity allows more than one', () => {
    const job = { template: { spec: { containers: [container('a', '1')] } } };
    const result = convertAkriConfiguration(configuration({ capacity: 2, brokerSpec: { brokerJobSpec: job } }));
    expect(strip(result.warnings)).toEqual([
      'spec.brokerSpec.brokerJobSpec: carried over with another count: Akri ran one Job per device; Tether runs one per node that sees the device, up to capacity (2)',
    ]);
  });

  it.each<{ what: string; properties: unknown[]; namespace?: string; expected: unknown[]; warnings: RegExp[] }>([
    {
      what: 'a value wins over a valueFrom (as in Akri)',
      properties: [{ name: 'A', value: 'x', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }],
      expected: [{ name: 'A', value: 'x' }],
      warnings: [/^spec\.discoveryHandler\.discoveryProperties\[0\]\.valueFrom: not carried over \(A has a value/],
    },
    {
      what: 'neither value nor valueFrom: dropped',
      properties: [{ name: 'A' }, { name: 'B', value: '' }],
      expected: [{ name: 'B', value: '' }],
      warnings: [/^spec\.discoveryHandler\.discoveryProperties\[0\]: A not carried over \(it has neither value nor valueFrom/],
    },
    {
      what: 'a name Tether refuses: dropped',
      properties: [{ name: 'has space', value: 'x' }],
      expected: [],
      warnings: [/^spec\.discoveryHandler\.discoveryProperties\[0\]: not carried over: "has space" is not a Tether property name/],
    },
    {
      what: 'the same name twice: the later one is kept',
      properties: [
        { name: 'A', value: '1' },
        { name: 'A', value: '2' },
      ],
      expected: [{ name: 'A', value: '2' }],
      warnings: [/^spec\.discoveryHandler\.discoveryProperties\[1\]: A is given again/],
    },
    {
      what: 'a reference without namespace means "default" to Akri',
      properties: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k' } } }],
      namespace: 'edge',
      expected: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k' } } }],
      warnings: [
        /^spec\.discoveryHandler\.discoveryProperties\[0\]\.valueFrom\.configMapKeyRef\.namespace: A: namespace default \(Akri's default when unset\) not carried over .*DeviceDiscovery's namespace, edge: copy ConfigMap default\/cm there\)$/,
      ],
    },
    {
      what: 'a reference to the Configuration’s own namespace carries over silently',
      properties: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', namespace: 'edge', key: 'k', optional: true } } }],
      namespace: 'edge',
      expected: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k', optional: true } } }],
      warnings: [],
    },
    {
      what: 'both secretKeyRef and configMapKeyRef: dropped',
      properties: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' }, configMapKeyRef: { name: 'c', key: 'k' } } }],
      expected: [],
      warnings: [/^spec\.discoveryHandler\.discoveryProperties\[0\]\.valueFrom: A not carried over \(valueFrom needs exactly one/],
    },
  ])('discoveryProperties: $what', ({ properties, namespace, expected, warnings }) => {
    const metadata = { name: 'cams', ...(namespace === undefined ? {} : { namespace }) };
    const result = convertAkriConfiguration(
      configuration({ discoveryHandler: { name: 'onvif', discoveryProperties: properties } }, metadata),
    );
    expect(result.errors).toEqual([]);
    expect(result.discovery!.spec.properties ?? []).toEqual(expected);
    expect(strip(result.warnings)).toEqual(matching(warnings));
  });

  it.each<{ what: string; details: unknown; expected: string | undefined; warnings: RegExp[] }>([
    { what: 'YAML text, unchanged', details: 'a: 1\n# kept\nb: [x]\n', expected: 'a: 1\n# kept\nb: [x]\n', warnings: [] },
    { what: 'empty: left out', details: '', expected: undefined, warnings: [] },
    { what: 'blank: left out', details: '  \n', expected: undefined, warnings: [] },
    {
      what: 'not YAML: kept, warned',
      details: 'a: [1\n',
      expected: 'a: [1\n',
      warnings: [/^spec\.discoveryHandler\.discoveryDetails: is not valid YAML \(.+\); carried over unchanged/],
    },
    {
      what: 'YAML but not a mapping: kept, warned',
      details: '- a\n',
      expected: '- a\n',
      warnings: [/^spec\.discoveryHandler\.discoveryDetails: is YAML but not a mapping/],
    },
  ])('discoveryDetails: $what', ({ details, expected, warnings }) => {
    const result = convertAkriConfiguration(configuration({ discoveryHandler: { name: 'debugEcho', discoveryDetails: details } }));
    expect(result.errors).toEqual([]);
    expect(result.discovery!.spec.details).toBe(expected);
    expect(strip(result.warnings)).toEqual(matching(warnings));
  });

  it.each<{ what: string; config: Record<string, unknown>; options?: ImportOptions; warnings: RegExp[] }>([
    {
      what: 'unknown spec and top-level fields, status',
      config: { ...configuration({ foo: 1 }), status: { x: 1 }, extra: true },
      warnings: [
        /^status: not carried over \(Tether's controller writes the status\)$/,
        /^extra: not carried over/,
        /^spec\.foo: not carried over \(not a field of an Akri Configuration\)$/,
      ],
    },
    {
      what: 'server-set metadata dropped silently, the rest warned',
      config: configuration(
        {},
        {
          name: 'cams',
          uid: 'u',
          resourceVersion: '1',
          generation: 2,
          managedFields: [],
          finalizers: ['x'],
          annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
        },
      ),
      warnings: [/^metadata\.finalizers: not carried over \(it belongs to the Akri object\)$/],
    },
    {
      what: 'a service without ports, a service selector',
      config: configuration({
        instanceServiceSpec: { type: 'ClusterIP' },
        configurationServiceSpec: { ports: [{ port: 80 }], selector: { a: 'b' } },
      }),
      warnings: [
        /^spec\.instanceServiceSpec: not carried over \(a Tether Service needs at least one port\)$/,
        /^spec\.configurationServiceSpec\.selector: not carried over/,
      ],
    },
    {
      what: 'an Akri handler Tether has no built-in for',
      config: configuration({ discoveryHandler: { name: 'zeroconf', discoveryDetails: 'kind: _http._tcp\n' } }),
      warnings: [
        /^spec\.discoveryHandler\.name: zeroconf runs Akri's external zeroconf discovery handler \(Tether has no built-in handler of that name\)/,
      ],
    },
    {
      what: 'empty brokerProperties and capacity absent: nothing to say',
      config: configuration({ brokerProperties: {} }),
      warnings: [],
    },
  ])('warnings: $what', ({ config, options, warnings }) => {
    const result = convertAkriConfiguration(config, options);
    expect(result.errors).toEqual([]);
    expect(Value.Check(DeviceDiscoverySchema, result.discovery)).toBe(true);
    expect(strip(result.warnings)).toEqual(matching(warnings));
  });

  it('keeps services and drops their selector; carries capacity', () => {
    const result = convertAkriConfiguration(
      configuration({ capacity: 3, configurationServiceSpec: { ports: [{ port: 80 }], selector: { a: 'b' } } }),
    );
    expect(result.discovery!.spec.capacity).toBe(3);
    expect(result.discovery!.spec.discoveryService).toEqual({ ports: [{ port: 80 }] });
  });

  it.each<{ what: string; config: Record<string, unknown>; options?: ImportOptions; error: RegExp }>([
    { what: 'no name', config: configuration({}, {}), error: /^Configuration \(no name\): metadata\.name: required/ },
    {
      what: 'a name Tether cannot use',
      config: configuration({}, { name: 'akri.onvif' }),
      error: /^Configuration akri\.onvif: metadata\.name: "akri\.onvif" cannot name a DeviceDiscovery: it must be a DNS-1035 label/,
    },
    {
      what: 'a name longer than 40 characters',
      config: configuration({}, { name: 'a'.repeat(41) }),
      error: /metadata\.name: "a{41}" cannot name a DeviceDiscovery/,
    },
    { what: 'no discoveryHandler', config: { ...configuration({}), spec: { capacity: 1 } }, error: /: spec\.discoveryHandler: required$/ },
    {
      what: 'no handler name',
      config: configuration({ discoveryHandler: { discoveryDetails: 'a: 1' } }),
      error: /: spec\.discoveryHandler\.name: required$/,
    },
    {
      what: 'discoveryDetails not a string',
      config: configuration({ discoveryHandler: { name: 'udev', discoveryDetails: { udevRules: [] } } }),
      error: /: spec\.discoveryHandler\.discoveryDetails: must be a string/,
    },
    {
      what: 'capacity Tether refuses (checked by the schema)',
      config: configuration({ capacity: 0 }),
      error: /^Configuration cams: spec\.capacity: Tether's DeviceDiscovery schema refuses the converted field: /,
    },
    {
      what: 'a broker pod without containers (checked by the schema)',
      config: configuration({ brokerSpec: { brokerPodSpec: { volumes: [] } } }),
      error: /^Configuration cams: spec\.broker\.pod\.spec: Tether's DeviceDiscovery schema refuses/,
    },
    {
      what: 'both broker kinds',
      config: configuration({ brokerSpec: { brokerPodSpec: { containers: [] }, brokerJobSpec: { template: {} } } }),
      error: /: spec\.brokerSpec: has both brokerPodSpec and brokerJobSpec/,
    },
    {
      what: '--handler-source BuiltIn for a handler Tether does not have',
      config: configuration({ discoveryHandler: { name: 'coap' } }),
      options: { handlerSource: 'BuiltIn' },
      error: /: spec\.discoveryHandler\.name: coap: Tether has no built-in handler of that name/,
    },
  ])('errors: $what', ({ config, options, error }) => {
    const result = convertAkriConfiguration(config, options);
    expect(result.discovery).toBeUndefined();
    expect(result.errors).toContainEqual(expect.stringMatching(error));
  });
});

describe('importAkriDocuments', () => {
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'onvif-auth-secret' } };

  it('unpacks Lists and ConfigurationLists, skips other kinds with a warning, ignores empty documents', () => {
    const result = importAkriDocuments([
      null,
      { apiVersion: 'v1', kind: 'List', items: [secret, configuration({}, { name: 'a' })] },
      { apiVersion: 'akri.sh/v0', kind: 'ConfigurationList', items: [configuration({}, { name: 'b' })] },
      { apiVersion: 'akri.sh/v0', kind: 'Instance', metadata: { name: 'a-1f2e3d' } },
    ]);
    expect(result.errors).toEqual([]);
    expect(result.discoveries.map((d) => d.discovery.metadata.name)).toEqual(['a', 'b']);
    expect(result.skipped).toBe(2);
    expect(result.warnings).toEqual([
      'document 2, item 1: v1 Secret onvif-auth-secret skipped (not an Akri Configuration)',
      "document 4: akri.sh/v0 Instance a-1f2e3d skipped (an Akri Instance is a discovered device: Tether's agents create Devices themselves)",
    ]);
  });

  it.each<{ what: string; document: unknown; error: string }>([
    {
      what: 'a Configuration of another apiVersion',
      document: { ...configuration({}), apiVersion: 'example.com/v1' },
      error: 'document 2: example.com/v1 Configuration cams is not an Akri Configuration (expected apiVersion akri.sh/v0)',
    },
    {
      what: 'a scalar',
      document: 'hello',
      error: 'document 2: not an object (expected a Kubernetes object such as an Akri Configuration)',
    },
    {
      what: 'no apiVersion and kind',
      document: { spec: {} },
      error: 'document 2: not a Kubernetes object (it has no apiVersion and kind)',
    },
    {
      what: 'a ConfigurationList of another apiVersion',
      document: { apiVersion: 'x/v1', kind: 'ConfigurationList', items: [] },
      error: 'document 2: x/v1 ConfigurationList is not a list of Akri Configurations (expected akri.sh/v0)',
    },
  ])('an error naming the document: $what', ({ document, error }) => {
    const result = importAkriDocuments([configuration({}), document]);
    expect(result.errors).toEqual([error]);
  });

  it('names the document and the Configuration of a conversion error', () => {
    const result = importAkriDocuments([configuration({}), configuration({ capacity: 5000 }, { name: 'big' })]);
    expect(result.errors).toEqual([
      expect.stringMatching(/^document 2: Configuration big: spec\.capacity: Tether's DeviceDiscovery schema refuses/),
    ]);
  });
});

describe('jsonPointerToPath', () => {
  it.each([
    ['/spec/properties/0/name', 'spec.properties[0].name'],
    ['/metadata/annotations/a~1b', 'metadata.annotations.a/b'],
    ['', ''],
  ])('%s → %s', (pointer, path) => expect(jsonPointerToPath(pointer)).toBe(path));
});
