/**
 * Details given as YAML text — Akri's `discoveryDetails` is a YAML string, and a DeviceDiscovery
 * may carry it unchanged — become the value a built-in handler validates. Pure. External
 * handlers never come here: they get the text byte for byte (agent/external/details.ts).
 */
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { DetailsError } from './contract.ts';

/** The `yaml` package (~12 MiB of RSS), loaded the first time YAML text arrives (issue 15). */
const yaml = (): typeof Yaml => createRequire(import.meta.url)('yaml') as typeof Yaml;

/** Akri's discoveryDetails is one string in a Kubernetes object; 1 MiB is already generous. */
export const MAX_DETAILS_TEXT_LENGTH = 1 << 20;

/** `raw` itself, or, when it is a string, the YAML it holds (empty text = no details). */
export function detailsFromText(raw: unknown, path = 'details'): unknown {
  if (typeof raw !== 'string') return raw;
  if (raw.length > MAX_DETAILS_TEXT_LENGTH) throw new DetailsError(path, `longer than ${MAX_DETAILS_TEXT_LENGTH} characters`);
  // uniqueKeys: a key given twice is a mistake, not "the last one wins".
  const { LineCounter, parseDocument } = yaml();
  const lines = new LineCounter();
  const document = parseDocument(raw, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  const [error] = document.errors;
  if (error !== undefined) {
    const at = lines.linePos(error.pos[0]);
    const where = ` at line ${at.line}, column ${at.col}`;
    throw new DetailsError(path, `is not valid YAML${where}: ${error.message.split('\n')[0] ?? ''}`);
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new DetailsError(path, `is not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new DetailsError(path, 'as YAML text must hold a mapping (field: value)');
  return value;
}
