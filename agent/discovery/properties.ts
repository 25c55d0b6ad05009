/**
 * Pure resolution of a DeviceDiscovery's properties from literal values and Secret /
 * ConfigMap keys. The caller supplies the objects it has (from its watches); the result
 * says which references are needed so the caller can watch exactly those.
 */
import type { DiscoveryProperty } from '../../api/schema.ts';

export interface ObjectRef {
  readonly kind: 'Secret' | 'ConfigMap';
  readonly namespace: string;
  readonly name: string;
}

/** An object the agent may not read (RBAC), as opposed to one that does not exist. */
export class Unreadable {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

/** Data of one Secret (already base64-decoded) or ConfigMap; undefined = object absent. */
export type LookupData = (ref: ObjectRef) => Readonly<Record<string, string>> | Unreadable | undefined;

export type PropertyResolution =
  { readonly ok: true; readonly values: Map<string, string> } | { readonly ok: false; readonly error: string };

export function referencedObjects(namespace: string, properties: readonly DiscoveryProperty[]): ObjectRef[] {
  const refs = new Map<string, ObjectRef>();
  for (const p of properties) {
    const secret = p.valueFrom?.secretKeyRef;
    const configMap = p.valueFrom?.configMapKeyRef;
    if (secret) refs.set(`Secret/${secret.name}`, { kind: 'Secret', namespace, name: secret.name });
    if (configMap) refs.set(`ConfigMap/${configMap.name}`, { kind: 'ConfigMap', namespace, name: configMap.name });
  }
  return [...refs.values()];
}

export function resolveProperties(namespace: string, properties: readonly DiscoveryProperty[], lookup: LookupData): PropertyResolution {
  const values = new Map<string, string>();
  for (const [i, p] of properties.entries()) {
    if (p.value !== undefined) {
      values.set(p.name, p.value);
      continue;
    }
    const source = p.valueFrom?.secretKeyRef ?? p.valueFrom?.configMapKeyRef;
    if (source === undefined) return { ok: false, error: `spec.properties[${i}]: neither value nor valueFrom` };
    const kind = p.valueFrom?.secretKeyRef ? 'Secret' : 'ConfigMap';
    const found = lookup({ kind, namespace, name: source.name });
    // Optional or not, an object the agent may not read is an error: it may well exist.
    if (found instanceof Unreadable)
      return { ok: false, error: `spec.properties[${i}] (${p.name}): ${kind} ${namespace}/${source.name} cannot be read: ${found.reason}` };
    const data = found;
    const value = data?.[source.key];
    if (value !== undefined) values.set(p.name, value);
    else if (source.optional !== true) {
      const what =
        data === undefined
          ? `${kind} ${namespace}/${source.name} not found`
          : `key ${source.key} missing in ${kind} ${namespace}/${source.name}`;
      return { ok: false, error: `spec.properties[${i}] (${p.name}): ${what}` };
    }
  }
  return { ok: true, values };
}
