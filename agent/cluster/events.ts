/**
 * Kubernetes Events about DeviceDiscoveries, so `kubectl describe devicediscovery` shows
 * why this node is not discovering (bad details, missing Secret, failing handler). The
 * same message for the same object is recorded once per window, not once per retry.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { API_VERSION } from '../../api/group.ts';
import type { KubeObject } from '../../kube/client.ts';
import { RESOURCES, type Api } from '../../kube/resources.ts';

export interface EventTarget {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export class DiscoveryEvents {
  readonly #api: Api;
  readonly #node: string;
  readonly #log: Logger;
  readonly #recent = new Map<string, number>();
  readonly #windowMs: number;

  constructor(api: Api, node: string, log: Logger, windowMs = 10 * 60_000) {
    this.#api = api;
    this.#node = node;
    this.#log = log;
    this.#windowMs = windowMs;
  }

  /** Records a Warning event (fire and forget: events are best effort). */
  warn(target: EventTarget, reason: string, message: string): void {
    const key = `${target.namespace}/${target.name}/${reason}/${message}`;
    const now = Date.now();
    if ((this.#recent.get(key) ?? 0) > now - this.#windowMs) return;
    this.#recent.set(key, now);
    const stamp = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const suffix = createHash('sha256').update(`${key}/${this.#node}/${now}`).digest('hex').slice(0, 10);
    this.#api
      .create(
        RESOURCES.coreEvents,
        target.namespace,
        {
          metadata: { name: `${target.name}.${suffix}`, namespace: target.namespace },
          involvedObject: {
            apiVersion: API_VERSION,
            kind: 'DeviceDiscovery',
            name: target.name,
            namespace: target.namespace,
            ...(target.uid ? { uid: target.uid } : {}),
          },
          reason,
          message: `${message} (node ${this.#node})`.slice(0, 1024),
          type: 'Warning',
          source: { component: 'tether-agent', host: this.#node },
          reportingComponent: 'tether.dev/agent',
          reportingInstance: this.#node,
          firstTimestamp: stamp,
          lastTimestamp: stamp,
          count: 1,
        } as KubeObject,
        undefined,
        'tether-agent',
      )
      .catch((error: unknown) => this.#log.debug({ err: error }, 'Failed to record event'));
  }
}
