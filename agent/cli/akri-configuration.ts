/**
 * Akri `Configuration` (akri.sh/v0) → Tether `DeviceDiscovery` (tether.dev/v1alpha1): the pure
 * converter behind `tether import-akri`. Objects in (parsed YAML/JSON documents), DeviceDiscoveries
 * and messages out; no I/O. Every DeviceDiscovery it returns has passed Tether's TypeBox schema
 * (api/schema.ts) and the CEL rules the schema leaves to the apiserver, so `kubectl apply`
 * accepts it.
 *
 * Messages: a *warning* names an Akri field that does not carry over (or carries over with a
 * different meaning); a *note* is a deliberate, harmless change worth telling (it becomes a
 * comment above the object); an *error* means a document cannot be converted at all.
 * The field-by-field mapping is in import-akri-help.ts (the command's --help).
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { Value } from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { isValidDiscoveryName, MAX_DISCOVERY_NAME_LENGTH } from '../../api/names.ts';
import {
  API_VERSION,
  DeviceDiscoverySchema,
  type DeviceDiscovery,
  type DeviceDiscoverySpec,
  type DiscoveryProperty,
  type HandlerSource,
} from '../../api/schema.ts';
import { convertBrokerSpec, convertServiceSpec, isRecord, type ConversionReport } from './akri-configuration-broker.ts';

/** apiVersion of Akri's Configuration (and ConfigurationList). */
export const AKRI_API_VERSION = 'akri.sh/v0';

/** Akri's handler names that Tether runs as built-ins (Auto), and the built-in each names. */
export const AKRI_BUILTIN_HANDLERS: Readonly<Record<string, string>> = {
  debugEcho: 'debug-echo',
  udev: 'udev',
  onvif: 'onvif',
  opcua: 'opcua',
};

/** How to convert. */
export interface ImportOptions {
  /** Set `spec.handlerSource` on every DeviceDiscovery (default: leave it out, i.e. Auto). */
  readonly handlerSource?: HandlerSource;
}

/** One converted Configuration. */
export interface ImportedDiscovery {
  readonly discovery: DeviceDiscovery;
  /** `Configuration <name>`, for messages. */
  readonly source: string;
  /** Deliberate changes worth a comment above the object. */
  readonly notes: readonly string[];
}

/** What `importAkriDocuments` made of its input. */
export interface AkriImport {
  /** In input order. Only meaningful when `errors` is empty (the command prints nothing otherwise). */
  readonly discoveries: readonly ImportedDiscovery[];
  /** What did not carry over, one line each: `Configuration akri-onvif: spec.foo: not carried over (…)`. */
  readonly warnings: readonly string[];
  /** Documents that cannot be converted, one line each, naming the document (numbered from 1). */
  readonly errors: readonly string[];
  /** Documents skipped because they are not Configurations (each also has a warning). */
  readonly skipped: number;
}

/** One Configuration's conversion. */
export interface ConfigurationConversion {
  /** Absent when `errors` is not empty. */
  readonly discovery?: DeviceDiscovery;
  readonly source: string;
  readonly warnings: readonly string[];
  readonly notes: readonly string[];
  readonly errors: readonly string[];
}

interface Collector {
  readonly report: ConversionReport;
  readonly warnings: string[];
  readonly notes: string[];
  readonly errors: string[];
}

function collector(source: string): Collector {
  const warnings: string[] = [];
  const notes: string[] = [];
  const errors: string[] = [];
  return {
    warnings,
    notes,
    errors,
    report: {
      warn: (path, message) => warnings.push(`${source}: ${path}: ${message}`),
      note: (message) => notes.push(message),
      error: (path, message) => errors.push(`${source}: ${path}: ${message}`),
    },
  };
}

/**
 * Converts parsed documents: Akri Configurations, and Lists of them (`kind: List`,
 * `ConfigurationList`). Other kinds are skipped with a warning; a `Configuration` of another
 * apiVersion, or a document that is no Kubernetes object, is an error.
 */
