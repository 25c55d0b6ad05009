/**
 * The permissions the controller needs — least privilege, one source of truth for
 * docs/controller.md, the integration tests (which run the controller under exactly these) and
 * the Helm chart to come.
 */

export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

/**
 * What the controller does with workload brokers: watch them (list, watch), apply them by
 * server-side apply (patch; create for the first apply), delete them.
 */
export const WORKLOAD_BROKER_VERBS: readonly string[] = ['list', 'watch', 'create', 'patch', 'delete'];

/** The rule for broker kinds of one API group (the chart's `controller.brokerKinds` entries). */
export function brokerKindRule(apiGroup: string, resources: readonly string[]): PolicyRule {
  return { apiGroups: [apiGroup], resources, verbs: WORKLOAD_BROKER_VERBS };
}

/** ClusterRole rules (or a Role in the watched namespace with `--namespace`, plus nodes). */
export const CONTROLLER_RULES: readonly PolicyRule[] = [
  // Read what users ask for; write only its status (server-side apply = patch).
  { apiGroups: ['tether.dev'], resources: ['devicediscoveries'], verbs: ['list', 'watch'] },
  { apiGroups: ['tether.dev'], resources: ['devicediscoveries/status'], verbs: ['patch'] },
  // Devices: read; patch = server-side apply as a lost node's agent managers (release) ;
  // delete = a Device no node sees any more, after node loss (with preconditions).
  { apiGroups: ['tether.dev'], resources: ['devices'], verbs: ['list', 'watch', 'patch', 'delete'] },
  { apiGroups: ['tether.dev'], resources: ['devices/status'], verbs: ['patch'] },
  // Brokers.
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch', 'create', 'delete'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'watch', 'create', 'delete'] },
  // Workload brokers (spec.broker.workload) of the built-in kinds with a pod template; other
  // kinds are granted by brokerKindRule (chart value controller.brokerKinds).
  { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: WORKLOAD_BROKER_VERBS },
  // Opt-in eviction of consumers of an offline device.
  { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
  // Services (server-side apply creates with patch, which also needs create).
  { apiGroups: [''], resources: ['services'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
  // Node health (node loss, placement, node counts).
  { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] },
  // DRA discoveries: a DeviceClass each (cluster-scoped) and a ResourceClaimTemplate per device
  // with brokers, by server-side apply (create + patch), deleted when no longer wanted.
  { apiGroups: ['resource.k8s.io'], resources: ['deviceclasses'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroups: ['resource.k8s.io'], resources: ['resourceclaimtemplates'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
];

/** Role rules in the leader-election namespace. */
export const LEADER_ELECTION_RULES: readonly PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];
