/**
 * A discovery handler run through the real agent, for tests: handler → StandaloneAgent →
 * device-plugin servers → the mock kubelet (agent/kubelet/mock-kubelet.ts), all over real
 * Unix sockets in a temp dir. One call starts it; the test then waits on what the kubelet
 * sees (slots and their health), allocates like the kubelet does, and reads the env, mounts
 * and device nodes of the response.
 *
 * Every wait is event-driven (kubelet events, or the handler's own reports) with a timeout
 * whose error says what was seen; nothing sleeps.
 *
 * External handlers reach the agent through its registration socket: `startHandlerRegistry`
 * serves one, and `registry.handler(name)` is the handler to run here once
 * `waitForRegistered` resolved.
 *
 * Used by the `*-agent` tests of discovery-handlers/, agent/external/agent.test.ts and the
 * examples' process tests.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { ExternalHandlerRegistry } from '../../agent/external/registry.ts';
import { MockKubelet } from '../../agent/kubelet/mock-kubelet.ts';
import { StandaloneAgent } from '../../agent/standalone.ts';
import { deviceName, deviceResourceName, discoveryResourceName, type DeviceName, type ResourceName } from '../../api/names.ts';
import type { DeviceSink, DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import type { ContainerAllocateResponse } from '../../proto/types.ts';
import { waitUntil } from './external-handler.ts';

export interface AgentWithHandlerOptions<Details> {
  readonly handler: DiscoveryHandler<Details>;
  /** Raw details, parsed by the handler as the agent would parse a DeviceDiscovery's. */
  readonly details: unknown;
  /** DeviceDiscovery name; default 'devices'. */
  readonly discovery?: string;
  /** Default 'default'. */
  readonly namespace?: string;
  /** Default 'edge-1'. */
  readonly node?: string;
  /** Slots per device; default 1. */
  readonly capacity?: number;
  /** How long an offline device stays (Unhealthy) before it goes; default 60 s. */
  readonly offlineGraceMs?: number;
  /** The discovery's resolved properties (what Secrets/ConfigMaps would give). */
  readonly properties?: Readonly<Record<string, string>>;
  /** Default silent. */
  readonly log?: Logger;
}

/** What a test expects of a resource's slots as the kubelet sees them. */
export interface SlotExpectation {
  /** Healthy slots. */
  readonly healthy: number;
  /** All slots, Healthy or not; unchecked when omitted. */
  readonly total?: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * One running agent with one discovery and the mock kubelet it registers with. Start with
 * `startAgentWithHandler`; `stop()` when done (it also removes the temp dir).
 */
export class AgentWithHandler {
  readonly kubelet: MockKubelet;
  readonly agent: StandaloneAgent;
  readonly namespace: string;
  readonly discovery: string;
  readonly node: string;
  /** `tether.dev/<discovery>`: any device of the discovery. */
  readonly discoveryResource: ResourceName;
  readonly #reports: EventEmitter;
  readonly #dir: string;

  constructor(parts: {
    kubelet: MockKubelet;
    agent: StandaloneAgent;
    namespace: string;
    discovery: string;
    node: string;
    reports: EventEmitter;
    dir: string;
  }) {
    this.kubelet = parts.kubelet;
    this.agent = parts.agent;
    this.namespace = parts.namespace;
    this.discovery = parts.discovery;
    this.node = parts.node;
    this.discoveryResource = discoveryResourceName(parts.discovery);
    this.#reports = parts.reports;
    this.#dir = parts.dir;
  }

  /**
   * The Device name the agent gives `deviceId`: one per cluster for a shared device, one per
   * node otherwise. The test states which it expects, so a wrong scope fails the waits.
   */
  deviceName(deviceId: string, scope: 'shared' | 'node'): DeviceName {
    return deviceName({ namespace: this.namespace, discovery: this.discovery, deviceId, ...(scope === 'node' ? { node: this.node } : {}) });
  }

  /** `tether.dev/<device>` for `deviceId` (see `deviceName`). */
  deviceResource(deviceId: string, scope: 'shared' | 'node'): ResourceName {
    return deviceResourceName(this.deviceName(deviceId, scope));
  }

  /** Health of each slot of `resource` as the kubelet last heard it, by slot ID. */
  health(resource: string): string[] {
    return (this.kubelet.resource(resource)?.devices ?? []).map((d) => d.health);
  }

  healthy(resource: string): number {
    return this.health(resource).filter((h) => h === 'Healthy').length;
  }

  /** Resolves once the kubelet sees `resource` with these slot counts. */
  waitForSlots(resource: string, want: SlotExpectation, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const what = `${resource}: ${want.healthy} healthy${want.total === undefined ? '' : ` of ${want.total}`} slots`;
    return this.waitForKubelet(
      () => this.healthy(resource) === want.healthy && (want.total === undefined || this.health(resource).length === want.total),
      timeoutMs,
      what,
    );
  }

