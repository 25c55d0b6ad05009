/**
 * Kubernetes Events about DeviceDiscoveries, so `kubectl describe devicediscovery` shows
 * why this node is not discovering (bad details, missing Secret, failing handler). The
 * same message for the same object is recorded once per window, not once per retry.
 */
import { createHash } from 'node:crypto';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION } from '../../api/schema.ts';

export interface EventTarget {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export class DiscoveryEvents {
  readonly #core: CoreV1Api;
  readonly #node: string;
  readonly #log: Logger;
  readonly #recent = new Map<string, number>();
  readonly #windowMs: number;

  constructor(core: CoreV1Api, node: string, log: Logger, windowMs = 10 * 60_000) {
    this.#core = core;
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
    const stamp = new Date(now);
    const suffix = createHash('sha256').update(`${key}/${this.#node}/${now}`).digest('hex').slice(0, 10);
    this.#core
      .createNamespacedEvent({
        namespace: target.namespace,
        body: {
          metadata: { name: `${target.name}.${suffix}`, namespace: target.namespace },
          involvedObject: { apiVersion: API_VERSION, kind: 'DeviceDiscovery', name: target.name, namespace: target.namespace, ...(target.uid ? { uid: target.uid } : {}) },
          reason,
          message: `${message} (node ${this.#node})`.slice(0, 1024),
          type: 'Warning',
          source: { component: 'tether-agent', host: this.#node },
          reportingComponent: 'tether.dev/agent',
          reportingInstance: this.#node,
          firstTimestamp: stamp,
          lastTimestamp: stamp,
          count: 1,
        },
      })
      .catch((error: unknown) => this.#log.debug({ err: error }, 'Failed to record event'));
  }
}
