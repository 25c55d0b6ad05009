/**
 * Loads Tether's .proto interfaces at run time (no code generation step).
 * Field names keep their proto spelling (`keepCase`) so the TypeScript wire
 * types in ./types.ts read exactly like the upstream definitions.
 */
import { fileURLToPath } from 'node:url';
import { loadSync, type Options } from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';

const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

function loadPackage(file: string, pkg: string): GrpcObject {
  const path = fileURLToPath(new URL(file, import.meta.url));
  let ns: GrpcObject | undefined = loadPackageDefinition(loadSync(path, LOADER_OPTIONS));
  // Dotted packages (k8s.io.kubelet.pkg.apis.dra.v1) load as nested namespaces.
  for (const part of pkg.split('.')) ns = ns?.[part] as GrpcObject | undefined;
  if (ns === undefined) throw new Error(`proto package ${pkg} missing from ${file}`);
  return ns;
}

function service(ns: GrpcObject, name: string): ServiceClientConstructor {
  const ctor = ns[name];
  if (typeof ctor !== 'function') throw new Error(`service ${name} missing`);
  return ctor;
}

export interface DevicePluginProtos {
  /** Served by the kubelet: plugins register here. */
  readonly Registration: ServiceClientConstructor;
  /** Served by each device plugin. */
  readonly DevicePlugin: ServiceClientConstructor;
}

export interface PodResourcesProtos {
  readonly PodResourcesLister: ServiceClientConstructor;
}

export interface DiscoveryProtos {
  /** Served by the agent: external discovery handlers register here. */
  readonly Registration: ServiceClientConstructor;
  /** Served by each external discovery handler. */
  readonly DiscoveryHandler: ServiceClientConstructor;
}

/** Kubelet device-plugin API v1beta1. */
export function loadDevicePluginProtos(): DevicePluginProtos {
  const ns = loadPackage('./deviceplugin-v1beta1.proto', 'v1beta1');
  return { Registration: service(ns, 'Registration'), DevicePlugin: service(ns, 'DevicePlugin') };
}

/** Kubelet PodResources API v1. */
export function loadPodResourcesProtos(): PodResourcesProtos {
  const ns = loadPackage('./podresources-v1.proto', 'v1');
  return { PodResourcesLister: service(ns, 'PodResourcesLister') };
}

/** Akri discovery-handler protocol v0. */
export function loadDiscoveryProtos(): DiscoveryProtos {
  const ns = loadPackage('./discovery-v0.proto', 'v0');
  return { Registration: service(ns, 'Registration'), DiscoveryHandler: service(ns, 'DiscoveryHandler') };
}

/** The kubelet's DRA plugin APIs, each at every version Tether serves. */
export interface DraProtos {
  /** Kubelet plugin registration (pluginregistration v1), served by the plugin. */
  readonly Registration: ServiceClientConstructor;
  /** `DRAPlugin` by version (`v1`, `v1beta1`): same messages, v1 adds `Device.share_id`. */
  readonly DRAPlugin: { readonly v1: ServiceClientConstructor; readonly v1beta1: ServiceClientConstructor };
  /** `DRAResourceHealth` by version (`v1`, `v1alpha1`): identical messages. */
  readonly DRAResourceHealth: { readonly v1: ServiceClientConstructor; readonly v1alpha1: ServiceClientConstructor };
}

/**
 * Kubelet DRA plugin APIs (plugin registration v1, DRAPlugin v1 + v1beta1, DRAResourceHealth
 * v1 + v1alpha1). Only the DRA backend calls this, so an agent without it never parses them.
 */
export function loadDraProtos(): DraProtos {
  const dra = (version: string): ServiceClientConstructor =>
    service(loadPackage(`./dra-${version}.proto`, `k8s.io.kubelet.pkg.apis.dra.${version}`), 'DRAPlugin');
  const health = (version: string): ServiceClientConstructor =>
    service(loadPackage(`./dra-health-${version}.proto`, version), 'DRAResourceHealth');
  return {
    Registration: service(loadPackage('./pluginregistration-v1.proto', 'pluginregistration'), 'Registration'),
    DRAPlugin: { v1: dra('v1'), v1beta1: dra('v1beta1') },
    DRAResourceHealth: { v1: health('v1'), v1alpha1: health('v1alpha1') },
  };
}
