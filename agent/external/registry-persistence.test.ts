/**
 * The registry remembers accepted registrations in its state file: a new registry on the
 * same file dials them as if they had just registered (the handler itself stays idle, as
 * Akri's handlers do until a stream breaks), drops the unreachable ones from the file, and
 * dials nothing a registration could not have named.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startRun, waitUntil, type TestRun } from '../../test/support/external-handler.ts';
import { device, RawHandler, register, uds } from '../../test/support/raw-v0-handler.ts';
import { endpointsFile, parseStoredEndpoints } from './endpoint-store.ts';
import { ExternalHandlerRegistry } from './registry.ts';

const log = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Scene {
  readonly dir: string;
  readonly socket: string;
  readonly stateFile: string;
  /** Starts a registry on the scene's socket and state file (stopped after the test). */
  registry(connectTimeoutMs?: number): Promise<ExternalHandlerRegistry>;
  raw(file: string, devices?: Parameters<typeof device>[0][]): Promise<RawHandler>;
  run(registry: ExternalHandlerRegistry, name: string): TestRun;
  /** The file's endpoints as `name@endpoint:shared`. */
  remembered(): Promise<string[]>;
}

async function scene(): Promise<Scene> {
  const dir = await mkdtemp(join(tmpdir(), 'tx-persist-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const stateFile = endpointsFile(join(dir, 'state'));
  const socket = join(dir, 'agent.sock');
  return {
    dir,
    socket,
    stateFile,
    registry: async (connectTimeoutMs = 1_000) => {
      const registry = new ExternalHandlerRegistry({ socketPath: socket, log, connectTimeoutMs, stateFile });
      cleanups.push(() => registry.stop());
      await registry.start();
      return registry;
    },
    raw: async (file, ids = []) => {
      const raw = new RawHandler(
        `unix://${join(dir, file)}`,
        ids.map((id) => device(id)),
      );
      cleanups.push(() => Promise.resolve(raw.kill()));
      await raw.start();
      return raw;
    },
    run: (registry, name) => {
      const handler = registry.handler(name);
      if (handler === undefined) throw new Error(`${name} is not registered (names: ${registry.names().join(', ')})`);
      const run = startRun(handler, {}, log);
      cleanups.push(() => run.stop());
      return run;
    },
    remembered: async () =>
      parseStoredEndpoints(await readFile(stateFile, 'utf8'), 100).endpoints.map((e) => `${e.name}@${e.endpoint}:${String(e.shared)}`),
  };
}

describe('ExternalHandlerRegistry with a state file', () => {
  it('a new registry dials the remembered endpoints: an idle handler serves new sessions without registering again', async () => {
    const s = await scene();
    const handler = await s.raw('raw.sock', ['a']);
    const first = await s.registry();
    await register(s.socket, uds('rawEcho', join(s.dir, 'raw.sock')));
    const before = s.run(first, 'rawEcho');
    await before.sink.waitForIds(['a']);
    await first.stop(); // the agent restarts; the handler registers no more
    expect(await s.remembered()).toEqual([`rawEcho@${join(s.dir, 'raw.sock')}:false`]);

    const second = await s.registry();
    expect(second.names()).toEqual(['rawEcho']);
    const after = s.run(second, 'rawEcho');
    await after.sink.waitForIds(['a']);
    expect(handler.requests).toHaveLength(2);
    await waitUntil(second, 'endpoint-ready', () => second.endpoints('rawEcho')[0]?.ready === true, 5_000, 'endpoint ready');
  });

  it('drops a remembered endpoint that does not answer within connectTimeoutMs, and forgets it', async () => {
    const s = await scene();
    await s.raw('live.sock');
    const first = await s.registry();
    await register(s.socket, uds('live', join(s.dir, 'live.sock')));
    await register(s.socket, uds('ghost', join(s.dir, 'ghost.sock'), true));
    await first.stop(); // before the ghost's connect timeout: both are remembered
    expect(await s.remembered()).toEqual([`live@${join(s.dir, 'live.sock')}:false`, `ghost@${join(s.dir, 'ghost.sock')}:true`]);

    const second = await s.registry(200);
    expect(second.names()).toEqual(['ghost', 'live']);
    await waitUntil(second, 'unregistered', () => !second.names().includes('ghost'), 5_000, 'ghost dropped');
    await second.stop(); // flushes the file
    expect(await s.remembered()).toEqual([`live@${join(s.dir, 'live.sock')}:false`]);
  });

  it('re-registrations update the file (a changed shared flag), in registration order', async () => {
    const s = await scene();
    await s.raw('a.sock');
    await s.raw('b.sock');
    const registry = await s.registry();
    await register(s.socket, uds('a', join(s.dir, 'a.sock')));
    await register(s.socket, uds('b', join(s.dir, 'b.sock')));
    await register(s.socket, uds('a', join(s.dir, 'a.sock'), true));
    await registry.stop();
    expect(await s.remembered()).toEqual([`a@${join(s.dir, 'a.sock')}:true`, `b@${join(s.dir, 'b.sock')}:false`]);
  });

  it('ignores a hostile file: only entries a registration could name are dialled, and the file is rewritten', async () => {
    const s = await scene();
    await s.raw('ok.sock');
    await mkdir(join(s.dir, 'state'));
    const entries = [
      { name: 'ok', endpoint: join(s.dir, 'ok.sock'), endpoint_type: 'UDS', shared: false },
      { name: 'rel', endpoint: 'ok.sock', endpoint_type: 'UDS', shared: false },
      { name: '../../etc', endpoint: '/etc/passwd', endpoint_type: 'UDS', shared: false },
      { name: 'tls', endpoint: 'https://10.0.0.1:443', endpoint_type: 'NETWORK', shared: false },
      { name: 'num', endpoint: 42, endpoint_type: 'UDS' },
      { name: 'kind', endpoint: join(s.dir, 'ok.sock'), endpoint_type: 'FILE' },
    ];
    await writeFile(s.stateFile, JSON.stringify({ version: 1, endpoints: entries }));
    const registry = await s.registry();
    expect(registry.names()).toEqual(['ok']);
    await registry.stop();
    expect(await s.remembered()).toEqual([`ok@${join(s.dir, 'ok.sock')}:false`]);
  });

  it('starts with nothing remembered when the file is corrupt', async () => {
    const s = await scene();
    await mkdir(join(s.dir, 'state'));
    await writeFile(s.stateFile, '{"version": 1, "endpoints": [{"name": "x", "endp');
    const registry = await s.registry();
    expect(registry.names()).toEqual([]);
  });
});
