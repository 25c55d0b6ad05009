/**
 * Errors shared by the Kubernetes edge and the pure core. Kept apart from devices-api.ts so
 * code that only needs the error type does not load @kubernetes/client-node (tens of MiB).
 */

/** A server-side apply refused because another field manager owns a field with another value. */
export class ApplyConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ApplyConflictError';
  }
}