export function importAkriDocuments(documents: readonly unknown[], options: ImportOptions = {}): AkriImport {
  const result = { discoveries: [] as ImportedDiscovery[], warnings: [] as string[], errors: [] as string[], skipped: 0 };
  documents.forEach((document, i) => visitDocument(document, `document ${i + 1}`, options, result));
  return result;
}

function describeObject(object: Record<string, unknown>): string {
  const name = isRecord(object['metadata']) ? object['metadata']['name'] : undefined;
  return `${String(object['apiVersion'])} ${String(object['kind'])}${typeof name === 'string' ? ` ${name}` : ''}`;
}

function visitDocument(
  document: unknown,
  where: string,
  options: ImportOptions,
  result: { discoveries: ImportedDiscovery[]; warnings: string[]; errors: string[]; skipped: number },
): void {
  if (document === null || document === undefined) return; // an empty document (a stray `---`)
  if (!isRecord(document)) {
    result.errors.push(`${where}: not an object (expected a Kubernetes object such as an Akri Configuration)`);
    return;
  }
  const { apiVersion, kind } = document;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    result.errors.push(`${where}: not a Kubernetes object (it has no apiVersion and kind)`);
    return;
  }
  if (kind.endsWith('List') && Array.isArray(document['items'])) {
    if (kind === 'ConfigurationList' && apiVersion !== AKRI_API_VERSION)
      result.errors.push(`${where}: ${apiVersion} ConfigurationList is not a list of Akri Configurations (expected ${AKRI_API_VERSION})`);
    else document['items'].forEach((item: unknown, j) => visitDocument(item, `${where}, item ${j + 1}`, options, result));
    return;
  }
  if (kind !== 'Configuration') {
    result.skipped += 1;
    const why =
      apiVersion === AKRI_API_VERSION && kind === 'Instance'
        ? "an Akri Instance is a discovered device: Tether's agents create Devices themselves"
        : 'not an Akri Configuration';
    result.warnings.push(`${where}: ${describeObject(document)} skipped (${why})`);
    return;
  }
  if (apiVersion !== AKRI_API_VERSION) {
    result.errors.push(`${where}: ${describeObject(document)} is not an Akri Configuration (expected apiVersion ${AKRI_API_VERSION})`);
    return;
  }
  const converted = convertAkriConfiguration(document, options);
  result.warnings.push(...converted.warnings);
  result.errors.push(...converted.errors.map((e) => `${where}: ${e}`));
  if (converted.discovery !== undefined)
    result.discoveries.push({ discovery: converted.discovery, source: converted.source, notes: converted.notes });
}

/** Converts one Akri Configuration (apiVersion and kind already checked by the caller). */
export function convertAkriConfiguration(configuration: Record<string, unknown>, options: ImportOptions = {}): ConfigurationConversion {
  const metadata = isRecord(configuration['metadata']) ? configuration['metadata'] : {};
  const source = `Configuration ${typeof metadata['name'] === 'string' ? metadata['name'] : '(no name)'}`;
  const { report, warnings, notes, errors } = collector(source);
  for (const key of Object.keys(configuration)) {
    if (['apiVersion', 'kind', 'metadata', 'spec'].includes(key)) continue;
    report.warn(
      key,
      key === 'status' ? "not carried over (Tether's controller writes the status)" : 'not carried over (not part of a Configuration)',
    );
  }
  const meta = convertMetadata(metadata, report);
  const spec = convertSpec(configuration['spec'], meta?.namespace, options, report);
  if (meta === undefined || spec === undefined || errors.length > 0) return { source, warnings, notes, errors };
  const discovery: DeviceDiscovery = { apiVersion: API_VERSION, kind: 'DeviceDiscovery', metadata: meta, spec };
  for (const problem of schemaProblems(discovery))
    report.error(problem.path, `Tether's DeviceDiscovery schema refuses the converted field: ${problem.message}`);
  if (errors.length > 0) return { source, warnings, notes, errors };
  notes.push(
    `Pods that asked for akri.sh/${meta.name} ask for tether.dev/${meta.name} now (any device of this discovery); ` +
      `one device is tether.dev/${meta.name}-<16 hex> (was akri.sh/${meta.name}-<6 hex>).`,
  );
  return { discovery, source, warnings, notes, errors };
}

