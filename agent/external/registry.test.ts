/**
 * The registry against hand-written v0 handlers: raw gRPC with the upstream protos, as a
 * Rust handler built on Akri's discovery-utils behaves (UDS and NETWORK endpoints).
 */
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { DetailsError } from '../../discovery-handlers/contract.ts';
import type { AkriDevice } from '../../proto/types.ts';
import { ExternalHandlerRegistry, type ExternalHandlerRegistryOptions } from './registry.ts';
import { startRun, waitUntil, type TestRun } from '../../test/support/external-handler.ts';
import { device, RawHandler, register, uds } from '../../test/support/raw-v0-handler.ts';

const log = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  dir: string;
  registry: ExternalHandlerRegistry;
  socket: string;
  raw: (name: string, devices?: AkriDevice[]) => Promise<RawHandler>;
  run: (name: string, details: unknown, properties?: ReadonlyMap<string, string>) => TestRun;
  waitNames: (predicate: (names: string[]) => boolean, what: string) => Promise<void>;
}

async function setup(options: Partial<ExternalHandlerRegistryOptions> = {}): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'tx-'));
  const socket = join(dir, 'agent.sock');
  const registry = new ExternalHandlerRegistry({ socketPath: socket, log, connectTimeoutMs: 1_000, ...options });
  await registry.start();
  const runs: TestRun[] = [];
  const raws: RawHandler[] = [];
  cleanups.push(async () => {
    for (const run of runs) await run.stop();
    for (const raw of raws) raw.kill();
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir,
    registry,
    socket,
    raw: async (file, devices = []) => {
      const raw = new RawHandler(`unix://${join(dir, file)}`, devices);
      raws.push(raw);
      await raw.start();
      return raw;
    },
    run: (name, details, properties) => {
      const handler = registry.handler(name);
      if (handler === undefined) throw new Error(`${name} not registered`);
      const run = startRun(handler, details, log, properties);
      runs.push(run);
      return run;
    },
    waitNames: (predicate, what) => waitUntil(registry, ['registered', 'unregistered'], () => predicate(registry.names()), 5_000, what),
  };
}

