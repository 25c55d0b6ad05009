import { describe, expect, it } from 'vitest';
import { healthKey, healthReport } from './health.ts';

describe('healthReport', () => {
  const devices = [
    { name: 'cams-00000000000000b0', namespace: 'ns', discovery: 'cams', shared: false, online: false },
    { name: 'cams-00000000000000a0', namespace: 'ns', discovery: 'cams', shared: true, online: true },
  ];

  it('reports every device in its pool, online → HEALTHY, offline → UNHEALTHY', () => {
    const report = healthReport(devices, 'n1', 42);
    expect(report.devices.map((d) => [d.device?.pool_name, d.device?.device_name, d.health, d.last_updated_time])).toEqual([
      ['ns.cams', 'cams-00000000000000a0', 'HEALTHY', 42],
      ['ns.cams/n1', 'cams-00000000000000b0', 'UNHEALTHY', 42],
    ]);
  });

  it('keys ignore the time', () => {
    expect(healthKey(healthReport(devices, 'n1', 1))).toBe(healthKey(healthReport(devices, 'n1', 2)));
  });
});
