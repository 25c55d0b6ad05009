/**
 * The resource types the controller and the agent read and write, and the typed operations on
 * them. Every write either makes goes through `Api` (so it is counted and easy to audit).
 */
import { CONTROLLER_FIELD_MANAGER } from '../api/field-managers.ts';
import { API_GROUP, API_VERSION_NAME } from '../api/group.ts';
import { apiVersionOf, collectionPath, objectPath, type KubeClient, type KubeList, type KubeObject, type ResourceType } from './client.ts';

export const RESOURCES = {
  deviceDiscoveries: {
    group: API_GROUP,
    version: API_VERSION_NAME,
    plural: 'devicediscoveries',
    kind: 'DeviceDiscovery',
    namespaced: true,
  },
  devices: { group: API_GROUP, version: API_VERSION_NAME, plural: 'devices', kind: 'Device', namespaced: true },
  pods: { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  services: { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true },
  nodes: { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false },
  jobs: { group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job', namespaced: true },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  events: { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  /** core/v1 Events (what the agent records about DeviceDiscoveries). */
  coreEvents: { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  secrets: { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  configMaps: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  // Dynamic Resource Allocation (docs/dra.md).
  resourceSlices: { group: 'resource.k8s.io', version: 'v1', plural: 'resourceslices', kind: 'ResourceSlice', namespaced: false },
  deviceClasses: { group: 'resource.k8s.io', version: 'v1', plural: 'deviceclasses', kind: 'DeviceClass', namespaced: false },
  /** Read by the agent's DRA kubelet plugin when it prepares a claim (agent/dra/). */
  resourceClaims: { group: 'resource.k8s.io', version: 'v1', plural: 'resourceclaims', kind: 'ResourceClaim', namespaced: true },
  resourceClaimTemplates: {
    group: 'resource.k8s.io',
    version: 'v1',
    plural: 'resourceclaimtemplates',
    kind: 'ResourceClaimTemplate',
    namespaced: true,
  },
} as const satisfies Record<string, ResourceType>;

/** Field manager of every object (and status) the controller applies. */

const APPLY_PATCH = 'application/apply-patch+yaml';

/** Options of a delete. */
export interface DeleteOptions {
  readonly propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  readonly gracePeriodSeconds?: number;
  /** Only delete while the object still has this uid / resourceVersion. */
  readonly preconditions?: { uid?: string; resourceVersion?: string };
}

/** Typed operations over a `KubeClient`. Stateless. */
export class Api {
  readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  /** Lists every page (500 per request). */
  async list<T extends KubeObject>(
    type: ResourceType,
    options: { namespace?: string; labelSelector?: string; fieldSelector?: string; signal?: AbortSignal } = {},
  ): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.client.request<KubeList<T>>('GET', collectionPath(type, options.namespace), {
        verb: 'list',
        resource: type.plural,
        query: { limit: 500, continue: cont, labelSelector: options.labelSelector, fieldSelector: options.fieldSelector },
        signal: options.signal,
      });
      items.push(...page.items);
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion;
    } while (cont !== undefined);
    return { metadata: { resourceVersion }, items };
  }

  get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<T> {
    return this.client.request<T>('GET', objectPath(type, namespace, name), { verb: 'get', resource: type.plural, signal });
  }

  create<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    body: T,
    signal?: AbortSignal,
    fieldManager = CONTROLLER_FIELD_MANAGER,
  ): Promise<T> {
    const object = { apiVersion: apiVersionOf(type), kind: type.kind, ...body };
    return this.client.request<T>('POST', collectionPath(type, namespace), {
      verb: 'create',
      resource: type.plural,
      body: object,
      query: { fieldManager },
      signal,
    });
  }

  /** Replaces (PUT) an object; optimistic concurrency through metadata.resourceVersion. */
  replace<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    body: T,
    signal?: AbortSignal,
  ): Promise<T> {
    return this.client.request<T>('PUT', objectPath(type, namespace, name), {
      verb: 'update',
      resource: type.plural,
      body: { apiVersion: apiVersionOf(type), kind: type.kind, ...body },
      query: { fieldManager: CONTROLLER_FIELD_MANAGER },
      signal,
    });
  }

  async delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
    signal?: AbortSignal,
  ): Promise<void> {
    await this.client.request<unknown>('DELETE', objectPath(type, namespace, name), {
      verb: 'delete',
      resource: type.plural,
      body: { apiVersion: 'v1', kind: 'DeleteOptions', ...options },
      signal,
    });
  }

  /**
   * Server-side apply of `body` (which must carry apiVersion, kind, metadata.name) as
   * `fieldManager`. `subresource` 'status' applies the status.
   */
  apply<T extends KubeObject>(
    type: ResourceType,
    body: KubeObject,
    options: { fieldManager: string; force: boolean; subresource?: 'status'; signal?: AbortSignal },
  ): Promise<T> {
    const name = body.metadata?.name ?? '';
    return this.client.request<T>('PATCH', objectPath(type, body.metadata?.namespace, name, options.subresource), {
      verb: 'apply',
      resource: options.subresource === undefined ? type.plural : `${type.plural}/${options.subresource}`,
      body,
      contentType: APPLY_PATCH,
      query: { fieldManager: options.fieldManager, force: options.force },
      signal: options.signal,
    });
  }

  /** Evicts a pod through the Eviction API (honours PodDisruptionBudgets: 429 when refused). */
  async evict(namespace: string, name: string, signal?: AbortSignal): Promise<void> {
    await this.client.request<unknown>('POST', objectPath(RESOURCES.pods, namespace, name, 'eviction'), {
      verb: 'create',
      resource: 'pods/eviction',
      body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } },
      signal,
    });
  }
}
