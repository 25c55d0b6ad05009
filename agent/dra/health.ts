/**
 * What `DRAResourceHealth.NodeWatchResources` tells the kubelet: pure.
 *
 * The kubelet treats each message as the health of every device the plugin reports, and a
 * device left out as Unknown once its timeout passes, so every message is the full list. Health
 * comes from the same online/offline state the device plugin's ListAndWatch reports.
 */
import { draDeviceName, draDevicePool } from '../../api/dra-names.ts';
import type { DeviceName } from '../../api/names.ts';
import type { ServedDevice } from '../device.ts';
import type { DraDeviceHealth, NodeWatchResourcesResponse } from '../../proto/types.ts';

/** The health message for `devices` served by `node`, sorted by pool and device. */
export function healthReport(
  devices: readonly (Pick<ServedDevice, 'namespace' | 'discovery' | 'shared' | 'online'> & { readonly name: string })[],
  node: string,
  nowSeconds: number,
): NodeWatchResourcesResponse {
  const entries: DraDeviceHealth[] = devices.map((d) => ({
    device: { pool_name: draDevicePool(d, node), device_name: draDeviceName(d.name as DeviceName) },
    health: d.online ? 'HEALTHY' : 'UNHEALTHY',
    last_updated_time: nowSeconds,
    health_check_timeout_seconds: 0,
    message: d.online ? '' : 'Device is offline: its discovery handler no longer reports it',
  }));
  entries.sort((a, b) => {
    const ka = `${a.device?.pool_name}/${a.device?.device_name}`;
    const kb = `${b.device?.pool_name}/${b.device?.device_name}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  return { devices: entries };
}

/** Identity of a report for change detection (ignores timestamps). */
export function healthKey(report: NodeWatchResourcesResponse): string {
  return report.devices.map((d) => `${d.device?.pool_name}/${d.device?.device_name}=${d.health}`).join('\n');
}