describe('ExternalHandlerRegistry with a raw v0 handler', () => {
  it('registers, streams devices, sends details as YAML and properties as bytes', async () => {
    const { dir, registry, socket, raw, run, waitNames } = await setup();
    const handler = await raw('raw.sock', [
      {
        id: 'cam-1',
        properties: { RAW_URL: 'rtsp://10.0.0.7/stream' },
        mounts: [{ container_path: '/cfg', host_path: '/etc/cam', read_only: true }],
        device_specs: [{ container_path: '/dev/video0', host_path: '/dev/video3', permissions: 'rw' }],
      },
    ]);
    expect(registry.handler('rawEcho')).toBeUndefined();
    await register(socket, uds('rawEcho', join(dir, 'raw.sock'), true));
    await waitNames((n) => n.includes('rawEcho'), 'registration');
    expect(registry.names()).toEqual(['rawEcho']);
    const adapter = registry.handler('rawEcho')!;
    expect(adapter.name).toBe('rawEcho');
    expect(adapter.isShared(adapter.parseDetails({}))).toBe(true);

    const details = { descriptions: ['foo', 'bar'], nested: { port: 554, secure: false } };
    const r = run(
      'rawEcho',
      details,
      new Map([
        ['USERNAME', 'admin'],
        ['PASSWORD', 'pä$$'],
      ]),
    );
    await r.sink.waitForIds(['cam-1']);
    expect(r.sink.device('cam-1')).toEqual({
      id: 'cam-1',
      properties: { RAW_URL: 'rtsp://10.0.0.7/stream' },
      mounts: [{ containerPath: '/cfg', hostPath: '/etc/cam', readOnly: true }],
      deviceNodes: [{ containerPath: '/dev/video0', hostPath: '/dev/video3', permissions: 'rw' }],
    });

    const [request] = handler.requests;
    // YAML, as Akri handlers (serde_yaml) expect it — not JSON.
    expect(request?.discovery_details).toBe('descriptions:\n  - foo\n  - bar\nnested:\n  port: 554\n  secure: false\n');
    expect(parse(request!.discovery_details)).toEqual(details);
    expect(Buffer.isBuffer(request?.discovery_properties['PASSWORD']?.vec)).toBe(true);
    expect(request?.discovery_properties['PASSWORD']?.vec?.toString('utf8')).toBe('pä$$');
    expect(request?.discovery_properties['USERNAME']?.vec).toEqual(Buffer.from('admin'));

    // Every message is the full list: changes propagate, devices not listed are gone.
    handler.setDevices([device('cam-2'), device('cam-3')]);
    await r.sink.waitForIds(['cam-2', 'cam-3']);
    handler.setDevices([]);
    await r.sink.waitForIds([]);
  });

  it('InvalidArgument from the handler rejects run with a DetailsError carrying its message', async () => {
    const { dir, socket, raw, run, waitNames } = await setup();
    const handler = await raw('raw.sock');
    handler.refuse = {
      code: status.INVALID_ARGUMENT,
      details: 'Configuration discovery details improperly configured: missing field `descriptions`',
    };
    await register(socket, uds('rawEcho', join(dir, 'raw.sock')));
    await waitNames((n) => n.includes('rawEcho'), 'registration');
    const r = run('rawEcho', { nope: 1 });
    const error = await r.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DetailsError);
    expect((error as DetailsError).path).toBe('details');
    expect((error as DetailsError).message).toContain('missing field `descriptions`');
  });

  it('a broken stream drops the endpoint and its devices; re-registration resumes the running session', async () => {
    // A long connect timeout: only the broken stream can drop the endpoint in time.
    const { dir, registry, socket, raw, run, waitNames } = await setup({ connectTimeoutMs: 30_000 });
    const first = await raw('raw.sock', [device('a'), device('b')]);
    await register(socket, uds('rawEcho', join(dir, 'raw.sock')));
    await waitNames((n) => n.includes('rawEcho'), 'registration');
    const r = run('rawEcho', { descriptions: ['a', 'b'] });
    await r.sink.waitForIds(['a', 'b']);

    first.kill();
    await r.sink.waitForIds([]);
    await waitNames((n) => !n.includes('rawEcho'), 'unregistered');
    expect(r.counts.get('stream_broken')).toBe(1);
    expect(registry.handler('rawEcho')).toBeUndefined();

    // The handler comes back (as Akri handlers do: they register again) at the same socket.
    const second = await raw('raw.sock', [device('a'), device('c')]);
    await register(socket, uds('rawEcho', join(dir, 'raw.sock')));
    await r.sink.waitForIds(['a', 'c']);
    expect(second.requests).toHaveLength(1);
    expect(registry.endpoints('rawEcho')).toHaveLength(1);
  });

  it('registering again with the same name and endpoint replaces it: no duplicate, live stream kept', async () => {
    const { dir, registry, socket, raw, run, waitNames } = await setup();
    const handler = await raw('raw.sock', [device('a')]);
    await register(socket, uds('rawEcho', join(dir, 'raw.sock')));
    await waitNames((n) => n.includes('rawEcho'), 'registration');
    const r = run('rawEcho', {});
    await r.sink.waitForIds(['a']);
    await register(socket, uds('rawEcho', join(dir, 'raw.sock'), true));
    await register(socket, uds('rawEcho', join(dir, 'raw.sock'), true));
    expect(registry.endpoints('rawEcho')).toMatchObject([{ endpoint: join(dir, 'raw.sock'), type: 'UDS', shared: true }]);
    // A second endpoint under the name joins the session; the first keeps its one stream.
    const other = await raw('other.sock', [device('z')]);
    await register(socket, uds('rawEcho', join(dir, 'other.sock')));
    await r.sink.waitForIds(['a', 'z']);
    expect(handler.requests).toHaveLength(1);
    expect(handler.calls.size).toBe(1);
    expect(other.requests).toHaveLength(1);
    expect(registry.endpoints('rawEcho')).toHaveLength(2);
  });

  it('dials NETWORK endpoints registered the Akri way (http://host:port)', async () => {
    const { socket, run, waitNames } = await setup();
    const handler = new RawHandler('127.0.0.1:0', [device('net-1', { VIA: 'tcp' })]);
    await handler.start();
    cleanups.push(() => Promise.resolve(handler.kill()));
    await register(socket, { name: 'netEcho', endpoint: `http://127.0.0.1:${handler.port}`, endpoint_type: 'NETWORK', shared: false });
    await waitNames((n) => n.includes('netEcho'), 'registration');
    const r = run('netEcho', { descriptions: ['x'] });
    await r.sink.waitForIds(['net-1']);
    expect(r.sink.device('net-1')?.properties).toEqual({ VIA: 'tcp' });
  });

  it('backs off reopening an endpoint whose streams keep failing before any list', async () => {
    const { dir, registry, socket, raw, run, waitNames } = await setup({ connectTimeoutMs: 30_000 });
    const handler = await raw('raw.sock');
    handler.refuse = { code: status.INTERNAL, details: 'boom' };
    const times: number[] = [];
    handler.on('request', () => times.push(performance.now()));
    // A hot-looping handler: registers again the moment it is dropped.
    const again = (): void => void register(socket, uds('spin', join(dir, 'raw.sock'))).catch(() => undefined);
    registry.on('unregistered', again);
    cleanups.push(() => Promise.resolve(registry.off('unregistered', again)));
    await register(socket, uds('spin', join(dir, 'raw.sock')));
    await waitNames((n) => n.includes('spin'), 'registration');
    const r = run('spin', {});
    await waitUntil(handler, 'request', () => times.length >= 3, 5_000, 'three Discover attempts');
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(90);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(180);
    expect(r.counts.get('stream_broken')).toBeGreaterThanOrEqual(2);
  });

  it('refuses malformed registrations with InvalidArgument', async () => {
    const { socket, registry } = await setup();
    await expect(register(socket, uds('rawEcho', 'relative.sock'))).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringContaining('absolute socket path'),
    });
    await expect(register(socket, uds('bad name', '/tmp/x.sock'))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(registry.names()).toEqual([]);
  });

  it('refuses registrations beyond maxEndpoints', async () => {
    const { dir, socket, registry } = await setup({ maxEndpoints: 1 });
    await raw_(dir, 'a.sock');
    await raw_(dir, 'b.sock');
    await register(socket, uds('h', join(dir, 'a.sock')));
    await expect(register(socket, uds('h', join(dir, 'b.sock')))).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    // Refreshing an existing endpoint is still fine.
    await register(socket, uds('h', join(dir, 'a.sock')));
    expect(registry.endpoints('h')).toHaveLength(1);
  });

  it('drops an endpoint that cannot be reached', async () => {
    const { dir, socket, registry, waitNames } = await setup({ connectTimeoutMs: 200 });
    const unregistered = new Promise<string>((resolve) => registry.once('unregistered', resolve));
    await register(socket, uds('ghost', join(dir, 'nobody-home.sock')));
    expect(registry.names()).toEqual(['ghost']);
    expect(await unregistered).toBe('ghost');
    await waitNames((n) => n.length === 0, 'ghost dropped');
  });

  it('notices a handler that dies while no session uses it', async () => {
    const { dir, socket, registry, raw, waitNames } = await setup({ connectTimeoutMs: 300 });
    const handler = await raw('raw.sock');
    await register(socket, uds('idle', join(dir, 'raw.sock')));
    await waitNames((n) => n.includes('idle'), 'registration');
    const gone = new Promise<string>((resolve) => registry.once('unregistered', resolve));
    // The registry dials on registration; kill the handler only once that connection is up.
    await waitUntil(registry, 'endpoint-ready', () => registry.endpoints('idle')[0]?.ready === true, 5_000, 'connected');
    handler.kill();
    expect(await gone).toBe('idle');
  });

  it('ignores a response over the device cap (counted), keeping the last good list', async () => {
    const { dir, socket, raw, run, waitNames } = await setup({ limits: { maxDevices: 2 } });
    const handler = await raw('raw.sock', [device('a')]);
    await register(socket, uds('rawEcho', join(dir, 'raw.sock')));
    await waitNames((n) => n.includes('rawEcho'), 'registration');
    const r = run('rawEcho', {});
    await r.sink.waitForIds(['a']);
    const counted = waitUntil(r.sink, 'count', () => r.counts.get('bad_payload') === 1, 5_000, 'bad_payload');
    handler.setDevices([device('x'), device('y'), device('z')]);
    await counted;
    expect(r.sink.ids()).toEqual(['a']);
    handler.setDevices([device('x'), device('y')]);
    await r.sink.waitForIds(['x', 'y']);
  });

  it('reports what it has after firstReportTimeoutMs when an endpoint stays silent', async () => {
    const { dir, socket, raw, run, waitNames } = await setup({ firstReportTimeoutMs: 200 });
    await raw('a.sock', [device('a')]);
    const silent = await raw('b.sock', [device('b')]);
    silent.hold = true;
    await register(socket, uds('pair', join(dir, 'a.sock')));
    await register(socket, uds('pair', join(dir, 'b.sock')));
    await waitNames((n) => n.includes('pair'), 'registration');
    const r = run('pair', {});
    await r.sink.waitForIds(['a']);
    expect(r.sink.lists).toEqual([[{ id: 'a', properties: {} }]]);
    silent.release();
    await r.sink.waitForIds(['a', 'b']);
  });

  it("a new session reports once with every endpoint's devices when all answer", async () => {
    const { dir, socket, raw, run, waitNames } = await setup({ firstReportTimeoutMs: 10_000 });
    await raw('a.sock', [device('a')]);
    const late = await raw('b.sock', [device('b')]);
    late.hold = true;
    await register(socket, uds('pair', join(dir, 'a.sock')));
    await register(socket, uds('pair', join(dir, 'b.sock')));
    await waitNames((n) => n.includes('pair'), 'registration');
    const r = run('pair', {});
    await waitUntil(late, 'discover', () => late.requests.length === 1, 5_000, 'b asked');
    late.release();
    await r.sink.waitForIds(['a', 'b']);
    expect(r.sink.lists[0]?.map((d) => d.id)).toEqual(['a', 'b']);
  });

  it('run rejects with a plain Error when nothing is registered under the name', async () => {
    const { dir, socket, registry, raw, waitNames } = await setup({ connectTimeoutMs: 200 });
    const handler = await raw('raw.sock');
    await register(socket, uds('rawEcho', join(dir, 'raw.sock')));
    await waitNames((n) => n.includes('rawEcho'), 'registration');
    const adapter = registry.handler('rawEcho')!;
    handler.kill();
    await waitNames((n) => n.length === 0, 'unregistered');
    const r = startRun(adapter, {}, log);
    const error = await r.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(DetailsError);
    expect((error as Error).message).toContain('no external discovery handler is registered as "rawEcho"');
  });

  it('start() replaces a stale socket file; stop() ends sessions and removes the socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tx-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socket = join(dir, 'agent.sock');
    await writeFile(socket, 'stale');
    const registry = new ExternalHandlerRegistry({ socketPath: socket, log });
    await registry.start();
    const handler = await raw_(dir, 'raw.sock', [device('a')]);
    cleanups.push(() => Promise.resolve(handler.kill()));
    await register(socket, uds('rawEcho', join(dir, 'raw.sock')));
    const r = startRun(registry.handler('rawEcho')!, {}, log);
    await r.sink.waitForIds(['a']);
    const cancelled = waitUntil(handler, 'cancelled', () => handler.calls.size === 0, 5_000, 'stream cancelled');
    await registry.stop();
    await expect(r.done).rejects.toThrow('registry stopped');
    await cancelled;
    await expect(access(socket)).rejects.toThrow();
    expect(registry.names()).toEqual([]);
  });
});

async function raw_(dir: string, file: string, devices: AkriDevice[] = []): Promise<RawHandler> {
  const raw = new RawHandler(`unix://${join(dir, file)}`, devices);
  await raw.start();
  cleanups.push(() => Promise.resolve(raw.kill()));
  return raw;
}
