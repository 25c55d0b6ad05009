/**
 * Guards the hand-written protos against accidental edits: the field numbers that make
 * them wire-compatible with the kubelet and with Akri handlers, checked from the parsed
 * .proto files, plus an encode/decode round trip through grpc's serializers.
 */
import { fileURLToPath } from 'node:url';
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { loadDevicePluginProtos, loadDraProtos } from './load.ts';

function fieldNumbers(file: string, message: string): Record<string, number> {
  const definition = loadSync(fileURLToPath(new URL(file, import.meta.url)), { keepCase: true });
  const type = definition[message] as { type?: { field: { name: string; number: number }[] } } | undefined;
  if (type?.type === undefined) throw new Error(`${message} not in ${file}`);
  return Object.fromEntries(type.type.field.map((f) => [f.name, f.number]));
}

type FieldCase = [file: string, message: string, fields: Record<string, number>];

describe('proto field numbers match upstream', () => {
  it.each<FieldCase>([
    ['./deviceplugin-v1beta1.proto', 'v1beta1.RegisterRequest', { version: 1, endpoint: 2, resource_name: 3, options: 4 }],
    ['./deviceplugin-v1beta1.proto', 'v1beta1.DevicePluginOptions', { pre_start_required: 1, get_preferred_allocation_available: 2 }],
    ['./deviceplugin-v1beta1.proto', 'v1beta1.Device', { ID: 1, health: 2, topology: 3 }],
    [
      './deviceplugin-v1beta1.proto',
      'v1beta1.ContainerPreferredAllocationRequest',
      { available_deviceIDs: 1, must_include_deviceIDs: 2, allocation_size: 3 },
    ],
    [
      './deviceplugin-v1beta1.proto',
      'v1beta1.ContainerAllocateResponse',
      { envs: 1, mounts: 2, devices: 3, annotations: 4, cdi_devices: 5 },
    ],
    ['./deviceplugin-v1beta1.proto', 'v1beta1.Mount', { container_path: 1, host_path: 2, read_only: 3 }],
    ['./deviceplugin-v1beta1.proto', 'v1beta1.DeviceSpec', { container_path: 1, host_path: 2, permissions: 3 }],
    ['./podresources-v1.proto', 'v1.PodResources', { name: 1, namespace: 2, containers: 3, cpu_ids: 4, memory: 5 }],
    ['./podresources-v1.proto', 'v1.ContainerResources', { name: 1, devices: 2, cpu_ids: 3, memory: 4, dynamic_resources: 5 }],
    ['./podresources-v1.proto', 'v1.ContainerDevices', { resource_name: 1, device_ids: 2, topology: 3 }],
    ['./podresources-v1.proto', 'v1.AllocatableResourcesResponse', { devices: 1, cpu_ids: 2, memory: 3 }],
    ['./podresources-v1.proto', 'v1.DynamicResource', { claim_name: 2, claim_namespace: 3, claim_resources: 4 }],
    ['./discovery-v0.proto', 'v0.RegisterDiscoveryHandlerRequest', { name: 1, endpoint: 2, endpoint_type: 3, shared: 4 }],
    ['./discovery-v0.proto', 'v0.DiscoverRequest', { discovery_details: 1, discovery_properties: 2 }],
    ['./discovery-v0.proto', 'v0.Device', { id: 1, properties: 2, mounts: 3, device_specs: 4 }],
    ['./pluginregistration-v1.proto', 'pluginregistration.PluginInfo', { type: 1, name: 2, endpoint: 3, supported_versions: 4 }],
    ['./pluginregistration-v1.proto', 'pluginregistration.RegistrationStatus', { plugin_registered: 1, error: 2 }],
    ...(['v1', 'v1beta1'] as const).flatMap((v) => {
      const file = `./dra-${v}.proto`;
      const pkg = `k8s.io.kubelet.pkg.apis.dra.${v}`;
      const device = { request_names: 1, pool_name: 2, device_name: 3, cdi_device_ids: 4, ...(v === 'v1' ? { share_id: 5 } : {}) };
      return [
        [file, `${pkg}.Claim`, { namespace: 1, uid: 2, name: 3 }],
        [file, `${pkg}.NodePrepareResourcesRequest`, { claims: 1 }],
        [file, `${pkg}.NodePrepareResourcesResponse`, { claims: 1 }],
        [file, `${pkg}.NodePrepareResourceResponse`, { devices: 1, error: 2 }],
        [file, `${pkg}.Device`, device],
        [file, `${pkg}.NodeUnprepareResourcesRequest`, { claims: 1 }],
        [file, `${pkg}.NodeUnprepareResourcesResponse`, { claims: 1 }],
        [file, `${pkg}.NodeUnprepareResourceResponse`, { error: 1 }],
      ] satisfies FieldCase[];
    }),
    ...(['v1', 'v1alpha1'] as const).flatMap((v): FieldCase[] => [
      [`./dra-health-${v}.proto`, `${v}.DeviceIdentifier`, { pool_name: 1, device_name: 2 }],
      [
        `./dra-health-${v}.proto`,
        `${v}.DeviceHealth`,
        { device: 1, health: 2, last_updated_time: 3, health_check_timeout_seconds: 4, message: 5 },
      ],
      [`./dra-health-${v}.proto`, `${v}.NodeWatchResourcesResponse`, { devices: 1 }],
    ]),
  ])('%s %s', (file, message, expected) => {
    expect(fieldNumbers(file, message)).toEqual(expected);
  });
});

describe('DRA protos', () => {
  it('serve the kubelet v1.37.2 gRPC service names', () => {
    const protos = loadDraProtos();
    const names = [
      protos.Registration.service['GetInfo']?.path,
      protos.DRAPlugin.v1.service['NodePrepareResources']?.path,
      protos.DRAPlugin.v1beta1.service['NodeUnprepareResources']?.path,
      protos.DRAResourceHealth.v1.service['NodeWatchResources']?.path,
      protos.DRAResourceHealth.v1alpha1.service['NodeWatchResources']?.path,
    ];
    expect(names).toEqual([
      '/pluginregistration.Registration/GetInfo',
      '/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources',
      '/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodeUnprepareResources',
      '/v1.DRAResourceHealth/NodeWatchResources',
      '/v1alpha1.DRAResourceHealth/NodeWatchResources',
    ]);
  });

  it('health enum encodes as upstream numbers', () => {
    const method = loadDraProtos().DRAResourceHealth.v1.service['NodeWatchResources']!;
    const bytes = method.responseSerialize({ devices: [{ device: { pool_name: 'p', device_name: 'd' }, health: 'UNHEALTHY' }] });
    // field 1 (devices) → field 2 (health) varint 2
    expect(Buffer.from(bytes).includes(Buffer.from([0x10, 0x02]))).toBe(true);
  });
});

describe('wire round trip', () => {
  it('ContainerAllocateResponse survives serialisation', () => {
    const method = loadDevicePluginProtos().DevicePlugin.service['Allocate']!;
    const response = {
      container_responses: [
        {
          envs: { A: '1' },
          mounts: [{ container_path: '/c', host_path: '/h', read_only: true }],
          devices: [{ container_path: '/dev/x', host_path: '/dev/y', permissions: 'rw' }],
          annotations: { 'tether.dev/devices': 'd' },
          cdi_devices: [{ name: 'tether.dev/device=d' }],
        },
      ],
    };
    expect(method.responseDeserialize(method.responseSerialize(response))).toEqual(response);
  });
});
