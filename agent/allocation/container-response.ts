/**
 * Builds the kubelet's ContainerAllocateResponse for the devices one container gets.
 * Pure: everything comes in as arguments.
 */
import type { ServedDevice } from '../device.ts';
import type { ContainerAllocateResponse, DeviceSpec, Mount } from '../../proto/types.ts';
import { containerEnv } from './env.ts';

/** What the response needs of a device (any name: the env suffix falls back to a hash). */
type Allocated = Pick<ServedDevice, 'properties' | 'mounts' | 'deviceNodes'> & { readonly name: string };

export interface ResponseOptions {
  /** CDI kind (`vendor/class`); when set, each device is also named as `<kind>=<device name>`. */
  readonly cdiKind?: string;
}

/** Two devices want different host paths at one container path. */
export class PathConflictError extends Error {
  constructor(containerPath: string, first: string, second: string) {
    super(`container path ${containerPath} is wanted for both ${first} and ${second}`);
    this.name = 'PathConflictError';
  }
}

export const DEVICES_ANNOTATION = 'tether.dev/devices';

function mergeByContainerPath<T extends { container_path: string; host_path: string }>(items: readonly T[]): T[] {
  const byPath = new Map<string, T>();
  for (const item of items) {
    const existing = byPath.get(item.container_path);
    if (existing === undefined) byPath.set(item.container_path, item);
    else if (existing.host_path !== item.host_path) {
      throw new PathConflictError(item.container_path, existing.host_path, item.host_path);
    }
  }
  return [...byPath.values()];
}

/** Env vars, mounts, device nodes, annotations and CDI names for one container. */
export function buildContainerResponse(devices: readonly Allocated[], options: ResponseOptions = {}): ContainerAllocateResponse {
  const distinct = [...new Map(devices.map((d) => [d.name, d])).values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const mounts: Mount[] = distinct.flatMap((d) =>
    d.mounts.map((m) => ({ container_path: m.containerPath, host_path: m.hostPath, read_only: m.readOnly })),
  );
  const nodes: DeviceSpec[] = distinct.flatMap((d) =>
    d.deviceNodes.map((n) => ({ container_path: n.containerPath, host_path: n.hostPath, permissions: n.permissions })),
  );
  return {
    envs: containerEnv(distinct),
    mounts: mergeByContainerPath(mounts),
    devices: mergeByContainerPath(nodes),
    annotations: { [DEVICES_ANNOTATION]: distinct.map((d) => d.name).join(',') },
    cdi_devices: options.cdiKind === undefined ? [] : distinct.map((d) => ({ name: `${options.cdiKind}=${d.name}` })),
  };
}
