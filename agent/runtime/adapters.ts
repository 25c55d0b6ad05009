/**
 * The two places where the node runtime meets the world outside the node, as small
 * interfaces, and their no-cluster implementations:
 *   - where discoveries come from: a fixed list (`staticDiscoveries`, standalone) or the
 *     DeviceDiscovery informer (agent/cluster/discovery-source.ts);
 *   - where devices are published: nowhere (`noPublication`, standalone) or Device objects
 *     by server-side apply (agent/cluster/device-publication.ts).
 * The runtime calls every method from its own serial tasks, never concurrently with itself.
 */
import type { AnyDiscoveryHandler, DiscoveredDevice } from '../../discovery-handlers/contract.ts';
import type { ServedDevice } from '../device.ts';
import type { SessionSpec } from '../discovery/session.ts';
import type { DesiredSession } from './desired-sessions.ts';

export interface DiscoverySource {
  /**
   * Starts watching; resolves once the first state is known. `changed` is called (cheap,
   * synchronous) whenever `desired` may answer differently.
   */
  start(changed: () => void): Promise<void>;
  /**
   * The sessions this node should run now. `running(key)` is the handler of the session now
   * running for a discovery, so a discovery whose external handler went away keeps its
   * session (its devices go offline through the grace period and return with the handler).
   */
  desired(running: (key: string) => AnyDiscoveryHandler | undefined): Promise<readonly DesiredSession[]>;
  /** A session's handler failed (after it was counted and logged): tell people, e.g. by an Event. */
  handlerFailed(session: SessionSpec, error: Error): void;
  stop(): Promise<void>;
}

/** What a publication may ask of, and tell, the runtime. */
export interface PublicationEvents {
  /** The published state went stale (an object was deleted, the node may rejoin): publish again. */
  republish(): void;
  /** The cluster's record of a served device's slots changed (slot index → node). */
  slots(name: string, slots: Readonly<Record<string, string>>): void;
  /** The device this node serves under `name`, if any. */
  served(name: string): ServedDevice | undefined;
  /** Whether this node runs a session for the discovery `namespace/name`. */
  hasSession(namespace: string, discovery: string): boolean;
}

export interface DevicePublication {
  /** Starts; resolves once what this node published before a restart is known. */
  start(events: PublicationEvents): Promise<void>;
  /** How many devices this node published before a restart (for the start-up log). */
  readonly seeded: number;
  /** Devices this node served before a restart, for one discovery: they seed its session. */
  previouslyServed(namespace: string, discovery: string): DiscoveredDevice[];
  /** The cluster's record of a device's slots (index → node); undefined when it has none. */
  serverSlots(device: ServedDevice): Readonly<Record<string, string>> | undefined;
  /** Makes the published state equal `devices`; resolves with the number of writes that failed. */
  publish(devices: readonly ServedDevice[]): Promise<number>;
  /**
   * Makes a device's slot holdings durable: `held` are all indexes this node holds on it.
   * Rejects with ApplyConflictError when another node holds one of them.
   */
  persistSlots(device: ServedDevice, held: readonly number[]): Promise<void>;
  /** Resolves when every queued write has settled. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** Discoveries given up front (standalone: `tether demo`, tests, benchmarks). */
export function staticDiscoveries(specs: readonly SessionSpec[]): DiscoverySource {
  const desired = specs.map((spec) => ({ key: `${spec.namespace}/${spec.name}`, spec, fingerprint: `${spec.namespace}/${spec.name}` }));
  return {
    start: () => Promise.resolve(),
    desired: () => Promise.resolve(desired),
    handlerFailed: () => undefined,
    stop: () => Promise.resolve(),
  };
}

/** Publishes nothing: slots live in this process only. */
export function noPublication(): DevicePublication {
  return {
    start: () => Promise.resolve(),
    seeded: 0,
    previouslyServed: () => [],
    serverSlots: () => undefined,
    publish: () => Promise.resolve(0),
    persistSlots: () => Promise.resolve(),
    idle: () => Promise.resolve(),
    stop: () => Promise.resolve(),
  };
}
