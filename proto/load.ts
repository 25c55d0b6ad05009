/**
 * Loads Tether's .proto interfaces at run time (no code generation step), with protobufjs
 * directly: the same conversions @grpc/proto-loader makes (its serializers are exactly these),
 * without its descriptor extension and the FileDescriptorProtos it builds for every method
 * (~3.5 MiB of RSS an idle agent does not need; issue 15). Field names keep their proto
 * spelling (`keepCase`) so the TypeScript wire types in ./types.ts read exactly like the
 * upstream definitions.
 */
import { fileURLToPath } from 'node:url';
import { makeClientConstructor, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/** What a decoded message looks like (@grpc/proto-loader's options of the same names). */
const TO_OBJECT: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

/** A parsed .proto file, its types resolved. */
interface ProtoFile {
  readonly root: protobuf.Root;
  readonly file: string;
}

function loadFile(file: string): ProtoFile {
  const root = new protobuf.Root();
  root.loadSync(fileURLToPath(new URL(file, import.meta.url)), { keepCase: true });
  root.resolveAll();
  return { root, file };
}

function serializer(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`${type.fullName}: expected an object, got an array`);
    return type.encode(type.fromObject(value)).finish() as Buffer;
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), TO_OBJECT);
}

/** The gRPC client constructor (its `service` is the server's definition) of `pkg.name`. */
function service(proto: ProtoFile, pkg: string, name: string): ServiceClientConstructor {
  const found = proto.root.lookup(`${pkg}.${name}`);
  if (!(found instanceof protobuf.Service)) throw new Error(`service ${pkg}.${name} missing from ${proto.file}`);
  const definition: Record<string, ServiceDefinition[string]> = {};
  for (const method of found.methodsArray) {
    const request = method.resolvedRequestType;
    const response = method.resolvedResponseType;
    if (request === null || response === null) throw new Error(`${pkg}.${name}/${method.name}: unresolved types`);
    definition[method.name] = {
      path: `/${pkg}.${name}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response),
      // The lower-camel-case alias @grpc/proto-loader gives every method (client.listAndWatch).
      originalName: `${method.name.charAt(0).toLowerCase()}${method.name.slice(1)}`,
    };
  }
  return makeClientConstructor(definition, name);
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
  const proto = loadFile('./deviceplugin-v1beta1.proto');
  return { Registration: service(proto, 'v1beta1', 'Registration'), DevicePlugin: service(proto, 'v1beta1', 'DevicePlugin') };
}

/** Kubelet PodResources API v1. */
export function loadPodResourcesProtos(): PodResourcesProtos {
  return { PodResourcesLister: service(loadFile('./podresources-v1.proto'), 'v1', 'PodResourcesLister') };
}

/** Akri discovery-handler protocol v0. */
export function loadDiscoveryProtos(): DiscoveryProtos {
  const proto = loadFile('./discovery-v0.proto');
  return { Registration: service(proto, 'v0', 'Registration'), DiscoveryHandler: service(proto, 'v0', 'DiscoveryHandler') };
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
    service(loadFile(`./dra-${version}.proto`), `k8s.io.kubelet.pkg.apis.dra.${version}`, 'DRAPlugin');
  const health = (version: string): ServiceClientConstructor =>
    service(loadFile(`./dra-health-${version}.proto`), version, 'DRAResourceHealth');
  return {
    Registration: service(loadFile('./pluginregistration-v1.proto'), 'pluginregistration', 'Registration'),
    DRAPlugin: { v1: dra('v1'), v1beta1: dra('v1beta1') },
    DRAResourceHealth: { v1: health('v1'), v1alpha1: health('v1alpha1') },
  };
}
