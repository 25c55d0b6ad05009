/**
 * `details` of a `usb` DeviceDiscovery, validated once into UsbDetails. A device is reported
 * when it matches any entry of `match` (all devices but hubs when `match` is absent) and no
 * entry of `exclude`. Within one entry every field given must hold.
 */
import { DetailsError } from '../contract.ts';
import { parsePattern, type TextPattern } from '../pattern.ts';

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

export type NodeKind = 'usb' | 'tty' | 'video4linux' | 'hidraw' | 'input' | 'sound';
export const NODE_KINDS: readonly NodeKind[] = ['usb', 'tty', 'video4linux', 'hidraw', 'input', 'sound'];

export interface UsbDetails {
  readonly match: readonly UsbMatcher[];
  readonly exclude: readonly UsbMatcher[];
  /** `auto`: serial when the device has a unique one, else the physical port path. */
  readonly identity: 'auto' | 'serial' | 'port';
  /** Which device nodes to hand to containers. */
  readonly nodes: readonly NodeKind[];
  /** Any of r, w, m. */
  readonly permissions: string;
  readonly pollIntervalMs: number;
  readonly shared: false;
}

export const USB_DEFAULTS = { pollIntervalSeconds: 1, nodes: ['usb', 'tty', 'video4linux', 'hidraw'] as NodeKind[], permissions: 'rw' } as const;

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

const MATCHER_FIELDS = ['vendorId', 'productId', 'serial', 'manufacturer', 'product', 'driver', 'portPath', 'class', 'subclass', 'protocol'];
const KNOWN = new Set(['match', 'exclude', 'identity', 'nodes', 'permissions', 'pollIntervalSeconds']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hexId(raw: unknown, path: string): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^(0x)?[0-9a-fA-F]{4}$/.test(raw)) throw new DetailsError(path, 'must be 4 hex digits, e.g. "0403"');
  return raw.slice(-4).toLowerCase();
}

function classByte(raw: unknown, path: string, names: boolean): number | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 255) return raw;
  if (typeof raw === 'string') {
    if (/^(0x)?[0-9a-fA-F]{1,2}$/.test(raw)) return parseInt(raw.replace(/^0x/, ''), 16);
    if (names && CLASS_NAMES[raw.toLowerCase()] !== undefined) return CLASS_NAMES[raw.toLowerCase()];
  }
  throw new DetailsError(path, `must be a byte (0-255 or hex like "0e")${names ? ` or one of ${Object.keys(CLASS_NAMES).join(', ')}` : ''}`);
}

function pattern(raw: unknown, path: string): TextPattern | undefined {
  return raw === undefined ? undefined : parsePattern(raw, path);
}

function parseMatcher(raw: unknown, path: string): UsbMatcher {
  if (!isRecord(raw)) throw new DetailsError(path, 'must be an object');
  const keys = Object.keys(raw);
  if (keys.length === 0) throw new DetailsError(path, `must set at least one of ${MATCHER_FIELDS.join(', ')}`);
  for (const key of keys) if (!MATCHER_FIELDS.includes(key)) throw new DetailsError(`${path}.${key}`, `unknown field; expected one of ${MATCHER_FIELDS.join(', ')}`);
  const cls = classByte(raw['class'], `${path}.class`, true);
  const subclass = classByte(raw['subclass'], `${path}.subclass`, false);
  const protocol = classByte(raw['protocol'], `${path}.protocol`, false);
  if (cls === undefined && (subclass !== undefined || protocol !== undefined)) throw new DetailsError(`${path}.class`, 'is required with subclass or protocol');
  return {
    vendorId: hexId(raw['vendorId'], `${path}.vendorId`),
    productId: hexId(raw['productId'], `${path}.productId`),
    serial: pattern(raw['serial'], `${path}.serial`),
    manufacturer: pattern(raw['manufacturer'], `${path}.manufacturer`),
    product: pattern(raw['product'], `${path}.product`),
    driver: pattern(raw['driver'], `${path}.driver`),
    portPath: pattern(raw['portPath'], `${path}.portPath`),
    classes: cls === undefined ? undefined : { class: cls, subclass, protocol },
  };
}

function matchers(raw: unknown, path: string): UsbMatcher[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new DetailsError(path, 'must be a list of matchers');
  if (raw.length > 256) throw new DetailsError(path, 'at most 256 matchers');
  return raw.map((m, i) => parseMatcher(m, `${path}[${i}]`));
}

function parseNodes(raw: unknown): NodeKind[] {
  if (!Array.isArray(raw)) throw new DetailsError('details.nodes', `must be a list of ${NODE_KINDS.join(', ')}`);
  const nodes = raw.map((n: unknown, i) => {
    if (typeof n !== 'string' || !NODE_KINDS.includes(n as NodeKind)) throw new DetailsError(`details.nodes[${i}]`, `must be one of ${NODE_KINDS.join(', ')}`);
    return n as NodeKind;
  });
  return [...new Set(nodes)];
}

function parsePermissions(raw: unknown): string {
  if (typeof raw !== 'string' || !/^r?w?m?$/.test(raw) || raw === '') throw new DetailsError('details.permissions', 'must be a combination of r, w, m in that order (e.g. "rw")');
  return raw;
}

function parsePoll(raw: unknown): number {
  if (typeof raw !== 'number' || !Number.isFinite(raw) || raw < 0.05 || raw > 60) throw new DetailsError('details.pollIntervalSeconds', 'must be between 0.05 and 60');
  return Math.round(raw * 1000);
}

/** Validates raw details; every error names the field path. */
export function parseUsbDetails(raw: unknown): UsbDetails {
  const input = raw ?? {};
  if (!isRecord(input)) throw new DetailsError('details', 'must be an object');
  for (const key of Object.keys(input)) if (!KNOWN.has(key)) throw new DetailsError(`details.${key}`, `unknown field; expected one of ${[...KNOWN].join(', ')}`);
  const identity = input['identity'] ?? 'auto';
  if (identity !== 'auto' && identity !== 'serial' && identity !== 'port') throw new DetailsError('details.identity', 'must be auto, serial or port');
  return {
    match: matchers(input['match'], 'details.match'),
    exclude: matchers(input['exclude'], 'details.exclude'),
    identity,
    nodes: parseNodes(input['nodes'] ?? USB_DEFAULTS.nodes),
    permissions: parsePermissions(input['permissions'] ?? USB_DEFAULTS.permissions),
    pollIntervalMs: parsePoll(input['pollIntervalSeconds'] ?? USB_DEFAULTS.pollIntervalSeconds),
    shared: false,
  };
}
