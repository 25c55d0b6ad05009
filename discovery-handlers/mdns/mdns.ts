/**
 * mdns: DNS-SD services announced over multicast DNS (printers `_ipp._tcp`, cameras
 * `_rtsp._tcp`, web UIs `_http._tcp`, custom `_foo._tcp`).
 *
 * Transport: one bonjour-service socket per interface, always `{interface: <ip>, bind:
 * '0.0.0.0'}` (with the defaults, sends to other hosts fail silently; `interface` alone stops
 * multicast reception). Browsing is Tether's own (cache.ts, services.ts), because
 * bonjour-service's Browser queries once, never expires records by TTL, and keeps only the
 * first A record of a packet:
 *
 * - PTR queries per service type after 0 s, 1 s, 2 s, 4 s … up to `maxQueryIntervalSeconds`
 *   (RFC 6762 §5.2), with known answers (§7.1). The second query matters: a responder that
 *   announced less than a second ago does not answer the first (§6).
 * - Missing SRV/TXT or addresses are queried for directly.
 * - Records are refreshed at 80–95 % of their TTL; what nobody refreshes expires, and the
 *   device goes offline at once. A goodbye (TTL 0) takes it offline at once too.
 * - The first full report (replaceAll) comes after `discoveryTimeoutSeconds`, then changes go
 *   out as they happen.
 *
 * Device id: the instance's full name (`Office Printer._ipp._tcp.local`), the same from every
 * node on the link, so the discovery is shared by default.
 */
import { networkInterfaces } from 'node:os';
import { isIPv4 } from 'node:net';
import type { Bonjour } from 'bonjour-service';
import { untilAborted, type DiscoveredDevice, type DiscoveryHandler, type HandlerContext } from '../contract.ts';
import { nameKey, RecordCache, type IncomingRecord, type RecordData, type RecordType } from './cache.ts';
import { parseMdnsDetails, type MdnsDetails, type ServiceType } from './details.ts';
import { instanceDevice, instanceNames, passesFilters, resolveInstance, type Missing } from './services.ts';

/** The parts of multicast-dns (inside bonjour-service) that Tether uses. */
interface MdnsSocket {
  on(event: 'response', listener: (packet: DnsPacket) => void): void;
  on(event: 'warning' | 'error', listener: (error: Error) => void): void;
  once(event: 'ready', listener: () => void): void;
  query(query: { questions: { name: string; type: string }[]; answers?: unknown[] }, callback?: (error: Error | null) => void): void;
}

interface DnsAnswer {
  readonly name?: unknown;
  readonly type?: unknown;
  readonly ttl?: unknown;
  readonly class?: unknown;
  readonly flush?: unknown;
  readonly data?: unknown;
}

interface DnsPacket {
  readonly answers?: readonly DnsAnswer[];
  readonly additionals?: readonly DnsAnswer[];
}

const RECORD_TYPES = new Set<RecordType>(['PTR', 'SRV', 'TXT', 'A', 'AAAA']);
/**
 * A missing record is asked for again after 1 s, 2 s, 4 s, 8 s (then given up until something
 * changes): a responder ignores a query for a record it multicast less than a second ago.
 */
const MISSING_QUERY_INTERVAL_MS = 1_000;
const MISSING_QUERY_ATTEMPTS = 5;
/**
 * An instance whose host has no address yet is held back this long (its A record usually
 * follows in the next packet): reported at once it would change again a moment later.
 */
const ADDRESS_WAIT_MS = 2_000;

/** IPv4 addresses to browse on: the configured ones, or the first IPv4 of every non-internal interface. */
export function interfaceAddresses(configured: readonly string[] | undefined, interfaces = networkInterfaces()): string[] {
  if (configured === undefined) {
    const all = Object.values(interfaces)
      .map((addresses) => addresses?.find((a) => a.family === 'IPv4' && !a.internal)?.address)
      .filter((a): a is string => a !== undefined);
    if (all.length === 0) throw new Error('no non-internal IPv4 interface to browse on; set details.interfaces');
    return all;
  }
  return configured.map((entry) => {
    if (isIPv4(entry)) return entry;
    const address = interfaces[entry]?.find((a) => a.family === 'IPv4')?.address;
    if (address === undefined) throw new Error(`interface ${entry} does not exist or has no IPv4 address`);
    return address;
  });
}

