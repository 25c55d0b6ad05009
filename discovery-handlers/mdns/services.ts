/**
 * DNS-SD service instances as seen through the record cache (RFC 6763): the PTR records of a
 * browsed type name the instances; an instance exists while its PTR and SRV records live; TXT
 * and the host's A/AAAA records add to it. Pure.
 */
import { isIPv4 } from 'node:net';
import type { DiscoveredDevice } from '../contract.ts';
import { nameKey, type RecordCache, type SrvData } from './cache.ts';
import type { MdnsFilters, ServiceType } from './details.ts';
import { decodeTxt, txtPropertyName, type TxtEntry } from './txt.ts';

export interface ServiceInstance {
  /** `<instance>.<type>.local`, as published: the device id. */
  readonly fullName: string;
  readonly instance: string;
  readonly type: string;
  /** SRV target without the trailing dot. */
  readonly host: string;
  readonly port: number;
  /** IPv4 first, then IPv6 (link-local IPv6 dropped: unusable without a scope). */
  readonly addresses: readonly string[];
  readonly txt: readonly TxtEntry[];
}

/** What is still missing to describe an instance (the handler queries for it). */
export type Missing = { readonly kind: 'srv'; readonly name: string } | { readonly kind: 'address'; readonly host: string };

const MAX_ADDRESSES = 16;

/** Full names of the instances PTR records currently announce for `type`. */
export function instanceNames(cache: RecordCache, type: ServiceType): string[] {
  return cache.get(type.browseName, 'PTR').map((r) => r.data as string);
}

function isLinkLocalV6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

export interface Resolution {
  /** Present once the SRV record is known (addresses may still be missing). */
  readonly instance?: ServiceInstance;
  /** What to query for. */
  readonly missing?: Missing;
}

/** The instance behind `fullName`, and what is still missing to describe it. */
export function resolveInstance(cache: RecordCache, type: ServiceType, fullName: string): Resolution {
  const srv = cache.get(fullName, 'SRV')[0];
  if (srv === undefined) return { missing: { kind: 'srv', name: fullName } };
  const { port, target } = srv.data as SrvData;
  const host = target.replace(/\.$/, '');
  const v4 = cache.get(host, 'A').map((r) => r.data as string);
  const v6 = cache
    .get(host, 'AAAA')
    .map((r) => r.data as string)
    .filter((a) => !isLinkLocalV6(a));
  const addresses = [...new Set([...v4.sort(), ...v6.sort()])].slice(0, MAX_ADDRESSES);
  const suffix = `.${type.type}.local`;
  const trimmed = fullName.replace(/\.$/, '');
  const instance = nameKey(trimmed).endsWith(nameKey(suffix)) ? trimmed.slice(0, -suffix.length) : trimmed;
  const txt = decodeTxt((cache.get(fullName, 'TXT')[0]?.data as readonly Uint8Array[] | undefined) ?? []);
  const resolved: ServiceInstance = { fullName: trimmed, instance, type: type.type, host, port, addresses, txt };
  return addresses.length === 0 ? { instance: resolved, missing: { kind: 'address', host } } : { instance: resolved };
}

/** Whether an instance passes the discovery's filters. */
export function passesFilters(instance: ServiceInstance, filters: MdnsFilters): boolean {
  if (filters.instanceName !== undefined && !filters.instanceName.test(instance.instance)) return false;
  if (filters.host !== undefined && !filters.host.test(instance.host)) return false;
  for (const filter of filters.txt) {
    const entry = instance.txt.find((e) => e.key.toLowerCase() === filter.key.toLowerCase());
    if (entry === undefined) return false;
    if (filter.value !== undefined && !filter.value.test(entry.value === true ? '' : entry.value)) return false;
  }
  return true;
}

/** The device a service instance becomes. */
export function instanceDevice(instance: ServiceInstance): DiscoveredDevice {
  const properties: Record<string, string> = {
    MDNS_INSTANCE: instance.instance,
    MDNS_SERVICE_TYPE: instance.type,
    MDNS_FULL_NAME: instance.fullName,
    MDNS_HOST: instance.host,
    MDNS_PORT: String(instance.port),
  };
  const address = instance.addresses.find(isIPv4) ?? instance.addresses[0];
  if (address !== undefined) {
    properties['MDNS_ADDRESS'] = address;
    properties['MDNS_ADDRESSES'] = instance.addresses.join(',');
  }
  for (const entry of instance.txt) {
    const name = txtPropertyName(entry.key);
    if (!Object.hasOwn(properties, name)) properties[name] = entry.value === true ? 'true' : entry.value;
  }
  return { id: instance.fullName, properties };
}
