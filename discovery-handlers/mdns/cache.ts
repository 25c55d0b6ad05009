/**
 * An mDNS record cache (RFC 6762 §10) for the records DNS-SD browsing needs: PTR, SRV, TXT,
 * A, AAAA. Pure: time is passed in.
 *
 * - A record lives for its TTL from when it was last received.
 * - TTL 0 is a goodbye: the record goes at once (RFC 6762 says "in one second"; Tether
 *   reports the device offline at once, as the issue asks).
 * - The cache-flush bit on a unique record (SRV, TXT, A, AAAA) replaces the records of that
 *   name and type received more than a second earlier (§10.2).
 * - Refresh: at 80, 85, 90 and 95 % of its TTL a record is due for a re-query (§5.2); a
 *   responder that still has it answers and the TTL starts over; one that is gone stays silent
 *   and the record expires at 100 %.
 */

export type RecordType = 'PTR' | 'SRV' | 'TXT' | 'A' | 'AAAA';

export interface SrvData {
  readonly port: number;
  readonly target: string;
}

export type RecordData = string | SrvData | readonly Uint8Array[];

/** A resource record as received (dns-packet's shape, narrowed). */
export interface IncomingRecord {
  readonly name: string;
  readonly type: RecordType;
  readonly ttl: number;
  readonly flush: boolean;
  readonly data: RecordData;
}

export interface CachedRecord {
  readonly name: string;
  readonly type: RecordType;
  readonly data: RecordData;
  readonly ttl: number;
  readonly receivedAt: number;
  /** Refresh queries sent for this reception (0–4). */
  refreshes: number;
}

const REFRESH_POINTS = [0.8, 0.85, 0.9, 0.95];

/** DNS names compare case-insensitively (ASCII) and without a trailing dot. */
export function nameKey(name: string): string {
  return name.replace(/\.$/, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function dataKey(type: RecordType, data: RecordData): string {
  if (type === 'SRV') {
    const srv = data as SrvData;
    return `${srv.port}@${nameKey(srv.target)}`;
  }
  if (type === 'TXT') return (data as readonly Uint8Array[]).map((b) => Buffer.from(b).toString('base64')).join(',');
  return type === 'PTR' ? nameKey(data as string) : (data as string).toLowerCase();
}

function expiresAt(record: CachedRecord): number {
  return record.receivedAt + record.ttl * 1000;
}

export class RecordCache {
  /** `<name key>|<type>` → data key → record */
  readonly #records = new Map<string, Map<string, CachedRecord>>();
  readonly #maxRecords: number;
  #size = 0;

  constructor(maxRecords: number) {
    this.#maxRecords = maxRecords;
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Adds (or, with TTL 0, removes) one record. Returns the name keys whose records changed,
   * or undefined when the cache is full and the record was dropped.
   */
  ingest(record: IncomingRecord, now: number): string[] | undefined {
    const key = nameKey(record.name);
    const slot = `${key}|${record.type}`;
    const dk = dataKey(record.type, record.data);
    let set = this.#records.get(slot);
    if (record.ttl === 0) {
      if (set?.delete(dk) !== true) return [];
      this.#size--;
      if (set.size === 0) this.#records.delete(slot);
      return [key];
    }
    let changed = record.flush && record.type !== 'PTR' && set !== undefined && this.#flush(set, dk, now);
    const existing = set?.get(dk);
    if (existing === undefined) {
      if (this.#size >= this.#maxRecords) return undefined;
      this.#size++;
      changed = true;
    }
    if (set === undefined) this.#records.set(slot, (set = new Map<string, CachedRecord>()));
    set.set(dk, {
      name: record.name.replace(/\.$/, ''),
      type: record.type,
      data: record.data,
      ttl: record.ttl,
      receivedAt: now,
      refreshes: 0,
    });
    return changed ? [key] : [];
  }

  /** Cache-flush: drops the other records of the set received more than a second ago. */
  #flush(set: Map<string, CachedRecord>, keep: string, now: number): boolean {
    let changed = false;
    for (const [k, r] of set) {
      if (k !== keep && now - r.receivedAt > 1000) {
        set.delete(k);
        this.#size--;
        changed = true;
      }
    }
    return changed;
  }

  /** Records of a name and type (name compared case-insensitively). */
  get(name: string, type: RecordType): CachedRecord[] {
    return [...(this.#records.get(`${nameKey(name)}|${type}`)?.values() ?? [])];
  }

  /** Drops expired records; returns the name keys that changed. */
  expire(now: number): string[] {
    const changed = new Set<string>();
    for (const [slot, set] of this.#records) {
      for (const [k, record] of set) {
        if (expiresAt(record) <= now) {
          set.delete(k);
          this.#size--;
          changed.add(slot.slice(0, slot.lastIndexOf('|')));
        }
      }
      if (set.size === 0) this.#records.delete(slot);
    }
    return [...changed];
  }

  /**
   * Records (of names `wanted` accepts) that reached their next refresh point; each is marked
   * so it is returned once per point. The caller sends one query per distinct name and type.
   */
  dueRefreshes(now: number, wanted: (record: CachedRecord) => boolean): CachedRecord[] {
    const due: CachedRecord[] = [];
    for (const set of this.#records.values()) {
      for (const record of set.values()) {
        const point = REFRESH_POINTS[record.refreshes];
        if (point === undefined || now < record.receivedAt + record.ttl * 1000 * point) continue;
        // Several points may have passed (timer late): skip to the last one passed.
        while (record.refreshes < REFRESH_POINTS.length && now >= record.receivedAt + record.ttl * 1000 * REFRESH_POINTS[record.refreshes]!)
          record.refreshes++;
        if (wanted(record)) due.push(record);
      }
    }
    return due;
  }

  /** When the next expiry or refresh point is due (ms since epoch), or undefined if the cache is empty. */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const set of this.#records.values()) {
      for (const record of set.values()) {
        const point = REFRESH_POINTS[record.refreshes];
        const at = point === undefined ? expiresAt(record) : record.receivedAt + record.ttl * 1000 * point;
        if (next === undefined || at < next) next = at;
      }
    }
    return next;
  }
}
