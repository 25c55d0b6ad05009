/**
 * Bounded input: everything a device publishes is untrusted. Payloads are checked for size,
 * JSON nesting depth (scanned before parsing, so a hostile document never reaches the
 * parser), and reported properties are capped in count and length. Pure.
 */

/** Why a payload was refused; a small fixed set (used as a log field, never as a metric label). */
export type PayloadProblem = 'too_large' | 'not_utf8' | 'bad_json' | 'too_deep' | 'bad_shape' | 'bad_protobuf';

/** A payload that cannot be used. The handler counts it (`bad_payload`) and logs it once per topic. */
export class PayloadError extends Error {
  readonly problem: PayloadProblem;
  constructor(problem: PayloadProblem, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PayloadError';
    this.problem = problem;
  }
}

export interface PayloadLimits {
  readonly maxPayloadBytes: number;
  readonly maxJsonDepth: number;
}

export interface PropertyLimits {
  /** Most properties per device; extra ones (the last in insertion order) are dropped. */
  readonly maxProperties: number;
  /** Longest property value in characters; longer values are cut and end with `…`. */
  readonly maxPropertyLength: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The payload as UTF-8 text; throws PayloadError when too large or not UTF-8. */
export function payloadText(payload: Uint8Array, limits: PayloadLimits): string {
  if (payload.byteLength > limits.maxPayloadBytes) {
    throw new PayloadError('too_large', `payload of ${payload.byteLength} bytes exceeds ${limits.maxPayloadBytes}`);
  }
  try {
    return decoder.decode(payload);
  } catch (error) {
    throw new PayloadError('not_utf8', 'payload is not valid UTF-8', { cause: error });
  }
}

/**
 * Nesting depth of a JSON text, without parsing it (brackets inside strings do not count).
 * Stops early once `limit` is exceeded and returns `limit + 1`.
 */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return limit + 1;
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return max;
}

/** Parses a JSON payload within the limits; throws PayloadError otherwise. */
export function parseBoundedJson(payload: Uint8Array, limits: PayloadLimits): unknown {
  const text = payloadText(payload, limits);
  if (jsonDepth(text, limits.maxJsonDepth) > limits.maxJsonDepth) {
    throw new PayloadError('too_deep', `JSON nested deeper than ${limits.maxJsonDepth}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new PayloadError('bad_json', `not JSON: ${(error as Error).message}`, { cause: error });
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Keys that must never be copied from device data into objects. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Own entries of a parsed JSON object, without prototype-polluting keys. */
export function safeEntries(value: Record<string, unknown>): [string, unknown][] {
  return Object.entries(value).filter(([key]) => !FORBIDDEN_KEYS.has(key));
}

/** A scalar JSON value as text (objects and arrays as compact JSON); undefined for null/absent. */
export function scalarText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

/** Cuts `text` to `max` characters (code points kept whole), marking the cut with `…`. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, Math.max(0, max - 1));
  // Do not leave half a surrogate pair behind.
  const last = cut.charCodeAt(cut.length - 1);
  return `${last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut}…`;
}

/**
 * Applies the property limits. Returns the bounded properties and whether anything was cut.
 * `reserved` properties (connection information the handler adds) are kept first.
 */
export function boundProperties(
  properties: Readonly<Record<string, string>>,
  limits: PropertyLimits,
  reserved: Readonly<Record<string, string>> = {},
): { properties: Record<string, string>; limited: boolean } {
  const out: Record<string, string> = {};
  let limited = false;
  let count = 0;
  for (const source of [reserved, properties]) {
    for (const [name, value] of Object.entries(source)) {
      if (FORBIDDEN_KEYS.has(name) || Object.hasOwn(out, name)) continue;
      if (count >= limits.maxProperties) {
        limited = true;
        continue;
      }
      const bounded = truncate(value, limits.maxPropertyLength);
      if (bounded !== value) limited = true;
      out[name] = bounded;
      count++;
    }
  }
  return { properties: out, limited };
}

/** Upper-cases and replaces everything outside [A-Z0-9_] with `_`: a readable property-name part. */
export function propertyNamePart(text: string, max = 64): string {
  const part = text
    .toUpperCase()
    .replace(/[^A-Z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return part.slice(0, max) || '_';
}
