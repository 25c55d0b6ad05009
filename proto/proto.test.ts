/**
 * Guards the hand-written protos against accidental edits: the field numbers that make
 * them wire-compatible with the kubelet and with Akri handlers, checked from the parsed
 * .proto files, plus an encode/decode round trip through grpc's serializers.
 */
import { fileURLToPath } from 'node:url';
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { loadDevicePluginProtos } from './load.ts';

function fieldNumbers(file: string, message: string): Record<string, number> {
  const definition = loadSync(fileURLToPath(new URL(file, import.meta.url)), { keepCase: true });
  const type = definition[message] as { type?: { field: { name: string; number: number }[] } } | undefined;
  if (type?.type === undefined) throw new Error(`${message} not in ${file}`);
  return Object.fromEntries(type.type.field.map((f) => [f.name, f.number]));
}

describe('proto field numbers match upstream', () => {
  it.each([
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
  ])('%s %s', (file, message, expected) => {
    expect(fieldNumbers(file, message)).toEqual(expected);
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
