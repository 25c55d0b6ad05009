/**
 * The CDI spec builder: a container that gets a claim's CDI devices ends up with exactly the
 * env vars, device nodes and mounts the device plugin's Allocate gives for the same devices.
 */
import { describe, expect, it } from 'vitest';
import { deviceName } from '../../api/names.ts';
import { buildContainerResponse, PathConflictError } from '../allocation/container-response.ts';
import { buildCdiSpec, cdiDeviceId, type CdiDeviceSource, type CdiSpec } from './cdi-spec.ts';

const UID = '0b0c6f6e-2d8a-4c1e-9a55-7f3e2b1c9d00';

function device(id: string, properties: Record<string, string>, extra: Partial<CdiDeviceSource> = {}): CdiDeviceSource {
  return { name: deviceName({ namespace: 'ns', discovery: 'cams', deviceId: id }), properties, mounts: [], deviceNodes: [], ...extra };
}

/** What a runtime injecting every device of the spec sets: spec-wide edits plus each device's. */
function injectedEnv(spec: CdiSpec): Record<string, string> {
  const lines = [...(spec.containerEdits?.env ?? []), ...spec.devices.flatMap((d) => d.containerEdits.env ?? [])];
  return Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

describe('buildCdiSpec', () => {
  const a = device(
    'a',
    { 'onvif.ip': '10.0.0.1', description: 'front\ndoor' },
    { deviceNodes: [{ containerPath: '/dev/video0', hostPath: '/dev/video3', permissions: 'rw' }] },
  );
  const b = device('b', { 'onvif.ip': '10.0.0.2' }, { mounts: [{ containerPath: '/etc/cam', hostPath: '/srv/cam', readOnly: true }] });

  it.each([
    ['one device', [a]],
    ['two devices', [a, b]],
  ])('%s: the env is the device plugin env, exactly', (_what, devices) => {
    expect(injectedEnv(buildCdiSpec(UID, devices))).toEqual(buildContainerResponse(devices).envs);
  });

  it('lays the spec out: version, kind, one named device per device, nodes and mounts per device', () => {
    const spec = buildCdiSpec(UID, [b, a]);
    expect(spec.cdiVersion).toBe('0.6.0');
    expect(spec.kind).toBe('tether.dev/device');
    expect(spec.devices.map((d) => `tether.dev/device=${d.name}`)).toEqual([a, b].map((d) => cdiDeviceId(UID, d.name)));
    expect(spec.devices[0]!.containerEdits).toEqual({
      env: expect.arrayContaining([expect.stringMatching(/^ONVIF_IP_[0-9A-F]{16}=10\.0\.0\.1$/)]) as unknown,
      deviceNodes: [{ path: '/dev/video0', hostPath: '/dev/video3', permissions: 'rw' }],
    });
    expect(spec.devices[1]!.containerEdits.mounts).toEqual([
      { hostPath: '/srv/cam', containerPath: '/etc/cam', type: 'bind', options: ['rbind', 'ro'] },
    ]);
    expect(spec.containerEdits?.env).toEqual([`TETHER_DEVICES=${[a.name, b.name].join(',')}`]);
  });

  it('puts the plain names of a one-device claim in the spec-wide edits', () => {
    expect(buildCdiSpec(UID, [a]).containerEdits?.env).toEqual([
      'DESCRIPTION=front\\ndoor',
      'ONVIF_IP=10.0.0.1',
      `TETHER_DEVICES=${a.name}`,
    ]);
  });

  it('refuses devices that want one container path for different host paths, as Allocate does', () => {
    const c = device('c', {}, { deviceNodes: [{ containerPath: '/dev/video0', hostPath: '/dev/video9', permissions: 'rw' }] });
    expect(() => buildCdiSpec(UID, [a, c])).toThrow(PathConflictError);
  });
});
