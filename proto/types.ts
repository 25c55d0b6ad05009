/**
 * Wire types of the protos in this folder, as @grpc/proto-loader decodes them
 * (keepCase, defaults filled in). Kept by hand beside the .proto files; the
 * tests in proto.test.ts round-trip every message so a mismatch fails there.
 */

// ---- kubelet device plugin v1beta1 -------------------------------------------------

export type Health = 'Healthy' | 'Unhealthy';
export const DEVICE_PLUGIN_API_VERSION = 'v1beta1';

export type Empty = Record<string, never>;

export interface DevicePluginOptions {
  pre_start_required: boolean;
  get_preferred_allocation_available: boolean;
}

export interface RegisterRequest {
  version: string;
  endpoint: string;
  resource_name: string;
  options: DevicePluginOptions | null;
}

export interface NUMANode {
  ID: number;
}

export interface TopologyInfo {
  nodes: NUMANode[];
}

export interface PluginDevice {
  ID: string;
  health: Health;
  topology?: TopologyInfo | null;
}

export interface ListAndWatchResponse {
  devices: PluginDevice[];
}

export interface ContainerPreferredAllocationRequest {
  available_deviceIDs: string[];
  must_include_deviceIDs: string[];
  allocation_size: number;
}

export interface PreferredAllocationRequest {
  container_requests: ContainerPreferredAllocationRequest[];
}

export interface PreferredAllocationResponse {
  container_responses: { deviceIDs: string[] }[];
}

export interface ContainerAllocateRequest {
  devices_ids: string[];
}

export interface AllocateRequest {
  container_requests: ContainerAllocateRequest[];
}

export interface Mount {
  container_path: string;
  host_path: string;
  read_only: boolean;
}

export interface DeviceSpec {
  container_path: string;
  host_path: string;
  permissions: string;
}

export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: Mount[];
  devices: DeviceSpec[];
  annotations: Record<string, string>;
  cdi_devices: { name: string }[];
}

export interface AllocateResponse {
  container_responses: ContainerAllocateResponse[];
}

export interface PreStartContainerRequest {
  devices_ids: string[];
}

// ---- kubelet PodResources v1 -------------------------------------------------------

export interface ContainerDevices {
  resource_name: string;
  device_ids: string[];
  topology?: TopologyInfo | null;
}

export interface ContainerResources {
  name: string;
  devices: ContainerDevices[];
  cpu_ids: number[];
  memory: unknown[];
  dynamic_resources: unknown[];
}

export interface PodResources {
  name: string;
  namespace: string;
  containers: ContainerResources[];
  cpu_ids?: number[];
  memory?: unknown[];
}

export interface ListPodResourcesResponse {
  pod_resources: PodResources[];
}

export interface AllocatableResourcesResponse {
  devices: ContainerDevices[];
  cpu_ids: number[];
  memory: unknown[];
}

export interface GetPodResourcesRequest {
  pod_name: string;
  pod_namespace: string;
}

export interface GetPodResourcesResponse {
  pod_resources: PodResources | null;
}

// ---- Akri discovery v0 --------------------------------------------------------------

export type EndpointType = 'UDS' | 'NETWORK';

export interface RegisterDiscoveryHandlerRequest {
  name: string;
  endpoint: string;
  endpoint_type: EndpointType;
  shared: boolean;
}

export interface DiscoverRequest {
  discovery_details: string;
  discovery_properties: Record<string, { vec?: Buffer | null }>;
}

export interface AkriDevice {
  id: string;
  properties: Record<string, string>;
  mounts: Mount[];
  device_specs: DeviceSpec[];
}

export interface DiscoverResponse {
  devices: AkriDevice[];
}

// ---- kubelet plugin registration v1 + DRA (DRAPlugin v1/v1beta1, DRAResourceHealth v1/v1alpha1)

/** PluginInfo.type of a DRA plugin. */
export const DRA_PLUGIN_TYPE = 'DRAPlugin';

export interface PluginInfo {
  type: string;
  name: string;
  endpoint: string;
  supported_versions: string[];
}

export interface RegistrationStatus {
  plugin_registered: boolean;
  error: string;
}

export interface DraClaim {
  namespace: string;
  uid: string;
  name: string;
}

export interface DraClaimsRequest {
  claims: DraClaim[];
}

export interface DraDevice {
  request_names: string[];
  pool_name: string;
  device_name: string;
  cdi_device_ids: string[];
  /** v1 only; absent when unset. */
  share_id?: string | null;
}

export interface NodePrepareResourceResponse {
  devices: DraDevice[];
  error: string;
}

export interface NodePrepareResourcesResponse {
  claims: Record<string, NodePrepareResourceResponse>;
}

export interface NodeUnprepareResourcesResponse {
  claims: Record<string, { error: string }>;
}

export type DraHealthStatus = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY';

export interface DraDeviceHealth {
  device: { pool_name: string; device_name: string } | null;
  health: DraHealthStatus;
  last_updated_time: number;
  health_check_timeout_seconds: number;
  message: string;
}

export interface NodeWatchResourcesResponse {
  devices: DraDeviceHealth[];
}
