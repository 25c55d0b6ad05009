/**
 * The writes the publisher makes on Device objects, as an interface: the cluster implements
 * it over the apiserver (agent/cluster/kube-devices-api.ts), tests with an in-memory fake.
 * Kept apart from the implementation so the pure core never loads a Kubernetes client.
 */
import type { Device } from '../../api/schema.ts';

/** A server-side apply refused because another field manager owns a field with another value. */
export class ApplyConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ApplyConflictError';
  }
}

/** Called by the publisher, concurrently for different devices; errors reject the call. */
export interface DevicesApi {
  /** Server-side apply; rejects with ApplyConflictError on a 409 (another manager owns a field). */
  apply(body: Record<string, unknown>, fieldManager: string, force: boolean): Promise<Device>;
  applyStatus(body: Record<string, unknown>, fieldManager: string): Promise<Device>;
  /** Deletes if the object is still at `resourceVersion`; false if it changed or is gone. */
  deleteIfUnchanged(namespace: string, name: string, resourceVersion: string): Promise<boolean>;
  /** Reads one Device; undefined when it does not exist. */
  get(namespace: string, name: string): Promise<Device | undefined>;
}
