/**
 * Names, labels and annotations of the objects the controller creates. Pure and deterministic:
 * the same Device and node always give the same broker name, on any replica, after restarts.
 */
import { createHash } from 'node:crypto';

/** On every object the controller creates; its informers select on it. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'tether-controller';
/** `broker` on broker Pods, Jobs and Job pod templates; `service` on Services. */
export const COMPONENT_LABEL = 'tether.dev/component';
export const DISCOVERY_LABEL = 'tether.dev/discovery';
export const DEVICE_LABEL = 'tether.dev/device';
/** The node a broker is pinned to, when the node name is a valid label value (≤ 63 chars). */
export const NODE_LABEL = 'tether.dev/node';
/** Hash of the broker template the broker was made from; a different hash rolls it. */
export const TEMPLATE_HASH_LABEL = 'tether.dev/template-hash';

/** The node a broker is pinned to (always set; the label is only set when it fits). */
export const NODE_ANNOTATION = 'tether.dev/node';
/** How many times this broker was recreated after failing (drives the backoff). */
export const RECREATIONS_ANNOTATION = 'tether.dev/recreations';
/** Hash of the Service the controller last applied (skip no-op applies). */
export const APPLIED_HASH_ANNOTATION = 'tether.dev/applied-hash';
/** On a DeviceDiscovery: "true" evicts pods that consume a device when it goes offline. */
export const EVICT_ON_OFFLINE_ANNOTATION = 'tether.dev/evict-consumers-on-offline';

const MAX_NAME = 63;
const MIN_NODE_HASH_HEX = 5;
const MAX_NODE_HASH_HEX = 10;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function sha256Hex(...parts: string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) {
    hash.update(String(Buffer.byteLength(part)));
    hash.update(':');
    hash.update(part);
  }
  return hash.digest('hex');
}

/**
 * Broker (Pod or Job) name for `device` on `node`: `<device>-<hex>`, the hex being a hash of
 * the node name, as long as fits in 63 characters (5 to 10 digits; Device names are at most
 * 57 characters). `salt` > 0 resolves the rare hash collision between two nodes of one device.
 */
export function brokerName(device: string, node: string, salt = 0): string {
  const room = MAX_NAME - device.length - 1;
  const hexLength = Math.max(MIN_NODE_HASH_HEX, Math.min(MAX_NODE_HASH_HEX, room));
  const hex = sha256Hex('node', node, String(salt)).slice(0, hexLength);
  return `${device}-${hex}`;
}

/** Per-device Service: `<device>-svc`. */
export function deviceServiceName(device: string): string {
  return `${device}-svc`;
}

/** Per-discovery Service: `<discovery>-svc`. */
export function discoveryServiceName(discovery: string): string {
  return `${discovery}-svc`;
}

/** Node label value, or undefined when the node name cannot be one. */
export function nodeLabelValue(node: string): string | undefined {
  return node.length <= MAX_NAME && LABEL_VALUE.test(node) ? node : undefined;
}

/** Short stable hash of any JSON-able value (keys sorted), for template and spec hashes. */
export function stableHash(value: unknown): string {
  return sha256Hex(canonicalJson(value)).slice(0, 10);
}

/** JSON with object keys sorted, so equal values hash alike. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Rendezvous score of `node` for `device`: sorting a device's nodes by it spreads the brokers
 * of many devices over their nodes (instead of every device picking the alphabetically first).
 */
export function placementScore(device: string, node: string): string {
  return sha256Hex('placement', device, node).slice(0, 12);
}
