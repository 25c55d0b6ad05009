/**
 * Which discovery sessions this node runs: pure. From the DeviceDiscoveries, this node's
 * labels, the handlers it has (chosen by ./handler-choice.ts) and the Secret/ConfigMap data it can read, the sessions to run
 * (with a fingerprint: a session whose fingerprint changes is restarted) and the problems to
 * report for the discoveries that select this node but cannot run here.
 */
import { createHash } from 'node:crypto';
import { nodeMatches, type NodeFacts } from '../../api/node-selector.ts';
import type { DeviceDiscovery } from '../../api/schema.ts';
import { referencedObjects, resolveProperties, type LookupData, type ObjectRef } from '../discovery/properties.ts';
import type { AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import type { SessionSpec } from '../discovery/session.ts';
import type { HandlerChoice } from './handler-choice.ts';

export interface DesiredSessionsInput {
  readonly node: NodeFacts;
  readonly discoveries: readonly DeviceDiscovery[];
  /** The handler that runs `discovery` on this node, or why there is none. */
  readonly handlerFor: (discovery: DeviceDiscovery) => HandlerChoice;
  /** Data of a referenced Secret (decoded) or ConfigMap; undefined = absent or unreadable. */
  readonly lookup: LookupData;
}

/** One session this node should run. */
export interface DesiredSession {
  /** `namespace/name` of the discovery. */
  readonly key: string;
  readonly spec: SessionSpec;
  /** Changes when the session must restart (handler, details, properties, grace, uid); not with capacity. */
  readonly fingerprint: string;
  /**
   * The discovery has a broker template: its brokers request each device's own resource, so
   * a lean-mode agent still serves that resource for these devices. Changes need no restart.
   */
  readonly brokered?: boolean;
}

export type ProblemReason = 'HandlerUnavailable' | 'InvalidDetails' | 'PropertiesUnresolved';

/** A discovery that selects this node but cannot run here. */
export interface SessionProblem {
  readonly discovery: DeviceDiscovery;
  readonly reason: ProblemReason;
  readonly message: string;
  readonly error?: unknown;
}

export interface DesiredSessions {
  readonly sessions: DesiredSession[];
  readonly problems: SessionProblem[];
  /** Discoveries that run, with something to tell their owner (an external handler shadowed by a built-in). */
  readonly notices: { readonly discovery: DeviceDiscovery; readonly reason: 'ExternalHandlerShadowed'; readonly handler: string }[];
  /** Every Secret/ConfigMap the selected discoveries reference (the caller watches exactly these). */
  readonly refs: ObjectRef[];
}

export function discoveryKey(discovery: DeviceDiscovery): string {
  return `${discovery.metadata.namespace ?? ''}/${discovery.metadata.name ?? ''}`;
}

/** The chosen handler with the discovery's details parsed by it, or the problem that stops it here. */
function handlerAndDetails(
  discovery: DeviceDiscovery,
  choice: HandlerChoice,
): (HandlerChoice & { readonly handler: AnyDiscoveryHandler; readonly details: unknown }) | { readonly problem: SessionProblem } {
  if (choice.handler === undefined) {
    const message = `Discovery handler ${discovery.spec.handler} is not available on this node: ${choice.reason}`;
    return { problem: { discovery, reason: 'HandlerUnavailable', message } };
  }
  try {
    return { ...choice, details: choice.handler.parseDetails(discovery.spec.details ?? {}) };
  } catch (error) {
    return { problem: { discovery, reason: 'InvalidDetails', message: 'Rejected discovery details', error } };
  }
}

export function desiredSessions(input: DesiredSessionsInput): DesiredSessions {
  const sessions: DesiredSession[] = [];
  const problems: SessionProblem[] = [];
  const notices: DesiredSessions['notices'] = [];
  const refs = new Map<string, ObjectRef>();
  for (const discovery of input.discoveries) {
    if (discovery.metadata.deletionTimestamp !== undefined) continue;
    if (!nodeMatches(discovery.spec.nodeSelector, input.node)) continue;
    const parsed = handlerAndDetails(discovery, input.handlerFor(discovery));
    if ('problem' in parsed) {
      problems.push(parsed.problem);
      continue;
    }
    const { handler, source, shadowed, details } = parsed;
    if (shadowed) notices.push({ discovery, reason: 'ExternalHandlerShadowed', handler: discovery.spec.handler });
    const namespace = discovery.metadata.namespace ?? '';
    const properties = discovery.spec.properties ?? [];
    for (const ref of referencedObjects(namespace, properties)) refs.set(`${ref.kind}/${ref.namespace}/${ref.name}`, ref);
    const resolved = resolveProperties(namespace, properties, input.lookup);
    if (!resolved.ok) {
      problems.push({ discovery, reason: 'PropertiesUnresolved', message: `Could not resolve properties: ${resolved.error}` });
      continue;
    }
    const uid = discovery.metadata.uid;
    const offlineGraceMs = (discovery.spec.offlineGracePeriodSeconds ?? 60) * 1000;
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([source, handler.name, details, [...resolved.values].sort(), offlineGraceMs, uid]))
      .digest('hex');
    sessions.push({
      key: discoveryKey(discovery),
      fingerprint,
      brokered: discovery.spec.broker !== undefined,
      spec: {
        namespace,
        name: discovery.metadata.name ?? '',
        handler,
        details,
        capacity: discovery.spec.capacity ?? 1,
        offlineGraceMs,
        properties: resolved.values,
        ...(uid === undefined ? {} : { uid }),
      },
    });
  }
  return { sessions, problems, notices, refs: [...refs.values()] };
}
