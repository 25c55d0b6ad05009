/**
 * Where the cluster agent's discoveries come from: the DeviceDiscovery informer, this node's
 * labels, and exactly the Secrets and ConfigMaps the selected discoveries reference (one
 * name-selected watch each, which a resourceNames RBAC rule allows). Which sessions to run is
 * decided by the pure `desiredSessions`; this adapter only gathers its inputs and reports its
 * problems as Warnings on the DeviceDiscovery (once per distinct message).
 */
import type { Logger } from 'pino';
import type { NodeFacts } from '../../api/node-selector.ts';
import type { DeviceDiscovery } from '../../api/schema.ts';
import type { AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { isApiError, type KubeClient, type KubeObject } from '../../kube/client.ts';
import { Informer, type InformerEvent } from '../../kube/informer.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { Unreadable, type ObjectRef } from '../discovery/properties.ts';
import type { SessionSpec } from '../discovery/session.ts';
import type { DiscoverySource } from '../runtime/adapters.ts';
import {
  desiredSessions,
  discoveryKey,
  type DesiredSession,
  type DesiredSessions,
  type SessionProblem,
} from '../runtime/desired-sessions.ts';
import { chooseHandler, shadowedMessage, type HandlerCatalog, type HandlerChoice } from '../runtime/handler-choice.ts';
import type { DiscoveryEvents } from './events.ts';
import { NodeReporter, type NodeProblem } from './node-reports.ts';

/** A Secret or ConfigMap as the agent reads it. */
interface DataObject extends KubeObject {
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export interface ClusterDiscoveryOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** Watch DeviceDiscoveries in this namespace only; all namespaces when absent. */
  readonly namespace?: string;
  /** This node's name and labels now. */
  readonly nodeFacts: () => NodeFacts;
  readonly handlers: ReadonlyMap<string, AnyDiscoveryHandler>;
  /** Handlers registered at run time (external, Akri v0). */
  readonly externalHandler?: (name: string) => AnyDiscoveryHandler | undefined;
  readonly events: DiscoveryEvents;
}

function eventTarget(discovery: DeviceDiscovery): { namespace: string; name: string; uid?: string } {
  const { namespace = '', name = '', uid } = discovery.metadata;
  return { namespace, name, ...(uid === undefined ? {} : { uid }) };
}

const refKey = (ref: ObjectRef): string => `${ref.kind}/${ref.namespace}/${ref.name}`;

function decodeSecret(secret: DataObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return { ...out, ...(secret.stringData ?? {}) };
}

/** A problem as one line: what failed, and why (the field path for bad details). */
function problemText({ message, error }: SessionProblem): string {
  return error instanceof Error ? `${message}: ${error.message}` : message;
}

export class ClusterDiscoverySource implements DiscoverySource {
  readonly #options: ClusterDiscoveryOptions;
  readonly #discoveries: Informer<DeviceDiscovery>;
  readonly #refs = new Map<string, Informer<DataObject>>();
  /** The last problem reported per discovery, so a persisting problem is reported once. */
  readonly #warned = new Map<string, string>();
  /** Discoveries told their external handler is shadowed, while it stays so. */
  readonly #shadowed = new Set<string>();
  readonly #reporter: NodeReporter;
  #changed: () => void = () => undefined;

  constructor(options: ClusterDiscoveryOptions) {
    this.#options = options;
    this.#discoveries = new Informer<DeviceDiscovery>({
      client: options.client,
      type: RESOURCES.deviceDiscoveries,
      ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
      log: options.log,
    });
    this.#discoveries.onEvent(() => this.#changed());
    this.#reporter = new NodeReporter(new Api(options.client), options.nodeFacts().name, options.log);
  }

  /** Also tells `handler` of every DeviceDiscovery event (the DRA slice publisher follows spec changes). */
  onDiscoveryEvent(handler: (event: InformerEvent<DeviceDiscovery>) => void): void {
    this.#discoveries.onEvent(handler);
  }

  /** The DeviceDiscovery this node knows by namespace and name (for Device owner references). */
  discovery(namespace: string, name: string): DeviceDiscovery | undefined {
    return this.#discoveries.get(namespace, name);
  }

  async start(changed: () => void): Promise<void> {
    this.#changed = changed;
    this.#discoveries.start();
    await this.#discoveries.synced();
  }

  async desired(running: (key: string) => AnyDiscoveryHandler | undefined): Promise<readonly DesiredSession[]> {
    const { handlers, externalHandler } = this.#options;
    const catalog: HandlerCatalog = { builtins: handlers, external: (name) => externalHandler?.(name) };
    const builtins = new Set(handlers.values());
    const handlerFor = (discovery: DeviceDiscovery): HandlerChoice => {
      const choice = chooseHandler(discovery.spec, catalog);
      if (choice.handler !== undefined || discovery.spec.handlerSource === 'BuiltIn') return choice;
      // An external handler that went away keeps its session: its devices go offline through
      // the grace period and come back when it registers again.
      const keep = running(discoveryKey(discovery));
      return keep === undefined || builtins.has(keep) ? choice : { handler: keep, source: 'External', shadowed: false };
    };
    const compute = (): ReturnType<typeof desiredSessions> =>
      desiredSessions({
        node: this.#options.nodeFacts(),
        discoveries: this.#discoveries.list(),
        handlerFor,
        lookup: (ref) => this.#lookup(ref),
      });
    let result = compute();
    // Properties may name objects not watched yet: watch them, then decide with their data.
    const missing = result.refs.filter((ref) => !this.#refs.has(refKey(ref)));
    if (missing.length > 0) {
      await Promise.all(missing.map((ref) => this.#watch(ref)));
      result = compute();
    }
    for (const problem of result.problems) this.#warnOnce(problem);
    this.#notify(result.notices);
    for (const session of result.sessions) this.#warned.delete(session.key);
    const problems = new Map<string, NodeProblem>(
      result.problems.map((p) => [discoveryKey(p.discovery), { reason: p.reason, message: problemText(p) }]),
    );
    this.#reporter.sync(this.#discoveries.list(), problems);
    return result.sessions;
  }

  handlerFailed(session: SessionSpec, error: Error): void {
    this.#options.events.warn(
      { namespace: session.namespace, name: session.name, ...(session.uid === undefined ? {} : { uid: session.uid }) },
      'HandlerFailed',
      error.message,
    );
  }

  async stop(): Promise<void> {
    await Promise.all([this.#discoveries.stop(), ...[...this.#refs.values()].map((r) => r.stop())]);
  }

  #lookup(ref: ObjectRef): Record<string, string> | Unreadable | undefined {
    const informer = this.#refs.get(refKey(ref));
    const object = informer?.get(ref.namespace, ref.name);
    if (object === undefined) {
      // Refused (RBAC) is not "not found": say so, and what to change.
      const refused = informer !== undefined && isApiError(informer.lastFailure(), 403);
      return refused
        ? new Unreadable("forbidden to the agent (the chart's agent.rbac.secretNames / secretsNamespaces narrow what it may read)")
        : undefined;
    }
    return ref.kind === 'Secret' ? decodeSecret(object) : { ...(object.data ?? {}) };
  }

  /**
   * Starts watching one referenced object and waits for the first answer. An object that
   * cannot be read (e.g. RBAC) counts as absent: its discovery is reported unresolved, and
   * runs once the watch delivers it.
   */
  async #watch(ref: ObjectRef): Promise<void> {
    const informer = new Informer<DataObject>({
      client: this.#options.client,
      type: ref.kind === 'Secret' ? RESOURCES.secrets : RESOURCES.configMaps,
      namespace: ref.namespace,
      fieldSelector: `metadata.name=${ref.name}`,
      log: this.#options.log,
    });
    informer.onEvent(() => this.#changed());
    this.#refs.set(refKey(ref), informer);
    informer.start();
    await informer.attempted();
  }

  /** Warns once per discovery, while an external handler is shadowed by a built-in, and again if it recurs. */
  #notify(notices: DesiredSessions['notices']): void {
    const now = new Set<string>();
    for (const { discovery, handler } of notices) {
      const key = discoveryKey(discovery);
      now.add(key);
      if (this.#shadowed.has(key)) continue;
      const message = shadowedMessage(handler);
      this.#options.log.warn({ discovery: key, handler }, 'Chose the built-in handler over an external one registered under the same name');
      this.#options.events.warn(eventTarget(discovery), 'ExternalHandlerShadowed', message);
    }
    this.#shadowed.clear();
    for (const key of now) this.#shadowed.add(key);
  }

  #warnOnce(problem: SessionProblem): void {
    const { discovery, reason, message, error } = problem;
    const key = discoveryKey(discovery);
    const text = problemText(problem);
    if (this.#warned.get(key) === text) return;
    this.#warned.set(key, text);
    this.#options.log.warn({ discovery: key, reason, ...(error === undefined ? {} : { err: error }) }, message);
    this.#options.events.warn(eventTarget(discovery), reason, text);
  }
}
