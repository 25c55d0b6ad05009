/**
 * The SDK end to end against the agent's registry over real Unix sockets (and TCP):
 * registration and re-registration, full lists, merging of endpoints, failures.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status, type ClientReadableStream } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ExternalHandlerRegistry } from '../../agent/external/registry.ts';
import { startRun, waitUntil, type TestRun } from '../../test/support/external-handler.ts';
import { loadDiscoveryProtos } from '../../proto/load.ts';
import type { DiscoverRequest, DiscoverResponse } from '../../proto/types.ts';
import { DetailsError, type DiscoveredDevice } from '../contract.ts';
import { serveDiscoveryHandler, type DiscoveryHandlerDefinition, type HandlerListen, type ServedDiscoveryHandler } from './serve.ts';

const log = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** What a test handler "sees"; the test changes it and the handler reports at once. */
class World extends EventEmitter {
  #devices: DiscoveredDevice[];
  constructor(devices: DiscoveredDevice[]) {
    super();
    this.#devices = devices;
  }
  get devices(): DiscoveredDevice[] {
    return this.#devices;
  }
  set devices(devices: DiscoveredDevice[]) {
    this.#devices = devices;
    this.emit('change');
  }
}

interface EchoDetails {
  readonly prefix: string;
}

/** A handler: details `{prefix}`; every world device with its id prefixed, plus the SITE property. */
function echoHandler(
  world: World,
  overrides: Partial<DiscoveryHandlerDefinition<EchoDetails>> = {},
): DiscoveryHandlerDefinition<EchoDetails> {
  return {
    name: 'sdkEcho',
    shared: false,
    parseDetails(raw) {
      const prefix = (raw as { prefix?: unknown } | null)?.prefix ?? '';
      if (typeof prefix !== 'string') throw new DetailsError('details.prefix', 'must be a string');
      return { prefix };
    },
    async discover(details, properties, emit, signal) {
      const report = (): void =>
        emit(
          world.devices.map((d) => ({
            ...d,
            id: `${details.prefix}${d.id}`,
            properties: { ...d.properties, SITE: properties.get('SITE') ?? '' },
          })),
        );
      world.on('change', report);
      report();
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      world.off('change', report);
    },
    ...overrides,
  };
}

interface Setup {
  dir: string;
  socket: string;
  registry: ExternalHandlerRegistry;
  serve: (
    definition: DiscoveryHandlerDefinition<EchoDetails>,
    listen?: HandlerListen | string,
  ) => Promise<ServedDiscoveryHandler<EchoDetails>>;
  run: (name: string, details: unknown, properties?: ReadonlyMap<string, string>) => TestRun;
  waitRegistered: (name: string, registry?: ExternalHandlerRegistry) => Promise<void>;
  newRegistry: () => Promise<ExternalHandlerRegistry>;
}

async function setup(options: { startRegistry?: boolean } = {}): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'tx-'));
  const socket = join(dir, 'agent.sock');
  const registries: ExternalHandlerRegistry[] = [];
  const served: ServedDiscoveryHandler<EchoDetails>[] = [];
  const runs: TestRun[] = [];
  const newRegistry = async (): Promise<ExternalHandlerRegistry> => {
    const registry = new ExternalHandlerRegistry({ socketPath: socket, log, connectTimeoutMs: 1_000, firstReportTimeoutMs: 2_000 });
    registries.push(registry);
    await registry.start();
    return registry;
  };
  const registry = options.startRegistry === false ? new ExternalHandlerRegistry({ socketPath: socket, log }) : await newRegistry();
  if (options.startRegistry === false) registries.push(registry);
  cleanups.push(async () => {
    for (const run of runs) await run.stop();
    for (const s of served) await s.stop();
    for (const r of registries) await r.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir,
    socket,
    registry,
    newRegistry,
    serve: async (definition, listen = 'h.sock') => {
      const s = await serveDiscoveryHandler({
        ...definition,
        agentSocket: socket,
        listen: typeof listen === 'string' ? { socket: join(dir, listen) } : listen,
        log,
        registration: { initialRetryMs: 50, maxRetryMs: 400 },
      });
      served.push(s);
      return s;
    },
    run: (name, details, properties) => {
      const handler = registries.at(-1)?.handler(name);
      if (handler === undefined) throw new Error(`${name} is not registered`);
      const run = startRun(handler, details, log, properties);
      runs.push(run);
      return run;
    },
    waitRegistered: (name, r = registries.at(-1)!) =>
      waitUntil(r, 'registered', () => r.names().includes(name), 5_000, `${name} registered`),
  };
}

const dev = (id: string, properties: Record<string, string> = {}): DiscoveredDevice => ({ id, properties });

