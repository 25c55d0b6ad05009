/**
 * Node health as the controller sees it, node selectors, and — for node loss — what a lost
 * node still holds on a Device and the server-side apply bodies that release exactly that.
 * All pure.
 */
import { agentManager, agentSlotsManager } from '../../api/field-managers.ts';
import type { V1Node } from '@kubernetes/client-node';
import { API_VERSION } from '../../api/group.ts';
import type { Device, NodeSelector } from '../../api/schema.ts';
import { nodeMatches } from '../../api/node-selector.ts';
import { toMillis } from '../runtime/time.ts';

/**
 * - Ready: Ready condition True.
 * - NotReady: Ready False/Unknown (or no condition) for less than the grace period: existing
 *   brokers stay, no new ones are placed there.
 * - Lost: deleted, or NotReady for at least the grace period: its Device entries are released.
 */
export type NodeHealth = 'Ready' | 'NotReady' | 'Lost';

export interface NodeInfo {
  readonly name: string;
  readonly health: NodeHealth;
  /** False when cordoned (spec.unschedulable). */
  readonly schedulable: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /** NotReady only: when it becomes Lost. */
  readonly lostAtMs?: number;
}

/** Health of `node` (undefined = not in the synced cache, i.e. deleted) at `nowMs`. */
export function nodeInfo(name: string, node: V1Node | undefined, nowMs: number, graceMs: number): NodeInfo {
  if (node === undefined) return { name, health: 'Lost', schedulable: false, labels: {} };
  const labels = node.metadata?.labels ?? {};
  const schedulable = node.spec?.unschedulable !== true;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return { name, health: 'Ready', schedulable, labels };
  const since = toMillis(ready?.lastTransitionTime) ?? toMillis(node.metadata?.creationTimestamp) ?? nowMs;
  const lostAtMs = since + graceMs;
  if (nowMs >= lostAtMs) return { name, health: 'Lost', schedulable, labels };
  return { name, health: 'NotReady', schedulable, labels, lostAtMs };
}

/** Answers node questions for the planners. */
export type NodeLookup = (name: string) => NodeInfo;

/** Core NodeSelector semantics (terms ORed, requirements ANDed; undefined selects every node) — the agent's evaluator, so both sides agree. */
export function nodeSelected(selector: NodeSelector | undefined, node: NodeInfo): boolean {
  return nodeMatches(selector, node);
}

// ---------------------------------------------------------------------------------------------
// Node loss

/** Nodes a Device mentions: its nodes entries, slot holders and nodeStates entries. */
export function nodesReferenced(device: Device): string[] {
  const nodes = new Set<string>(device.spec.nodes ?? []);
  for (const holder of Object.values(device.spec.slots ?? {})) nodes.add(holder);
  for (const state of device.status?.nodeStates ?? []) nodes.add(state.node);
  return [...nodes].sort();
}

type FieldsV1 = Record<string, unknown>;

interface ManagedEntry {
  readonly manager?: string;
  readonly operation?: string;
  readonly subresource?: string;
  readonly fieldsV1?: object;
}

function entriesOf(device: Device): ManagedEntry[] {
  return device.metadata.managedFields ?? [];
}

function ownedSpecFields(entry: ManagedEntry): Set<string> {
  const spec = (entry.fieldsV1 as FieldsV1 | undefined)?.['f:spec'] as FieldsV1 | undefined;
  return new Set(
    Object.keys(spec ?? {})
      .filter((k) => k.startsWith('f:'))
      .map((k) => k.slice(2)),
  );
}

const IDENTITY_FIELDS = ['discovery', 'deviceId', 'shared', 'capacity', 'properties', 'mounts', 'deviceNodes'] as const;

/** One server-side apply that releases part of what a lost node holds. */
export interface ReleaseApply {
  readonly fieldManager: string;
  readonly subresource?: 'status';
  readonly body: Record<string, unknown>;
  /** What it releases, for logs and events. */
  readonly releases: string;
}

/**
 * The applies that release everything `node` holds on `device`, and nothing else:
 * - as `tether-agent/<node>/slots` (and, for agents that hold slots under their main manager,
 *   as `tether-agent/<node>`): an object without slots → its slot keys are released;
 * - as `tether-agent/<node>`: an object without its `nodes` entry → the entry is released.
 *   Identity fields that only this manager owns are re-applied with their current values, or
 *   the apiserver would drop them (a required field gone → 422) — co-owned ones are left out;
 * - as `tether-agent/<node>` on the status subresource: an empty status → its `nodeStates`
 *   entry is released.
 * Only managers that exist in managedFields get an apply. Empty result: nothing to release.
 */
export function planNodeRelease(device: Device, node: string): ReleaseApply[] {
  const main = agentManager(node);
  const slots = agentSlotsManager(node);
  const entries = entriesOf(device);
  const meta = { name: device.metadata.name, namespace: device.metadata.namespace };
  const out: ReleaseApply[] = [];

  const slotsEntry = entries.find((e) => e.manager === slots && (e.subresource ?? '') === '');
  if (slotsEntry !== undefined && ownedSpecFields(slotsEntry).size > 0) {
    out.push({ fieldManager: slots, body: { apiVersion: API_VERSION, kind: 'Device', metadata: meta }, releases: 'slots' });
  }

  const mainEntry = entries.find((e) => e.manager === main && (e.subresource ?? '') === '');
  if (mainEntry !== undefined && ownedSpecFields(mainEntry).size > 0) {
    const owned = ownedSpecFields(mainEntry);
    const others = entries.filter((e) => e !== mainEntry && (e.subresource ?? '') === '');
    const spec: Record<string, unknown> = {};
    for (const field of IDENTITY_FIELDS) {
      if (!owned.has(field)) continue;
      const coOwned = others.some((e) => ownedSpecFields(e).has(field));
      const value = (device.spec as Record<string, unknown>)[field];
      if (!coOwned && value !== undefined) spec[field] = value;
    }
    const body: Record<string, unknown> = { apiVersion: API_VERSION, kind: 'Device', metadata: meta };
    if (Object.keys(spec).length > 0) body.spec = spec;
    out.push({ fieldManager: main, body, releases: 'nodes entry and slots' });
  }

  const statusEntry = entries.find((e) => e.manager === main && e.subresource === 'status');
  if (statusEntry !== undefined) {
    const status = (statusEntry.fieldsV1 as FieldsV1 | undefined)?.['f:status'] as FieldsV1 | undefined;
    if (status !== undefined && Object.keys(status).some((k) => k.startsWith('f:'))) {
      out.push({
        fieldManager: main,
        subresource: 'status',
        body: { apiVersion: API_VERSION, kind: 'Device', metadata: meta },
        releases: 'nodeStates entry',
      });
    }
  }
  return out;
}

/** True when the Device still names `node` in spec.nodes, a slot, or status.nodeStates. */
export function deviceMentions(device: Device, node: string): boolean {
  return (
    (device.spec.nodes ?? []).includes(node) ||
    Object.values(device.spec.slots ?? {}).includes(node) ||
    (device.status?.nodeStates ?? []).some((s) => s.node === node)
  );
}
