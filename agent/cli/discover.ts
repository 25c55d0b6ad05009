/**
 * `tether discover <handler>`: run one handler locally, without a cluster, and print what
 * it finds — once (after its first full report, or a timeout) or live with `--watch`.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import type { AnyDiscoveryHandler, DiscoveredDevice } from '../../discovery-handlers/contract.ts';
import { DeviceSet } from '../inventory/device-set.ts';
import { renderTable } from './table.ts';

export interface DiscoverOptions {
  readonly handler: AnyDiscoveryHandler;
  /** Details as JSON or YAML text. */
  readonly details: string;
  readonly output: 'table' | 'json';
  readonly watch: boolean;
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly write: (text: string) => void;
  readonly signal: AbortSignal;
}

/** Reads `--details` (inline text) or `--details-file`. */
export async function readDetailsText(inline: string | undefined, file: string | undefined): Promise<string> {
  if (inline !== undefined && file !== undefined) throw new Error('give --details or --details-file, not both');
  if (file !== undefined) return readFile(file, 'utf8');
  return inline ?? '{}';
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

export function formatDevices(devices: readonly { device: DiscoveredDevice; online: boolean }[], output: 'table' | 'json'): string {
  const sorted = [...devices].sort((a, b) => (a.device.id < b.device.id ? -1 : 1));
  if (output === 'json') return `${JSON.stringify(sorted.map((d) => ({ ...d.device, online: d.online })), null, 2)}\n`;
  const rows = sorted.map(({ device, online }) => [
    truncate(device.id, 48),
    online ? 'online' : 'offline',
    truncate(
      Object.entries(device.properties)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      80,
    ),
    String((device.mounts?.length ?? 0) + (device.deviceNodes?.length ?? 0)),
  ]);
  return renderTable(['ID', 'STATE', 'PROPERTIES', 'PATHS'], rows);
}

/** Runs the handler until the first full report / timeout (or until aborted with --watch). */
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
      if (options.watch) write(`${options.output === 'table' ? '\n' : ''}${formatDevices(devices.snapshot(), options.output)}`);
      firstReport();
    },
  });
  const running = handler.run(details, { sink: devices, signal: abort.signal, properties: new Map(), log, count: () => undefined });
  running.catch(() => undefined); // surfaced below
  if (options.watch) {
    await running;
    return;
  }
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, options.timeoutMs).unref());
  await Promise.race([reported, timeout, running]);
  abort.abort();
  await running;
  write(formatDevices(devices.snapshot(), options.output));
}
