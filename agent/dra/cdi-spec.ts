/**
 * The CDI spec a prepared claim is injected through: pure.
 *
 * One spec file per claim (`tether.dev-<claim uid>.json`), kind `tether.dev/device`, one CDI
 * device per allocated device, named `<claim uid>-<device name>`. The claim uid is part of the
 * name because CDI device names are global per kind: with consumable capacity several claims
 * share one device, and two spec files defining the same name conflict (the runtime then
 * refuses both).
 *
 * The env vars are exactly what the device plugin's Allocate gives a container that gets the
 * claim's devices (agent/allocation/env.ts): each device's own `<NAME>_<SUFFIX>` vars are in its
 * CDI device's edits, and the rest — `TETHER_DEVICES` and, for a one-device claim, the plain
 * `<NAME>` vars — in the spec-wide edits, which the runtime applies whenever any device of the
 * spec is injected. A container that references the claim thus gets the device plugin's env.
 */
import { buildContainerResponse } from '../allocation/container-response.ts';
import { containerEnv, envNamesFor, envSuffix } from '../allocation/env.ts';
import type { ServedDevice } from '../device.ts';

/** CDI kind of every Tether device (`vendor/class`). */
export const CDI_KIND = 'tether.dev/device';

/** Lowest CDI spec version that has everything used here (and what the file declares). */
export const CDI_VERSION = '0.6.0';

/** What a CDI spec needs of a device. */
export type CdiDeviceSource = Pick<ServedDevice, 'name' | 'properties' | 'mounts' | 'deviceNodes'>;

export interface CdiContainerEdits {
  env?: string[];
  deviceNodes?: { path: string; hostPath: string; permissions: string }[];
  mounts?: { hostPath: string; containerPath: string; type: 'bind'; options: string[] }[];
}

/** A CDI spec file's content (https://github.com/cncf-tags/container-device-interface SPEC.md). */
export interface CdiSpec {
  cdiVersion: string;
  kind: string;
  devices: { name: string; containerEdits: CdiContainerEdits }[];
  containerEdits?: CdiContainerEdits;
}

/** File name of a claim's spec inside the CDI directory. */
export function cdiSpecFileName(claimUid: string): string {
  return `tether.dev-${claimUid}.json`;
}

/** CDI device name (without kind) of one device of one claim. */
export function cdiDeviceName(claimUid: string, device: string): string {
  return `${claimUid}-${device}`;
}

/** Fully qualified CDI device id, as the kubelet passes it to the runtime. */
export function cdiDeviceId(claimUid: string, device: string): string {
  return `${CDI_KIND}=${cdiDeviceName(claimUid, device)}`;
}

/** True if a claim uid can be part of a file and CDI device name (uids are RFC 4122 strings). */
export function isSafeClaimUid(uid: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/.test(uid);
}

function envList(env: Readonly<Record<string, string>>, keys: Iterable<string>): string[] {
  return [...keys].sort().map((key) => `${key}=${env[key] ?? ''}`);
}

/**
 * The spec for one claim's devices (distinct by name).
 *
 * @throws PathConflictError when two devices want different host paths at one container path
 *   (the device plugin refuses such an allocation the same way).
 */
export function buildCdiSpec(claimUid: string, devices: readonly CdiDeviceSource[]): CdiSpec {
  const distinct = [...new Map(devices.map((d) => [d.name, d])).values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  buildContainerResponse(distinct); // validates: refuses conflicting paths like Allocate does
  const all = containerEnv(distinct);
  const perDevice = new Set<string>();
  const specDevices = distinct.map((device) => {
    // A device's own vars: `<NAME>_<SUFFIX>` for each of its properties, as env.ts names them.
    const suffix = envSuffix(device.name);
    const own = [...envNamesFor(device.properties).values()].map((name) => `${name}_${suffix}`);
    for (const key of own) perDevice.add(key);
    const edits: CdiContainerEdits = { env: envList(all, own) };
    if (device.deviceNodes.length > 0) {
      edits.deviceNodes = device.deviceNodes.map((n) => ({ path: n.containerPath, hostPath: n.hostPath, permissions: n.permissions }));
    }
    if (device.mounts.length > 0) {
      edits.mounts = device.mounts.map((m) => ({
        hostPath: m.hostPath,
        containerPath: m.containerPath,
        type: 'bind',
        options: ['rbind', m.readOnly ? 'ro' : 'rw'],
      }));
    }
    return { name: cdiDeviceName(claimUid, device.name), containerEdits: edits };
  });
  const shared = Object.keys(all).filter((key) => !perDevice.has(key));
  return { cdiVersion: CDI_VERSION, kind: CDI_KIND, devices: specDevices, containerEdits: { env: envList(all, shared) } };
}
