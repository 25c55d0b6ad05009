/**
 * A small mDNS/DNS-SD responder for tests and demos, on bonjour-service's multicast socket
 * (`{interface, bind: '0.0.0.0'}`), that can do what real responders do and what hostile or
 * broken ones do:
 *
 * - publish a service (PTR/SRV/TXT/A with chosen TTLs), announce it twice (1 s apart), answer
 *   queries for it (with known-answer suppression);
 * - withdraw it with goodbye packets (TTL 0), or vanish silently (let the TTL run out);
 * - send undecodable packets and hostile-but-decodable ones (control characters, binary TXT,
 *   duplicate keys, thousands of records).
 *
 * As a process (for another network namespace): `node mocks/mdns/responder.ts <interface ip>`;
 * commands are JSON lines on stdin (`{"id":1,"cmd":"publish","service":{…}}`, `"unpublish"` with
 * `fullName`, `"silence"`, `"garbage"`, `"hostile"` with `type` and `host`); it prints `ready`,
 * `ok <id>` once a command's packets are sent, and `answered <type> <name>` for every answer.
 */
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { Bonjour } from 'bonjour-service';
import { socketOptions } from '../../discovery-handlers/mdns/mdns.ts';

export interface MockService {
  /** Instance name, e.g. `Lobby Cam`. */
  readonly name: string;
  /** e.g. `_rtsp._tcp` */
  readonly type: string;
  readonly port: number;
  /** Host name without `.local`. */
  readonly host: string;
  readonly address: string;
  readonly txt?: Readonly<Record<string, string | true>>;
  readonly subtypes?: readonly string[];
  /** TTL of SRV, TXT and A (default 120 s) and of PTR (default 4500 s), as avahi uses. */
  readonly ttl?: number;
  readonly ptrTtl?: number;
}

interface Answer {
  name: string;
  type: string;
  ttl: number;
  flush?: boolean;
  data: unknown;
}

interface MdnsSocket {
  on(event: 'query', listener: (packet: { questions: { name: string; type: string }[]; answers?: Answer[] }) => void): void;
  on(event: 'warning' | 'error', listener: (error: Error) => void): void;
  once(event: 'ready', listener: () => void): void;
  respond(packet: { answers: Answer[]; additionals?: Answer[] }, callback?: (error: Error | null) => void): void;
}

export function fullNameOf(service: MockService): string {
  return `${service.name}.${service.type}.local`;
}

function txtData(txt: MockService['txt']): Buffer[] {
  const entries = Object.entries(txt ?? {});
  if (entries.length === 0) return [Buffer.alloc(0)];
  return entries.map(([k, v]) => Buffer.from(v === true ? k : `${k}=${v}`));
}

/** The records of a service; `ttlOverride` 0 makes them goodbyes. */
export function serviceRecords(service: MockService, ttlOverride?: number): { ptr: Answer[]; unique: Answer[] } {
  const full = fullNameOf(service);
  const ttl = ttlOverride ?? service.ttl ?? 120;
  const ptrTtl = ttlOverride ?? service.ptrTtl ?? 4500;
  const ptr: Answer[] = [{ name: `${service.type}.local`, type: 'PTR', ttl: ptrTtl, data: full }];
  for (const subtype of service.subtypes ?? [])
    ptr.push({ name: `${subtype}._sub.${service.type}.local`, type: 'PTR', ttl: ptrTtl, data: full });
  const unique: Answer[] = [
    { name: full, type: 'SRV', ttl, flush: true, data: { port: service.port, target: `${service.host}.local`, priority: 0, weight: 0 } },
    { name: full, type: 'TXT', ttl, flush: true, data: txtData(service.txt) },
    { name: `${service.host}.local`, type: 'A', ttl, flush: true, data: service.address },
  ];
  return { ptr, unique };
}

const lower = (s: string): string => s.toLowerCase().replace(/\.$/, '');

export class MockResponder {
  readonly #address: string;
  readonly #bonjour: Bonjour;
  readonly #socket: MdnsSocket;
  readonly #services = new Map<string, MockService>();
  #silent = false;
  /** Called with the answers to each query it answers. */
  onAnswer: ((answers: readonly { name: string; type: string }[]) => void) | undefined;

  constructor(address: string) {
    this.#address = address;
    this.#bonjour = new Bonjour(socketOptions(address), () => undefined);
    this.#socket = (this.#bonjour as unknown as { server: { mdns: MdnsSocket } }).server.mdns;
    this.#socket.on('warning', () => undefined);
    this.#socket.on('query', (query) => this.#answer(query));
  }

  ready(): Promise<void> {
    return new Promise((resolve) => this.#socket.once('ready', resolve));
  }

  #send(answers: Answer[], additionals: Answer[] = []): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.respond({ answers, additionals }, (error) => (error ? reject(error) : resolve())));
  }

