/** The agent's Prometheus metrics, in one registry owned by the composition root. */
import { Counter, Gauge, Histogram, Registry, registerProcessMetrics } from '../kube/prometheus.ts';

export interface AgentMetrics {
  readonly registry: Registry;
  readonly devices: Gauge<'discovery' | 'state'>;
  readonly allocations: Counter<'result'>;
  readonly slotConflicts: Counter;
  readonly allocateSeconds: Histogram;
  readonly eventToPluginSeconds: Histogram;
  readonly handlerErrors: Counter<'discovery'>;
  readonly handlerEvents: Counter<'handler' | 'discovery' | 'event'>;
  readonly apiWrites: Counter<'kind'>;
  readonly registrations: Counter;
}

export function createAgentMetrics(options: { defaultMetrics?: boolean } = {}): AgentMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) registerProcessMetrics(registry, 'tether_agent_');
  const registers = [registry];
  return {
    registry,
    devices: new Gauge({
      name: 'tether_devices',
      help: 'Devices served by this node, by discovery and state',
      labelNames: ['discovery', 'state'],
      registers,
    }),
    allocations: new Counter({ name: 'tether_allocations_total', help: 'Allocate calls by result', labelNames: ['result'], registers }),
    slotConflicts: new Counter({
      name: 'tether_slot_conflicts_total',
      help: 'Allocations refused because the slot was held elsewhere',
      registers,
    }),
    allocateSeconds: new Histogram({
      name: 'tether_allocate_duration_seconds',
      help: 'Allocate latency including the durable slot claim',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    eventToPluginSeconds: new Histogram({
      name: 'tether_discovery_to_plugin_seconds',
      help: 'Handler report to device-plugin update',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    handlerErrors: new Counter({
      name: 'tether_handler_errors_total',
      help: 'Discovery handler failures',
      labelNames: ['discovery'],
      registers,
    }),
    handlerEvents: new Counter({
      name: 'tether_handler_events_total',
      help: 'Notable handler events (bad payloads, reconnects, ...)',
      labelNames: ['handler', 'discovery', 'event'],
      registers,
    }),
    apiWrites: new Counter({
      name: 'tether_apiserver_writes_total',
      help: 'Writes to the apiserver by kind',
      labelNames: ['kind'],
      registers,
    }),
    registrations: new Counter({
      name: 'tether_plugin_registrations_total',
      help: 'Device-plugin registrations with the kubelet',
      registers,
    }),
  };
}
