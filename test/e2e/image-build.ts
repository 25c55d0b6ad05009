/**
 * Tether's image for the e2e nodes (linux/amd64), built with a progress line.
 *
 * buildTetherImage (deploy/image/tether-image.ts) runs its tools synchronously, which would
 * freeze a progress line and delay Ctrl-C for the whole build; so the build runs as
 * `tether-image.ts --platform linux/amd64` in a child process whose log lines become the
 * progress line's phase, and the result is then read in-process from the image cache (an
 * unchanged checkout costs ~0.1 s there). If the checkout changed between the two (someone
 * edited a file meanwhile), the in-process call simply builds again.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTetherImage, type BuiltTetherImage } from '../../deploy/image/tether-image.ts';
import { startProgress } from '../cluster/progress.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const PLATFORMS = ['linux/amd64'] as const;

/** Builds (or reuses) the image. Aborting `signal` stops the build's process group and rejects. */
export async function buildE2eImage(options: { signal?: AbortSignal } = {}): Promise<BuiltTetherImage> {
  const progress = startProgress({ label: 'image' }, { phase: 'building Tether image (linux/amd64): starting' });
  // Own process group, so a stop reaches npm ci, tsc and tar below it too.
  const child = spawn(
    join(REPO, 'node_modules/.bin/node'),
    ['deploy/image/tether-image.ts', ...PLATFORMS.flatMap((p) => ['--platform', p])],
    {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const stop = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  options.signal?.addEventListener('abort', stop, { once: true });
  const tail: string[] = [];
  let reused = false;
  let pending = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines.filter((l) => l.trim() !== '')) {
      tail.push(line);
      if (line.startsWith('Unchanged inputs')) reused = true;
      progress.update({ phase: `building Tether image (linux/amd64): ${line.length > 90 ? `${line.slice(0, 89)}…` : line}` });
    }
  });
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    if (options.signal?.aborted === true) {
      await groupGone(child.pid);
      // A stopped build cannot clean up after itself: its staging dir is named by its pid.
      await rm(join(process.env.TETHER_CACHE ?? join(homedir(), '.cache', 'tether'), 'image', `stage-${child.pid}`), {
        recursive: true,
        force: true,
      });
      progress.done('image build stopped');
      throw new Error('stopped');
    }
    if (code !== 0) {
      progress.done('image build failed');
      throw new Error(`deploy/image/tether-image.ts failed (exit ${code ?? signal}):\n${tail.slice(-20).join('\n')}`);
    }
  } finally {
    options.signal?.removeEventListener('abort', stop);
  }
  // Normally answered from the cache the child just filled; a log line other than the cache hit
  // means the checkout changed meanwhile and this call builds again.
  const image = await buildTetherImage({
    platforms: PLATFORMS,
    log: (message) => {
      if (!message.startsWith('Unchanged inputs'))
        progress.update({ phase: `building Tether image again (the checkout changed meanwhile): ${message}` });
    },
  });
  progress.done(
    `${reused && image.cached ? 'reusing cached' : 'built'} image ${image.reference} ${image.indexDigest.slice(0, 19)} (${image.out})`,
  );
  return image;
}

/** Waits until no process of group `pgid` is left (npm ci takes a few seconds after SIGTERM); SIGKILL after 5 s. */
async function groupGone(pgid: number | undefined): Promise<void> {
  if (pgid === undefined) return;
  const alive = (): boolean => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let waited = 0; alive() && waited < 10_000; waited += 100) {
    if (waited === 5_000) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
