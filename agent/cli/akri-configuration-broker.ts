/**
 * The workload half of an Akri Configuration → DeviceDiscovery conversion: `brokerSpec`
 * (`brokerPodSpec` / `brokerJobSpec`) and the two Service specs. Pure: objects in, objects and
 * messages out; akri-configuration.ts calls it once per Configuration.
 *
 * The one real difference is how a broker asks for its device. Akri's controller looks for the
 * resource name `{{PLACEHOLDER}}` in every container's and init container's `limits`/`requests`
 * and replaces it with the Instance's resource (the value as given). Tether's controller needs
 * no placeholder: it adds `tether.dev/<device>: "1"` to the limits and requests of the broker's
 * FIRST container itself (controller/devices/brokers/desired.ts `brokerPodSpec`). So the
 * placeholder is dropped, and the container that held it is moved first when it was not.
 */
import type { V1JobSpec, V1PodSpec, V1ServiceSpec } from '@kubernetes/client-node';
import type { Broker } from '../../api/schema.ts';

/** Akri's resource-name placeholder in broker containers' resources. */
export const AKRI_RESOURCE_PLACEHOLDER = '{{PLACEHOLDER}}';

/**
 * Where the converter reports what it did not carry over (warnings), what it changed on
 * purpose (notes) and what it cannot convert at all (errors). `path` is the Akri field path.
 */
export interface ConversionReport {
  warn(path: string, message: string): void;
  note(message: string): void;
  error(path: string, message: string): void;
}

/** A plain (JSON-like) object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Removes the placeholder from one container's resources; returns the values it had. */
function stripPlaceholder(container: Record<string, unknown>): string[] {
  const resources = container['resources'];
  if (!isRecord(resources)) return [];
  const values: string[] = [];
  for (const kind of ['limits', 'requests']) {
    const quantities = resources[kind];
    if (!isRecord(quantities) || !(AKRI_RESOURCE_PLACEHOLDER in quantities)) continue;
    values.push(String(quantities[AKRI_RESOURCE_PLACEHOLDER]));
    delete quantities[AKRI_RESOURCE_PLACEHOLDER];
    if (Object.keys(quantities).length === 0) delete resources[kind];
  }
  if (Object.keys(resources).length === 0) delete container['resources'];
  return values;
}

/** Strips the placeholder from every container of a list; indexes of those that had it. */
function stripPlaceholders(list: unknown, path: string, report: ConversionReport): number[] {
  if (!Array.isArray(list)) return [];
  const holders: number[] = [];
  list.forEach((container: unknown, i) => {
    if (!isRecord(container)) return;
    const values = stripPlaceholder(container);
    if (values.length === 0) return;
    holders.push(i);
    const other = values.find((v) => v !== '1');
    if (other !== undefined)
      report.warn(
        `${path}[${i}].resources`,
        `"${AKRI_RESOURCE_PLACEHOLDER}": "${other}" not carried over (a Tether broker takes exactly 1 slot of its device)`,
      );
  });
  return holders;
}

function containerName(containers: unknown[], index: number): string {
  const container = containers[index];
  const name = isRecord(container) ? container['name'] : undefined;
  return typeof name === 'string' ? ` (${name})` : '';
}

/**
 * A broker PodSpec as Tether's controller wants it: no placeholder, the device's container
 * first. Returns undefined (after reporting an error) when `source` is not an object.
 */
