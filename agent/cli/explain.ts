/**
 * `tether explain pod/NAME | device/NAME | discovery/NAME`: plain sentences from the cluster's
 * state — what a pod asked Tether for, which devices and nodes could serve it, which slots are
 * held and by which node, why it is Pending, a discovery's devices and its last warnings.
 *
 * Pure in the middle: `explainPod`, `explainDevice`, `explainDiscovery` turn fetched objects
 * into lines; `gatherAndExplain` at the edge reads them with the shared plain-JSON client (kube/).
 */
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import type { KubeConfigSource } from '../../kube/kubeconfig.ts';
import { RESOURCE_DOMAIN } from '../../api/names.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import type { KubeObject } from '../../kube/client.ts';

export interface ClusterFacts {
  readonly devices: readonly Device[];
  readonly discoveries: readonly DeviceDiscovery[];
  /** Events of the namespace (core/v1 view; the controller's events.k8s.io ones included). */
  readonly events: readonly CoreV1Event[];
  /** Pods of the namespace (for who else uses a device's resource). */
  readonly pods: readonly V1Pod[];
}

const GROUP_PREFIX = `${RESOURCE_DOMAIN}/`;

/** Tether resources a pod requests (limits win over requests, as the kubelet reads them), with counts. */
export function tetherRequests(pod: V1Pod): Map<string, number> {
  const wanted = new Map<string, number>();
  for (const container of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const amounts = { ...(container.resources?.requests ?? {}), ...(container.resources?.limits ?? {}) };
    for (const [resource, amount] of Object.entries(amounts)) {
      if (resource.startsWith(GROUP_PREFIX)) wanted.set(resource, (wanted.get(resource) ?? 0) + Number(amount));
    }
  }
  return wanted;
}

function nodeStates(device: Device): string {
  const offline = new Set((device.status?.nodeStates ?? []).filter((s) => s.state === 'Offline').map((s) => s.node));
  const nodes = [...(device.spec.nodes ?? [])].sort();
  if (nodes.length === 0) return 'no node sees it';
  return `seen by ${nodes.map((n) => (offline.has(n) ? `${n} (offline, within its grace period)` : n)).join(', ')}`;
}

function slotsLine(device: Device): string {
  const held = Object.entries(device.spec.slots ?? {}).sort(([a], [b]) => Number(a) - Number(b));
  const free = device.spec.capacity - held.length;
  const holders = held.map(([slot, node]) => `slot ${slot} by ${node}`).join(', ');
  return held.length === 0
    ? `all ${device.spec.capacity} slot(s) free`
    : `${held.length} of ${device.spec.capacity} slot(s) held (${holders}); ${free} free`;
}

/** One sentence per device: who sees it, its slots. */
export function describeDevice(device: Device): string {
  return `Device ${device.metadata.name ?? ''} (${device.spec.deviceId}, discovery ${device.spec.discovery}): ${nodeStates(device)}; ${slotsLine(device)}.`;
}

function podsUsing(resource: string, pods: readonly V1Pod[], except: V1Pod): string[] {
  return pods
    .filter(
      (p) =>
        p.metadata?.uid !== except.metadata?.uid &&
        p.metadata?.deletionTimestamp == null &&
        p.status?.phase !== 'Succeeded' &&
        p.status?.phase !== 'Failed',
    )
    .filter((p) => tetherRequests(p).has(resource))
    .map((p) => `${p.metadata?.name ?? ''}${p.spec?.nodeName ? ` on ${p.spec.nodeName}` : ' (not scheduled)'}`);
}

function eventsAbout(events: readonly CoreV1Event[], kind: string, name: string): CoreV1Event[] {
  const time = (e: CoreV1Event): number => new Date(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? 0).getTime();
  return events.filter((e) => e.involvedObject.kind === kind && e.involvedObject.name === name).sort((a, b) => time(a) - time(b));
}

