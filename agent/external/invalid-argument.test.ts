/**
 * InvalidArgument from an external handler stops retries: a discovery session runs the
 * handler once, reports the refusal once (HandlerFailed, counted), and runs it again only
 * when the handler's registration changes — the refusing endpoint registering again (maybe
 * a new version) or a new endpoint under the name. Call counts are the handler's own.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DetailsError } from '../../discovery-handlers/contract.ts';
import { waitUntil } from '../../test/support/external-handler.ts';
import { device, RawHandler, register, uds } from '../../test/support/raw-v0-handler.ts';
import type { ServedDevice } from '../device.ts';
import { DiscoverySession } from '../discovery/session.ts';
import { ExternalHandlerRegistry } from './registry.ts';

const log = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown>)[] = [];
/** Long enough for the old session's 5–20 ms backoff to have retried many times. */
const NO_RETRY_WINDOW_MS = 500;

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const REFUSAL = { code: status.INVALID_ARGUMENT, details: 'details.descriptions: is required' };

async function setup(): Promise<{ dir: string; socket: string; registry: ExternalHandlerRegistry }> {
  const dir = await mkdtemp(join(tmpdir(), 'tx-inval-'));
  const socket = join(dir, 'agent.sock');
  // A long connect timeout: endpoints stay registered unless the test says otherwise.
  const registry = new ExternalHandlerRegistry({ socketPath: socket, log, connectTimeoutMs: 30_000 });
  await registry.start();
  cleanups.push(async () => {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, socket, registry };
}

async function rawHandler(dir: string, file: string, ids: string[] = []): Promise<RawHandler> {
  const raw = new RawHandler(
    `unix://${join(dir, file)}`,
    ids.map((id) => device(id)),
  );
  cleanups.push(() => Promise.resolve(raw.kill()));
  await raw.start();
  return raw;
}

/** A session of handler `name` as the node runtime runs it, with a fast backoff. */
function session(registry: ExternalHandlerRegistry, name: string) {
  const events = new EventEmitter();
  const errors: Error[] = [];
  const counts: string[] = [];
  let devices: ServedDevice[] = [];
  const handler = registry.handler(name);
  if (handler === undefined) throw new Error(`${name} is not registered`);
  const s = new DiscoverySession(
    {
      namespace: 'ns',
      name: 'cams',
      handler,
      details: handler.parseDetails({}),
      capacity: 1,
      offlineGraceMs: 60_000,
      properties: new Map(),
    },
    {
      node: 'n1',
      log,
      backoff: { initialMs: 5, maxMs: 20 },
      onDevices: (list) => ((devices = list), events.emit('change')),
      count: (event) => counts.push(event),
      onError: (error) => (errors.push(error), events.emit('change')),
    },
  );
  cleanups.push(() => s.stop());
  s.start();
  const waitFor = (predicate: () => boolean, what: string): Promise<void> => waitUntil(events, 'change', predicate, 5_000, what);
  return { errors, counts, ids: () => devices.map((d) => d.deviceId).sort(), waitFor };
}

/** Resolves once `raw` got `n` Discover calls. */
const calls = (raw: RawHandler, n: number): Promise<void> =>
  waitUntil(raw, 'request', () => raw.requests.length >= n, 5_000, `${n} Discover calls (got ${raw.requests.length})`);

/** Rejects unless `raw` gets a Discover call beyond `n` within NO_RETRY_WINDOW_MS. */
const noCallBeyond = (raw: RawHandler, n: number): Promise<void> =>
  expect(waitUntil(raw, 'request', () => raw.requests.length > n, NO_RETRY_WINDOW_MS, 'a retry')).rejects.toThrow('timed out');

describe('InvalidArgument from an external handler', () => {
  it('is reported once and not retried until the handler registers again', async () => {
    const { dir, socket, registry } = await setup();
    const strict = await rawHandler(dir, 'strict.sock', ['cam-1']);
    strict.refuse = REFUSAL;
    await register(socket, uds('strict', join(dir, 'strict.sock')));
    const s = session(registry, 'strict');

    await calls(strict, 1);
    await s.waitFor(() => s.errors.length === 1, 'the refusal reported');
    await noCallBeyond(strict, 1);
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]).toBeInstanceOf(DetailsError);
    expect(s.errors[0]!.message).toBe('details.descriptions: is required');
    expect(s.counts.filter((c) => c === 'handler_error')).toHaveLength(1);

    // A new version of the handler accepts the details and registers (same endpoint).
    strict.refuse = undefined;
    await register(socket, uds('strict', join(dir, 'strict.sock')));
    await calls(strict, 2);
    await s.waitFor(() => s.ids().join() === 'cam-1', 'the device reported');
    expect(strict.requests).toHaveLength(2);
    expect(s.errors).toHaveLength(1);
  });

  it('other endpoints registering again do not count (the run cancelled them); a new endpoint does', async () => {
    const { dir, socket, registry } = await setup();
    const fine = await rawHandler(dir, 'fine.sock', ['f']);
    const strict = await rawHandler(dir, 'strict.sock');
    strict.refuse = REFUSAL;
    await register(socket, uds('mixed', join(dir, 'fine.sock')));
    await register(socket, uds('mixed', join(dir, 'strict.sock')));
    const s = session(registry, 'mixed');
    await calls(strict, 1);
    await s.waitFor(() => s.errors.length === 1, 'the refusal reported');

    // What an SDK handler does when the agent cancels its stream: register again.
    await register(socket, uds('mixed', join(dir, 'fine.sock')));
    await noCallBeyond(strict, 1);
    expect(fine.requests).toHaveLength(1);

    const late = await rawHandler(dir, 'late.sock', ['l']);
    await register(socket, uds('mixed', join(dir, 'late.sock')));
    await calls(strict, 2);
    await calls(late, 1);
    await s.waitFor(() => s.errors.length === 2, 'the second refusal reported');
  });
});
