/**
 * Status the controller reports (pure): the `BrokersReady` condition of each Device, and the
 * DeviceDiscovery status (conditions `Discovering`, `DevicesAvailable`, `BrokersReady`,
 * device/broker/node counts, observedGeneration). Messages hold no relative times, so an
 * unchanged situation gives an identical status and no write.
 */
import type { Condition, ConditionStatus, DeviceDiscoveryStatus } from '../api/schema.ts';
import type { DesiredBrokers } from './devices/brokers/desired.ts';
import { isAvailable, type ObservedBroker } from './devices/brokers/observe.ts';
import type { BrokerPlan } from './devices/brokers/plan.ts';
import { rfc3339 } from './runtime/time.ts';

/** A condition before its transition time is settled. */
export interface ConditionDraft {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

/** Condition type the controller owns on Devices. */
export const BROKERS_READY = 'BrokersReady';

/**
 * Merges drafts into existing conditions: lastTransitionTime is kept while the status stays,
 * and set to now when it changes (or the condition is new).
 */
export function settleConditions(
  drafts: readonly ConditionDraft[],
  existing: readonly Condition[] | undefined,
  nowMs: number,
): Condition[] {
  return drafts.map((draft) => {
    const old = existing?.find((c) => c.type === draft.type);
    const lastTransitionTime = old !== undefined && old.status === draft.status ? old.lastTransitionTime : rfc3339(nowMs);
    return { ...draft, lastTransitionTime };
  });
}

/** True when `drafts` say the same as `existing` (ignoring transition times). */
export function conditionsMatch(drafts: readonly ConditionDraft[], existing: readonly Condition[] | undefined): boolean {
  return drafts.every((d) => {
    const old = existing?.find((c) => c.type === d.type);
    return (
      old !== undefined &&
      old.status === d.status &&
      old.reason === d.reason &&
      old.message === d.message &&
      (old.observedGeneration ?? undefined) === (d.observedGeneration ?? undefined)
    );
  });
}

/** Brokers of the placements that are up to date and available, out of all placements. */
export function readyCount(desired: DesiredBrokers, observed: readonly ObservedBroker[]): number {
  const byName = new Map(observed.map((b) => [b.name, b]));
  return desired.placements.filter((p) => {
    const b = byName.get(p.name);
    return b !== undefined && b.templateHash === desired.templateHash && b.kind === desired.kind && isAvailable(b);
  }).length;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The Device's `BrokersReady` condition. */
export function deviceBrokersCondition(
  desired: DesiredBrokers,
  observed: readonly ObservedBroker[],
  plan: BrokerPlan,
  templateError: string | undefined,
  generation: number | undefined,
): ConditionDraft {
  const base = { type: BROKERS_READY, ...(generation === undefined ? {} : { observedGeneration: generation }) };
  if (desired.kind === undefined) {
    if (desired.reason === 'NoBrokerTemplate')
      return { ...base, status: 'True', reason: 'NoBrokerTemplate', message: 'the DeviceDiscovery defines no broker' };
    return { ...base, status: 'False', reason: 'DiscoveryNotFound', message: 'the DeviceDiscovery of this device does not exist' };
  }
  if (templateError !== undefined) return { ...base, status: 'False', reason: 'InvalidTemplate', message: templateError.slice(0, 2000) };
  const total = desired.placements.length;
  if (total === 0) {
    const message = desired.reason === 'NoNodes' ? 'no node sees the device' : 'no node that sees the device is Ready';
    return { ...base, status: 'False', reason: desired.reason ?? 'NoEligibleNode', message };
  }
  const ready = readyCount(desired, observed);
  const summary = `${ready}/${total} brokers ready`;
  if (ready === total && plan.deletes.length === 0 && plan.creates.length === 0 && plan.updates.length === 0) {
    return { ...base, status: 'True', reason: 'BrokersReady', message: summary };
  }
  return { ...base, status: 'False', ...notReady(desired, observed, plan, summary) };
}

/** Reason and message of a False `BrokersReady`, most telling first. */
function notReady(
  desired: DesiredBrokers,
  observed: readonly ObservedBroker[],
  plan: BrokerPlan,
  summary: string,
): { reason: string; message: string } {
  const backoff = plan.waits.filter((w) => w.reason === 'BackOff');
  if (backoff.length > 0) {
    const details = backoff.map((w) => {
      const b = observed.find((o) => o.name === w.name);
      const why = b?.reason === undefined ? '' : ` (${b.reason})`;
      return `${w.name} failed${why}; recreation ${w.recreation ?? 1} at ${rfc3339(w.untilMs ?? 0)}`;
    });
    return { reason: 'BackOff', message: `${summary}; ${details.join('; ')}` };
  }
  if (
    plan.deletes.some((d) => d.reason === 'Outdated') ||
    plan.updates.length > 0 ||
    plan.waits.some((w) => w.reason === 'RollingUpdate')
  ) {
    return { reason: 'RollingUpdate', message: `${summary}; rolling brokers to the new template` };
  }
  const waiting = observed
    .filter((b) => desired.placements.some((p) => p.name === b.name) && !isAvailable(b) && b.phase !== 'terminating')
    .map((b) => `${b.name} ${b.phase}${b.reason === undefined ? '' : ` (${b.reason})`}`);
  for (const w of plan.waits) {
    if (w.reason === 'Terminating' || w.reason === 'Replacing') waiting.push(`${w.name} waiting for its previous object to terminate`);
  }
  return { reason: 'BrokersNotReady', message: waiting.length > 0 ? `${summary}; ${waiting.join('; ')}` : summary };
}

/** Inputs of the DeviceDiscovery status. */
export interface DiscoveryStatusInput {
  readonly generation: number | undefined;
  readonly hasBrokerTemplate: boolean;
  readonly devices: number;
  /** Ready nodes selected by the discovery's nodeSelector. */
  readonly nodes: number;
  /** Broker placements over all devices, and how many are ready. */
  readonly placements: number;
  readonly ready: number;
  /** Brokers that exist and run (ready or not). */
  readonly running: number;
  /** Devices whose broker is backing off after failures. */
  readonly backingOff: number;
  /** Devices whose broker template was refused. */
  readonly invalidTemplate: string | undefined;
  /** Problems agents report on nodes that are Ready (status.nodeReports). */
  readonly nodeProblems?: readonly { readonly node: string; readonly reason: string; readonly message: string }[];
}

export const HANDLERS_HEALTHY = 'HandlersHealthy';
const MAX_NODES_NAMED = 5;

/** `HandlersHealthy`: every node runs the discovery, or which nodes cannot and why. */
function handlersCondition(problems: DiscoveryStatusInput['nodeProblems'] = [], gen: { observedGeneration?: number }): ConditionDraft {
  if (problems.length === 0)
    return { type: HANDLERS_HEALTHY, status: 'True', reason: 'NoNodeProblems', message: 'no node reports a problem', ...gen };
  const sorted = [...problems].sort((a, b) => a.node.localeCompare(b.node));
  const reasons = new Set(sorted.map((p) => p.reason));
  const named = sorted.slice(0, MAX_NODES_NAMED).map((p) => `${p.node}: ${p.reason}: ${p.message.slice(0, 300)}`);
  const more = sorted.length > MAX_NODES_NAMED ? `; and ${plural(sorted.length - MAX_NODES_NAMED, 'more node')}` : '';
  return {
    type: HANDLERS_HEALTHY,
    status: 'False',
    reason: reasons.size === 1 ? sorted[0]!.reason : 'NodeProblems',
    message: `${plural(sorted.length, 'node')} cannot run the discovery: ${named.join('; ')}${more}`.slice(0, 2000),
    ...gen,
  };
}

/** The DeviceDiscovery status (without transition times). */
export function discoveryStatus(input: DiscoveryStatusInput): {
  status: Omit<DeviceDiscoveryStatus, 'conditions'>;
  conditions: ConditionDraft[];
} {
  const gen = input.generation === undefined ? {} : { observedGeneration: input.generation };
  const discovering: ConditionDraft =
    input.nodes > 0
      ? {
          type: 'Discovering',
          status: 'True',
          reason: 'NodesSelected',
          message: `discovery runs on ${plural(input.nodes, 'Ready node')}`,
          ...gen,
        }
      : { type: 'Discovering', status: 'False', reason: 'NoNodes', message: 'no Ready node is selected', ...gen };
  const available: ConditionDraft =
    input.devices > 0
      ? { type: 'DevicesAvailable', status: 'True', reason: 'DevicesFound', message: plural(input.devices, 'device'), ...gen }
      : { type: 'DevicesAvailable', status: 'False', reason: 'NoDevices', message: 'no device found', ...gen };
  let brokers: ConditionDraft;
  if (!input.hasBrokerTemplate) {
    brokers = { type: BROKERS_READY, status: 'True', reason: 'NoBrokerTemplate', message: 'no broker defined', ...gen };
  } else if (input.invalidTemplate !== undefined) {
    brokers = { type: BROKERS_READY, status: 'False', reason: 'InvalidTemplate', message: input.invalidTemplate.slice(0, 2000), ...gen };
  } else if (input.ready === input.placements) {
    brokers = {
      type: BROKERS_READY,
      status: 'True',
      reason: 'BrokersReady',
      message: `${input.ready}/${input.placements} brokers ready`,
      ...gen,
    };
  } else {
    const backoff = input.backingOff > 0 ? `; ${plural(input.backingOff, 'device')} backing off after broker failures` : '';
    brokers = {
      type: BROKERS_READY,
      status: 'False',
      reason: input.backingOff > 0 ? 'BackOff' : 'BrokersNotReady',
      message: `${input.ready}/${input.placements} brokers ready${backoff}`,
      ...gen,
    };
  }
  return {
    status: { ...gen, devices: input.devices, brokers: input.running, nodes: input.nodes },
    conditions: [discovering, available, brokers, handlersCondition(input.nodeProblems, gen)],
  };
}
