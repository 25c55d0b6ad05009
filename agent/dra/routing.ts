/**
 * Which served devices go to the kubelet through DRA instead of the device plugins: pure, and
 * the only part of agent/dra/ the node runtime imports statically (no gRPC, no protos), so an
 * agent without `--dra` loads nothing else of the DRA backend.
 */
import { deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import type { ServedDevice } from '../device.ts';

/**
 * The DRA backend as the node runtime sees it. The runtime calls both methods from its plugin
 * sync (serially), after every change of the served devices.
 */
export interface DraDeviceRouting {
  /** Whether the discovery `namespace/discovery` is served through DRA (`spec.backend: DRA`). */
  isDra(namespace: string, discovery: string): boolean;
  /** Every device of a DRA discovery this node serves now (replaces the previous set). */
  setDevices(devices: readonly ServedDevice[]): void;
}

/**
 * Splits the device plugins' desired resources: the devices of DRA discoveries, and the
 * resources left for the device plugins — without each DRA device's own resource and its
 * discovery's resource, which the DeviceClass's extended resource name stands for on a DRA
 * node (the scheduler serves `tether.dev/<discovery>` through DRA only where no device plugin
 * advertises it).
 */
export function splitDraDevices<T>(
  resources: ReadonlyMap<string, T>,
  devices: readonly ServedDevice[],
  isDra: (namespace: string, discovery: string) => boolean,
): { readonly dra: ServedDevice[]; readonly plugins: ReadonlyMap<string, T> } {
  const dra = devices.filter((d) => isDra(d.namespace, d.discovery));
  if (dra.length === 0) return { dra, plugins: resources };
  const drop = new Set<string>();
  for (const device of dra) {
    drop.add(deviceResourceName(device.name));
    drop.add(discoveryResourceName(device.discovery));
  }
  return { dra, plugins: new Map([...resources].filter(([name]) => !drop.has(name))) };
}