describe('serveDiscoveryHandler with the agent registry', () => {
  it('registers; devices flow to the session with properties, mounts and device nodes; changes propagate', async () => {
    const { registry, serve, run } = await setup();
    const world = new World([
      {
        id: 'cam',
        properties: { URL: 'rtsp://cam' },
        mounts: [{ containerPath: '/cfg', hostPath: '/etc/cam', readOnly: true }],
        deviceNodes: [{ containerPath: '/dev/video0', hostPath: '/dev/video4', permissions: 'rw' }],
      },
    ]);
    const served = await serve(echoHandler(world, { shared: true }));
    await waitUntil(served, 'registered', () => served.registrations === 1, 5_000, 'SDK saw its registration');
    expect(registry.names()).toEqual(['sdkEcho']);
    const adapter = registry.handler('sdkEcho')!;
    expect(adapter.isShared(adapter.parseDetails({}))).toBe(true);

    const r = run('sdkEcho', { prefix: 'p-' }, new Map([['SITE', 'plant-7']]));
    await r.sink.waitForIds(['p-cam']);
    expect(r.sink.device('p-cam')).toEqual({
      id: 'p-cam',
      properties: { URL: 'rtsp://cam', SITE: 'plant-7' },
      mounts: [{ containerPath: '/cfg', hostPath: '/etc/cam', readOnly: true }],
      deviceNodes: [{ containerPath: '/dev/video0', hostPath: '/dev/video4', permissions: 'rw' }],
    });

    world.devices = [dev('cam'), dev('mic')];
    await r.sink.waitForIds(['p-cam', 'p-mic']);
    world.devices = [dev('mic')];
    await r.sink.waitForIds(['p-mic']);
  });

  it('merges two endpoints under one name; a stopped one takes its devices, and brings them back when it returns', async () => {
    const { serve, run, waitRegistered, registry } = await setup();
    const worldA = new World([dev('a1'), dev('shared', { FROM: 'a' })]);
    const worldB = new World([dev('b1'), dev('shared', { FROM: 'b' })]);
    const a = await serve(echoHandler(worldA), 'a.sock');
    await waitRegistered('sdkEcho');
    const r = run('sdkEcho', {});
    await r.sink.waitForIds(['a1', 'shared']);
    // B registers later: it joins the running session, and wins the conflict on "shared".
    const b = await serve(echoHandler(worldB), 'b.sock');
    await r.sink.waitForIds(['a1', 'b1', 'shared']);
    expect(r.sink.device('shared')?.properties['FROM']).toBe('b');
    expect(registry.endpoints('sdkEcho').map((e) => e.endpoint)).toEqual([a.endpoint, b.endpoint]);

    await a.stop();
    await r.sink.waitForIds(['b1', 'shared']);
    expect(r.counts.get('stream_broken')).toBe(1);

    const again = await serve(echoHandler(worldA), 'a.sock');
    await r.sink.waitForIds(['a1', 'b1', 'shared']);
    // A is now the later-registered endpoint.
    expect(r.sink.device('shared')?.properties['FROM']).toBe('a');
    expect(again.streams).toBe(1);
  });

  it('maps DetailsError from parseDetails and from discover to a DetailsError with the field path', async () => {
    const { serve, run, waitRegistered } = await setup();
    await serve(
      echoHandler(new World([]), {
        name: 'strict',
        // eslint-disable-next-line @typescript-eslint/require-await
        async discover(details) {
          if (details.prefix === 'bad') throw new DetailsError('details.prefix', 'must not be "bad"');
        },
      }),
    );
    await waitRegistered('strict');
    const fromParse = await run('strict', { prefix: 7 }).done.catch((e: unknown) => e);
    expect(fromParse).toBeInstanceOf(DetailsError);
    expect(fromParse).toMatchObject({ path: 'details.prefix', message: 'details.prefix: must be a string' });
    const fromDiscover = await run('strict', { prefix: 'bad' }).done.catch((e: unknown) => e);
    expect(fromDiscover).toMatchObject({ path: 'details.prefix', message: 'details.prefix: must not be "bad"' });
  });

  it('registers once the agent comes up, retrying with a fast, growing backoff', async () => {
    const { registry, serve } = await setup({ startRegistry: false });
    const served = await serve(echoHandler(new World([dev('x')])));
    const delays: number[] = [];
    served.on('registration_failed', (_error: unknown, delay: number) => delays.push(delay));
    await waitUntil(served, 'registration_failed', () => delays.length >= 5, 5_000, 'five failed attempts');
    // 50 ms doubling up to the 400 ms cap, each ±20 %.
    expect(delays[0]).toBeLessThanOrEqual(60);
    expect(delays[2]).toBeGreaterThanOrEqual(160);
    expect(delays[3]).toBeGreaterThanOrEqual(320);
    expect(delays[4]).toBeLessThanOrEqual(480);
    const registered = waitUntil(served, 'registered', () => served.registrations === 1, 5_000, 'registered');
    await registry.start();
    await registered;
    expect(registry.names()).toEqual(['sdkEcho']);
  });

  it('re-registers at once when the agent restarts, even with no stream open', async () => {
    const { registry, serve, newRegistry, run, waitRegistered } = await setup();
    const served = await serve(echoHandler(new World([dev('x')])));
    await waitUntil(served, 'registered', () => served.registrations === 1, 5_000, 'first registration');
    expect(served.streams).toBe(0);
    await registry.stop();
    // The refresh is 30 s: only noticing the lost agent connection makes this in time.
    const restarted = await newRegistry();
    await waitRegistered('sdkEcho', restarted);
    await waitUntil(served, 'registered', () => served.registrations === 2, 5_000, 'second registration');
    const r = run('sdkEcho', {});
    await r.sink.waitForIds(['x']);
  });

  it('re-registers after the agent drops its stream (agent restart during a session)', async () => {
    const { registry, serve, newRegistry, run, waitRegistered } = await setup();
    await serve(echoHandler(new World([dev('x')])));
    await waitRegistered('sdkEcho');
    const first = run('sdkEcho', {});
    await first.sink.waitForIds(['x']);
    await registry.stop();
    await expect(first.done).rejects.toThrow('registry stopped');
    const restarted = await newRegistry();
    await waitRegistered('sdkEcho', restarted);
    const second = run('sdkEcho', {});
    await second.sink.waitForIds(['x']);
  });

  it('a discover that fails breaks the stream; the SDK comes back and the session resumes', async () => {
    const { serve, run, waitRegistered } = await setup();
    const world = new World([dev('x')]);
    let attempts = 0;
    const good = echoHandler(world);
    await serve(
      echoHandler(world, {
        discover(details, properties, emit, signal) {
          attempts++;
          if (attempts === 1) throw new Error('camera bus glitch');
          return good.discover(details, properties, emit, signal);
        },
      }),
    );
    await waitRegistered('sdkEcho');
    const r = run('sdkEcho', {});
    await r.sink.waitForIds(['x']);
    expect(attempts).toBe(2);
    expect(r.counts.get('stream_broken')).toBe(1);
  });

  it('serves over TCP and registers a NETWORK endpoint', async () => {
    const { serve, run, waitRegistered, registry } = await setup();
    const served = await serve(echoHandler(new World([dev('net')])), { host: '127.0.0.1', port: 0 });
    expect(served.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await waitRegistered('sdkEcho');
    expect(registry.endpoints('sdkEcho')[0]?.type).toBe('NETWORK');
    const r = run('sdkEcho', {});
    await r.sink.waitForIds(['net']);
  });
});

describe('the SDK server on the wire (as an Akri agent sees it)', () => {
  function discover(
    socket: string,
    request: DiscoverRequest,
  ): { call: ClientReadableStream<DiscoverResponse>; messages: DiscoverResponse[]; events: EventEmitter } {
    const protos = loadDiscoveryProtos();
    const client = new protos.DiscoveryHandler(`unix://${socket}`, credentials.createInsecure());
    cleanups.push(() => Promise.resolve(client.close()));
    const call = (client as unknown as { Discover(r: DiscoverRequest): ClientReadableStream<DiscoverResponse> }).Discover(request);
    const messages: DiscoverResponse[] = [];
    const events = new EventEmitter();
    call.on('data', (m: DiscoverResponse) => {
      messages.push(m);
      events.emit('message');
    });
    call.on('error', (e) => events.emit('failed', e));
    return { call, messages, events };
  }

  it('sends full lists, only when they change; YAML details; properties from bytes', async () => {
    const { dir, serve } = await setup();
    const world = new World([dev('a')]);
    await serve(echoHandler(world));
    const { call, messages, events } = discover(join(dir, 'h.sock'), {
      discovery_details: 'prefix: "y-"\n',
      discovery_properties: { SITE: { vec: Buffer.from('dock-3') } },
    });
    await waitUntil(events, 'message', () => messages.length === 1, 5_000, 'first list');
    world.devices = [dev('a')];
    world.devices = [dev('a'), dev('b')];
    await waitUntil(events, 'message', () => messages.length === 2, 5_000, 'second list');
    expect(messages).toEqual([
      { devices: [{ id: 'y-a', properties: { SITE: 'dock-3' }, mounts: [], device_specs: [] }] },
      {
        devices: [
          { id: 'y-a', properties: { SITE: 'dock-3' }, mounts: [], device_specs: [] },
          { id: 'y-b', properties: { SITE: 'dock-3' }, mounts: [], device_specs: [] },
        ],
      },
    ]);
    call.cancel();
  });

  it('answers bad YAML and bad details with InvalidArgument', async () => {
    const { dir, serve } = await setup();
    await serve(echoHandler(new World([])));
    for (const details of ['prefix: [unclosed', 'prefix: 7']) {
      const { events } = discover(join(dir, 'h.sock'), { discovery_details: details, discovery_properties: {} });
      const error = await new Promise<{ code: number; details: string }>((resolve) => events.once('failed', resolve));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toMatch(/^details/);
    }
  });
});
