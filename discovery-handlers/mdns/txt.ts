/**
 * DNS-SD TXT records (RFC 6763 §6) as device properties: `key=value` strings, keys are
 * printable US-ASCII without `=` and compare case-insensitively, the first occurrence of a key
 * wins, a key without `=` is a boolean attribute. Values are bytes: valid UTF-8 without
 * control characters is kept as text, anything else becomes `base64:<…>`. Pure and bounded.
 */

export interface TxtEntry {
  /** As published (case kept). */
  readonly key: string;
  /** `true` for a bare key (boolean attribute), else the value text. */
  readonly value: string | true;
}

export const MAX_TXT_ENTRIES = 64;
const decoder = new TextDecoder('utf-8', { fatal: true });

function valueText(bytes: Uint8Array): string {
  try {
    const text = decoder.decode(bytes);
    // eslint-disable-next-line no-control-regex -- exactly what is being refused
    if (!/[\u0000-\u0008\u000a-\u001f\u007f]/.test(text)) return text;
  } catch {
    // not UTF-8: fall through
  }
  return `base64:${Buffer.from(bytes).toString('base64')}`;
}

/** Decodes the strings of one TXT record. Invalid and duplicate keys are skipped. */
export function decodeTxt(strings: readonly Uint8Array[]): TxtEntry[] {
  const entries: TxtEntry[] = [];
  const seen = new Set<string>();
  for (const bytes of strings) {
    if (entries.length >= MAX_TXT_ENTRIES) break;
    if (bytes.length === 0) continue; // the empty TXT record: no entries
    const eq = bytes.indexOf(0x3d);
    const keyBytes = eq === -1 ? bytes : bytes.subarray(0, eq);
    if (keyBytes.length === 0 || keyBytes.some((b) => b < 0x20 || b > 0x7e)) continue;
    const key = Buffer.from(keyBytes).toString('ascii');
    const folded = key.toLowerCase();
    if (seen.has(folded)) continue;
    seen.add(folded);
    entries.push({ key, value: eq === -1 ? true : valueText(bytes.subarray(eq + 1)) });
  }
  return entries;
}

/** Property name for a TXT key: `MDNS_TXT_` + the key upper-cased, other characters as `_`. */
export function txtPropertyName(key: string): string {
  return `MDNS_TXT_${key.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}
