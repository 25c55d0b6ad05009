import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
    const empty: DiscoveryHandler<unknown> = {
      name: 'empty',
      parseDetails: (r) => r,
      isShared: () => false,
      run: async (_d, { sink, signal }) => (sink.replaceAll([]), untilAborted(signal)),
    };
    expect(JSON.parse(await run(empty, 1_000))).toEqual([]);
  });

  it('fails with the handler’s warnings when no full report comes in time — never prints "nothing found"', async () => {
    // Upserts alone are not a full report: the set could still be incomplete.
    const stuck: DiscoveryHandler<unknown> = {
      name: 'stuck',
      parseDetails: (r) => r,
      isShared: () => false,
      run: async (_d, { sink, signal }) => (sink.upsert({ id: 'half', properties: {} }), untilAborted(signal)),
    };
    const error = await run(stuck, 50, ['Failed to connect (mqtt://x: ECONNREFUSED)']).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DiscoverTimeoutError);
    expect((error as Error).message).toBe(
      'stuck sent no report within 50 ms (a longer --timeout may help); it reported:\n  Failed to connect (mqtt://x: ECONNREFUSED)',
    );
  });
});

describe('tether discover --help', () => {
  // A real process on Node 24, as a user runs it: the help comes from the handler's schema.
  const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
  const launcher = fileURLToPath(new URL('../../bin/tether.mjs', import.meta.url));
  const help = (...args: string[]): string => execFileSync(node, [launcher, 'discover', ...args], { encoding: 'utf8', timeout: 20_000 });

  it('shows a handler’s details fields with their defaults, and an example', () => {
    const text = help('mqtt', '--help');
    expect(text).toMatch(/^ {2}keepaliveSeconds {2}\(integer; default 30; 5–3600\)$/m);
    expect(text).toMatch(/^ {2}limits\.maxDevices {2}\(integer; default 100000; 1–1000000\)$/m);
    expect(text).toContain(`tether discover mqtt --details '{"broker":"mqtt://broker.local:1883","homeAssistant":true}'`);
  });

  it('lists the handlers without one', () => {
    const text = help('--help');
    for (const name of ['debug-echo', 'mqtt', 'mdns', 'onvif', 'usb', 'udev', 'opcua'])
      expect(text).toMatch(new RegExp(`^ {2}${name} +\\S`, 'm'));
  });
});
