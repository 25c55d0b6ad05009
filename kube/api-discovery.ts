/**
 * API discovery: which resource (group, version, plural, scope) serves a kind, from the
 * apiserver's resource list of its group-version (`/api/v1`, `/apis/<group>/<version>`).
 *
 * Lists are cached per group-version; a kind missing from a cached list is looked up again
 * once the list is older than `refreshMs` (a CRD installed later is found). Only what the
 * apiserver answered is cached: a failed request is asked again next time.
 */
import { isApiError, type KubeClient, type ResourceType } from './client.ts';

/** The kind is not served (unknown group-version or kind, or not namespaced). Terminal until the cluster changes. */
export class UnknownKindError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UnknownKindError';
  }
}

interface ApiResource {
  readonly name: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly verbs?: readonly string[];
}

interface ResourceList {
  readonly resources?: readonly ApiResource[];
}

export class ApiResources {
  readonly #client: KubeClient;
  readonly #refreshMs: number;
  readonly #lists = new Map<string, { at: number; list: ResourceList | undefined }>();
  readonly #now: () => number;

  constructor(client: KubeClient, options: { refreshMs?: number; now?: () => number } = {}) {
    this.#client = client;
    this.#refreshMs = options.refreshMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The namespaced resource serving `kind` in `apiVersion`. Throws `UnknownKindError` when the
   * apiserver does not serve it (or serves it cluster-scoped), anything else when it could not
   * be asked.
   */
  async resolve(apiVersion: string, kind: string, signal?: AbortSignal): Promise<ResourceType> {
    const slash = apiVersion.indexOf('/');
    const group = slash < 0 ? '' : apiVersion.slice(0, slash);
    const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
    let cached = this.#lists.get(apiVersion);
    if (cached === undefined || (find(cached.list, kind) === undefined && this.#now() - cached.at >= this.#refreshMs)) {
      cached = { at: this.#now(), list: await this.#fetch(group, version, signal) };
      this.#lists.set(apiVersion, cached);
    }
    const found = find(cached.list, kind);
    if (cached.list === undefined) throw new UnknownKindError(`the apiserver serves no ${apiVersion} (no such group-version)`);
    if (found === undefined) throw new UnknownKindError(`the apiserver serves no kind ${kind} in ${apiVersion}`);
    if (!found.namespaced) throw new UnknownKindError(`${kind} (${apiVersion}) is cluster-scoped; brokers must be namespaced`);
    return { group, version, plural: found.name, kind, namespaced: true };
  }

  async #fetch(group: string, version: string, signal?: AbortSignal): Promise<ResourceList | undefined> {
    const path = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
    try {
      return await this.#client.request<ResourceList>('GET', path, { verb: 'get', resource: 'discovery', signal });
    } catch (error) {
      if (isApiError(error, 404)) return undefined;
      throw new Error(`reading the API resources of ${path}`, { cause: error });
    }
  }
}

function find(list: ResourceList | undefined, kind: string): ApiResource | undefined {
  // Subresources (`deployments/scale`) share kinds of other types: only top-level resources.
  return list?.resources?.find((r) => r.kind === kind && !r.name.includes('/'));
}
