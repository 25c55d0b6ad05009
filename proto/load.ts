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
  const root = loadPackageDefinition(loadSync(path, LOADER_OPTIONS));
  const ns = root[pkg];
  if (ns === undefined) throw new Error(`proto package ${pkg} missing from ${file}`);
  return ns as GrpcObject;
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
