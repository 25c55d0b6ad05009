/** The CLI as a user runs it: a real process, its stdout, stderr and exit code. */
import { execFile } from 'node:child_process';
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

  it('names the known handlers for an unknown one', async () => {
    const { code, stderr } = await tether('discover', 'nope');
    expect(code).toBe(1);
    expect(stderr).toContain('known: debug-echo');
  });
});

describe('tether demo', () => {
  it('runs scripted steps against the mock kubelet and exits', async () => {
    const { code, stdout } = await tether('demo', '--steps', '6', '--step-ms', '50', '--devices', '2');
    expect(code).toBe(0);
    expect(stdout).toContain('step 6: pods are deleted');
    // After the last step every slot is free again: 4 of 4 in the discovery resource.
    const last = stdout.slice(stdout.lastIndexOf('step 6'));
    expect(last).toMatch(/^tether\.dev\/cameras\s+yes\s+4\/4\s+4\s*$/m);
  });
});
