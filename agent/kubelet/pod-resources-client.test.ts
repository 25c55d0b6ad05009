/** The agent's PodResources client against the mock kubelet: lists, and lets an idle connection go. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectivityState, type Client } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MockKubelet } from './mock-kubelet.ts';
import { PodResourcesClient } from './pod-resources-client.ts';

let dir: string;
let kubelet: MockKubelet;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tprc-'));
  kubelet = new MockKubelet({ pluginDir: join(dir, 'dp'), podResourcesDir: join(dir, 'pr') });
  await kubelet.start();
});

afterAll(async () => {
  await kubelet.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Resolves when `channel` reaches `want`, following its state changes; rejects after `timeoutMs`. */
function reaches(channel: ReturnType<Client['getChannel']>, want: connectivityState, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const follow = (): void => {
      const now = channel.getConnectivityState(false);
      if (now === want) return resolve();
      channel.watchConnectivityState(now, deadline, (error) =>
        error === undefined ? follow() : reject(new Error(`channel still ${connectivityState[now]}, not ${connectivityState[want]}`)),
      );
    };
    follow();
  });
}

it('lists, lets the connection go once idle (no grpc-js sweep keeps waking the agent) and connects again for the next list', async () => {
  kubelet.recordAllocation({ namespace: 'ns', name: 'p', container: 'c' }, 'tether.dev/x', ['x-0']);
  const client = new PodResourcesClient(kubelet.podResourcesSocket!, { idleTimeoutMs: 1_000 });
  try {
    expect((await client.list()).map((p) => p.name)).toEqual(['p']);
    expect(client.channel.getConnectivityState(false)).toBe(connectivityState.READY);
    await reaches(client.channel, connectivityState.IDLE, 5_000);
    kubelet.removePod('ns', 'p');
    expect(await client.list()).toEqual([]);
    expect(kubelet.podResourcesLists).toBe(2);
  } finally {
    client.close();
  }
});
