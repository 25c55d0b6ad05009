/**
 * Conversions between a handler's view and the v0 wire messages. Pure: no I/O.
 */
import { parse } from 'yaml';
import type { AkriDevice, DiscoverRequest } from '../../proto/types.ts';
import { DetailsError, type DiscoveredDevice } from '../contract.ts';

/** Longest discovery_details accepted (the agent sends at most 1 MiB). */
export const MAX_DETAILS_YAML = 1 << 20;

/** A DiscoveredDevice as a v0 Device. */
export function toAkriDevice(device: DiscoveredDevice): AkriDevice {
  return {
    id: device.id,
    properties: { ...device.properties },
    mounts: (device.mounts ?? []).map((m) => ({ container_path: m.containerPath, host_path: m.hostPath, read_only: m.readOnly })),
    device_specs: (device.deviceNodes ?? []).map((n) => ({
      container_path: n.containerPath,
      host_path: n.hostPath,
      permissions: n.permissions,
    })),
  };
}

/**
 * `discovery_details` (YAML, as Akri agents and Tether's agent send it) → a plain value.
 * Empty details are `null`. Throws DetailsError for YAML that does not parse.
 */
export function parseDetailsYaml(text: string): unknown {
  if (text.length > MAX_DETAILS_YAML) throw new DetailsError('details', `longer than ${MAX_DETAILS_YAML} characters`);
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    return parse(text, { maxAliasCount: 100 }) ?? null;
  } catch (error) {
    throw new DetailsError('details', `not valid YAML: ${(error as Error).message.split('\n')[0] ?? ''}`, { cause: error });
  }
}

/** `discovery_properties` → name → UTF-8 string (absent bytes are an empty string). */
export function decodeProperties(properties: DiscoverRequest['discovery_properties']): Map<string, string> {
  return new Map(Object.entries(properties ?? {}).map(([name, value]) => [name, value?.vec?.toString('utf8') ?? '']));
}
