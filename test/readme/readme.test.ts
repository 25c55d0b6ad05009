/**
 * The README's commands, run as a new user would: in a fresh clone of this repository, with
 * the machine's own Node and npm (not the pinned Node 24 the npm scripts of this checkout
 * use), exactly as the README writes them — `npm ci`, `npm run demo -- --steps N`, the
 * `node bin/tether.mjs discover …` row of its command table. Commands are read from README.md,
 * so a README edit that breaks them fails here.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** What a new user's shell has: the system's PATH, without this checkout's node_modules/.bin. */
const USER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const sh = (command: string, cwd: string, timeout = 300_000): Promise<{ stdout: string; stderr: string }> =>
  promisify(execFile)('bash', ['-c', command], {
    cwd,
    timeout,
    env: { HOME: process.env['HOME'] ?? '/root', PATH: USER_PATH, LANG: 'C.UTF-8' },
    maxBuffer: 16 * 1024 * 1024,
  });

let clone = '';
let readme = '';

beforeAll(async () => {
  clone = await mkdtemp(join(tmpdir(), 'tether-readme-'));
  execFileSync('git', ['clone', '--quiet', '--depth', '1', `file://${REPO}`, clone]);
  readme = await readFile(join(clone, 'README.md'), 'utf8');
  await sh('npm ci --no-audit --no-fund', clone);
}, 600_000);

afterAll(async () => {
  if (clone !== '') await rm(clone, { recursive: true, force: true });
});

/** The `| \`command\` |` cells of README rows that start with the given text. */
function readmeCommand(prefix: string): string {
  const match = readme
    .split('\n')
    .map((line) => /^\| `([^`]+)` \|/.exec(line)?.[1])
    .find((command) => command?.startsWith(prefix));
  if (match === undefined) throw new Error(`README.md has no command starting with ${prefix}`);
  return match;
}

describe('README commands in a fresh clone, on the machine’s own Node', () => {
  it('the machine’s Node is what a user has (not the pinned one)', async () => {
    const { stdout } = await sh('node --version', clone);
    expect(stdout.trim()).toMatch(/^v\d+\./);
    expect(readme).toContain('npm ci && npm run demo');
  });

  it('npm run demo -- --steps N runs the scripted demo and stops', async () => {
    const { stdout } = await sh('npm run demo -- --steps 6 --step-ms 50', clone, 120_000);
    expect(stdout).toContain('step 6: pods are deleted');
  });

  it('the README’s discover command prints the debug-echo devices', async () => {
    const command = readmeCommand('node bin/tether.mjs discover debug-echo');
    const { stdout } = await sh(command, clone, 60_000);
    expect(stdout).toMatch(/^a\s+online\s+DEBUG_ECHO_DESCRIPTION=a/m);
    expect(stdout).toMatch(/^b\s+online\s+DEBUG_ECHO_DESCRIPTION=b/m);
  });

  it('tether --help answers through the launcher', async () => {
    const { stdout } = await sh('node bin/tether.mjs --help', clone, 30_000);
    expect(stdout).toContain('Usage: tether');
    for (const command of ['agent', 'controller', 'discover', 'explain', 'demo']) expect(stdout).toContain(command);
  });
});
