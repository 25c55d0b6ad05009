import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { untilAborted, type DiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { discover, DiscoverTimeoutError, readProperties } from './discover.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('readProperties', () => {
  it('takes NAME=VALUE from flags and a file (comments, blank lines, = inside values)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'props-'));
    dirs.push(dir);
    await writeFile(join(dir, 'p.env'), '# login\n\nONVIF_PASSWORD=a=b c\n');
    const properties = await readProperties(['ONVIF_USERNAME=admin'], join(dir, 'p.env'));
    expect([...properties]).toEqual([
      ['ONVIF_USERNAME', 'admin'],
      ['ONVIF_PASSWORD', 'a=b c'],
    ]);
  });

  it('refuses a malformed entry with where it is, and a name given twice', async () => {
    await expect(readProperties(['no-equals'], undefined)).rejects.toThrow(/--property: expected NAME=VALUE/);
    await expect(readProperties(['1BAD=x'], undefined)).rejects.toThrow(/expected NAME=VALUE/);
    await expect(readProperties(['A=1', 'A=2'], undefined)).rejects.toThrow(/property A is given twice/);
  });
});

describe('discover (one-shot)', () => {
  const silent = pino({ level: 'silent' });
  const run = (handler: DiscoveryHandler<unknown>, timeoutMs: number, warnings: string[] = []): Promise<string> => {
    let out = '';
    return discover({
      handler,
      details: '{}',
      output: 'json',
      watch: false,
      timeoutMs,
      log: silent,
      warnings: () => warnings,
      write: (text) => (out += text),
      signal: new AbortController().signal,
    }).then(() => out);
  };

  it('prints an empty full report as "no devices" (that is the truth)', async () => {
    const empty: DiscoveryHandler<unknown> = { name: 'empty', parseDetails: (r) => r, isShared: () => false, run: async (_d, { sink, signal }) => (sink.replaceAll([]), untilAborted(signal)) };
    expect(JSON.parse(await run(empty, 1_000))).toEqual([]);
  });

  it('fails with the handler’s warnings when no full report comes in time — never prints "nothing found"', async () => {
    // Upserts alone are not a full report: the set could still be incomplete.
    const stuck: DiscoveryHandler<unknown> = { name: 'stuck', parseDetails: (r) => r, isShared: () => false, run: async (_d, { sink, signal }) => (sink.upsert({ id: 'half', properties: {} }), untilAborted(signal)) };
    const error = await run(stuck, 50, ['Failed to connect (mqtt://x: ECONNREFUSED)']).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DiscoverTimeoutError);
    expect((error as Error).message).toBe('stuck sent no report within 50 ms (a longer --timeout may help); it reported:\n  Failed to connect (mqtt://x: ECONNREFUSED)');
  });
});
