import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { ExternalHandlerRegistry } from '../../agent/external/registry.ts';
import { loadDiscoveryProtos } from '../../proto/load.ts';
import { Registrar } from './registrar.ts';

const log = pino({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('a periodic refresh registers once per period, not in a loop', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'treg-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const agent = new ExternalHandlerRegistry({ socketPath: join(dir, 'agent.sock'), log });
  await agent.start();
  cleanups.push(() => agent.stop());
  const refreshMs = 200;
  const registrar = new Registrar({
    agentSocket: join(dir, 'agent.sock'),
    request: { name: 'loop-check', endpoint: join(dir, 'h.sock'), endpoint_type: 'UDS', shared: false },
    protos: loadDiscoveryProtos(),
    log,
    refreshMs,
  });
  cleanups.push(() => registrar.stop());
  const at: number[] = [];
  registrar.on('registered', () => at.push(Date.now()));
  registrar.start();
  while (at.length < 3) await once(registrar, 'registered');
  // Closing the previous registration's channel used to read as "agent connection lost" and
  // re-register at once, forever: thousands of registrations per second.
  expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(refreshMs / 2);
  expect(registrar.registrations).toBe(3);
});
