/**
 * Field managers: who owns which fields of Tether's objects under server-side apply. One list,
 * so the controller's node-loss release (applied as the lost agent) names exactly the managers
 * the agent writes with.
 */

/** The controller: broker objects, Services, Device `BrokersReady`, DeviceDiscovery counts and conditions. */
export const CONTROLLER_FIELD_MANAGER = 'tether-controller';

/**
 * An agent: a Device's identity fields, its `spec.nodes` and `status.nodeStates` entries, and its
 * DeviceDiscovery `status.nodeReports` entry.
 */
export function agentManager(node: string): string {
  return `tether-agent/${node}`;
}

/** The slots an agent holds (`spec.slots` keys), applied without force so a race has one winner. */
export function agentSlotsManager(node: string): string {
  return `tether-agent/${node}/slots`;
}
