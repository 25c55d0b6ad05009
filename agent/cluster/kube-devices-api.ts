/**
 * The Kubernetes calls the agent makes on Device objects — the only place it writes to the
 * apiserver. Server-side apply for everything; delete only with a resourceVersion
 * precondition so a node that just joined is never deleted out from under.
 */
import { ApiException, PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION_NAME, type Device } from '../../api/schema.ts';
import { ApplyConflictError } from './errors.ts';

export { ApplyConflictError };

export const DEVICES_PLURAL = 'devices';

/** The writes, as an interface so the publisher can be tested without a cluster. */
export interface DevicesApi {
  apply(body: Record<string, unknown>, fieldManager: string, force: boolean): Promise<Device>;
  applyStatus(body: Record<string, unknown>, fieldManager: string): Promise<Device>;
  /** Deletes if the object is still at `resourceVersion`; false if it changed or is gone. */
  deleteIfUnchanged(namespace: string, name: string, resourceVersion: string): Promise<boolean>;
  /** Reads one Device; undefined when it does not exist. */
  get(namespace: string, name: string): Promise<Device | undefined>;
}

function code(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

export type WriteKind = 'apply' | 'status' | 'delete';

export class KubeDevicesApi implements DevicesApi {
  readonly #custom: CustomObjectsApi;
  readonly #onWrite: (kind: WriteKind) => void;
  /** Writes issued, by kind, for metrics and benchmarks. */
  readonly writes: Record<WriteKind, number> = { apply: 0, status: 0, delete: 0 };

  constructor(custom: CustomObjectsApi, onWrite: (kind: WriteKind) => void = () => undefined) {
    this.#custom = custom;
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
      const result: unknown = await this.#custom.patchNamespacedCustomObject(
        { group: API_GROUP, version: API_VERSION_NAME, plural: DEVICES_PLURAL, namespace, name, body, fieldManager, force },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
      return result as Device;
    } catch (error) {
      if (code(error) === 409) throw new ApplyConflictError(`apply of Device ${namespace}/${name} conflicted`, { cause: error });
      throw new Error(`applying Device ${namespace}/${name} as ${fieldManager}`, { cause: error });
    }
  }

  async applyStatus(body: Record<string, unknown>, fieldManager: string): Promise<Device> {
    this.#count('status');
    const { name, namespace } = body['metadata'] as { name: string; namespace: string };
    try {
      const result: unknown = await this.#custom.patchNamespacedCustomObjectStatus(
        { group: API_GROUP, version: API_VERSION_NAME, plural: DEVICES_PLURAL, namespace, name, body, fieldManager, force: true },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
      return result as Device;
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
      const result = (await this.#custom.listNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION_NAME,
        plural: DEVICES_PLURAL,
        namespace,
        fieldSelector: `metadata.name=${name}`,
      })) as { items?: Device[] };
      return result.items?.[0];
    } catch (error) {
      throw new Error(`reading Device ${namespace}/${name}`, { cause: error });
    }
  }

  async deleteIfUnchanged(namespace: string, name: string, resourceVersion: string): Promise<boolean> {
    this.#count('delete');
    try {
      await this.#custom.deleteNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION_NAME,
        plural: DEVICES_PLURAL,
        namespace,
        name,
        body: { preconditions: { resourceVersion } },
      });
      return true;
    } catch (error) {
      if (code(error) === 409 || code(error) === 404) return false;
      throw new Error(`deleting Device ${namespace}/${name}`, { cause: error });
    }
  }
}
