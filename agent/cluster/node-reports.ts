/**
 * This node's problems running discoveries, written to each DeviceDiscovery's
 * `status.nodeReports` (one entry per node, applied under this agent's own field manager; the
 * controller folds them into the `HandlersHealthy` condition). An entry exists only while the
 * problem lasts; nothing is written while nothing changes, so a restart writes nothing.
 */
import type { Logger } from 'pino';
import { agentManager } from '../../api/field-managers.ts';
import { API_VERSION, MAX_NODE_REPORT_MESSAGE_LENGTH } from '../../api/group.ts';
import type { DeviceDiscovery, NodeReport } from '../../api/schema.ts';
import { RESOURCES, type Api } from '../../kube/resources.ts';

export interface NodeProblem {
  readonly reason: string;
  readonly message: string;
}

/** One status write: the entry to apply, or undefined to remove this node's entry. */
export interface NodeReportWrite {
  readonly discovery: DeviceDiscovery;
  readonly report: NodeReport | undefined;
}

const discoveryKey = (d: DeviceDiscovery): string => `${d.metadata.namespace ?? ''}/${d.metadata.name ?? ''}`;
const fingerprint = (report: NodeReport | undefined): string => (report === undefined ? '' : `${report.reason}\n${report.message}`);

/**
 * The writes that bring this node's entries in line with its problems (keyed by discovery key).
 * `written` holds what this agent last applied, for objects the cache has not caught up with.
 * Pure.
 */
export function nodeReportWrites(
  node: string,
  discoveries: readonly DeviceDiscovery[],
  problems: ReadonlyMap<string, NodeProblem>,
  written: ReadonlyMap<string, string>,
  now: string,
): NodeReportWrite[] {
  const writes: NodeReportWrite[] = [];
  for (const discovery of discoveries) {
    const key = discoveryKey(discovery);
    const own = discovery.status?.nodeReports?.find((r) => r.node === node);
    const problem = problems.get(key);
    const report: NodeReport | undefined =
      problem === undefined
        ? undefined
        : {
            node,
            reason: problem.reason,
            message: problem.message.slice(0, MAX_NODE_REPORT_MESSAGE_LENGTH),
            since: own?.reason === problem.reason ? own.since : now,
          };
    const current = written.get(key) ?? fingerprint(own);
    if (fingerprint(report) !== current) writes.push({ discovery, report });
  }
  return writes;
}

/** Applies this node's entries; best effort (a failed write is retried on the next change). */
export class NodeReporter {
  readonly #api: Api;
  readonly #node: string;
  readonly #log: Logger;
  /** Discovery key → fingerprint of what this agent last applied. */
  readonly #written = new Map<string, string>();

  constructor(api: Api, node: string, log: Logger) {
    this.#api = api;
    this.#node = node;
    this.#log = log;
  }

  sync(discoveries: readonly DeviceDiscovery[], problems: ReadonlyMap<string, NodeProblem>): void {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    for (const { discovery, report } of nodeReportWrites(this.#node, discoveries, problems, this.#written, now)) {
      const key = discoveryKey(discovery);
      this.#written.set(key, fingerprint(report));
      const body = {
        apiVersion: API_VERSION,
        kind: 'DeviceDiscovery',
        metadata: { name: discovery.metadata.name ?? '', namespace: discovery.metadata.namespace ?? '' },
        // An empty list drops the entry this manager owned and keeps other nodes' (an empty
        // `status` would leave it null, which the schema refuses).
        status: { nodeReports: report === undefined ? [] : [report] },
      };
      this.#api
        .apply(RESOURCES.deviceDiscoveries, body, { fieldManager: agentManager(this.#node), force: true, subresource: 'status' })
        .catch((error: unknown) => {
          this.#written.delete(key);
          this.#log.warn({ err: error, discovery: key }, 'Failed to report this node on the DeviceDiscovery status');
        });
    }
    // Forget what the cache has caught up with (it is the truth again), and discoveries that are gone.
    const cached = new Map(
      discoveries.map((d) => [discoveryKey(d), fingerprint(d.status?.nodeReports?.find((r) => r.node === this.#node))]),
    );
    for (const [key, written] of this.#written) if (cached.get(key) === written || !cached.has(key)) this.#written.delete(key);
  }
}
