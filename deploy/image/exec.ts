/** Runs build tools (apt-get, npm, dpkg-deb, tsc, chroot) with their stderr in the error. */
import { execFileSync } from 'node:child_process';

/**
 * Runs `command` synchronously and returns its stdout. Throws an Error naming the command,
 * with the tail of its stderr, when it cannot start or exits non-zero.
 */
export function runCommand(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  try {
    return execFileSync(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    const detail = `${stderr ?? ''}${stdout ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed${detail === '' ? '' : `:\n${detail}`}`, { cause: error });
  }
}
