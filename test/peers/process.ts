/**
 * Processes that peer tests start (Mosquitto, avahi, dbus, responders in network namespaces),
 * and the cleanup stack that takes them down again in `afterAll`, even after a failure.
 *
 * Every process runs in its own process group, so a wrapper chain such as
 * `ip netns exec … unshare … bash` is stopped as a whole by its leader's id. Output is kept
 * (bounded) so a test can wait for a readiness line instead of sleeping, and a failed wait
 * shows what the process said.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';

const MAX_OUTPUT = 64 * 1024;

/** LIFO cleanup stack: peers register how to undo themselves; `close()` runs it all. */
export class PeerGroup {
  readonly #cleanups: { name: string; fn: () => Promise<void> | void }[] = [];

  /** Registers `fn`, run by `close()` in reverse order of registration. */
  defer(name: string, fn: () => Promise<void> | void): void {
    this.#cleanups.push({ name, fn });
  }

  /** Runs every cleanup (newest first); all run even if some fail, then the first error is thrown. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const { name, fn } of this.#cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (error) {
        errors.push(new Error(`cleanup of ${name} failed`, { cause: error }));
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/** One started process. */
export class PeerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #output = '';
  #listeners = new Set<() => void>();
  #exitedNow = false;

  constructor(name: string, command: string, args: readonly string[], options: SpawnOptions = {}) {
    this.name = name;
    this.child = spawn(command, args, { ...options, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin?.on('error', () => undefined);
    const append = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-MAX_OUTPUT);
      for (const listener of this.#listeners) listener();
    };
    this.child.stdout?.on('data', append);
    this.child.stderr?.on('data', append);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => {
        this.#output += `\n[spawn error] ${error.message}`;
        this.#exitedNow = true;
        for (const listener of this.#listeners) listener();
        resolve({ code: null, signal: null });
      });
      this.child.once('exit', (code, signal) => {
        this.#exitedNow = true;
        for (const listener of this.#listeners) listener();
        resolve({ code, signal });
      });
    });
  }

  get output(): string {
    return this.#output;
  }

  get running(): boolean {
    return !this.#exitedNow;
  }

  /** Resolves with the first match of `pattern` in the output (past or future); rejects on exit or timeout. */
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    let match: RegExpMatchArray | null = null;
    await this.waitFor((output) => (match = pattern.exec(output)) !== null, timeoutMs, `printing ${pattern}`);
    return match!;
  }

  /** Resolves once `predicate(output)` holds (checked on every output); rejects on exit or timeout. */
  waitFor(predicate: (output: string) => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (predicate(this.#output)) {
          finish();
          resolve();
        } else if (this.#exitedNow) {
          finish();
          reject(new Error(`${this.name} exited before ${what}; output:\n${this.#output}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; output:\n${this.#output.slice(-4000)}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** Signals the whole process group and waits for the leader to exit (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
    if (!this.running || this.child.pid === undefined) return;
    const pid = this.child.pid;
    signalGroup(pid, signal);
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Starts a process and registers its stop with `group`. */
export function startPeer(
  group: PeerGroup,
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): PeerProcess {
  const peer = new PeerProcess(name, command, args, options);
  group.defer(name, () => peer.stop());
  return peer;
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export async function run(command: string, args: readonly string[], options: SpawnOptions = {}): Promise<string> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const [code] = (await Promise.race([once(child, 'exit'), once(child, 'error').then(([e]) => Promise.reject(e as Error))])) as [
    number | null,
  ];
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}: ${out.trim()}`);
  return out;
}