// ---------------------------------------------------------------------------------------------
// metadata

/** Set by the apiserver: meaningless on a new object, dropped without a word. */
const SERVER_SET_METADATA = new Set(['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink']);
/** kubectl's record of the Akri object it applied: it does not describe the new one (dropped silently). */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

function convertMetadata(metadata: Record<string, unknown>, report: ConversionReport): V1ObjectMeta | undefined {
  const name = metadata['name'];
  if (typeof name !== 'string' || name === '') {
    report.error('metadata.name', 'required (the DeviceDiscovery takes the Configuration’s name)');
    return undefined;
  }
  if (!isValidDiscoveryName(name)) {
    report.error(
      'metadata.name',
      `"${name}" cannot name a DeviceDiscovery: it must be a DNS-1035 label (lowercase letters, digits and -, ` +
        `starting with a letter) of at most ${MAX_DISCOVERY_NAME_LENGTH} characters, not ending in -<16 hex digits>; ` +
        'rename the Configuration in the input',
    );
    return undefined;
  }
  const meta: V1ObjectMeta = { name };
  if (typeof metadata['namespace'] === 'string' && metadata['namespace'] !== '') meta.namespace = metadata['namespace'];
  const helmMarks: string[] = [];
  const labels = stringMap(metadata['labels'], 'metadata.labels', report, (key, value) => {
    const helm = key === 'app.kubernetes.io/managed-by' && value === 'Helm';
    if (helm) helmMarks.push(`label ${key}`);
    return helm;
  });
  if (labels !== undefined) meta.labels = labels;
  const annotations = stringMap(metadata['annotations'], 'metadata.annotations', report, (key) => {
    const helm = key.startsWith('meta.helm.sh/');
    if (helm) helmMarks.push(`annotation ${key}`);
    return helm || key === LAST_APPLIED;
  });
  if (annotations !== undefined) meta.annotations = annotations;
  if (helmMarks.length > 0)
    report.warn(
      'metadata',
      `Helm's ownership marks of the Akri release not carried over (${helmMarks.join(', ')}): the DeviceDiscovery is not part of ` +
        'that release, and Helm would otherwise treat it as its own',
    );
  for (const key of Object.keys(metadata)) {
    if (['name', 'namespace', 'labels', 'annotations'].includes(key) || SERVER_SET_METADATA.has(key)) continue;
    report.warn(`metadata.${key}`, 'not carried over (it belongs to the Akri object)');
  }
  return meta;
}

/** Labels or annotations, without the ones `drop` picks (it reports them itself). */
function stringMap(
  source: unknown,
  path: string,
  report: ConversionReport,
  drop: (key: string, value: string) => boolean,
): Record<string, string> | undefined {
  if (!isRecord(source)) return undefined;
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) {
    if (typeof value !== 'string') report.warn(`${path}["${key}"]`, 'not carried over (not a string)');
    else if (!drop(key, value)) kept[key] = value;
  }
  return Object.keys(kept).length > 0 ? kept : undefined;
}

// ---------------------------------------------------------------------------------------------
// spec

const SPEC_FIELDS = ['discoveryHandler', 'capacity', 'brokerSpec', 'instanceServiceSpec', 'configurationServiceSpec', 'brokerProperties'];

