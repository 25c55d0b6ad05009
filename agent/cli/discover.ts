/**
 * `tether discover <handler>`: run one handler locally, without a cluster, and print what
 * it finds — once (after its first full report, or a timeout) or live with `--watch`.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import type { AnyDiscoveryHandler, DeviceSink, DiscoveredDevice } from '../../discovery-handlers/contract.ts';
import { DeviceSet } from '../inventory/device-set.ts';
import { renderTable } from './table.ts';

/** table: values cut to fit a terminal; wide: the same table with whole values; json. */
export type OutputFormat = 'table' | 'wide' | 'json';

export interface DiscoverOptions {
  readonly handler: AnyDiscoveryHandler;
  /** Details as JSON or YAML text. */
  readonly details: string;
  readonly output: OutputFormat;
  readonly watch: boolean;
  readonly timeoutMs: number;
  /** Properties the handler gets, as a DeviceDiscovery's `properties` would give them. */
  readonly properties?: ReadonlyMap<string, string>;
  readonly log: Logger;
  readonly write: (text: string) => void;
  readonly signal: AbortSignal;
  /** What the handler warned about so far (one line each), for a timeout's message. */
  readonly warnings?: () => readonly string[];
}

/**
 * One-shot discovery ended without the handler's first report: "nothing found" would be a
 * lie (a broker down, a camera that never answers), so the command fails and says why.
 */
export class DiscoverTimeoutError extends Error {
  constructor(handler: string, timeoutMs: number, warnings: readonly string[]) {
    const why = warnings.length === 0 ? 'it reported no problem either' : `it reported:\n${warnings.map((w) => `  ${w}`).join('\n')}`;
    super(`${handler} sent no report within ${timeoutMs} ms (a longer --timeout may help); ${why}`);
    this.name = 'DiscoverTimeoutError';
  }
}

/** Reads `--details` (inline text) or `--details-file`. */
export async function readDetailsText(inline: string | undefined, file: string | undefined): Promise<string> {
  if (inline !== undefined && file !== undefined) throw new Error('give --details or --details-file, not both');
  if (file !== undefined) return readFile(file, 'utf8');
  return inline ?? '{}';
}

const PROPERTY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * `--property NAME=VALUE` (repeatable) and `--property-file` (NAME=VALUE lines, `#` comments,
 * blank lines ignored). A name given twice is an error, not a silent override.
 */
export async function readProperties(inline: readonly string[], file: string | undefined): Promise<Map<string, string>> {
  const entries: [string, string, string][] = inline.map((text) => [...splitProperty(text, '--property'), '--property']);
  if (file !== undefined) {
    const lines = (await readFile(file, 'utf8')).split(/\r?\n/);
    lines.forEach((line, i) => {
      if (line.trim() === '' || line.trimStart().startsWith('#')) return;
      const where = `${file}:${i + 1}`;
      entries.push([...splitProperty(line, where), where]);
    });
  }
  const properties = new Map<string, string>();
  for (const [name, value, where] of entries) {
    if (properties.has(name)) throw new Error(`${where}: property ${name} is given twice`);
    properties.set(name, value);
  }
  return properties;
}

function splitProperty(text: string, where: string): [string, string] {
  const at = text.indexOf('=');
  const name = at < 0 ? text : text.slice(0, at);
  if (at < 0 || !PROPERTY_NAME.test(name))
    throw new Error(`${where}: expected NAME=VALUE with NAME matching ${PROPERTY_NAME.source}, got ${JSON.stringify(text.slice(0, 80))}`);
  return [name, text.slice(at + 1)];
}

export function parseDetailsText(text: string): unknown {
  try {
    return parseYaml(text, { maxAliasCount: 0 }) as unknown;
  } catch (error) {
    throw new Error(`--details is neither JSON nor YAML: ${(error as Error).message}`, { cause: error });
  }
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function formatDevices(devices: readonly { device: DiscoveredDevice; online: boolean }[], output: OutputFormat): string {
  const sorted = [...devices].sort((a, b) => (a.device.id < b.device.id ? -1 : 1));
  if (output === 'json')
    return `${JSON.stringify(
      sorted.map((d) => ({ ...d.device, online: d.online })),
      null,
      2,
    )}\n`;
  const cut = output === 'wide' ? (text: string): string => text : truncate;
  const rows = sorted.map(({ device, online }) => [
    cut(device.id, 48),
    online ? 'online' : 'offline',
    cut(
      Object.entries(device.properties)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      80,
    ),
    String((device.mounts?.length ?? 0) + (device.deviceNodes?.length ?? 0)),
  ]);
  return renderTable(['ID', 'STATE', 'PROPERTIES', 'PATHS'], rows);
}

/**
 * Runs the handler until its first full report (or until aborted with --watch). A one-shot
 * run that hits the timeout first throws DiscoverTimeoutError with what the handler warned.
 */
export async function discover(options: DiscoverOptions): Promise<void> {
  const { handler, log, write } = options;
  const details = handler.parseDetails(parseDetailsText(options.details));
  const abort = new AbortController();
  options.signal.addEventListener('abort', () => abort.abort(), { once: true });
  let firstReport: () => void = () => undefined;
  const reported = new Promise<void>((resolve) => (firstReport = resolve));
  const devices: DeviceSet = new DeviceSet({
    graceMs: 0,
    onChange: () => {
      if (options.watch) write(`${options.output === 'json' ? '' : '\n'}${formatDevices(devices.snapshot(), options.output)}`);
    },
  });
  // A full report (replaceAll) states the whole set, an empty one included: only then is
  // "these are the devices" (or "there are none") true.
  const sink: DeviceSink = {
    replaceAll: (list) => {
      devices.replaceAll(list);
      firstReport();
    },
    upsert: (device) => devices.upsert(device),
    remove: (id) => devices.remove(id),
  };
  const running = handler.run(details, {
    sink,
    signal: abort.signal,
    properties: options.properties ?? new Map(),
    log,
    count: () => undefined,
  });
  running.catch(() => undefined); // surfaced below
  if (options.watch) {
    await running;
    return;
  }
  let gotReport = false;
  void reported.then(() => (gotReport = true));
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, options.timeoutMs).unref());
  await Promise.race([reported, timeout, running]);
  abort.abort();
  await running;
  if (!gotReport) throw new DiscoverTimeoutError(handler.name, options.timeoutMs, options.warnings?.() ?? []);
  write(formatDevices(devices.snapshot(), options.output));
}