function validData(type: RecordType, data: unknown): boolean {
  if (type === 'PTR' || type === 'A' || type === 'AAAA') return typeof data === 'string' && data.length > 0;
  if (type === 'SRV') {
    const srv = data as { target?: unknown; port?: unknown } | null;
    return typeof srv === 'object' && srv !== null && typeof srv.target === 'string' && typeof srv.port === 'number';
  }
  return Array.isArray(data) && data.every((d) => d instanceof Uint8Array);
}

/** bonjour-service's options type lacks multicast-dns's `interface` and `bind`, which it passes through. */
export function socketOptions(address: string): ConstructorParameters<typeof Bonjour>[0] {
  return { interface: address, bind: '0.0.0.0' } as unknown as ConstructorParameters<typeof Bonjour>[0];
}

/**
 * The question to send for a record of `name`. WARNING: dns-packet encodes names by splitting
 * at every dot, so an instance name that contains one ("Printer v2.1._ipp._tcp.local") cannot
 * be asked for directly; ask for the service type's PTR instead, whose answer carries the
 * instance's SRV and TXT records too.
 */
export function questionFor(name: string, type: RecordType, serviceTypes: readonly ServiceType[]): { name: string; type: RecordType } {
  if (type !== 'SRV' && type !== 'TXT') return { name, type };
  const key = nameKey(name);
  for (const serviceType of serviceTypes) {
    const suffix = `.${nameKey(serviceType.type)}.local`;
    if (key.endsWith(suffix) && key.slice(0, -suffix.length).includes('.')) return { name: `${serviceType.type}.local`, type: 'PTR' };
  }
  return { name, type };
}

/** Narrows a decoded answer to a record the cache keeps, or undefined. */
export function toRecord(answer: DnsAnswer): IncomingRecord | undefined {
  const { name, type, ttl, data } = answer;
  if (typeof name !== 'string' || typeof type !== 'string' || typeof ttl !== 'number' || !RECORD_TYPES.has(type as RecordType))
    return undefined;
  if (answer.class !== undefined && answer.class !== 'IN') return undefined;
  if (!validData(type as RecordType, data)) return undefined;
  return { name, type: type as RecordType, ttl, flush: answer.flush === true, data: data as RecordData };
}

class MdnsBrowser {
  readonly #details: MdnsDetails;
  readonly #context: HandlerContext;
  readonly #cache: RecordCache;
  readonly #sockets: MdnsSocket[] = [];
  readonly #bonjours: Bonjour[] = [];
  readonly #reported = new Map<string, string>();
  readonly #asked = new Map<string, { at: number; attempts: number }>();
  /** When each instance was first resolved without an address. */
  readonly #waitingSince = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #deadline: NodeJS.Timeout | undefined;
  #reporting = false;
  #warned = false;

  constructor(details: MdnsDetails, context: HandlerContext) {
    this.#details = details;
    this.#context = context;
    this.#cache = new RecordCache(details.maxDevices * 8 + 256);
  }

