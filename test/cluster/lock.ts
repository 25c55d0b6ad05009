/**
 * A cross-process lock file, so two `cluster:up`s (say a terminal and a
 * vitest run) never start two control planes into one state dir.
 */
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

function tryAcquire(path: string): boolean {
  try {
    const fd = openSync(path, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`cannot create lock file ${path}`, { cause: error });
  }
}

function holderIsAlive(path: string): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return true; // Just removed: look again.
  }
  // Empty: created but the PID not written yet, unless its writer died long ago.
  if (text === '') {
    const stat = statSync(path, { throwIfNoEntry: false });
    return stat === undefined || Date.now() - stat.mtimeMs < 5_000;
  }
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `work` while holding the lock file at `path`. Waits (polling, with no
 * deadline: the holder may be doing a cold build) while a live process holds
 * it; takes over a lock left behind by a dead process.
 */
export async function withLock<T>(path: string, log: (message: string) => void, work: () => Promise<T>): Promise<T> {
  let told = false;
  while (!tryAcquire(path)) {
    if (!holderIsAlive(path)) {
      rmSync(path, { force: true });
      continue;
    }
    if (!told) log(`waiting for another cluster operation (lock ${path})`);
    told = true;
    await delay(500);
  }
  try {
    return await work();
  } finally {
    rmSync(path, { force: true });
  }
}