  #answer(query: { questions: { name: string; type: string }[]; answers?: Answer[] }): void {
    if (this.#silent) return;
    const known = new Set((query.answers ?? []).filter((a) => a.type === 'PTR').map((a) => `${lower(a.name)}|${lower(String(a.data))}`));
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    for (const q of query.questions) {
      for (const service of this.#services.values()) {
        const { ptr, unique } = serviceRecords(service);
        for (const record of [...ptr, ...unique]) {
          if (lower(record.name) !== lower(q.name) || (q.type !== 'ANY' && q.type !== record.type)) continue;
          if (record.type === 'PTR' && known.has(`${lower(record.name)}|${lower(String(record.data))}`)) continue;
          answers.push(record);
          if (record.type === 'PTR') additionals.push(...unique);
        }
      }
    }
    if (answers.length === 0) return;
    this.onAnswer?.(answers);
    void this.#send(answers, additionals).catch(() => undefined);
  }

  /** Publishes and announces (a second announcement follows after a second, as RFC 6762 §8.3 asks). */
  async publish(service: MockService): Promise<void> {
    this.#services.set(lower(fullNameOf(service)), service);
    const { ptr, unique } = serviceRecords(service);
    await this.#send([...ptr, ...unique]);
    setTimeout(() => void this.#send([...ptr, ...unique]).catch(() => undefined), 1_000).unref();
  }

  /** Withdraws with goodbye packets. */
  async unpublish(fullName: string): Promise<void> {
    const service = this.#services.get(lower(fullName));
    if (service === undefined) return;
    this.#services.delete(lower(fullName));
    const { ptr, unique } = serviceRecords(service, 0);
    await this.#send([...ptr, ...unique.filter((r) => r.type !== 'A')]);
  }

  /** Stops answering anything (as if powered off): caches expire by TTL. */
  silence(): void {
    this.#silent = true;
  }

  /** Undecodable datagrams to the mDNS group. */
  async garbage(): Promise<void> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve) => socket.bind(0, this.#address, resolve));
    socket.setMulticastInterface(this.#address);
    const packets = [
      Buffer.from([0x00]),
      Buffer.from('not a dns packet at all'),
      Buffer.from([0, 0, 0x84, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0xc0, 0xff]),
    ];
    for (const packet of packets) await new Promise((resolve) => socket.send(packet, 5353, '224.0.0.251', resolve));
    socket.close();
  }

  /** Decodable but hostile: control characters, binary and duplicate TXT keys, many bogus records. */
  async hostile(type: string, host: string): Promise<void> {
    const full = `Evil\u0007\n Name.${type}.local`;
    const txt = [
      Buffer.from('path=/ok\u0000\nx'),
      Buffer.from([0x62, 0x69, 0x6e, 0x3d, 0xff, 0xfe, 0x00]),
      Buffer.from('dup=first'),
      Buffer.from('DUP=second'),
      Buffer.from('=novalue'),
      Buffer.from([0x01, 0x02]),
      Buffer.from('flag'),
    ];
    const flood: Answer[] = Array.from({ length: 300 }, (_, i) => ({
      name: `noise-${i}.${type}.local`,
      type: 'TXT',
      ttl: 120,
      data: [Buffer.from(`k=${i}`)],
    }));
    await this.#send([
      { name: `${type}.local`, type: 'PTR', ttl: 4500, data: full },
      { name: full, type: 'SRV', ttl: 120, flush: true, data: { port: 8080, target: `${host}.local`, priority: 0, weight: 0 } },
      { name: full, type: 'TXT', ttl: 120, flush: true, data: txt },
      { name: `${host}.local`, type: 'A', ttl: 120, flush: true, data: this.#address },
      ...flood,
    ]);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#bonjour.destroy(() => resolve()));
  }
}

async function main(address: string): Promise<void> {
  const responder = new MockResponder(address);
  responder.onAnswer = (answers) => {
    for (const a of answers) process.stdout.write(`answered ${a.type} ${a.name}\n`);
  };
  await responder.ready();
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === '') continue;
    const command = JSON.parse(line) as { id: number; cmd: string; service?: MockService; fullName?: string; type?: string; host?: string };
    if (command.cmd === 'publish') await responder.publish(command.service!);
    else if (command.cmd === 'unpublish') await responder.unpublish(command.fullName!);
    else if (command.cmd === 'silence') responder.silence();
    else if (command.cmd === 'garbage') await responder.garbage();
    else if (command.cmd === 'hostile') await responder.hostile(command.type!, command.host!);
    process.stdout.write(`ok ${command.id}\n`);
  }
  await responder.close();
}

if (import.meta.main) {
  const address = process.argv[2];
  if (address === undefined) {
    process.stderr.write('usage: node mocks/mdns/responder.ts <interface ipv4>\n');
    process.exit(2);
  }
  await main(address);
}
