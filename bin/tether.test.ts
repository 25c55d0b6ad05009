/** The CLI as a user runs it: a real process, its stdout, stderr and exit code. */
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('./tether.ts', import.meta.url));

function tether(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 20_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('tether discover', () => {
  it('prints debug-echo devices as a table', async () => {
    const { code, stdout } = await tether('discover', 'debug-echo', '--details', '{descriptions: [foo, bar]}');
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toMatch(/^ID\s+STATE\s+PROPERTIES\s+PATHS$/);
    expect(stdout).toMatch(/^bar\s+online\s+DEBUG_ECHO_DESCRIPTION=bar/m);
    expect(stdout).toMatch(/^foo\s+online\s+DEBUG_ECHO_DESCRIPTION=foo/m);
  });

  it('cuts long values to fit a terminal, and -o wide shows them whole', async () => {
    const long = 'x'.repeat(100);
    const table = await tether('discover', 'debug-echo', '--details', `{descriptions: [${long}]}`);
    expect(table.stdout).not.toContain(long);
    expect(table.stdout).toContain('…');
    const wide = await tether('discover', 'debug-echo', '--details', `{descriptions: [${long}]}`, '-o', 'wide');
    expect(wide.stdout).toMatch(new RegExp(`^${long}\\s+online\\s+DEBUG_ECHO_DESCRIPTION=${long}\\s`, 'm'));
  });

  it('prints JSON for machines', async () => {
    const { code, stdout } = await tether('discover', 'debug-echo', '--details', '{"descriptions":["a"]}', '-o', 'json');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual([{ id: 'a', properties: { DEBUG_ECHO_DESCRIPTION: 'a' }, online: true }]);
  });

  it('rejects bad details with the field path and exit code 1', async () => {
    const { code, stderr } = await tether('discover', 'debug-echo', '--details', '{descriptions: [a, a]}');
    expect(code).toBe(1);
    expect(stderr).toContain('details.descriptions[1]: duplicate description');
  });

  it('fails, and says why, when the handler sends no report in time (never "nothing found")', async () => {
    // Port 1 on loopback: connection refused at once, again and again.
    const { code, stdout, stderr } = await tether(
      '--log-level',
      'silent',
      'discover',
      'mqtt',
      '--details',
      '{broker: "mqtt://127.0.0.1:1", homeAssistant: true}',
      '--timeout',
      '1500',
    );
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('mqtt sent no report within 1500 ms');
    expect(stderr).toContain('ECONNREFUSED');
  });

  it('names the known handlers for an unknown one', async () => {
    const { code, stderr } = await tether('discover', 'nope');
    expect(code).toBe(1);
    expect(stderr).toContain('known: debug-echo');
  });
});

describe('bin/tether.mjs, the launcher README commands use', () => {
  // The machine's own Node (Node 20 here), as a user who typed `node bin/tether.mjs …` has it.
  const systemNode = execFileSync('sh', ['-c', 'PATH=/usr/local/bin:/usr/bin:/bin command -v node'], { encoding: 'utf8' }).trim();
  const launcher = fileURLToPath(new URL('./tether.mjs', import.meta.url));

  it('runs a command on the pinned Node 24 whichever Node starts it, with its exit code', async () => {
    const run = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(systemNode, [launcher, ...args], { timeout: 20_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const ok = await run('discover', 'debug-echo', '--details', '{descriptions: [a]}', '-o', 'json');
    expect(ok.stderr).toBe('');
    expect(JSON.parse(ok.stdout)).toEqual([{ id: 'a', properties: { DEBUG_ECHO_DESCRIPTION: 'a' }, online: true }]);
    const bad = await run('discover', 'nope');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('known: debug-echo');
  });
});

describe('tether demo', () => {
  it('runs scripted steps against the mock kubelet and exits', async () => {
    const { code, stdout } = await tether('demo', '--steps', '6', '--step-ms', '50', '--devices', '2');
    expect(code).toBe(0);
    expect(stdout).toContain('step 6: pods are deleted');
    // Every step succeeded, the first allocation included (it raced the plugins' device lists).
    expect(stdout).not.toContain('… failed');
    expect(stdout).toMatch(/step 1: pod-1 asks for any camera .* … ok/);
    // After the last step every slot is free again: 4 of 4 in the discovery resource.
    const last = stdout.slice(stdout.lastIndexOf('step 6'));
    expect(last).toMatch(/^tether\.dev\/cameras\s+yes\s+4\/4\s+4\s*$/m);
  });
});
