import { describe, expect, it } from 'vitest';
import { buildContainerResponse, PathConflictError } from './container-response.ts';

const serial: Parameters<typeof buildContainerResponse>[0][number] = {
  name: 'serials-00000000000000aa',
  properties: { port: '/dev/ttyUSB0' },
  mounts: [{ containerPath: '/etc/tether', hostPath: '/var/lib/tether/a', readOnly: true }],
  deviceNodes: [{ containerPath: '/dev/ttyUSB0', hostPath: '/dev/ttyUSB3', permissions: 'rw' }],
};

describe('buildContainerResponse', () => {
  it('maps mounts, device nodes, annotations and envs', () => {
    const response = buildContainerResponse([serial]);
    expect(response.mounts).toEqual([{ container_path: '/etc/tether', host_path: '/var/lib/tether/a', read_only: true }]);
    expect(response.devices).toEqual([{ container_path: '/dev/ttyUSB0', host_path: '/dev/ttyUSB3', permissions: 'rw' }]);
    expect(response.annotations).toEqual({ 'tether.dev/devices': 'serials-00000000000000aa' });
    expect(response.envs['PORT']).toBe('/dev/ttyUSB0');
    expect(response.cdi_devices).toEqual([]);
  });

  it('names CDI devices when a kind is configured', () => {
    expect(buildContainerResponse([serial], { cdiKind: 'tether.dev/device' }).cdi_devices).toEqual([
      { name: 'tether.dev/device=serials-00000000000000aa' },
    ]);
  });

  it('deduplicates identical paths and refuses conflicting ones', () => {
    const twin = { ...serial, name: 'serials-00000000000000bb' };
    expect(buildContainerResponse([serial, twin]).devices).toHaveLength(1);
    const clash = {
      ...twin,
      deviceNodes: [{ containerPath: '/dev/ttyUSB0', hostPath: '/dev/ttyUSB4', permissions: 'rw' }],
    };
    expect(() => buildContainerResponse([serial, clash])).toThrow(PathConflictError);
  });
});
