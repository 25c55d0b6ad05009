/**
 * Long-running component processes: start detached (own process group, logs to
 * a file, outliving the Node process that started them), find out whether
 * they still run, stop exactly them, and wait for their health endpoints.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** How a component was started, enough to start it again the same way. */
export interface ComponentSpec {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  /** Working directory; components drop generated files (certs) into it. */
  cwd: string;
}

/** A started component: its spec and the PID that leads its process group. */
export interface RunningComponent extends ComponentSpec {
  pid: number;
  /** Kernel start time of `pid`, so a recycled PID is never taken for ours. */
  startTime?: string;
}

/** Asks the kernel for a free loopback TCP port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP address from listen(0)');
  return address.port;
}

/** Starts a component in its own process group, appending its output to its log file. */
export function startComponent(spec: ComponentSpec): RunningComponent {
  const log = openSync(spec.logFile, 'a');
  writeSync(log, `\n=== ${new Date().toISOString()} ${spec.command} ${spec.args.join(' ')}\n`);
  try {
    const child = spawn(spec.command, spec.args, { cwd: spec.cwd, detached: true, stdio: ['ignore', log, log] });
    if (child.pid === undefined) throw new Error(`could not start ${spec.name} (${spec.command})`);
    // A spawn error (e.g. ENOENT) arrives asynchronously; keep it from crashing
    // the process: the health wait reports the component as exited instead.
    child.on('error', () => undefined);
    child.unref();
    // Read at once: the process exists from fork on, even if it exits soon.
    return { ...spec, pid: child.pid, startTime: startTimeOf(child.pid) ?? 'exited' };
  } finally {
    closeSync(log);
  }
}

/**
 * The kernel's start time of a process (clock ticks since boot, field 22 of
 * /proc/<pid>/stat), or undefined when it is gone or a zombie. PID and start
 * time together identify one process: a PID reused later gets a new time.
 */
function startTimeOf(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name in parentheses may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

/** True when the component's process still runs (and is the very process started). */
export function isRunning(component: RunningComponent): boolean {
  const startTime = startTimeOf(component.pid);
  if (startTime === undefined) return false;
  // State written before start times were recorded: compare the command instead.
  if (component.startTime === undefined) return commandOf(component.pid) === component.command;
  return startTime === component.startTime;
}

function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
  } catch {
    return undefined;
  }
}

/** Sends SIGTERM to the component's process group, then SIGKILL after `graceMs`. */
export async function stopComponent(component: RunningComponent, graceMs = 10_000): Promise<void> {
  if (!isRunning(component)) return;
  signalGroup(component.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isRunning(component) && Date.now() < deadline) await delay(50);
  if (isRunning(component)) {
    signalGroup(component.pid, 'SIGKILL');
    while (isRunning(component)) await delay(50);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** The last `lines` lines of a log file, for error messages. */
export function logTail(file: string, lines = 40): string {
  if (!existsSync(file)) return `(no log file ${file})`;
  const text = readFileSync(file, 'utf8').trimEnd().split('\n');
  return text.slice(-lines).join('\n');
}

/** TLS material for a health check; `ca` unset means do not verify the server. */
export interface HealthTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** One GET; resolves to the status code and body, rejects on connection errors. */
export function httpGet(url: string, tls: HealthTls = {}, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const secure = url.startsWith('https:');
    const options = secure ? { ...tls, rejectUnauthorized: tls.ca !== undefined, timeout: timeoutMs } : { timeout: timeoutMs };
    const request = (secure ? httpsRequest : httpRequest)(url, options, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end();
  });
}

/** Options for {@link waitHealthy}. */
export interface WaitHealthyOptions {
  url: string;
  tls?: HealthTls;
  timeoutMs: number;
  /** Accepts a 200 response body; default: any 200. */
  isHealthy?: (body: string) => boolean;
}

/**
 * Polls a health endpoint until it answers healthy. Fails early, with the log
 * tail, when the component exits, and at the deadline with the last answer.
 */
export async function waitHealthy(component: RunningComponent, options: WaitHealthyOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let last: string;
  for (let attempt = 0; ; attempt++) {
    if (!isRunning(component)) {
      throw new Error(`${component.name} exited before becoming healthy. Log tail (${component.logFile}):\n${logTail(component.logFile)}`);
    }
    try {
      const { status, body } = await httpGet(options.url, options.tls ?? {});
      if (status === 200 && (options.isHealthy?.(body) ?? true)) return;
      last = `HTTP ${status}: ${body.slice(0, 2000)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${component.name} not healthy at ${options.url} after ${options.timeoutMs} ms (last: ${last}). ` +
          `Log tail (${component.logFile}):\n${logTail(component.logFile)}`,
      );
    }
    // Poll quickly at first (start-up is usually seconds), then back off.
    await delay(Math.min(100 * 2 ** attempt, 1_000));
  }
}
