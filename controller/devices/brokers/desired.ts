/**
 * Desired brokers of one Device (pure): which nodes get a broker, under which names, and the
 * Pod or Job each one is.
 *
 * Placement: one broker per node that sees the device, never more than the device's capacity
 * (slots). Brokers that exist on nodes that still see the device (and are not lost) keep their
 * place, so placements are stable; free places go to Ready, schedulable nodes — those holding
 * one of the device's slots first, then in rendezvous-hash order, which spreads many devices
 * over their nodes deterministically.
 */
import type { V1Job, V1JobSpec, V1Pod } from '@kubernetes/client-node';
import type { Broker, Device, DeviceDiscovery } from '../../../api/schema.ts';
import { NODE_ANNOTATION, RECREATIONS_ANNOTATION, brokerName, placementScore, stableHash } from '../../../api/labels.ts';
import type { NodeLookup } from '../../nodes/nodes.ts';
import { isDraDiscovery } from '../../dra/objects.ts';
import type { BrokerKind, ObservedBroker } from './observe.ts';
import { brokerLabels, brokerPodSpec, ownerReference } from './pod-spec.ts';
import { workloadKindKey, workloadObject, type WorkloadObject } from './workload.ts';

export { brokerLabels, brokerPodSpec } from './pod-spec.ts';

/** One broker the device should have. */
export interface Placement {
  readonly node: string;
  readonly name: string;
}

/** Why a device has fewer brokers than nodes (for status). */
export type ShortfallReason = 'NoBrokerTemplate' | 'DiscoveryNotFound' | 'NoNodes' | 'CapacityReached' | 'NoEligibleNode' | undefined;

export interface DesiredBrokers {
  /** undefined: the device should have no brokers (see `reason`). */
  readonly kind: BrokerKind | undefined;
  readonly templateHash: string | undefined;
  readonly placements: readonly Placement[];
  readonly reason: ShortfallReason;
}

/** Hash of the broker template: a broker labelled with another hash is rolled. */
export function templateHash(discovery: DeviceDiscovery): string | undefined {
  const broker = discovery.spec.broker;
  if (broker === undefined) return undefined;
  // A move to or from DRA changes how the broker gets its device: roll. Device-plugin brokers
  // keep the hash they always had (no roll on upgrade).
  return discovery.spec.backend === 'DRA' ? stableHash({ broker, backend: 'DRA' }) : stableHash(broker);
}

const PHASE_RANK: Record<string, number> = { ready: 0, running: 1, succeeded: 2, pending: 3, failed: 4, terminating: 5 };

/** 'Pod', 'Job', or the workload's `Kind.group`. */
export function brokerKindOf(broker: Broker): BrokerKind {
  if (broker.pod !== undefined) return 'Pod';
  if (broker.workload !== undefined) return workloadKindKey(broker.workload.apiVersion, broker.workload.kind);
  return 'Job';
}

/** Which nodes get a broker, and their names. */
export function desiredBrokers(
  device: Device,
  discovery: DeviceDiscovery | undefined,
  nodes: NodeLookup,
  observed: readonly ObservedBroker[],
): DesiredBrokers {
  const none = (reason: ShortfallReason): DesiredBrokers => ({ kind: undefined, templateHash: undefined, placements: [], reason });
  if (discovery === undefined) return none('DiscoveryNotFound');
  const broker = discovery.spec.broker;
  if (broker === undefined) return none('NoBrokerTemplate');
  const kind = brokerKindOf(broker);
  const hash = templateHash(discovery);
  const deviceName = device.metadata.name ?? '';
  const seeing = [...new Set(device.spec.nodes ?? [])];
  if (seeing.length === 0) return { kind, templateHash: hash, placements: [], reason: 'NoNodes' };
  const capacity = Math.max(0, device.spec.capacity);

  const keepable = new Set(seeing.filter((n) => nodes(n).health !== 'Lost'));
  const deviceUid = device.metadata.uid;
  // Existing brokers keep their place (best phase first), as long as the node still qualifies.
  const existing = observed
    .filter(
      (b) =>
        b.node !== undefined && keepable.has(b.node) && b.phase !== 'terminating' && (deviceUid === undefined || b.ownerUid === deviceUid),
    )
    .sort((a, b) => (PHASE_RANK[a.phase] ?? 9) - (PHASE_RANK[b.phase] ?? 9) || a.name.localeCompare(b.name));
  const chosen: string[] = [];
  for (const b of existing) {
    if (chosen.length >= capacity) break;
    if (!chosen.includes(b.node!)) chosen.push(b.node!);
  }
  const fresh = freshCandidates(device, seeing, chosen, nodes);
  for (const n of fresh) {
    if (chosen.length >= capacity) break;
    chosen.push(n);
  }

  const placements = nameBrokers(deviceName, chosen, observed);
  let reason: ShortfallReason;
  if (placements.length === 0) reason = 'NoEligibleNode';
  else if (placements.length < seeing.length) reason = capacity < seeing.length ? 'CapacityReached' : 'NoEligibleNode';
  return { kind, templateHash: hash, placements, reason };
}

