/**
 * OPC UA peers on Python asyncua (PyPI) — an OPC UA stack Tether does not use — for the opcua
 * handler's peer tests and bench: a Local Discovery Server and servers, each process in a
 * network namespace (test/peers/opcua/asyncua_peer.py does the OPC UA part).
 *
 * asyncua is installed by the first test that needs it, into a venv of its own in
 * `~/.cache/tether/asyncua-<version>` (reused afterwards; a fresh machine needs python3 with
 * venv and PyPI). If that cannot be done the test stops at once with one message saying what
 * is missing — never a skip.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { NetnsLink } from './netns.ts';
import { run, type PeerProcess } from './process.ts';

export const ASYNCUA_VERSION = '2.1.0';
const VENV = join(homedir(), '.cache', 'tether', `asyncua-${ASYNCUA_VERSION}`);
const PYTHON = join(VENV, 'bin', 'python');
const SCRIPT = new URL('./opcua/asyncua_peer.py', import.meta.url).pathname;

let installing: Promise<string> | undefined;

/** The venv's python with asyncua importable; installs it once per machine. */
export function asyncuaPython(): Promise<string> {
  installing ??= (async () => {
    const ready = join(VENV, '.tether-ready');
    if (existsSync(ready)) return PYTHON;
    try {
      await rm(VENV, { recursive: true, force: true });
      await mkdir(join(VENV, '..'), { recursive: true });
      await run('python3', ['-m', 'venv', VENV]);
      await run(join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `asyncua==${ASYNCUA_VERSION}`]);
      await run(PYTHON, ['-c', 'import asyncua']);
      await run('touch', [ready]);
      return PYTHON;
    } catch (error) {
      throw new Error(
        `the OPC UA peer tests need Python asyncua ${ASYNCUA_VERSION} from PyPI, installed into ${VENV} ` +
          '(python3 with the venv module, and PyPI reachable); installing it failed — ' +
          `fix that and run again (\`python3 -m venv ${VENV} && ${VENV}/bin/pip install asyncua==${ASYNCUA_VERSION}\`)`,
        { cause: error },
      );
    }
  })();
  return installing;
}

/** One asyncua server as the peer script takes it. */
export interface ServerSpec {
  readonly port: number;
  readonly uri: string;
  readonly name: string;
  readonly product?: string;
  /** Registers with this LDS on start (and on `register`). */
  readonly lds?: string;
  /** Only Basic256Sha256 SignAndEncrypt endpoints, with a self-signed certificate (or certFile/keyFile). */
  readonly secure?: boolean;
  /** The secure server's certificate and key (PEM or DER files), e.g. from test/peers/opcua/pki.ts. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** UserName tokens only, checked against this table (default: Anonymous, any user name). */
  readonly users?: Readonly<Record<string, string>>;
  /** The discovery URL sent to the LDS (default: its own). */
  readonly advertise?: string;
  /** EndpointUrls GetEndpoints returns instead of the real one. */
  readonly endpoints?: readonly string[];
}

/** An asyncua process (the LDS, or a set of servers) and its command channel. */
export class AsyncuaPeer {
  readonly process: PeerProcess;
  #next = 0;

  constructor(process: PeerProcess) {
    this.process = process;
  }

  /** Sends a command and resolves once the peer says it is done. */
  async command(cmd: 'register' | 'unregister' | 'stop' | 'start', uri: string, timeoutMs = 15_000): Promise<void> {
    const id = ++this.#next;
    this.process.child.stdin!.write(`${JSON.stringify({ id, cmd, uri })}\n`);
    const [line] = await this.process.waitForOutput(new RegExp(`^(?:ok|error) ${id}\\b.*$`, 'm'), timeoutMs);
    if (!line.startsWith('ok')) throw new Error(`asyncua ${cmd} ${uri} failed: ${line}`);
  }

  /** SIGKILL: no unregister, no goodbye — a crashed or unplugged server. */
  kill(): Promise<void> {
    return this.process.stop('SIGKILL');
  }
}

async function started(process: PeerProcess): Promise<AsyncuaPeer> {
  // A 2048-bit key for a secure server takes a while on a busy machine.
  await process.waitForOutput(/^ready$/m, 60_000);
  return new AsyncuaPeer(process);
}

/** An LDS on `host:port` inside `link`'s namespace. */
export async function startLds(link: NetnsLink, port = 4840): Promise<AsyncuaPeer> {
  const python = await asyncuaPython();
  return started(link.spawn(`asyncua lds ${link.peerAddress}:${port}`, python, [SCRIPT, 'lds', link.peerAddress, String(port)]));
}

/** Servers on `link`'s peer address (one process, one event loop). */
export async function startServers(link: NetnsLink, servers: readonly ServerSpec[], name = 'servers'): Promise<AsyncuaPeer> {
  const python = await asyncuaPython();
  return started(link.spawn(`asyncua ${name}`, python, [SCRIPT, 'servers', link.peerAddress, JSON.stringify(servers)]));
}
