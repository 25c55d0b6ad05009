/**
 * A real Mosquitto broker for peer tests, on a free loopback port, with its own config file in
 * a temp dir (no pid_file, no persistence), optionally with TLS, password authentication and
 * client certificates. `stop()` / `start()` simulate an outage on the same port.
 *
 * Also `mosquittoPub()`: the real `mosquitto_pub` client, for publishing test messages.
 */
import type { NetnsLink } from './netns.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, startPeer, type PeerGroup, type PeerProcess } from './process.ts';
import type { TestPki } from './tls.ts';

export interface MosquittoOptions {
  /** Serve TLS with the PKI's server certificate. */
  readonly tls?: TestPki;
  /** Require a client certificate signed by the PKI's CA (implies tls). */
  readonly requireClientCertificate?: boolean;
  /** username → password; anonymous access is refused when set. */
  readonly users?: Readonly<Record<string, string>>;
  /** Keep retained messages across `stop()`/`start()` (saved in the temp dir on shutdown). */
  readonly persistence?: boolean;
  /** Extra lines appended to the listener config. */
  readonly extraConfig?: readonly string[];
  /** Run inside this namespace, listening on its peer address (a veth link away: partitionable). */
  readonly netns?: NetnsLink;
}

export interface Mosquitto {
  readonly port: number;
  /** The address it listens on: 127.0.0.1, or the namespace's peer address. */
  readonly host: string;
  /** `mqtt://127.0.0.1:<port>` or `mqtts://127.0.0.1:<port>` (the test certificate covers the IP). */
  readonly url: string;
  readonly dir: string;
  readonly process: () => PeerProcess;
  /** Stops the broker (connections drop, retained messages are lost: no persistence). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

/** Asks the kernel for a free loopback TCP port. */
export async function freeLoopbackPort(): Promise<number> {
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

export async function startMosquitto(group: PeerGroup, options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-mosquitto-'));
  group.defer(`mosquitto dir ${dir}`, () => rm(dir, { recursive: true, force: true }));
  const port = await freeLoopbackPort();
  const host = options.netns?.peerAddress ?? '127.0.0.1';
  const tls = options.tls;
  const lines = [
    // Running as root: keep root, or mosquitto switches to a `mosquitto` user that cannot read the temp dir.
    'user root',
    ...(options.persistence === true ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false']),
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    `listener ${port} ${host}`,
    'max_keepalive 65535',
  ];
  if (options.users !== undefined) {
    const passwords = join(dir, 'passwords');
    await writeFile(passwords, '');
    for (const [user, password] of Object.entries(options.users)) await run('mosquitto_passwd', ['-b', passwords, user, password]);
    lines.push('allow_anonymous false', `password_file ${passwords}`);
  } else {
    lines.push('allow_anonymous true');
  }
  if (tls !== undefined) {
    lines.push(`cafile ${tls.caCert}`, `certfile ${tls.serverCert}`, `keyfile ${tls.serverKey}`);
    if (options.requireClientCertificate === true) lines.push('require_certificate true');
  }
  lines.push(...(options.extraConfig ?? []));
  const config = join(dir, 'mosquitto.conf');
  await writeFile(config, `${lines.join('\n')}\n`);

  let current: PeerProcess | undefined;
  const start = async (): Promise<void> => {
    current =
      options.netns === undefined
        ? startPeer(group, `mosquitto :${port}`, 'mosquitto', ['-c', config])
        : options.netns.spawn(`mosquitto ${host}:${port}`, 'mosquitto', ['-c', config]);
    await current.waitForOutput(/mosquitto version \S+ running/, 10_000);
  };
  await start();
  return {
    port,
    host,
    url: `${tls === undefined ? 'mqtt' : 'mqtts'}://${host}:${port}`,
    dir,
    process: () => current!,
    stop: async () => {
      await current?.stop();
    },
    start,
  };
}

export interface PubOptions {
  readonly retain?: boolean;
  readonly qos?: 0 | 1 | 2;
  /** `-n`: a zero-length payload (removes a retained message when retained). */
  readonly empty?: boolean;
  /** `-f`: payload from a file (binary, e.g. protobuf). */
  readonly file?: string;
  readonly protocol?: 'mqttv311' | 'mqttv5';
  readonly extraArgs?: readonly string[];
}

/** Publishes one message with the real `mosquitto_pub`; resolves when it exited successfully. */
export async function mosquittoPub(broker: Mosquitto, topic: string, message: string, options: PubOptions = {}): Promise<void> {
  const args = ['-h', broker.host, '-p', String(broker.port), '-t', topic, '-q', String(options.qos ?? 1)];
  if (options.retain === true) args.push('-r');
  if (options.empty === true) args.push('-n');
  else if (options.file !== undefined) args.push('-f', options.file);
  else args.push('-m', message);
  if (options.protocol !== undefined) args.push('-V', options.protocol);
  args.push(...(options.extraArgs ?? []));
  await run('mosquitto_pub', args);
}