export function convertBrokerPodSpec(source: unknown, path: string, report: ConversionReport): V1PodSpec | undefined {
  if (!isRecord(source)) {
    report.error(path, 'must be a PodSpec object');
    return undefined;
  }
  const spec = structuredClone(source);
  const containers = Array.isArray(spec['containers']) ? (spec['containers'] as unknown[]) : [];
  const holders = stripPlaceholders(containers, `${path}.containers`, report);
  for (const i of stripPlaceholders(spec['initContainers'], `${path}.initContainers`, report))
    report.warn(
      `${path}.initContainers[${i}]`,
      'its device request is not carried over (Tether gives the device to the first container only; ' +
        'an init container that needs it must become the first container or run in the broker)',
    );
  const [first, ...others] = holders;
  if (first === undefined) {
    if (containers.length > 0)
      report.warn(
        `${path}.containers`,
        `no container requests the device ("${AKRI_RESOURCE_PLACEHOLDER}"), but a Tether broker always takes one slot, on its first container`,
      );
    return spec as unknown as V1PodSpec;
  }
  if (others.length > 0)
    report.warn(
      `${path}.containers[${others.join(', ')}]`,
      `their device requests are not carried over (Tether gives the device to one container: containers[${first}]${containerName(containers, first)})`,
    );
  if (first !== 0) {
    const [moved] = containers.splice(first, 1);
    containers.unshift(moved);
    report.warn(
      `${path}.containers[${first}]`,
      `moved to containers[0]${containerName(containers, 0)}: Tether gives the device to the broker's first container`,
    );
  }
  report.note(
    `${path}: "${AKRI_RESOURCE_PLACEHOLDER}" dropped: Tether's controller itself adds tether.dev/<device>: "1" ` +
      "to the limits and requests of the broker's first container",
  );
  return spec as unknown as V1PodSpec;
}

/** `spec.brokerSpec` → `spec.broker`: exactly one of brokerPodSpec / brokerJobSpec. */
export function convertBrokerSpec(source: unknown, report: ConversionReport): Broker | undefined {
  const path = 'spec.brokerSpec';
  if (source === undefined || source === null) return undefined;
  if (!isRecord(source)) {
    report.error(path, 'must be an object with brokerPodSpec or brokerJobSpec');
    return undefined;
  }
  const kinds = (['brokerPodSpec', 'brokerJobSpec'] as const).filter((k) => k in source);
  for (const key of Object.keys(source))
    if (key !== 'brokerPodSpec' && key !== 'brokerJobSpec')
      report.warn(`${path}.${key}`, 'not carried over (Akri knows only brokerPodSpec and brokerJobSpec)');
  if (kinds.length !== 1) {
    if (kinds.length > 1) report.error(path, 'has both brokerPodSpec and brokerJobSpec (Akri takes exactly one)');
    return undefined;
  }
  if (kinds[0] === 'brokerPodSpec') {
    const spec = convertBrokerPodSpec(source['brokerPodSpec'], `${path}.brokerPodSpec`, report);
    return spec === undefined ? undefined : { pod: { spec } };
  }
  const jobPath = `${path}.brokerJobSpec`;
  const job = source['brokerJobSpec'];
  if (!isRecord(job) || !isRecord(job['template'])) {
    report.error(`${jobPath}.template`, 'a JobSpec with a pod template is required');
    return undefined;
  }
  const spec = structuredClone(job);
  const template = spec['template'] as Record<string, unknown>;
  const podSpec = convertBrokerPodSpec(template['spec'], `${jobPath}.template.spec`, report);
  if (podSpec === undefined) return undefined;
  template['spec'] = podSpec;
  return { job: { spec: spec as unknown as V1JobSpec } };
}

/**
 * `instanceServiceSpec` / `configurationServiceSpec` → `deviceService` / `discoveryService`.
 * Tether's Services need ports, and select the brokers by Tether's own labels.
 */
export function convertServiceSpec(source: unknown, path: string, report: ConversionReport): V1ServiceSpec | undefined {
  if (source === undefined || source === null) return undefined;
  if (!isRecord(source)) {
    report.error(path, 'must be a ServiceSpec object');
    return undefined;
  }
  if (!Array.isArray(source['ports']) || source['ports'].length === 0) {
    report.warn(path, 'not carried over (a Tether Service needs at least one port)');
    return undefined;
  }
  const spec = structuredClone(source);
  if (spec['selector'] !== undefined) {
    delete spec['selector'];
    report.warn(
      `${path}.selector`,
      "not carried over (Tether's Service selects the brokers by Tether's own labels, replacing any selector)",
    );
  }
  return spec;
}