function convertSpec(
  source: unknown,
  namespace: string | undefined,
  options: ImportOptions,
  report: ConversionReport,
): DeviceDiscoverySpec | undefined {
  if (!isRecord(source)) {
    report.error('spec', 'required');
    return undefined;
  }
  for (const key of Object.keys(source))
    if (!SPEC_FIELDS.includes(key)) report.warn(`spec.${key}`, 'not carried over (not a field of an Akri Configuration)');
  const handler = convertDiscoveryHandler(source['discoveryHandler'], namespace, options.handlerSource ?? 'Auto', report);
  if (handler === undefined) return undefined;
  const spec: DeviceDiscoverySpec = { handler: handler.name };
  if (options.handlerSource !== undefined) spec.handlerSource = options.handlerSource;
  if (handler.details !== undefined) spec.details = handler.details;
  if (handler.properties !== undefined) spec.properties = handler.properties;
  // Type and range are the schema's to judge (Akri's default is 1, Tether's too).
  if (source['capacity'] !== undefined && source['capacity'] !== null) spec.capacity = source['capacity'] as number;
  addWorkloads(source, spec, report);
  warnBrokerProperties(source['brokerProperties'], report);
  return spec;
}

/** Broker and Services: what the controller runs for each device. */
function addWorkloads(source: Record<string, unknown>, spec: DeviceDiscoverySpec, report: ConversionReport): void {
  const broker = convertBrokerSpec(source['brokerSpec'], report);
  if (broker !== undefined) spec.broker = broker;
  if (broker?.job !== undefined && typeof spec.capacity === 'number' && spec.capacity > 1)
    report.warn(
      'spec.brokerSpec.brokerJobSpec',
      `carried over with another count: Akri ran one Job per device; Tether runs one per node that sees the device, ` +
        `up to capacity (${spec.capacity})`,
    );
  const deviceService = convertServiceSpec(source['instanceServiceSpec'], 'spec.instanceServiceSpec', report);
  if (deviceService !== undefined) spec.deviceService = deviceService;
  const discoveryService = convertServiceSpec(source['configurationServiceSpec'], 'spec.configurationServiceSpec', report);
  if (discoveryService !== undefined) spec.discoveryService = discoveryService;
}

function warnBrokerProperties(source: unknown, report: ConversionReport): void {
  if (source === undefined || source === null) return;
  if (!isRecord(source)) {
    report.warn('spec.brokerProperties', 'not carried over (not a map)');
    return;
  }
  const names = Object.keys(source);
  if (names.length === 0) return;
  report.warn(
    'spec.brokerProperties',
    `not carried over (Tether has no per-discovery broker properties; Akri gave ${names.join(', ')} as env vars ` +
      'to every container that got a device: set them as env on the broker containers, and on other pods that read them)',
  );
}

interface HandlerFields {
  readonly name: string;
  readonly details?: string;
  readonly properties?: DiscoveryProperty[];
}

function convertDiscoveryHandler(
  source: unknown,
  namespace: string | undefined,
  handlerSource: HandlerSource,
  report: ConversionReport,
): HandlerFields | undefined {
  const path = 'spec.discoveryHandler';
  if (!isRecord(source)) {
    report.error(path, 'required');
    return undefined;
  }
  for (const key of Object.keys(source))
    if (!['name', 'discoveryDetails', 'discoveryProperties'].includes(key))
      report.warn(`${path}.${key}`, 'not carried over (not a field of Akri’s discoveryHandler)');
  const name = source['name'];
  if (typeof name !== 'string' || name === '') {
    report.error(`${path}.name`, 'required');
    return undefined;
  }
  reportHandler(name, handlerSource, report);
  const details = convertDetails(source['discoveryDetails'], report);
  const properties = convertProperties(source['discoveryProperties'], namespace, report);
  return { name, ...(details === undefined ? {} : { details }), ...(properties === undefined ? {} : { properties }) };
}

