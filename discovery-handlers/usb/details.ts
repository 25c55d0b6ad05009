/**
 * `details` of a `usb` DeviceDiscovery, validated once into UsbDetails. A device is reported
 * when it matches any entry of `match` (all devices but hubs when `match` is empty) and no
 * entry of `exclude`. Within one entry every field given must hold. Types, bounds and
 * defaults are in schema.ts; this file resolves ids, class bytes and text patterns.
 */
import type { Static } from 'typebox';
import { DetailsError } from '../contract.ts';
import { parseWithSchema } from '../details-parse.ts';
import { parsePattern, type TextPattern } from '../pattern.ts';
import type { NodeKind } from './constants.ts';
import DETAILS_SCHEMA from './details.schema.json' with { type: 'json' };
import type { UsbDetailsInput, UsbDetailsSchema, UsbMatcherSchema } from './schema.ts';

export { NODE_KINDS, type NodeKind } from './constants.ts';

/** A USB class triple constraint, matched against the device descriptor or any one interface. */
export interface ClassMatch {
  readonly class: number | undefined;
  readonly subclass: number | undefined;
  readonly protocol: number | undefined;
}

export interface UsbMatcher {
  readonly vendorId: string | undefined;
  readonly productId: string | undefined;
  readonly serial: TextPattern | undefined;
  readonly manufacturer: TextPattern | undefined;
  readonly product: TextPattern | undefined;
  readonly driver: TextPattern | undefined;
  readonly portPath: TextPattern | undefined;
  readonly classes: ClassMatch | undefined;
}

/** Details as the handler uses them: the schema's fields, with matchers resolved and times in ms. */
export interface UsbDetails extends Readonly<Pick<UsbDetailsInput, 'identity' | 'permissions'>> {
  readonly match: readonly UsbMatcher[];
  readonly exclude: readonly UsbMatcher[];
  /** Which device nodes to hand to containers (each once). */
  readonly nodes: readonly NodeKind[];
  readonly pollIntervalMs: number;
  readonly shared: false;
}

/** Well-known class names accepted for `class` (USB-IF base class codes). */
export const CLASS_NAMES: Readonly<Record<string, number>> = {
  audio: 0x01,
  cdc: 0x02,
  comm: 0x02,
  hid: 0x03,
  physical: 0x05,
  image: 0x06,
  printer: 0x07,
  storage: 0x08,
  'mass-storage': 0x08,
  hub: 0x09,
  'cdc-data': 0x0a,
  'smart-card': 0x0b,
  video: 0x0e,
  healthcare: 0x0f,
  'audio-video': 0x10,
  diagnostic: 0xdc,
  wireless: 0xe0,
  misc: 0xef,
  application: 0xfe,
  vendor: 0xff,
};

function classByte(raw: number | string | undefined, path: string, names: boolean): number | undefined {
  if (raw === undefined || typeof raw === 'number') return raw;
  if (/^(0x)?[0-9a-fA-F]{1,2}$/.test(raw)) return parseInt(raw.replace(/^0x/, ''), 16);
  if (names && CLASS_NAMES[raw.toLowerCase()] !== undefined) return CLASS_NAMES[raw.toLowerCase()];
  throw new DetailsError(
    path,
    `must be a byte (0-255 or hex like "0e")${names ? ` or one of ${Object.keys(CLASS_NAMES).join(', ')}` : ''}`,
  );
}

function pattern(raw: string | undefined, path: string): TextPattern | undefined {
  return raw === undefined ? undefined : parsePattern(raw, path);
}

function matcher(raw: Static<typeof UsbMatcherSchema>, path: string): UsbMatcher {
  const cls = classByte(raw.class, `${path}.class`, true);
  const subclass = classByte(raw.subclass, `${path}.subclass`, false);
  const protocol = classByte(raw.protocol, `${path}.protocol`, false);
  if (cls === undefined && (subclass !== undefined || protocol !== undefined))
    throw new DetailsError(`${path}.class`, 'is required with subclass or protocol');
  return {
    vendorId: raw.vendorId?.slice(-4).toLowerCase(),
    productId: raw.productId?.slice(-4).toLowerCase(),
    serial: pattern(raw.serial, `${path}.serial`),
    manufacturer: pattern(raw.manufacturer, `${path}.manufacturer`),
    product: pattern(raw.product, `${path}.product`),
    driver: pattern(raw.driver, `${path}.driver`),
    portPath: pattern(raw.portPath, `${path}.portPath`),
    classes: cls === undefined ? undefined : { class: cls, subclass, protocol },
  };
}

/** Validates raw details; every error names the field path. */
export function parseUsbDetails(raw: unknown): UsbDetails {
  const input = parseWithSchema<typeof UsbDetailsSchema>(DETAILS_SCHEMA, raw);
  return {
    match: input.match.map((m, i) => matcher(m, `details.match[${i}]`)),
    exclude: input.exclude.map((m, i) => matcher(m, `details.exclude[${i}]`)),
    identity: input.identity,
    nodes: [...new Set(input.nodes)],
    permissions: input.permissions,
    pollIntervalMs: Math.round(input.pollIntervalSeconds * 1000),
    shared: false,
  };
}