/** What one requested resource stands for, and who else wants it. */
function explainRequest(resource: string, count: number, pod: V1Pod, facts: ClusterFacts): string[] {
  const suffix = resource.slice(GROUP_PREFIX.length);
  const device = facts.devices.find((d) => d.metadata.name === suffix);
  const lines: string[] = [];
  if (device !== undefined) {
    lines.push(`It asks for ${count} × ${resource}: the device ${suffix}.`, `  ${describeDevice(device)}`);
  } else if (facts.discoveries.some((d) => d.metadata?.name === suffix)) {
    const of = facts.devices.filter((d) => d.spec.discovery === suffix);
    lines.push(
      `It asks for ${count} × ${resource}: any device of DeviceDiscovery ${suffix} (${of.length} device(s) now).`,
      ...of.map((d) => `  ${describeDevice(d)}`),
    );
  } else {
    lines.push(
      `It asks for ${count} × ${resource}, but no Device or DeviceDiscovery named ${suffix} exists in ${pod.metadata?.namespace ?? ''}: ` +
        'the device went away (offline past its grace period) or was never found, so no node offers this resource.',
    );
  }
  const others = podsUsing(resource, facts.pods, pod);
  if (others.length > 0) lines.push(`  Other pods asking for ${resource}: ${others.join(', ')}.`);
  return lines;
}

/** Why an unscheduled or refused pod is where it is. */
function placementLine(pod: V1Pod, facts: ClusterFacts): string | undefined {
  if (pod.spec?.nodeName === undefined) {
    const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    const failed = eventsAbout(facts.events, 'Pod', pod.metadata?.name ?? '')
      .filter((e) => e.reason === 'FailedScheduling')
      .at(-1);
    const why = failed?.message ?? scheduled?.message;
    return why === undefined ? 'It is not scheduled yet and the scheduler has not said why.' : `The scheduler says: ${why}`;
  }
  if (pod.status?.reason === 'UnexpectedAdmissionError') {
    return `Its node refused it: ${pod.status.message ?? 'the device plugin could not allocate'} (another node took the last slot first, or the device went away).`;
  }
  return undefined;
}

/** Why a pod is (not) running with its Tether devices. */
export function explainPod(pod: V1Pod, facts: ClusterFacts): string[] {
  const name = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
  const phase = pod.metadata?.deletionTimestamp ? 'Terminating' : (pod.status?.phase ?? 'Unknown');
  const lines = [`Pod ${name} is ${phase}${pod.spec?.nodeName ? ` on node ${pod.spec.nodeName}` : ''}.`];
  const wanted = tetherRequests(pod);
  if (wanted.size === 0) return [...lines, 'It asks for no Tether resource (no tether.dev/* in its containers’ requests or limits).'];
  for (const [resource, count] of wanted) lines.push(...explainRequest(resource, count, pod, facts));
  const placement = placementLine(pod, facts);
  return placement === undefined ? lines : [...lines, placement];
}

/** A device, and the pods that could use it. */
export function explainDevice(device: Device, facts: ClusterFacts): string[] {
  const lines = [describeDevice(device)];
  const props = Object.keys(device.spec.properties ?? {});
  lines.push(
    `Its containers get ${props.length} propert${props.length === 1 ? 'y' : 'ies'} as env vars${props.length > 0 ? `: ${props.sort().join(', ')}` : ''}.`,
  );
  const resource = `${GROUP_PREFIX}${device.metadata.name ?? ''}`;
  const users = podsUsing(resource, facts.pods, {});
  const viaDiscovery = podsUsing(`${GROUP_PREFIX}${device.spec.discovery}`, facts.pods, {});
  lines.push(users.length > 0 ? `Pods asking for it (${resource}): ${users.join(', ')}.` : `No pod asks for ${resource}.`);
  if (viaDiscovery.length > 0) lines.push(`Pods asking for any device of ${device.spec.discovery}: ${viaDiscovery.join(', ')}.`);
  const condition = device.status?.conditions?.find((c) => c.type === 'BrokersReady');
  if (condition !== undefined) lines.push(`Brokers: ${condition.message ?? condition.reason ?? condition.status}.`);
  return lines;
}

