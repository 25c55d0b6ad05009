/**
 * The file-list example as a real process: started with its CLI, registered with the
 * agent's registry, SIGKILLed, restarted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startRun, waitUntil, type TestRun } from '../../../test/support/external-handler.ts';
import { startHandlerRegistry, waitForRegistered } from '../../../test/support/handler-kit.ts';
import { DetailsError } from '../../contract.ts';
import { parseFileList, parseFileListDetails } from './file-list.ts';

const log = pino({ level: 'silent' });
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('parseFileList', () => {
  it.each([
    ['', []],
    ['# comment\n\n', []],
    ['cam-1', [{ id: 'cam-1', properties: { FILE_LIST_ID: 'cam-1' } }]],
    [
      '  cam-1   URL=rtsp://x/y?a=b  ZONE=3 junk\n',
      [{ id: 'cam-1', properties: { FILE_LIST_ID: 'cam-1', URL: 'rtsp://x/y?a=b', ZONE: '3' } }],
    ],
    [
      'a X=1\nb\na X=2',
      [
        { id: 'a', properties: { FILE_LIST_ID: 'a', X: '2' } },
        { id: 'b', properties: { FILE_LIST_ID: 'b' } },
      ],
    ],
  ])('%j', (text, devices) => {
    expect(parseFileList(text)).toEqual(devices);
  });

  it('wants an absolute path', () => {
    expect(parseFileListDetails({ path: '/etc/devices' })).toEqual({ path: '/etc/devices' });
    expect(() => parseFileListDetails({ path: 'devices' })).toThrow(DetailsError);
    expect(() => parseFileListDetails(null)).toThrow('details.path');
  });
});

describe('file-list handler process', () => {
  it('registers from its CLI, reports the file, goes away when killed and comes back when restarted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tx-'));
    const agentSocket = join(dir, 'agent.sock');
    const list = join(dir, 'devices.txt');
    await writeFile(list, 'cam-1 URL=rtsp://10.0.0.1/live\ncam-2\n');
    const registry = await startHandlerRegistry(agentSocket, log);
    const children: ChildProcess[] = [];
    const running: { run?: TestRun } = {};
    cleanups.push(async () => {
      await running.run?.stop();
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const start = (): ChildProcess => {
      const child = spawn(
        process.execPath,
        [MAIN, '--agent-socket', agentSocket, '--socket', join(dir, 'file-list.sock'), '--log-level', 'warn'],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      children.push(child);
      return child;
    };
    const registered = (): Promise<void> => waitForRegistered(registry, 'file-list', 10_000);

    const first = start();
    await registered();
    const run = startRun(registry.handler('file-list')!, { path: list }, log);
    running.run = run;
    await run.sink.waitForIds(['cam-1', 'cam-2']);
    expect(run.sink.device('cam-1')?.properties).toEqual({ FILE_LIST_ID: 'cam-1', URL: 'rtsp://10.0.0.1/live' });

    await writeFile(list, 'cam-2\ncam-3 ZONE=north\n');
    await run.sink.waitForIds(['cam-2', 'cam-3']);

    first.kill('SIGKILL');
    await once(first, 'exit');
    await run.sink.waitForIds([]);
    await waitUntil(registry, 'unregistered', () => registry.names().length === 0, 5_000, 'endpoint dropped');

    const second = start();
    await registered();
    await run.sink.waitForIds(['cam-2', 'cam-3']);

    // A clean stop (SIGTERM) takes the devices away too.
    second.kill('SIGTERM');
    expect((await once(second, 'exit'))[0]).toBe(0);
    await run.sink.waitForIds([]);
  });
});
