/**
 * `details` of a `udev` DeviceDiscovery, validated once into UdevDetails: the schema's types,
 * bounds and defaults (schema.ts), then every rule parsed (rules.ts) so a bad one is refused
 * with its index and reason (`details.udevRules[1]: unsupported key "RUN": …`). Akri's
 * discoveryDetails YAML text is accepted as it is (parseWithSchema reads a string as YAML).
 */
import { parseWithSchema } from '../details-parse.ts';
import { parseUdevRule, type UdevRule } from './rules.ts';
import DETAILS_SCHEMA from './details.schema.json' with { type: 'json' };
import type { UdevDetailsInput, UdevDetailsSchema } from './schema.ts';

/** Details as the handler uses them: rules parsed, times in ms. */
export interface UdevDetails extends Readonly<Pick<UdevDetailsInput, 'groupRecursive' | 'permissions' | 'maxDevices'>> {
  readonly udevRules: readonly UdevRule[];
  readonly pollIntervalMs: number;
  readonly shared: false;
}

/** Validates raw details (an object, or Akri's YAML text); every error names the field path. */
export function parseUdevDetails(raw: unknown): UdevDetails {
  // No details at all: say which field is missing rather than "must be an object".
  const input = parseWithSchema<typeof UdevDetailsSchema>(DETAILS_SCHEMA, raw ?? {});
  return {
    udevRules: input.udevRules.map((rule, i) => parseUdevRule(rule, `details.udevRules[${i}]`)),
    groupRecursive: input.groupRecursive,
    permissions: input.permissions,
    maxDevices: input.maxDevices,
    pollIntervalMs: Math.round(input.pollIntervalSeconds * 1000),
    shared: false,
  };
}
