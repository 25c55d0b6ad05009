/**
 * Pure construction of what an agent applies to a Device, and the checks that let it skip
 * a write. The write model (see api/schema.ts) has two field managers per node:
 *   - `tether-agent/<node>`       identity fields (co-owned by every node that sees the
 *                                 device, applied with force so a capacity or property
 *                                 change converges) + this node's entry in spec.nodes and,
 *                                 on the status subresource, in status.nodeStates;
 *   - `tether-agent/<node>/slots` the spec.slots keys this node holds, applied WITHOUT
 *                                 force: a key another node holds is a 409, which is how
 *                                 a race for the last slot is refused.
 */
import { DISCOVERY_LABEL } from '../../api/labels.ts';
import { createHash } from 'node:crypto';
import { API_VERSION } from '../../api/group.ts';
import type { Device } from '../../api/schema.ts';
import type { DeviceMount, DeviceNode } from '../../discovery-handlers/contract.ts';
import type { ServedDevice } from '../device.ts';

/** The agent's field managers (api/field-managers.ts): identity and entries; held slots. */
export { agentManager as identityManager, agentSlotsManager as slotsManager } from '../../api/field-managers.ts';

/** The identity fields in full (empty maps and lists included), for comparisons. */
function identityValues(view: ServedDevice): Record<string, unknown> {
  return {
    discovery: view.discovery,
    deviceId: view.deviceId,
    shared: view.shared,
    capacity: view.capacity,
    properties: { ...view.properties },
    mounts: view.mounts.map((m) => ({ containerPath: m.containerPath, hostPath: m.hostPath, readOnly: m.readOnly })),
    deviceNodes: view.deviceNodes.map((n) => ({ containerPath: n.containerPath, hostPath: n.hostPath, permissions: n.permissions })),
  };
}

/** The identity fields as applied: empty maps and lists are left out (an apply that empties one stores null, which the schema refuses). */
function identitySpec(view: ServedDevice): Record<string, unknown> {
  const values = identityValues(view);
  for (const key of ['properties', 'mounts', 'deviceNodes']) {
    const value = values[key];
    if ((Array.isArray(value) && value.length === 0) || (!Array.isArray(value) && Object.keys(value as object).length === 0))
      delete values[key];
  }
  return values;
}

function metadata(view: ServedDevice): Record<string, unknown> {
  return {
    name: view.name,
    namespace: view.namespace,
    labels: { [DISCOVERY_LABEL]: view.discovery },
    ...(view.discoveryUid === undefined
      ? {}
      : {
          ownerReferences: [
            { apiVersion: API_VERSION, kind: 'DeviceDiscovery', name: view.discovery, uid: view.discoveryUid, blockOwnerDeletion: false },
          ],
        }),
  };
}

/** The identity apply: this node sees the device. */
export function identityApply(view: ServedDevice, node: string): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: 'Device', metadata: metadata(view), spec: { ...identitySpec(view), nodes: [node] } };
}

/**
 * The identity apply without this node's entry: this node no longer sees the device.
 * `nodes` is left out rather than sent empty — an apply that empties a list or map makes
 * the apiserver store null, which the schema refuses; leaving it out releases our entry.
 */
export function departureApply(view: ServedDevice): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: 'Device', metadata: metadata(view), spec: identitySpec(view) };
}

/** The slots this node holds on one device (indexes), for the slots manager; none → field left out. */
export function slotsApply(name: string, namespace: string, held: readonly number[], node: string): Record<string, unknown> {
  const slots = Object.fromEntries([...held].sort((a, b) => a - b).map((i) => [String(i), node]));
  return { apiVersion: API_VERSION, kind: 'Device', metadata: { name, namespace }, spec: held.length === 0 ? {} : { slots } };
}

/** This node's status entry. */
export function nodeStateApply(
  name: string,
  namespace: string,
  node: string,
  state: 'Online' | 'Offline',
  at: Date,
): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata: { name, namespace },
    status: { nodeStates: [{ node, state, lastSeenTime: at.toISOString().replace(/\.\d{3}Z$/, 'Z') }] },
  };
}

