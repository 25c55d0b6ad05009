import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DetailsError, type DeviceSink, type DiscoveredDevice } from '../contract.ts';
import { createDebugEchoHandler, parseDebugEchoDetails } from './debug-echo.ts';

describe('parseDebugEchoDetails', () => {
  it('accepts descriptions with defaults', () => {
    expect(parseDebugEchoDetails({ descriptions: ['a', 'b'] })).toEqual({ descriptions: ['a', 'b'], shared: false });
  });

  it.each([
    [null, 'details'],
    [[], 'details'],
    [{}, 'details.descriptions'],
    [{ descriptions: [] }, 'details.descriptions'],
    [{ descriptions: 'a' }, 'details.descriptions'],
    [{ descriptions: ['a', 7] }, 'details.descriptions[1]'],
    [{ descriptions: ['a', ''] }, 'details.descriptions[1]'],
    [{ descriptions: ['a', 'a'] }, 'details.descriptions[1]'],
    [{ descriptions: ['x'.repeat(257)] }, 'details.descriptions[0]'],
    [{ descriptions: ['a'], shared: 'yes' }, 'details.shared'],
    [{ descriptions: ['a'], availabilityFile: 'relative' }, 'details.availabilityFile'],
    [{ descriptions: ['a'], descriptons: [] }, 'details.descriptons'],
  ])('rejects %j at %s', (raw, path) => {
    try {
      parseDebugEchoDetails(raw);
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(DetailsError);
      expect((error as DetailsError).path).toBe(path);
    }
  });
});

describe('debug-echo run', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  function recordingSink(): { sink: DeviceSink; reports: DiscoveredDevice[][]; next: () => Promise<DiscoveredDevice[]> } {
    const reports: DiscoveredDevice[][] = [];
    const waiters: ((d: DiscoveredDevice[]) => void)[] = [];
    const sink: DeviceSink = {
      replaceAll: (devices) => {
        reports.push([...devices]);
        waiters.shift()?.([...devices]);
      },
      upsert: () => expect.unreachable('debug-echo reports full sets'),
      remove: () => expect.unreachable('debug-echo reports full sets'),
    };
    return { sink, reports, next: () => new Promise((resolve) => waiters.push(resolve)) };
  }

  it('reports one device per description and follows the availability file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'te-'));
    dirs.push(dir);
    const file = join(dir, 'availability');
    const handler = createDebugEchoHandler();
    const details = handler.parseDetails({ descriptions: ['foo', 'bar'], availabilityFile: file });
    const { sink, next } = recordingSink();
    const abort = new AbortController();
    const first = next();
    const running = handler.run(details, {
      sink,
      signal: abort.signal,
      properties: new Map(),
      log: pino({ level: 'silent' }),
      count: () => undefined,
    });
    expect(await first).toEqual([
      { id: 'foo', properties: { DEBUG_ECHO_DESCRIPTION: 'foo' } },
      { id: 'bar', properties: { DEBUG_ECHO_DESCRIPTION: 'bar' } },
    ]);
    let report = next();
    await writeFile(file, 'OFFLINE\n');
    expect(await report).toEqual([]);
    report = next();
    await writeFile(file, 'online');
    expect(await report).toHaveLength(2);
    abort.abort();
    await running;
  });

  it('is shared only when asked', () => {
    const handler = createDebugEchoHandler();
    expect(handler.isShared(handler.parseDetails({ descriptions: ['a'] }))).toBe(false);
    expect(handler.isShared(handler.parseDetails({ descriptions: ['a'], shared: true }))).toBe(true);
  });
});