/** Who will run the handler, when that asks something of the user. */
function reportHandler(name: string, handlerSource: HandlerSource, report: ConversionReport): void {
  const path = 'spec.discoveryHandler.name';
  const builtin = AKRI_BUILTIN_HANDLERS[name];
  if (builtin !== undefined && handlerSource !== 'External') {
    report.note(`Runs Tether's built-in ${builtin} handler: Akri's ${name} discovery handler DaemonSet is not needed.`);
    return;
  }
  if (handlerSource === 'BuiltIn') {
    const builtins = Object.keys(AKRI_BUILTIN_HANDLERS).join(', ');
    report.error(
      path,
      `${name}: Tether has no built-in handler of that name (built in: ${builtins}); use --handler-source Auto or External`,
    );
    return;
  }
  const why = handlerSource === 'External' ? 'handlerSource External' : 'Tether has no built-in handler of that name';
  report.warn(
    path,
    `${name} runs Akri's external ${name === 'opcua' ? 'OPC UA' : name} discovery handler (${why}): its DaemonSet must stay deployed, ` +
      "registering with Tether's agent at /var/lib/tether/agent-registration.sock instead of /var/lib/akri/agent-registration.sock",
  );
}

/** `discoveryDetails` → `details`, the same string; its YAML is checked, not changed. */
function convertDetails(source: unknown, report: ConversionReport): string | undefined {
  const path = 'spec.discoveryHandler.discoveryDetails';
  if (source === undefined || source === null) return undefined;
  if (typeof source !== 'string') {
    report.error(path, 'must be a string (Akri carries discovery details as YAML text)');
    return undefined;
  }
  if (source.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = parseYaml(source, { prettyErrors: false });
  } catch (error) {
    const why = (error as Error).message.split('\n')[0] ?? '';
    report.warn(path, `is not valid YAML (${why}); carried over unchanged, and the handler will refuse it`);
    return source;
  }
  if (!isRecord(parsed)) report.warn(path, 'is YAML but not a mapping; carried over unchanged, and the handler will likely refuse it');
  return source;
}

const PROPERTY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

function convertProperties(source: unknown, namespace: string | undefined, report: ConversionReport): DiscoveryProperty[] | undefined {
  const path = 'spec.discoveryHandler.discoveryProperties';
  if (source === undefined || source === null) return undefined;
  if (!Array.isArray(source)) {
    report.warn(path, 'not carried over (not a list)');
    return undefined;
  }
  const byName = new Map<string, DiscoveryProperty>();
  source.forEach((item: unknown, i) => {
    const property = convertProperty(item, `${path}[${i}]`, namespace, report);
    if (property === undefined) return;
    if (byName.has(property.name)) {
      report.warn(`${path}[${i}]`, `${property.name} is given again: this later one is kept (Tether takes one property per name)`);
      byName.delete(property.name);
    }
    byName.set(property.name, property);
  });
  return byName.size > 0 ? [...byName.values()] : undefined;
}

function convertProperty(
  item: unknown,
  path: string,
  namespace: string | undefined,
  report: ConversionReport,
): DiscoveryProperty | undefined {
  if (!isRecord(item)) {
    report.warn(path, 'not carried over (not an object)');
    return undefined;
  }
  for (const key of Object.keys(item))
    if (!['name', 'value', 'valueFrom'].includes(key))
      report.warn(`${path}.${key}`, 'not carried over (not a field of a discovery property)');
  const name = item['name'];
  if (typeof name !== 'string' || !PROPERTY_NAME.test(name)) {
    report.warn(path, `not carried over: ${JSON.stringify(name)} is not a Tether property name (${PROPERTY_NAME.source})`);
    return undefined;
  }
  const { value, valueFrom } = item;
  if (typeof value === 'string') {
    // Akri's agent takes value when both are set, so valueFrom never mattered.
    if (valueFrom !== undefined && valueFrom !== null)
      report.warn(`${path}.valueFrom`, `not carried over (${name} has a value, which Akri uses first)`);
    return { name, value };
  }
  if (value !== undefined && value !== null) {
    report.warn(`${path}.value`, `${name} not carried over (the value is not a string)`);
    return undefined;
  }
  if (valueFrom === undefined || valueFrom === null) {
    report.warn(path, `${name} not carried over (it has neither value nor valueFrom; Tether needs one)`);
    return undefined;
  }
  return convertValueFrom(name, valueFrom, `${path}.valueFrom`, namespace, report);
}

