/**
 * The env-var scheme: how device properties reach a container.
 *
 * For every device a container gets, each property P becomes `<NAME>_<SUFFIX>`:
 *   - NAME is P upper-cased with every character outside [A-Z0-9_] replaced by `_`,
 *     and `_` prefixed when it would start with a digit. When two properties of one
 *     device sanitise to the same NAME, the later one (by original name, in code-point
 *     order) gets `_2`, `_3`, … so nothing is lost.
 *   - SUFFIX is the 16-hex-digit hash that ends the device's name, upper-cased; it is
 *     unique per device, so several devices in one container never collide.
 * When the container gets exactly one device, each property is also set as plain
 * `<NAME>` (what Akri-style brokers read). `TETHER_DEVICES` lists the device names.
 *
 * Values are escaped, never dropped: `\` → `\\`, newline → `\n`, carriage return →
 * `\r`, NUL → `\0` (a NUL cannot exist in an environment at all).
 */
import { createHash } from 'node:crypto';
import type { ServedDevice } from '../device.ts';

/** A valid POSIX-ish env var name for a property name, without collision handling. */
export function sanitizeEnvName(property: string): string {
  const upper = property.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  if (upper.length === 0) return '_';
  return /^[0-9]/.test(upper) ? `_${upper}` : upper;
}

/** Reversible escaping of characters that do not belong in an env value. */
export function escapeEnvValue(value: string): string {
  return value.replace(/[\\\n\r\0]/g, (c) => ({ '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\0': '\\0' })[c] ?? c);
}

/**
 * Env names for one device's properties: original name → env name, with sanitising
 * collisions resolved deterministically.
 */
export function envNamesFor(properties: Readonly<Record<string, string>>): Map<string, string> {
  const taken = new Set<string>();
  const names = new Map<string, string>();
  for (const property of Object.keys(properties).sort()) {
    const base = sanitizeEnvName(property);
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}_${n}`;
    taken.add(name);
    names.set(property, name);
  }
  return names;
}

/** The per-device suffix: the hash that ends a device name, or a hash of the name. */
export function envSuffix(deviceName: string): string {
  const match = /-([0-9a-f]{16})$/.exec(deviceName);
  const hex = match?.[1] ?? createHash('sha256').update(deviceName).digest('hex').slice(0, 16);
  return hex.toUpperCase();
}

/** The env vars for a container that gets `devices` (one entry per distinct device). */
export function containerEnv(devices: readonly (Pick<ServedDevice, 'properties'> & { readonly name: string })[]): Record<string, string> {
  const distinct = [...new Map(devices.map((d) => [d.name, d])).values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const env: Record<string, string> = {};
  for (const device of distinct) {
    const suffix = envSuffix(device.name);
    for (const [property, name] of envNamesFor(device.properties)) {
      const value = escapeEnvValue(device.properties[property] ?? '');
      env[`${name}_${suffix}`] = value;
      if (distinct.length === 1) env[name] = value;
    }
  }
  env['TETHER_DEVICES'] = distinct.map((d) => d.name).join(',');
  return env;
}
