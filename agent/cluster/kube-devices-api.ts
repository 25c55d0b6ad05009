/**
 * The Kubernetes calls the agent makes on Device objects — the only place it writes them.
 * Server-side apply for everything; delete only with a resourceVersion precondition so a
 * node that just joined is never deleted out from under.
 */
import type { Device } from '../../api/schema.ts';
import { isApiError } from '../../kube/client.ts';
import { RESOURCES, type Api } from '../../kube/resources.ts';
import { ApplyConflictError, type DevicesApi } from '../publish/devices-api.ts';

export type WriteKind = 'apply' | 'status' | 'delete';

export class KubeDevicesApi implements DevicesApi {
  readonly #api: Api;
  readonly #onWrite: (kind: WriteKind) => void;
  /** Writes issued, by kind, for metrics and benchmarks. */
  readonly writes: Record<WriteKind, number> = { apply: 0, status: 0, delete: 0 };

  constructor(api: Api, onWrite: (kind: WriteKind) => void = () => undefined) {
    this.#api = api;
    this.#onWrite = onWrite;
  }

  #count(kind: WriteKind): void {
    this.writes[kind]++;
    this.#onWrite(kind);
  }

  async apply(body: Record<string, unknown>, fieldManager: string, force: boolean): Promise<Device> {
    this.#count('apply');
    const { name, namespace } = body['metadata'] as { name: string; namespace: string };
    try {
      return await this.#api.apply<Device>(RESOURCES.devices, body, { fieldManager, force });
    } catch (error) {
      if (isApiError(error, 409)) throw new ApplyConflictError(`apply of Device ${namespace}/${name} conflicted`, { cause: error });
      throw new Error(`applying Device ${namespace}/${name} as ${fieldManager}`, { cause: error });
    }
  }

  async applyStatus(body: Record<string, unknown>, fieldManager: string): Promise<Device> {
    this.#count('status');
    const { name, namespace } = body['metadata'] as { name: string; namespace: string };
    try {
      return await this.#api.apply<Device>(RESOURCES.devices, body, { fieldManager, force: true, subresource: 'status' });
    } catch (error) {
      throw new Error(`applying Device ${namespace}/${name} status as ${fieldManager}`, { cause: error });
    }
  }

  /**
   * Reads one Device by a list with a name field selector: the agent's RBAC grants list and
   * watch on Devices, not get (a get here was refused with 403 under the chart's role).
   */
  async get(namespace: string, name: string): Promise<Device | undefined> {
    try {
      const list = await this.#api.list<Device>(RESOURCES.devices, { namespace, fieldSelector: `metadata.name=${name}` });
      return list.items[0];
    } catch (error) {
      throw new Error(`reading Device ${namespace}/${name}`, { cause: error });
    }
  }

  async deleteIfUnchanged(namespace: string, name: string, resourceVersion: string): Promise<boolean> {
    this.#count('delete');
    try {
      await this.#api.delete(RESOURCES.devices, namespace, name, { preconditions: { resourceVersion } });
      return true;
    } catch (error) {
      if (isApiError(error, 409, 404)) return false;
      throw new Error(`deleting Device ${namespace}/${name}`, { cause: error });
    }
  }
}