/** The discovery's last Warning events (agents' handler errors, the controller's problems). */
function warningLines(events: readonly CoreV1Event[], name: string): string[] {
  const warnings = eventsAbout(events, 'DeviceDiscovery', name).filter((e) => e.type === 'Warning');
  if (warnings.length === 0) return ['No warnings recorded.'];
  return ['Last warnings:', ...warnings.slice(-5).map((e) => `  ${e.reason ?? ''}: ${e.message ?? ''}`)];
}

/** A discovery: its devices, status, and what went wrong lately. */
export function explainDiscovery(discovery: DeviceDiscovery, facts: ClusterFacts): string[] {
  const name = discovery.metadata?.name ?? '';
  const devices = facts.devices.filter((d) => d.spec.discovery === name);
  const where = discovery.status?.nodes === undefined ? '' : ` on ${discovery.status.nodes} node(s)`;
  const lines = [`DeviceDiscovery ${discovery.metadata?.namespace ?? ''}/${name} runs the ${discovery.spec.handler} handler${where}.`];
  lines.push(
    devices.length === 0 ? 'It has found no device (yet).' : `It has ${devices.length} device(s):`,
    ...devices.map((d) => `  ${describeDevice(d)}`),
  );
  const reports = discovery.status?.nodeReports ?? [];
  if (reports.length > 0)
    lines.push('Nodes that cannot run it:', ...reports.map((r) => `  ${r.node}: ${r.reason}: ${r.message} (since ${r.since})`));
  const conditions = (discovery.status?.conditions ?? []).filter((c) => c.status !== 'True' || c.type !== 'Ready');
  lines.push(...conditions.map((c) => `Condition ${c.type}=${c.status}: ${c.reason ?? ''} ${c.message ?? ''}`.trimEnd()));
  return [...lines, ...warningLines(facts.events, name)];
}

/** Reads what an explanation needs from the cluster and explains `target` (`pod/x`, `device/x`, `discovery/x`). */
export async function gatherAndExplain(kc: KubeConfigSource, target: string, namespace: string): Promise<string[]> {
  const [kind = '', name = ''] = target.split('/');
  if (name === '' || !['pod', 'device', 'discovery', 'devicediscovery'].includes(kind)) {
    throw new Error(`expected pod/NAME, device/NAME or discovery/NAME, got ${JSON.stringify(target)}`);
  }
  const [{ KubeClient }, { Api, RESOURCES }] = await Promise.all([import('../../kube/client.ts'), import('../../kube/resources.ts')]);
  const api = new Api(new KubeClient(kc));
  // Plain JSON, as the apiserver sends it (timestamps stay strings; every reader here parses them).
  const [devices, discoveries, events, pods] = await Promise.all([
    api.list<Device>(RESOURCES.devices, { namespace }).then((r) => r.items),
    api.list<DeviceDiscovery>(RESOURCES.deviceDiscoveries, { namespace }).then((r) => r.items),
    api.list<CoreV1Event & KubeObject>(RESOURCES.coreEvents, { namespace }).then((r) => r.items),
    api.list<V1Pod & KubeObject>(RESOURCES.pods, { namespace }).then((r) => r.items),
  ]);
  const facts: ClusterFacts = { devices, discoveries, events, pods };
  const missing = (what: string): Error => new Error(`no ${what} ${name} in namespace ${namespace}`);
  if (kind === 'pod') {
    const pod = pods.find((p) => p.metadata?.name === name);
    if (pod === undefined) throw missing('pod');
    return explainPod(pod, facts);
  }
  if (kind === 'device') {
    const device = devices.find((d) => d.metadata.name === name);
    if (device === undefined) throw missing('Device');
    return explainDevice(device, facts);
  }
  const discovery = discoveries.find((d) => d.metadata?.name === name);
  if (discovery === undefined) throw missing('DeviceDiscovery');
  return explainDiscovery(discovery, facts);
}
