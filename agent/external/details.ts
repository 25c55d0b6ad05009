/**
 * The request side of the v0 protocol: discovery details and properties as an external
 * handler expects them. Pure: no I/O.
 *
 * Akri handlers parse `discovery_details` as YAML (serde_yaml), so structured details
 * from a DeviceDiscovery are serialised to YAML. A details value that is already a
 * string is taken to be YAML written for an Akri handler and passed through unchanged.
 */
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { DetailsError } from '../../discovery-handlers/contract.ts';
import type { DiscoverRequest } from '../../proto/types.ts';

/** The `yaml` package (~12 MiB of RSS), loaded the first time details are serialised (issue 15). */
const stringify = (value: unknown): string => (createRequire(import.meta.url)('yaml') as typeof Yaml).stringify(value);

/** Details an external handler gets: a plain JSON-like value, or YAML text. */
export type ExternalDetails = string | Readonly<Record<string, unknown>>;

const MAX_DEPTH = 64;
/** Akri's discoveryDetails is one string in a Kubernetes object; 1 MiB is already generous. */
export const MAX_DETAILS_LENGTH = 1 << 20;

function checkJsonValue(value: unknown, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new DetailsError(path, `nested deeper than ${MAX_DEPTH} levels`);
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new DetailsError(path, 'must be a finite number');
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJsonValue(item, `${path}[${i}]`, depth + 1));
    return;
  }
  if (typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw new DetailsError(path, 'must be a plain object');
    for (const [key, item] of Object.entries(value)) checkJsonValue(item, `${path}.${key}`, depth + 1);
    return;
  }
  throw new DetailsError(path, `a ${typeof value} cannot be sent to an external handler`);
}

/**
 * Accepts any JSON-serialisable object (the external handler validates the content) or a
 * YAML string; absent details become `{}`. Throws DetailsError for anything else.
 */
export function parseExternalDetails(raw: unknown): ExternalDetails {
  if (raw === undefined || raw === null) return {};
  if (typeof raw === 'string') {
    if (raw.length > MAX_DETAILS_LENGTH) throw new DetailsError('details', `longer than ${MAX_DETAILS_LENGTH} characters`);
    return raw;
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new DetailsError('details', 'must be an object (or a YAML string)');
  checkJsonValue(raw, 'details', 0);
  const yaml = stringify(raw);
  if (yaml.length > MAX_DETAILS_LENGTH) throw new DetailsError('details', `longer than ${MAX_DETAILS_LENGTH} characters as YAML`);
  return raw as Readonly<Record<string, unknown>>;
}

/** The `discovery_details` string for a Discover request. */
export function detailsYaml(details: ExternalDetails): string {
  return typeof details === 'string' ? details : stringify(details);
}

/** The Discover request for given details and resolved properties (UTF-8 bytes). */
export function discoverRequest(details: ExternalDetails, properties: ReadonlyMap<string, string>): DiscoverRequest {
  const discovery_properties: DiscoverRequest['discovery_properties'] = {};
  for (const [name, value] of properties) discovery_properties[name] = { vec: Buffer.from(value, 'utf8') };
  return { discovery_details: detailsYaml(details), discovery_properties };
}
