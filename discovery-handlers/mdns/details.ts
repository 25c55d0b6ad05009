/**
 * `details` of an `mdns` DeviceDiscovery, validated once into MdnsDetails; every error names
 * the offending field. Types, bounds and defaults are in schema.ts; this file compiles the
 * regular expressions and resolves the result for the handler (seconds → ms).
 */
import { DetailsError } from '../contract.ts';
import { parseWithSchema } from '../details-parse.ts';
import { SERVICE_TYPE_PATTERN } from './constants.ts';
import DETAILS_SCHEMA from './details.schema.json' with { type: 'json' };
import type { MdnsDetailsInput, MdnsDetailsSchema } from './schema.ts';

export interface ServiceType {
  /** What is queried: `_ipp._tcp.local` or a subtype `_universal._sub._ipp._tcp.local`. */
  readonly browseName: string;
  /** The service type itself: `_ipp._tcp`. */
  readonly type: string;
}

export interface TxtFilter {
  readonly key: string;
  /** Undefined: the key must be present (any value). */
  readonly value?: RegExp;
}

export interface MdnsFilters {
  readonly instanceName?: RegExp;
  readonly host?: RegExp;
  readonly txt: readonly TxtFilter[];
}

/** Details as the handler uses them: the schema's fields, with times in ms and patterns compiled. */
export interface MdnsDetails extends Readonly<Pick<MdnsDetailsInput, 'maxDevices' | 'shared'>> {
  readonly serviceTypes: readonly ServiceType[];
  /** Interface names or IPv4 addresses; undefined = every non-internal IPv4 interface. */
  readonly interfaces?: readonly string[];
  readonly filters: MdnsFilters;
  /** How long the first browse collects answers before the first full report. */
  readonly discoveryTimeoutMs: number;
  /** Browse queries go out after 0 s, 1 s, 2 s, 4 s … up to this interval (RFC 6762 §5.2). */
  readonly maxQueryIntervalMs: number;
}

const SERVICE_TYPE = new RegExp(SERVICE_TYPE_PATTERN);

/** Parses `_ipp._tcp`, `_ipp._tcp.local`, `_universal._sub._ipp._tcp`; undefined when invalid. */
export function parseServiceType(text: string): ServiceType | undefined {
  const match = SERVICE_TYPE.exec(text);
  if (match === null) return undefined;
  const type = match[2]!;
  return { type, browseName: match[1] === undefined ? `${type}.local` : `${match[1]}._sub.${type}.local` };
}

/** Compiles a user regular expression (`u` flag), with the field path on error. */
function compileRegex(source: string, path: string): RegExp {
  try {
    return new RegExp(source, 'u');
  } catch (error) {
    throw new DetailsError(path, `invalid regular expression: ${(error as Error).message}`, { cause: error });
  }
}

/** Validates raw details; every error names the field path. */
export function parseMdnsDetails(raw: unknown): MdnsDetails {
  const input = parseWithSchema<typeof MdnsDetailsSchema>(DETAILS_SCHEMA, raw);
  const { instanceName, host, txt = {} } = input.filters;
  return {
    serviceTypes: input.serviceTypes.map((text) => parseServiceType(text)!),
    ...(input.interfaces === undefined ? {} : { interfaces: input.interfaces }),
    filters: {
      ...(instanceName === undefined ? {} : { instanceName: compileRegex(instanceName, 'details.filters.instanceName') }),
      ...(host === undefined ? {} : { host: compileRegex(host, 'details.filters.host') }),
      txt: Object.entries(txt).map(([key, value]) =>
        value === true ? { key } : { key, value: compileRegex(value, `details.filters.txt.${key}`) },
      ),
    },
    discoveryTimeoutMs: input.discoveryTimeoutSeconds * 1000,
    maxQueryIntervalMs: input.maxQueryIntervalSeconds * 1000,
    maxDevices: input.maxDevices,
    shared: input.shared,
  };
}
