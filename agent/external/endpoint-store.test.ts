/**
 * The external handler endpoints file: a round trip, untrusted content validated like
 * registrations, bounds, coalesced atomic writes, and files that cannot be read or written
 * (logged once, never thrown).
 */
import { execFileSync } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  EndpointStore,
  ENDPOINTS_FILE,
  endpointsFile,
  parseStoredEndpoints,
  serializeEndpoints,
  type StoredEndpoint,
} from './endpoint-store.ts';

const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tx-store-'));
  dirs.push(dir);
  return dir;
}

/** A logger whose warnings the test reads. */
function capturingLog(): { log: Logger; warnings: () => string[] } {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

const uds = (name: string, endpoint: string, shared = false): StoredEndpoint => ({ name, endpoint, type: 'UDS', shared });
const entry = (name: unknown, endpoint: unknown, endpoint_type: unknown = 'UDS', shared: unknown = false): unknown => ({
  name,
  endpoint,
  endpoint_type,
  shared,
});
const file = (endpoints: unknown[]): string => JSON.stringify({ version: 1, endpoints });
const summary = (list: readonly StoredEndpoint[]): string[] => list.map((e) => `${e.name}@${e.endpoint}:${e.type}:${String(e.shared)}`);

describe('parseStoredEndpoints', () => {
  it('reads back what serializeEndpoints wrote, in order, normalised like a registration', () => {
    const endpoints = [uds('a', '/run/a.sock'), { name: 'net', endpoint: '10.0.0.7:10000', type: 'NETWORK' as const, shared: true }];
    const parsed = parseStoredEndpoints(serializeEndpoints(endpoints), 10);
    expect(parsed.problems).toEqual([]);
    expect(summary(parsed.endpoints)).toEqual(['a@/run/a.sock:UDS:false', 'net@10.0.0.7:10000:NETWORK:true']);
    expect(parsed.endpoints[1]!.target).toBe('10.0.0.7:10000');
    // Akri's NETWORK form is accepted and normalised as on registration.
    const akri = parseStoredEndpoints(file([entry('onvif', 'http://10.0.0.8:10000', 'NETWORK')]), 10);
    expect(akri.endpoints[0]).toMatchObject({ endpoint: '10.0.0.8:10000', key: 'onvif@10.0.0.8:10000' });
  });

  it.each([
    ['not JSON', '{"version": 1, "endpoints": [', 'not JSON'],
    ['another version', JSON.stringify({ version: 2, endpoints: [] }), 'not a version 1 endpoints file'],
    ['no list', JSON.stringify({ version: 1, endpoints: {} }), 'not a version 1 endpoints file'],
    ['null', 'null', 'not a version 1 endpoints file'],
  ])('keeps nothing from a file that is %s', (_what, text, problem) => {
    expect(parseStoredEndpoints(text, 10)).toEqual({ endpoints: [], problems: [problem] });
  });

  it('drops every entry a registration could not have named, keeping the valid ones', () => {
    const parsed = parseStoredEndpoints(
      file([
        entry('good', '/run/good.sock'),
        entry('rel', 'relative.sock'),
        entry('bad name', '/run/x.sock'),
        entry('tls', 'https://10.0.0.1:443', 'NETWORK'),
        entry('kind', '/run/k.sock', 'FILE'),
        entry('nul', '/run/a\0b.sock'),
        entry('long', `/${'x'.repeat(200)}.sock`),
        entry('flag', '/run/f.sock', 'UDS', 'yes'),
        entry(42, '/run/n.sock'),
        'a string',
        null,
        [1, 2],
      ]),
      10,
    );
    expect(summary(parsed.endpoints)).toEqual(['good@/run/good.sock:UDS:false']);
    expect(parsed.problems).toHaveLength(11);
    expect(parsed.problems[0]).toContain('endpoints[1]: UDS endpoint "relative.sock" must be an absolute socket path');
  });

  it('keeps one entry per name+endpoint at its latest position, and the latest maxEntries', () => {
    const parsed = parseStoredEndpoints(
      file([entry('a', '/a.sock'), entry('b', '/b.sock'), entry('a', '/a.sock', 'UDS', true), entry('c', '/c.sock')]),
      10,
    );
    expect(summary(parsed.endpoints)).toEqual(['b@/b.sock:UDS:false', 'a@/a.sock:UDS:true', 'c@/c.sock:UDS:false']);
    const bounded = parseStoredEndpoints(file([entry('a', '/a.sock'), entry('b', '/b.sock'), entry('c', '/c.sock')]), 2);
    expect(summary(bounded.endpoints)).toEqual(['b@/b.sock:UDS:false', 'c@/c.sock:UDS:false']);
    expect(bounded.problems).toEqual(['3 endpoints, more than 2: kept the latest']);
  });
});

describe('EndpointStore', () => {
  it('round trip: a new store loads what the last one saved; the temp file is gone', async () => {
    const dir = await tempDir();
    const path = endpointsFile(join(dir, 'state'));
    expect(path).toBe(join(dir, 'state', ENDPOINTS_FILE));
    const { log, warnings } = capturingLog();
    const first = new EndpointStore({ path, log, maxEntries: 10 });
    expect(await first.load()).toEqual([]); // no file yet: not worth a warning
    first.save([uds('a', '/a.sock')]);
    first.save([uds('a', '/a.sock'), uds('b', '/b.sock', true)]);
    await first.flush();
    const second = new EndpointStore({ path, log, maxEntries: 10 });
    expect(summary(await second.load())).toEqual(['a@/a.sock:UDS:false', 'b@/b.sock:UDS:true']);
    await expect(access(`${path}.tmp`)).rejects.toThrow();
    expect(warnings()).toEqual([]);
  });

  it('writes nothing when the list did not change', async () => {
    const dir = await tempDir();
    const path = join(dir, ENDPOINTS_FILE);
    await writeFile(path, serializeEndpoints([uds('a', '/a.sock')]));
    const store = new EndpointStore({ path, log: capturingLog().log, maxEntries: 10 });
    await store.load();
    await rm(path); // a write would bring it back
    store.save([uds('a', '/a.sock')]);
    await store.flush();
    await expect(access(path)).rejects.toThrow();
    store.save([uds('a', '/a.sock', true)]);
    await store.flush();
    expect(summary(parseStoredEndpoints(await readFile(path, 'utf8'), 10).endpoints)).toEqual(['a@/a.sock:UDS:true']);
  });

  it('coalesces saves made during a write into one write of the latest list', async () => {
    const dir = await tempDir();
    const path = join(dir, ENDPOINTS_FILE);
    const store = new EndpointStore({ path, log: capturingLog().log, maxEntries: 100 });
    await store.load();
    for (let i = 1; i <= 50; i++) store.save(Array.from({ length: i }, (_, j) => uds(`h${j}`, `/h${j}.sock`)));
    await store.flush();
    expect(parseStoredEndpoints(await readFile(path, 'utf8'), 100).endpoints).toHaveLength(50);
  });

  it.each([
    ['corrupt', (path: string) => writeFile(path, '\u0000garbage')],
    ['too large', (path: string) => writeFile(path, ' '.repeat(4_096 + 2 * 1_024 + 1))],
    ['a directory', (path: string) => mkdir(path)],
    ['a FIFO (would block a plain read)', (path: string) => Promise.resolve(void execFileSync('mkfifo', [path]))],
  ])('a file that is %s is logged once and ignored', async (_what, plant) => {
    const dir = await tempDir();
    const path = join(dir, ENDPOINTS_FILE);
    await plant(path);
    const { log, warnings } = capturingLog();
    const store = new EndpointStore({ path, log, maxEntries: 2 });
    expect(await store.load()).toEqual([]);
    expect(warnings()).toHaveLength(1);
  });

  it('a state dir that cannot be written is logged once per failure streak, never thrown', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'not-a-dir'), '');
    const { log, warnings } = capturingLog();
    const store = new EndpointStore({ path: join(dir, 'not-a-dir', ENDPOINTS_FILE), log, maxEntries: 10 });
    await store.load();
    store.save([uds('a', '/a.sock')]);
    await store.flush();
    store.save([uds('b', '/b.sock')]);
    await store.flush();
    expect(warnings().filter((w) => w === 'Failed to save external handler endpoints')).toHaveLength(1);
  });

  it('does not follow a symlink planted at the temp path', async () => {
    const dir = await tempDir();
    const path = join(dir, ENDPOINTS_FILE);
    const victim = join(dir, 'victim');
    await writeFile(victim, 'precious');
    await symlink(victim, `${path}.tmp`);
    const store = new EndpointStore({ path, log: capturingLog().log, maxEntries: 10 });
    await store.load();
    store.save([uds('a', '/a.sock')]);
    await store.flush();
    expect(await readFile(victim, 'utf8')).toBe('precious');
    expect(summary(parseStoredEndpoints(await readFile(path, 'utf8'), 10).endpoints)).toEqual(['a@/a.sock:UDS:false']);
  });
});
