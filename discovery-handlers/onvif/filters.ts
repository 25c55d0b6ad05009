/**
 * ONVIF filters, pure. A filter with an include list keeps only matching cameras; an
 * exclude list drops matching ones. A camera whose value is unknown (no MAC, device
 * information unreadable) fails an include list and passes an exclude list.
 */
import type { IncludeExclude, OnvifFilters } from './details.ts';
import { cidrContains } from '../ipv4.ts';

/** What is known about a camera from WS-Discovery alone. */
export interface DiscoveryFacts {
  readonly uuid: string;
  readonly ip: string | undefined;
  readonly scopes: readonly string[];
}

/** What SOAP adds. */
export interface DeviceFacts {
  readonly mac: string | undefined;
  readonly manufacturer: string | undefined;
  readonly model: string | undefined;
}

function passes<T>(filter: IncludeExclude<T>, value: string | undefined, matches: (item: T, value: string) => boolean): boolean {
  if (filter.include.length > 0 && (value === undefined || !filter.include.some((item) => matches(item, value)))) return false;
  return value === undefined || !filter.exclude.some((item) => matches(item, value));
}

/** Scope items match the scope itself or anything below it: `onvif://www.onvif.org/location/` matches every location. */
export function scopeMatches(item: string, scope: string): boolean {
  const a = item.toLowerCase();
  const s = scope.toLowerCase();
  return s === a || s.startsWith(a.endsWith('/') ? a : `${a}/`);
}

function passesScopes(filter: IncludeExclude<string>, scopes: readonly string[]): boolean {
  if (filter.include.length > 0 && !filter.include.some((item) => scopes.some((s) => scopeMatches(item, s)))) return false;
  return !filter.exclude.some((item) => scopes.some((s) => scopeMatches(item, s)));
}

/** Filters decidable before any SOAP call (uuid, IP, scopes): rejected cameras are never contacted. */
export function passesDiscoveryFilters(filters: OnvifFilters, facts: DiscoveryFacts): boolean {
  return (
    passes(filters.uuids, facts.uuid, (item, value) => item === value) &&
    passes(filters.ipAddresses, facts.ip, (cidr, ip) => cidrContains(cidr, ip)) &&
    passesScopes(filters.scopes, facts.scopes)
  );
}

/** Whether any filter needs SOAP answers (MAC, manufacturer, model). */
export function hasDeviceFilters(filters: OnvifFilters): boolean {
  return [filters.macAddresses, filters.manufacturers, filters.models].some((f) => f.include.length > 0 || f.exclude.length > 0);
}

/** Filters on what SOAP told us. */
export function passesDeviceFilters(filters: OnvifFilters, facts: DeviceFacts): boolean {
  return (
    passes(filters.macAddresses, facts.mac, (item, value) => item === value) &&
    passes(filters.manufacturers, facts.manufacturer, (pattern, value) => pattern.test(value)) &&
    passes(filters.models, facts.model, (pattern, value) => pattern.test(value))
  );
}
