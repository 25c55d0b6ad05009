/**
 * `details` of a `udev` DeviceDiscovery, validated once into UdevDetails: the schema's types,
 * bounds and defaults (schema.ts), then every rule parsed (rules.ts) so a bad one is refused
 * with its index and reason (`details.udevRules[1]: unsupported key "RUN": …`).
 *
 * Akri's discoveryDetails is a YAML string; a string is read as YAML here, so an Akri
 * Configuration's details work unchanged.
 */
import { parse as parseYaml } from 'yaml';
import { DetailsError } from '../contract.ts';
import { parseWithSchema } from '../details-parse.ts';
import { parseUdevRule, type UdevRule } from './rules.ts';
import { UdevDetailsSchema, type UdevDetailsInput } from './schema.ts';

/** Longest YAML text accepted as details. */
const MAX_YAML_LENGTH = 256 * 1024;

/** Details as the handler uses them: rules parsed, times in ms. */
export interface UdevDetails extends Readonly<Pick<UdevDetailsInput, 'groupRecursive' | 'permissions' | 'maxDevices'>> {
  readonly udevRules: readonly UdevRule[];
  readonly pollIntervalMs: number;
  readonly shared: false;
}

function fromYaml(raw: string): unknown {
  if (raw.length > MAX_YAML_LENGTH) throw new DetailsError('details', `YAML text is longer than ${MAX_YAML_LENGTH} characters`);
  try {
    return parseYaml(raw, { maxAliasCount: 0 }) as unknown;
  } catch (error) {
    throw new DetailsError('details', `is not valid YAML: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
}

/** Validates raw details (an object, or Akri's YAML text); every error names the field path. */
export function parseUdevDetails(raw: unknown): UdevDetails {
  const input = parseWithSchema(UdevDetailsSchema, typeof raw === 'string' ? fromYaml(raw) : (raw ?? {}));
  return {
    udevRules: input.udevRules.map((rule, i) => parseUdevRule(rule, `details.udevRules[${i}]`)),
    groupRecursive: input.groupRecursive,
    permissions: input.permissions,
    maxDevices: input.maxDevices,
    pollIntervalMs: Math.round(input.pollIntervalSeconds * 1000),
    shared: false,
  };
}
