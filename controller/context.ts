/**
 * What the reconcilers share: the caches (informers), the API, events, metrics, config, and the
 * little in-memory state that is not in the cluster (failure first-seen times, recreation
 * counts in transit, refused templates, tombstones of deleted Devices).
 */
import type { V1Job, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Device, DeviceDiscovery } from '../api/schema.ts';
import { observeJob, observePod, type ObservedBroker } from './devices/brokers/observe.ts';
import type { ControllerConfig } from './runtime/config.ts';
import type { EventRecorder, ObjectReference } from './runtime/events.ts';
import type { Informer } from '../kube/informer.ts';
import type { Api } from '../kube/resources.ts';
import { DEVICE_LABEL, DISCOVERY_LABEL } from '../api/labels.ts';
import type { ControllerMetrics } from './runtime/metrics.ts';
import { nodeInfo, type NodeInfo, type NodeLookup } from './nodes/nodes.ts';
import type { DeviceClass, ResourceClaimTemplate } from './dra/objects.ts';
import type { WorkloadCaches } from './workloads.ts';
import type { WorkloadObject } from './devices/brokers/workload.ts';
import { observeWorkload } from './devices/brokers/workload-status.ts';

export interface Caches {
  readonly discoveries: Informer<DeviceDiscovery>;
  readonly devices: Informer<Device>;
  readonly pods: Informer<V1Pod>;
  readonly jobs: Informer<V1Job>;
  readonly services: Informer<V1Service>;
  readonly nodes: Informer<V1Node>;
  /** DeviceClasses the controller made (DRA discoveries). */
  readonly deviceClasses: Informer<DeviceClass>;
  /** Broker ResourceClaimTemplates the controller made (DRA discoveries). */
  readonly claimTemplates: Informer<ResourceClaimTemplate>;
}

/** Index names. */
export const BY_DISCOVERY = 'discovery';
export const BY_DEVICE = 'device';
export const BY_NODE = 'node';

/** `namespace/name` of the object's discovery or device label. */
export function labelKey(object: { metadata?: { namespace?: string; labels?: Record<string, string> } }, label: string): string[] {
  const value = object.metadata?.labels?.[label];
  return value === undefined ? [] : [`${object.metadata?.namespace ?? ''}/${value}`];
}

export const brokerIndexers = {
  [BY_DEVICE]: (o: V1Pod | V1Job | V1Service): string[] => labelKey(o, DEVICE_LABEL),
  [BY_DISCOVERY]: (o: V1Pod | V1Job | V1Service): string[] => labelKey(o, DISCOVERY_LABEL),
};

export interface SharedState {
  /** Pod uid → when first seen failed without a container finish time. */
  readonly failedSeen: Map<string, number>;
  /** Broker name (`ns/name`) → recreation count for the Pod replacing a failed one. */
  readonly carried: Map<string, number>;
  /** Discovery key → template hash the apiserver refused, and why. */
  readonly templateErrors: Map<string, { hash: string; message: string; unknownKind?: boolean }>;
  /** Device key → last state of a Device deleted while we watched (offline handling). */
  readonly tombstones: Map<string, { device: Device; at: number }>;
  /** Device keys created while we watched (online events). */
  readonly appeared: Set<string>;
  /** `deviceUid/node` pairs whose release did not remove the node (not held by an agent manager). */
  readonly unreleasable: Set<string>;
  /** Device key → when the controller last created or deleted one of its brokers. */
  readonly lastBrokerChange: Map<string, number>;
  /** Opt-in discovery keys whose consumers of gone devices still need a sweep (on leading, on opting in). */
  readonly consumerSweeps: Set<string>;
}

export function newSharedState(): SharedState {
  return {
    failedSeen: new Map(),
    carried: new Map(),
    templateErrors: new Map(),
    tombstones: new Map(),
    appeared: new Set(),
    unreleasable: new Set(),
    lastBrokerChange: new Map(),
    consumerSweeps: new Set(),
  };
}

export interface ControllerContext {
  readonly caches: Caches;
  /** Workload brokers (spec.broker.workload): an informer per kind, started on demand. */
  readonly workloads: WorkloadCaches;
  readonly api: Api;
  readonly events: EventRecorder;
  readonly metrics: ControllerMetrics;
  readonly log: Logger;
  readonly config: ControllerConfig;
  readonly state: SharedState;
  /** Queues a DeviceDiscovery status/service reconcile (batched). */
  readonly enqueueDiscovery: (key: string) => void;
  /** Whether the apiserver serves DRA (controller/dra/availability.ts); absent = it does. */
  readonly draServed?: () => boolean;
}

/** The broker objects of one kind of workload. */
export interface WorkloadBrokerObject {
  /** `Kind.group` (workload.ts `workloadKindKey`). */
  readonly kind: string;
  readonly object: WorkloadObject;
}

/**
 * Broker Pods (owned by a Device, not Job or workload pods), Jobs and workload objects labelled
 * for a device or discovery key.
 */
export function brokerObjectsOf(
  caches: Caches,
  index: string,
  key: string,
  workloads?: WorkloadCaches,
): { pods: V1Pod[]; jobs: V1Job[]; workloads: WorkloadBrokerObject[] } {
  const pods = caches.pods
    .byIndex(index, key)
    .filter((p) => p.metadata?.ownerReferences?.some((r) => r.controller === true && r.kind === 'Device') ?? false);
  const jobs = caches.jobs.byIndex(index, key);
  return { pods, jobs, workloads: workloads?.byIndex(index, key) ?? [] };
}

/** Observed brokers of a device key; records first-seen failure times. */
export function observeBrokers(ctx: ControllerContext, index: string, key: string, nowMs: number): ObservedBroker[] {
  const { pods, jobs, workloads } = brokerObjectsOf(ctx.caches, index, key, ctx.workloads);
  const out: ObservedBroker[] = [];
  for (const pod of pods) {
    const uid = pod.metadata?.uid ?? '';
    const phase = pod.status?.phase;
    let seen = ctx.state.failedSeen.get(uid);
    if ((phase === 'Failed' || phase === 'Succeeded') && seen === undefined) {
      seen = nowMs;
      ctx.state.failedSeen.set(uid, seen);
    }
    out.push(observePod(pod, seen));
  }
  for (const job of jobs) out.push(observeJob(job));
  for (const { kind, object } of workloads) out.push(observeWorkload(object, kind));
  return out;
}

/** Node lookup for one reconcile. With no Node in the cache, nothing is ever judged lost. */
export function nodeLookup(ctx: ControllerContext, nowMs: number): NodeLookup {
  const memo = new Map<string, NodeInfo>();
  const empty = ctx.caches.nodes.size() === 0;
  return (name) => {
    let info = memo.get(name);
    if (info === undefined) {
      info = empty
        ? { name, health: 'NotReady', schedulable: false, labels: {} }
        : nodeInfo(name, ctx.caches.nodes.get(undefined, name), nowMs, ctx.config.nodeLossGraceMs);
      memo.set(name, info);
    }
    return info;
  };
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function refOf(
  kind: string,
  apiVersion: string,
  object: { metadata?: { name?: string; namespace?: string; uid?: string } },
): ObjectReference {
  const meta = object.metadata ?? {};
  return {
    apiVersion,
    kind,
    name: meta.name ?? '',
    ...(meta.namespace === undefined ? {} : { namespace: meta.namespace }),
    ...(meta.uid === undefined ? {} : { uid: meta.uid }),
  };
}