function convertValueFrom(
  name: string,
  source: unknown,
  path: string,
  namespace: string | undefined,
  report: ConversionReport,
): DiscoveryProperty | undefined {
  const kinds = isRecord(source)
    ? (['secretKeyRef', 'configMapKeyRef'] as const).filter((k) => source[k] !== undefined && source[k] !== null)
    : [];
  const [kind] = kinds;
  if (!isRecord(source) || kind === undefined || kinds.length > 1) {
    report.warn(path, `${name} not carried over (valueFrom needs exactly one of secretKeyRef, configMapKeyRef)`);
    return undefined;
  }
  const ref = source[kind];
  if (!isRecord(ref) || typeof ref['name'] !== 'string' || typeof ref['key'] !== 'string') {
    report.warn(`${path}.${kind}`, `${name} not carried over (name and key are required)`);
    return undefined;
  }
  for (const key of Object.keys(ref))
    if (!['name', 'key', 'namespace', 'optional'].includes(key))
      report.warn(`${path}.${kind}.${key}`, 'not carried over (not a field of a key reference)');
  warnOtherNamespace(name, ref, `${path}.${kind}`, kind === 'secretKeyRef' ? 'Secret' : 'ConfigMap', namespace, report);
  const optional = typeof ref['optional'] === 'boolean' ? { optional: ref['optional'] } : {};
  const selector = { name: ref['name'], key: ref['key'], ...optional };
  return { name, valueFrom: kind === 'secretKeyRef' ? { secretKeyRef: selector } : { configMapKeyRef: selector } };
}

/**
 * Akri reads a referenced object from the reference's namespace ("default" when unset); Tether
 * from the DeviceDiscovery's own namespace (a Configuration without one counts as "default",
 * kubectl's usual namespace). Where they differ the object must be copied.
 */
function warnOtherNamespace(
  name: string,
  ref: Record<string, unknown>,
  path: string,
  object: 'Secret' | 'ConfigMap',
  namespace: string | undefined,
  report: ConversionReport,
): void {
  const explicit = typeof ref['namespace'] === 'string' && ref['namespace'] !== '' ? ref['namespace'] : undefined;
  const refNamespace = explicit ?? 'default';
  const ownNamespace = namespace ?? 'default';
  if (refNamespace === ownNamespace) return;
  report.warn(
    `${path}.namespace`,
    `${name}: namespace ${refNamespace}${explicit === undefined ? " (Akri's default when unset)" : ''} not carried over ` +
      `(Tether reads ${object}s only from the DeviceDiscovery's namespace, ${ownNamespace}` +
      `${namespace === undefined ? ' unless applied elsewhere' : ''}: copy ${object} ${refNamespace}/${String(ref['name'])} there)`,
  );
}

// ---------------------------------------------------------------------------------------------
// validation

/** `/spec/properties/0/name` → `spec.properties[0].name`. */
export function jsonPointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path === '' ? part : `${path}.${part}`), '');
}

/** Where Tether's schema refuses the object (at most 5 places), as field paths. */
function schemaProblems(discovery: DeviceDiscovery): { path: string; message: string }[] {
  if (Value.Check(DeviceDiscoverySchema, discovery)) return [];
  return [...Value.Errors(DeviceDiscoverySchema, discovery)]
    .slice(0, 5)
    .map((e) => ({ path: jsonPointerToPath(e.instancePath) || '(object)', message: e.message }));
}
