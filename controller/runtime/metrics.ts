/**
 * Prometheus metrics of the controller, on their own registry (no global state).
 */
import { Counter, Gauge, Histogram, Registry, registerProcessMetrics } from '../../kube/prometheus.ts';

export interface ControllerMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<'controller' | 'result'>;
  readonly reconcileDuration: Histogram<'controller'>;
  readonly apiRequests: Counter<'verb' | 'resource'>;
  readonly brokerActions: Counter<'action' | 'reason'>;
  readonly nodeReleases: Counter<'result'>;
  readonly leader: Gauge;
  /** 1 when the apiserver serves resource.k8s.io/v1 (the DRA part runs), 0 when not; unset until asked. */
  readonly draServed: Gauge;
}

/** Gauges computed at scrape time. */
export interface MetricSources {
  readonly queueDepth: () => Record<string, number>;
  readonly brokers: () => Record<string, number>;
  readonly devices: () => number;
  readonly discoveries: () => number;
}

export function createMetrics(sources: MetricSources): ControllerMetrics {
  const registry = new Registry();
  registerProcessMetrics(registry, 'tether_controller_');
  const reconciles = new Counter({
    name: 'tether_controller_reconciles_total',
    help: 'Reconciles by controller (device, discovery) and result (success, error, requeue).',
    labelNames: ['controller', 'result'] as const,
    registers: [registry],
  });
  const reconcileDuration = new Histogram({
    name: 'tether_controller_reconcile_duration_seconds',
    help: 'Time spent in one reconcile.',
    labelNames: ['controller'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const apiRequests = new Counter({
    name: 'tether_controller_api_requests_total',
    help: 'Requests issued to the apiserver, by verb and resource.',
    labelNames: ['verb', 'resource'] as const,
    registers: [registry],
  });
  const brokerActions = new Counter({
    name: 'tether_controller_broker_actions_total',
    help: 'Broker creates and deletes, by reason (new, recreate after failure, outdated, unwanted, device offline …).',
    labelNames: ['action', 'reason'] as const,
    registers: [registry],
  });
  const nodeReleases = new Counter({
    name: 'tether_controller_node_releases_total',
    help: 'Server-side applies releasing a lost node from a Device.',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const leader = new Gauge({ name: 'tether_controller_leader', help: '1 while this replica holds the lease.', registers: [registry] });
  const draServed = new Gauge({
    name: 'tether_controller_dra_served',
    help: '1 when the apiserver serves resource.k8s.io/v1 and the DRA part runs (DeviceClasses, claim templates), 0 when it does not.',
    registers: [registry],
  });
  new Gauge({
    name: 'tether_controller_queue_depth',
    help: 'Keys waiting in each work queue (not counting delayed requeues).',
    labelNames: ['controller'] as const,
    registers: [registry],
    collect() {
      for (const [controller, depth] of Object.entries(sources.queueDepth())) this.set({ controller }, depth);
    },
  });
  new Gauge({
    name: 'tether_controller_brokers',
    help: 'Broker Pods and Jobs by phase (pending, running, ready, failed, succeeded, terminating).',
    labelNames: ['phase'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [phase, n] of Object.entries(sources.brokers())) this.set({ phase }, n);
    },
  });
  new Gauge({
    name: 'tether_controller_devices',
    help: 'Devices in the cache.',
    registers: [registry],
    collect() {
      this.set(sources.devices());
    },
  });
  new Gauge({
    name: 'tether_controller_discoveries',
    help: 'DeviceDiscoveries in the cache.',
    registers: [registry],
    collect() {
      this.set(sources.discoveries());
    },
  });
  return { registry, reconciles, reconcileDuration, apiRequests, brokerActions, nodeReleases, leader, draServed };
}