  async run(): Promise<void> {
    const { signal, log } = this.#context;
    const addresses = interfaceAddresses(this.#details.interfaces);
    let failed: (error: Error) => void = () => undefined;
    const failure = new Promise<never>((_, reject) => (failed = reject));
    failure.catch(() => undefined);
    // Imported when a discovery first runs: an agent with no mDNS discovery never loads it.
    const { Bonjour } = await import('bonjour-service');
    try {
      for (const address of addresses) {
        const bonjour = new Bonjour(socketOptions(address), (error: Error) =>
          log.warn({ err: error, interface: address }, 'mDNS socket reported an error'),
        );
        this.#bonjours.push(bonjour);
        // WARNING: `server` is private in bonjour-service's types; it holds the multicast-dns socket.
        const socket = (bonjour as unknown as { server: { mdns: MdnsSocket } }).server.mdns;
        socket.on('error', (error) => failed(new Error(`mDNS socket on ${address} failed: ${error.message}`, { cause: error })));
        socket.on('warning', (error) => this.#onWarning(error));
        socket.on('response', (packet) => this.#onResponse(packet));
        this.#sockets.push(socket);
        await Promise.race([new Promise<void>((resolve) => socket.once('ready', resolve)), failure]);
      }
      log.debug(
        { interfaces: addresses, serviceTypes: this.#details.serviceTypes.map((t) => t.browseName) },
        'Browsing for DNS-SD services',
      );
      for (const type of this.#details.serviceTypes) this.#browse(type, 0);
      this.#later(() => {
        this.#reporting = true;
        this.#report(true);
      }, this.#details.discoveryTimeoutMs);
      await Promise.race([untilAborted(signal), failure]);
    } finally {
      for (const timer of this.#timers) clearTimeout(timer);
      clearTimeout(this.#deadline);
      await Promise.all(this.#bonjours.map((b) => new Promise<void>((resolve) => b.destroy(() => resolve()))));
    }
  }

  #later(fn: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  /** Browse query now, the next one after `interval` doubled (1 s first), capped. */
  #browse(type: ServiceType, interval: number): void {
    const now = Date.now();
    const known = this.#cache
      .get(type.browseName, 'PTR')
      .filter((r) => r.receivedAt + (r.ttl * 1000) / 2 > now)
      .map((r) => ({ name: type.browseName, type: 'PTR', ttl: Math.floor((r.receivedAt + r.ttl * 1000 - now) / 1000), data: r.data }));
    this.#query([{ name: type.browseName, type: 'PTR' }], known);
    const next = interval === 0 ? 1_000 : Math.min(interval * 2, this.#details.maxQueryIntervalMs);
    this.#later(() => this.#browse(type, next), next);
  }

  #query(questions: { name: string; type: string }[], answers: unknown[] = []): void {
    for (const socket of this.#sockets) {
      socket.query({ questions, answers }, (error) => {
        if (error !== null && error !== undefined) this.#onWarning(error);
      });
    }
  }

  #onWarning(error: Error): void {
    this.#context.count('bad_packet');
    if (this.#warned) return;
    this.#warned = true;
    this.#context.log.warn({ err: error }, 'Ignored an undecodable mDNS packet or socket warning (logged once)');
  }

  /**
   * Records worth keeping: PTRs of browsed types, SRV/TXT of instances those PTRs name,
   * addresses of hosts those SRVs name. Everything else a responder sends is ignored.
   */
  #relevant(record: IncomingRecord): boolean {
    const key = nameKey(record.name);
    if (record.type === 'PTR') return this.#details.serviceTypes.some((t) => nameKey(t.browseName) === key);
    if (record.type === 'SRV' || record.type === 'TXT')
      return this.#details.serviceTypes.some((t) => instanceNames(this.#cache, t).some((n) => nameKey(n) === key));
    return this.#isKnownHost(key);
  }

  #isKnownHost(key: string): boolean {
    for (const type of this.#details.serviceTypes) {
      for (const name of instanceNames(this.#cache, type)) {
        const srv = this.#cache.get(name, 'SRV')[0]?.data;
        if (srv !== undefined && typeof srv === 'object' && 'target' in srv && nameKey(srv.target) === key) return true;
      }
    }
    return false;
  }

  #onResponse(packet: DnsPacket): void {
    const now = Date.now();
    const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])]
      .map(toRecord)
      .filter((r): r is IncomingRecord => r !== undefined);
    // PTR first, addresses last: each is kept only if what names it is known (maybe from this packet).
    const order = (r: IncomingRecord): number => (r.type === 'PTR' ? 0 : r.type === 'A' || r.type === 'AAAA' ? 2 : 1);
    records.sort((a, b) => order(a) - order(b));
    let changed = false;
    for (const record of records) {
      if (!this.#relevant(record)) continue;
      const result = this.#cache.ingest(record, now);
      if (result === undefined) this.#context.count('cache_full');
      else if (result.length > 0) changed = true;
    }
    if (changed) this.#report(false);
    this.#armDeadline();
  }

  #armDeadline(): void {
    clearTimeout(this.#deadline);
    const next = this.#cache.nextDeadline();
    if (next === undefined) return;
    this.#deadline = setTimeout(() => this.#onDeadline(), Math.max(0, next - Date.now()) + 5);
  }

  #onDeadline(): void {
    const now = Date.now();
    const expired = this.#cache.expire(now);
    const due = this.#cache.dueRefreshes(now, () => true);
    const questions = new Map<string, { name: string; type: string }>();
    for (const record of due) {
      const question = questionFor(record.name, record.type, this.#details.serviceTypes);
      questions.set(`${nameKey(question.name)}|${question.type}`, question);
    }
    if (questions.size > 0) this.#query([...questions.values()]);
    if (expired.length > 0) this.#report(false);
    this.#armDeadline();
  }

  #askFor(missing: Missing): void {
    const name = missing.kind === 'srv' ? missing.name : missing.host;
    const now = Date.now();
    const last = this.#asked.get(name);
    if (
      last !== undefined &&
      (last.attempts >= MISSING_QUERY_ATTEMPTS || now - last.at < MISSING_QUERY_INTERVAL_MS * 2 ** (last.attempts - 1))
    )
      return;
    if (this.#asked.size > this.#details.maxDevices * 4) this.#asked.clear();
    const attempts = (last?.attempts ?? 0) + 1;
    this.#asked.set(name, { at: now, attempts });
    // Look again when the next attempt is allowed: if it is still missing, ask again.
    if (attempts < MISSING_QUERY_ATTEMPTS) this.#later(() => this.#report(false), MISSING_QUERY_INTERVAL_MS * 2 ** (attempts - 1) + 5);
    this.#query(
      missing.kind === 'srv'
        ? [questionFor(name, 'SRV', this.#details.serviceTypes), questionFor(name, 'TXT', this.#details.serviceTypes)]
        : [
            { name, type: 'A' },
            { name, type: 'AAAA' },
          ],
    );
  }

  /** Whether to hold an instance back while its address is on its way. */
  #awaitingAddress(fullName: string, hasAddress: boolean, now: number, waiting: Set<string>): boolean {
    if (hasAddress) return false;
    const since = this.#waitingSince.get(fullName) ?? now;
    waiting.add(fullName);
    this.#waitingSince.set(fullName, since);
    if (now - since >= ADDRESS_WAIT_MS) return false;
    if (since === now) this.#later(() => this.#report(false), ADDRESS_WAIT_MS + 5);
    return true;
  }

  /** The devices present now (and queries for what is missing). */
  #present(): Map<string, DiscoveredDevice> {
    const present = new Map<string, DiscoveredDevice>();
    const now = Date.now();
    const waiting = new Set<string>();
    let limited = false;
    for (const type of this.#details.serviceTypes) {
      for (const fullName of instanceNames(this.#cache, type)) {
        const { instance, missing } = resolveInstance(this.#cache, type, fullName);
        if (missing !== undefined) this.#askFor(missing);
        else if (this.#asked.size > 0) {
          this.#asked.delete(fullName);
          if (instance !== undefined) this.#asked.delete(instance.host);
        }
        if (instance === undefined || !passesFilters(instance, this.#details.filters)) continue;
        if (this.#awaitingAddress(instance.fullName, instance.addresses.length > 0, now, waiting)) continue;
        if (present.size >= this.#details.maxDevices && !present.has(instance.fullName)) {
          limited = true;
          continue;
        }
        present.set(instance.fullName, instanceDevice(instance));
      }
    }
    for (const name of this.#waitingSince.keys()) if (!waiting.has(name)) this.#waitingSince.delete(name);
    if (limited) this.#context.count('device_limit');
    return present;
  }

  #report(full: boolean): void {
    const present = this.#present();
    if (!this.#reporting) return;
    const { sink } = this.#context;
    if (full) {
      this.#reported.clear();
      for (const [id, device] of present) this.#reported.set(id, JSON.stringify(device));
      sink.replaceAll([...present.values()]);
      return;
    }
    for (const id of [...this.#reported.keys()]) {
      if (!present.has(id)) {
        this.#reported.delete(id);
        sink.remove(id);
      }
    }
    for (const [id, device] of present) {
      const serialised = JSON.stringify(device);
      if (this.#reported.get(id) === serialised) continue;
      this.#reported.set(id, serialised);
      sink.upsert(device);
    }
  }
}

export function createMdnsHandler(): DiscoveryHandler<MdnsDetails> {
  return {
    name: 'mdns',
    parseDetails: parseMdnsDetails,
    isShared: (details) => details.shared,
    run: (details, context) => new MdnsBrowser(details, context).run(),
  };
}