/** Nodes that may get a new broker, best first. */
function freshCandidates(device: Device, seeing: readonly string[], chosen: readonly string[], nodes: NodeLookup): string[] {
  const deviceName = device.metadata.name ?? '';
  const holders = new Set(Object.values(device.spec.slots ?? {}));
  return (
    seeing
      .filter((n) => !chosen.includes(n))
      .filter((n) => {
        const info = nodes(n);
        return info.health === 'Ready' && info.schedulable;
      })
      // A node that already holds one of the device's slots first: it can use that slot (say,
      // its last broker's, until its agent frees it), while on any other node the held slot is
      // Unhealthy and a new broker would wait Pending for it (seen on real nodes: 13–15 s).
      .sort(
        (a, b) =>
          Number(holders.has(b)) - Number(holders.has(a)) ||
          placementScore(deviceName, a).localeCompare(placementScore(deviceName, b)) ||
          a.localeCompare(b),
      )
  );
}

/**
 * Names for the chosen nodes: an existing broker's name is kept; a new one gets
 * `brokerName(device, node)`, salted in the (rare) case another node's broker has that name.
 */
function nameBrokers(device: string, chosen: readonly string[], observed: readonly ObservedBroker[]): Placement[] {
  const used = new Map<string, string>(); // name → node
  for (const b of observed) {
    if (b.node !== undefined && b.phase !== 'terminating' && !used.has(b.name)) used.set(b.name, b.node);
  }
  const placements: Placement[] = [];
  for (const node of [...chosen].sort()) {
    const own = observed.find((b) => b.node === node && b.phase !== 'terminating' && used.get(b.name) === node);
    const name = own?.name ?? brokerNameFor(device, node, used);
    used.set(name, node);
    placements.push({ node, name });
  }
  return placements;
}

function brokerNameFor(device: string, node: string, taken: ReadonlyMap<string, string>): string {
  for (let salt = 0; ; salt++) {
    const name = brokerName(device, node, salt);
    const holder = taken.get(name);
    if (holder === undefined || holder === node) return name;
  }
}

// ---------------------------------------------------------------------------------------------
// Objects

/** Inputs of one broker object. */
export interface BrokerObjectInput {
  readonly device: Device;
  readonly discovery: DeviceDiscovery;
  readonly placement: Placement;
  readonly templateHash: string;
  readonly recreations: number;
  /** The node's `kubernetes.io/hostname` label (workload `inject.nodeSelector`); its name if unset. */
  readonly hostname?: string;
}

/** Name, namespace, labels, annotations and owner of a broker object. */
function brokerMetadata(
  input: BrokerObjectInput,
  template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } },
): {
  name: string;
  namespace: string | undefined;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ownerReferences: ReturnType<typeof ownerReference>[];
} {
  const { device, placement, recreations } = input;
  const labels = { ...(template.metadata?.labels ?? {}), ...brokerLabels(device, placement.node, input.templateHash) };
  const annotations: Record<string, string> = { ...(template.metadata?.annotations ?? {}), [NODE_ANNOTATION]: placement.node };
  if (recreations > 0) annotations[RECREATIONS_ANNOTATION] = String(recreations);
  return { name: placement.name, namespace: device.metadata.namespace, labels, annotations, ownerReferences: [ownerReference(device)] };
}

/** The Pod, Job or workload object to create (or apply) for one placement. Throws `InjectionError`. */
export function brokerObject(input: BrokerObjectInput): V1Pod | V1Job | WorkloadObject {
  const { device, discovery, placement } = input;
  const broker = discovery.spec.broker!;
  const metadata = brokerMetadata(input, broker.pod ?? broker.workload ?? broker.job!);
  if (broker.workload !== undefined) {
    return workloadObject({
      device,
      discovery,
      workload: broker.workload,
      node: placement.node,
      hostname: input.hostname ?? placement.node,
      dra: isDraDiscovery(discovery),
      metadata,
    });
  }
  if (broker.pod !== undefined) {
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata,
      spec: brokerPodSpec(broker.pod.spec, device, placement.node, isDraDiscovery(discovery)),
    };
    return pod;
  }
  const jobSpec: V1JobSpec = structuredClone(broker.job!.spec);
  const podTemplate = jobSpec.template ?? {};
  jobSpec.template = {
    ...podTemplate,
    metadata: {
      ...(podTemplate.metadata ?? {}),
      labels: { ...(podTemplate.metadata?.labels ?? {}), ...metadata.labels },
      annotations: { ...(podTemplate.metadata?.annotations ?? {}), [NODE_ANNOTATION]: placement.node },
    },
    spec: brokerPodSpec(podTemplate.spec ?? { containers: [] }, device, placement.node, isDraDiscovery(discovery)),
  };
  const job: V1Job = { apiVersion: 'batch/v1', kind: 'Job', metadata, spec: jobSpec };
  return job;
}
