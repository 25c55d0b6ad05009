/**
 * Opt-in eviction of the pods that consume a device gone offline
 * (`tether.dev/evict-consumers-on-offline: "true"` on the DeviceDiscovery).
 *
 * Which pods to evict is decided from the cluster's state, not remembered: a running pod that
 * asks for `tether.dev/<device>` of a Device that no longer exists, or for the discovery-wide
 * `tether.dev/<discovery>` on a node where no Device of the discovery remains. So a controller
 * restart or a leader change between a device going offline and the eviction loses nothing:
 * the next leader sweeps every opt-in discovery once when it starts leading.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../api/labels.ts';
import { DEVICE_HASH_HEX_LENGTH, discoveryResourceName, isDeviceName, RESOURCE_DOMAIN } from '../../api/names.ts';
import { API_VERSION } from '../../api/group.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { isApiError } from '../../kube/client.ts';
import { RESOURCES } from '../../kube/resources.ts';
import { BY_DISCOVERY, refOf, type ControllerContext } from '../context.ts';

export interface Consumer {
  readonly pod: V1Pod;
  /** The resource that makes it one. */
  readonly resource: string;
  /** The device it used, when the resource names one. */
  readonly device?: string;
}

export interface SweepInput {
  readonly discovery: string;
  /** Devices of the discovery that exist now (any state). */
  readonly devices: readonly Device[];
  /**
   * Names of Devices of this discovery known to be gone. Undefined: any device-shaped name with
   * the discovery's prefix that no existing Device has (only safe when no other namespace has a
   * discovery of the same name — the hash in a device name cannot be traced back).
   */
  readonly gone?: ReadonlySet<string>;
  /** Every Device name that exists in any namespace the controller sees. */
  readonly existing: ReadonlySet<string>;
  /**
   * Judge consumers of `tether.dev/<discovery>` too. False when another namespace has a
   * discovery of the same name: the resource is then not traceable to this one.
   */
  readonly discoveryWide: boolean;
}

/** Resource names a pod's containers request or limit. */
function resourcesOf(pod: V1Pod): Set<string> {
  const names = new Set<string>();
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    for (const name of Object.keys(c.resources?.limits ?? {})) names.add(name);
    for (const name of Object.keys(c.resources?.requests ?? {})) names.add(name);
  }
  return names;
}

/** A pod that still runs (or will) and is not one of our brokers. */
function isLiveUserPod(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  if (pod.metadata?.deletionTimestamp != null || phase === 'Succeeded' || phase === 'Failed') return false;
  return pod.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE;
}

/** The device name in a `tether.dev/<discovery>-<hash>` resource of this discovery, if it is one. */
function deviceOf(resource: string, discovery: string): string | undefined {
  const prefix = `${RESOURCE_DOMAIN}/${discovery}-`;
  if (!resource.startsWith(prefix) || resource.length !== prefix.length + DEVICE_HASH_HEX_LENGTH) return undefined;
  const name = resource.slice(RESOURCE_DOMAIN.length + 1);
  return isDeviceName(name) ? name : undefined;
}

/** The pods to evict, at most one entry per pod. Pure. */
export function consumersToEvict(pods: readonly V1Pod[], input: SweepInput): Consumer[] {
  const wide = discoveryResourceName(input.discovery);
  const nodesWithDevices = new Set(input.devices.flatMap((d) => d.spec.nodes ?? []));
  const consumers: Consumer[] = [];
  for (const pod of pods.filter(isLiveUserPod)) {
    for (const resource of resourcesOf(pod)) {
      const device = deviceOf(resource, input.discovery);
      const deviceGone = device !== undefined && !input.existing.has(device) && (input.gone === undefined || input.gone.has(device));
      const node = pod.spec?.nodeName;
      const nothingLeftOnNode =
        input.discoveryWide && resource === wide && node !== undefined && node !== '' && !nodesWithDevices.has(node);
      if (deviceGone || nothingLeftOnNode) {
        consumers.push({ pod, resource, ...(device === undefined ? {} : { device }) });
        break;
      }
    }
  }
  return consumers;
}

/**
 * Evicts (Eviction API: PodDisruptionBudgets apply) the consumers `consumersToEvict` picks for
 * an opt-in discovery. `gone`: the Devices known to be deleted (the live path); undefined for
 * the sweep a new leader runs. A refused eviction (429) throws: the caller retries with backoff.
 */
export async function evictConsumers(
  ctx: ControllerContext,
  discovery: DeviceDiscovery,
  gone: ReadonlySet<string> | undefined,
  signal: AbortSignal,
): Promise<void> {
  const name = discovery.metadata.name ?? '';
  const namespace = discovery.metadata.namespace ?? '';
  const sameName = ctx.caches.discoveries.list().filter((d) => d.metadata.name === name && d.metadata.namespace !== namespace);
  const unique = sameName.length === 0;
  if (gone === undefined && !unique) {
    ctx.log.warn({ discovery: `${namespace}/${name}` }, 'Not sweeping consumers: another namespace has a DeviceDiscovery of the same name');
    return;
  }
  const input: SweepInput = {
    discovery: name,
    devices: ctx.caches.devices.byIndex(BY_DISCOVERY, `${namespace}/${name}`),
    ...(gone === undefined ? {} : { gone }),
    existing: new Set(ctx.caches.devices.list().map((d) => d.metadata.name ?? '')),
    discoveryWide: unique,
  };
  const list = await ctx.api.list<V1Pod>(RESOURCES.pods, {
    namespace: ctx.config.namespace,
    fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
    signal,
  });
  for (const { pod, resource, device } of consumersToEvict(list.items, input)) {
    const podNamespace = pod.metadata?.namespace ?? '';
    const podName = pod.metadata?.name ?? '';
    try {
      await ctx.api.evict(podNamespace, podName, signal);
    } catch (error) {
      if (isApiError(error, 404)) continue;
      throw new Error(`evicting ${podNamespace}/${podName} (consumer of ${resource})`, { cause: error });
    }
    ctx.events.record({
      regarding: refOf('Pod', 'v1', pod),
      related: refOf('DeviceDiscovery', API_VERSION, discovery),
      type: 'Warning',
      reason: 'ConsumerEvicted',
      action: 'Evict',
      note:
        device === undefined
          ? `evicted: it uses ${resource} and no device of ${name} is left on its node`
          : `evicted: it uses ${resource} and device ${device} went offline`,
    });
  }
}