function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A digest of what the identity apply would write, to skip unchanged applies. */
export function identityDigest(view: ServedDevice): string {
  return createHash('sha256')
    .update(stable({ spec: identityValues(view), owner: view.discoveryUid ?? null }))
    .digest('hex');
}

/** Whether the object on the server already says what this node's identity apply would. */
export function serverMatches(device: Device, view: ServedDevice, node: string): boolean {
  const spec = device.spec;
  const want = identityValues(view);
  const have = {
    discovery: spec.discovery,
    deviceId: spec.deviceId,
    shared: spec.shared,
    capacity: spec.capacity,
    properties: spec.properties ?? {},
    mounts: (spec.mounts ?? []).map((m) => ({ containerPath: m.containerPath, hostPath: m.hostPath, readOnly: m.readOnly ?? false })),
    deviceNodes: (spec.deviceNodes ?? []).map((n) => ({
      containerPath: n.containerPath,
      hostPath: n.hostPath,
      permissions: n.permissions ?? 'rw',
    })),
  };
  const owned = view.discoveryUid === undefined || (device.metadata.ownerReferences ?? []).some((o) => o.uid === view.discoveryUid);
  return owned && stable(want) === stable(have) && (spec.nodes ?? []).includes(node);
}

const PROPERTY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
export const LIMITS = { properties: 128, propertyName: 128, propertyValue: 4096, paths: 32, path: 4096 } as const;

/**
 * Bounds and sanitises handler-reported data so it always fits the Device schema:
 * invalid property names are rewritten (not dropped), over-long values truncated, extra
 * entries cut, relative paths dropped. Returns what it changed, for logs and metrics.
 */
export function sanitizeForApi(
  properties: Readonly<Record<string, string>>,
  mounts: readonly DeviceMount[],
  deviceNodes: readonly DeviceNode[],
): { properties: Record<string, string>; mounts: DeviceMount[]; deviceNodes: DeviceNode[]; problems: string[] } {
  const problems: string[] = [];
  const clean: Record<string, string> = {};
  for (const [rawName, rawValue] of Object.entries(properties).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (Object.keys(clean).length >= LIMITS.properties) {
      problems.push(`more than ${LIMITS.properties} properties`);
      break;
    }
    let name = rawName.slice(0, LIMITS.propertyName).replace(/[^A-Za-z0-9_.-]/g, '_');
    if (!PROPERTY_NAME.test(name)) name = `_${name}`.slice(0, LIMITS.propertyName);
    if (name !== rawName) problems.push(`property name ${JSON.stringify(rawName.slice(0, 64))} rewritten`);
    const value = String(rawValue);
    if (value.length > LIMITS.propertyValue) problems.push(`property ${name} truncated`);
    if (!(name in clean)) clean[name] = value.slice(0, LIMITS.propertyValue);
  }
  const absolute = <T extends { containerPath: string; hostPath: string }>(items: readonly T[], what: string): T[] => {
    const ok = items.filter(
      (i) =>
        i.containerPath.startsWith('/') &&
        i.hostPath.startsWith('/') &&
        i.containerPath.length <= LIMITS.path &&
        i.hostPath.length <= LIMITS.path,
    );
    if (ok.length !== items.length) problems.push(`${items.length - ok.length} ${what} with invalid paths dropped`);
    const unique = [...new Map(ok.map((i) => [i.containerPath, i])).values()];
    if (unique.length > LIMITS.paths) problems.push(`${what} beyond ${LIMITS.paths} dropped`);
    return unique.slice(0, LIMITS.paths);
  };
  const nodes = absolute(deviceNodes, 'device nodes').map((n) => ({
    ...n,
    permissions: /^r?w?m?$/.test(n.permissions) && n.permissions.length > 0 ? n.permissions : 'rw',
  }));
  return { properties: clean, mounts: absolute(mounts, 'mounts'), deviceNodes: nodes, problems };
}