  /** Resolves once the plugin of `resource` is gone (its ListAndWatch stream ended). */
  waitForResourceGone(resource: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.waitForKubelet(() => this.kubelet.resource(resource)?.connected === false, timeoutMs, `${resource} gone`);
  }

  /** Resolves once `predicate` holds, re-checked on every kubelet event. */
  async waitForKubelet(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    try {
      await this.kubelet.waitFor(predicate, timeoutMs, what);
    } catch (error) {
      throw new Error(`${(error as Error).message}; the kubelet sees ${this.#describe()}`, { cause: error });
    }
  }

  /**
   * Resolves once `predicate` holds, re-checked after every report of the handler (the agent
   * applies a report synchronously, so agent state such as `agent.devices` is current).
   */
  waitForReport(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return waitUntil(this.#reports, 'report', predicate, timeoutMs, what);
  }

  /**
   * Admits a container of pod `namespace/pod` asking for `count` of `resource`, as the kubelet
   * does (free Healthy slots, the plugin's preferred allocation, then Allocate).
   */
  allocate(pod: string, resource: string, count = 1): Promise<ContainerAllocateResponse> {
    return this.kubelet.allocate({ namespace: this.namespace, name: pod }, resource, count);
  }

  /** Stops the agent and the kubelet, and removes the temp dir. */
  async stop(): Promise<void> {
    await this.agent.stop();
    await this.kubelet.stop();
    await rm(this.#dir, { recursive: true, force: true });
  }

  #describe(): string {
    const names = this.kubelet.resourceNames();
    if (names.length === 0) return 'no resources';
    return names
      .map((name) => {
        const r = this.kubelet.resource(name)!;
        return `${name} [${r.devices.map((d) => d.health).join(',')}]${r.connected ? '' : ' (disconnected)'}`;
      })
      .join('; ');
  }
}

/** Passes every report on to the agent's sink, then emits 'report'. */
function reporting<Details>(handler: DiscoveryHandler<Details>, reports: EventEmitter): DiscoveryHandler<Details> {
  return {
    name: handler.name,
    parseDetails: (raw) => handler.parseDetails(raw),
    isShared: (details) => handler.isShared(details),
    run: (details, context) => {
      const sink: DeviceSink = {
        replaceAll: (devices) => (context.sink.replaceAll(devices), reports.emit('report')),
        upsert: (device) => (context.sink.upsert(device), reports.emit('report')),
        remove: (id) => (context.sink.remove(id), reports.emit('report')),
      };
      return handler.run(details, { ...context, sink });
    },
  };
}

/**
 * Starts the mock kubelet and a StandaloneAgent running `handler` with `details` for one
 * discovery, and resolves once the agent's first plugin sync is done. The caller stops it.
 */
export async function startAgentWithHandler<Details>(options: AgentWithHandlerOptions<Details>): Promise<AgentWithHandler> {
  const reports = new EventEmitter();
  const handler = reporting(options.handler, reports);
  const details = handler.parseDetails(options.details); // before anything needs stopping
  const dir = await mkdtemp(join(tmpdir(), 'tether-kit-'));
  const pluginDir = join(dir, 'dp');
  const kubelet = new MockKubelet({ pluginDir });
  try {
    await kubelet.start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const namespace = options.namespace ?? 'default';
  const discovery = options.discovery ?? 'devices';
  const node = options.node ?? 'edge-1';
  const agent = new StandaloneAgent({
    node,
    pluginDir,
    log: options.log ?? pino({ level: 'silent' }),
    discoveries: [
      {
        namespace,
        name: discovery,
        handler,
        details,
        capacity: options.capacity ?? 1,
        offlineGraceMs: options.offlineGraceMs ?? 60_000,
        properties: new Map(Object.entries(options.properties ?? {})),
      },
    ],
  });
  const kit = new AgentWithHandler({ kubelet, agent, namespace, discovery, node, reports, dir });
  agent.start();
  await agent.settled();
  return kit;
}

/**
 * Serves the agent's registration socket for external handlers at `socketPath`; endpoints
 * unreachable for a second are dropped (tests kill handlers on purpose). The caller stops it.
 */
export async function startHandlerRegistry(socketPath: string, log: Logger = pino({ level: 'silent' })): Promise<ExternalHandlerRegistry> {
  const registry = new ExternalHandlerRegistry({ socketPath, log, connectTimeoutMs: 1_000 });
  await registry.start();
  return registry;
}

/** Resolves once an endpoint of handler `name` registered with `registry`. */
export function waitForRegistered(registry: ExternalHandlerRegistry, name: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
  return waitUntil(registry, 'registered', () => registry.names().includes(name), timeoutMs, `${name} registered`);
}
