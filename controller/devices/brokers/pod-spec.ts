/**
 * What every broker object carries (pure): its labels, its owner reference to the Device, and
 * the pod spec of a broker pod — the device's extended resource (or DRA claim) and the pin to
 * its node. Shared by Pod, Job and workload brokers (workload.ts).
 */
import type { V1Affinity, V1NodeSelectorTerm, V1PodSpec } from '@kubernetes/client-node';
import { API_VERSION } from '../../../api/group.ts';
import type { Device } from '../../../api/schema.ts';
import { deviceResourceName } from '../../../api/names.ts';
import {
  COMPONENT_LABEL,
  DEVICE_LABEL,
  DISCOVERY_LABEL,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  NODE_LABEL,
  TEMPLATE_HASH_LABEL,
  nodeLabelValue,
} from '../../../api/labels.ts';
import { brokerClaimTemplateName } from '../../../api/dra-attributes.ts';
import { BROKER_CLAIM_NAME } from '../../dra/objects.ts';

/** Labels every broker (and its Job's pods) carries; Services select on a subset. */
export function brokerLabels(device: Device, node: string, hash: string): Record<string, string> {
  const labels: Record<string, string> = {
    [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
    [COMPONENT_LABEL]: 'broker',
    [DISCOVERY_LABEL]: device.spec.discovery,
    [DEVICE_LABEL]: device.metadata.name ?? '',
    [TEMPLATE_HASH_LABEL]: hash,
  };
  const nodeLabel = nodeLabelValue(node);
  if (nodeLabel !== undefined) labels[NODE_LABEL] = nodeLabel;
  return labels;
}

export function ownerReference(device: Device): { apiVersion: string; kind: string; name: string; uid: string; controller: boolean } {
  return { apiVersion: API_VERSION, kind: 'Device', name: device.metadata.name ?? '', uid: device.metadata.uid ?? '', controller: true };
}

/**
 * The pod spec of a broker: the template's, with 1 of the device's extended resource (DRA: its
 * claim, `dra`) on the first container (limits and requests: extended resources cannot be overcommitted) and a
 * required node affinity to `node`, ANDed into every term of the template's own affinity.
 * Pinning by affinity, not `nodeName`, keeps the scheduler's resource check: a broker that does
 * not fit stays Pending instead of failing admission on the kubelet (the Akri hot loop).
 * The device's own resource works on every node whatever its device-plugin mode: a lean-mode
 * agent still serves it for the devices of discoveries with a broker (docs/device-plugin-modes.md),
 * because through the discovery-wide resource the kubelet, not the plugin, picks the device.
 */
export function brokerPodSpec(template: V1PodSpec, device: Device, node: string, dra = false): V1PodSpec {
  const spec = structuredClone(template);
  const resource = deviceResourceName(device.metadata.name ?? '');
  const [first] = spec.containers;
  if (dra) {
    // DRA: the device through a claim made from the device's own template (controller/dra/objects.ts).
    const claim = { name: BROKER_CLAIM_NAME, resourceClaimTemplateName: brokerClaimTemplateName(device.metadata.name ?? '') };
    spec.resourceClaims = [...(spec.resourceClaims ?? []).filter((c) => c.name !== BROKER_CLAIM_NAME), claim];
    if (first !== undefined) {
      const resources = { ...(first.resources ?? {}) };
      resources.claims = [...(resources.claims ?? []).filter((c) => c.name !== BROKER_CLAIM_NAME), { name: BROKER_CLAIM_NAME }];
      first.resources = resources;
    }
  } else if (first !== undefined) {
    const resources = { ...(first.resources ?? {}) };
    resources.limits = { ...(resources.limits ?? {}), [resource]: '1' };
    resources.requests = { ...(resources.requests ?? {}), [resource]: '1' };
    first.resources = resources;
  }
  spec.affinity = pinnedAffinity(spec.affinity, node);
  return spec;
}

function pinnedAffinity(affinity: V1Affinity | undefined, node: string): V1Affinity {
  const pin = { key: 'metadata.name', operator: 'In', values: [node] };
  const required = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const terms: V1NodeSelectorTerm[] =
    required === undefined || required.nodeSelectorTerms.length === 0
      ? [{ matchFields: [pin] }]
      : required.nodeSelectorTerms.map((term) => ({
          ...term,
          matchFields: [...(term.matchFields ?? []).filter((f) => f.key !== 'metadata.name'), pin],
        }));
  return {
    ...(affinity ?? {}),
    nodeAffinity: { ...(affinity?.nodeAffinity ?? {}), requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
  };
}
