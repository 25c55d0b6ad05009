import { describe, expect, it } from 'vitest';
import { RecordCache, type IncomingRecord } from './cache.ts';
import { parseServiceType } from './details.ts';
import { instanceDevice, passesFilters, resolveInstance } from './services.ts';
import { decodeTxt, txtPropertyName } from './txt.ts';

const bytes = (...strings: (string | number[])[]): Uint8Array[] =>
  strings.map((s) => (typeof s === 'string' ? new TextEncoder().encode(s) : Uint8Array.from(s)));

const rec = (r: Partial<IncomingRecord> & Pick<IncomingRecord, 'name' | 'type' | 'data'>): IncomingRecord => ({
  ttl: 120,
  flush: false,
  ...r,
});

describe('decodeTxt', () => {
  it.each([
    ['key=value', [['key', 'value']]],
    ['bare key (boolean attribute)', [['flag', true]]],
    ['empty value', [['k', '']]],
    ['value with =', [['k', 'a=b']]],
  ])('%s', (_name, expected) => {
    const input = {
      'key=value': ['key=value'],
      'bare key (boolean attribute)': ['flag'],
      'empty value': ['k='],
      'value with =': ['k=a=b'],
    }[_name]!;
    expect(decodeTxt(bytes(...input)).map((e) => [e.key, e.value])).toEqual(expected);
  });

  it('keeps the first of duplicate keys (case-insensitive), skips empty and invalid keys', () => {
    const entries = decodeTxt(bytes('Dup=1', 'dup=2', '=x', [0x01, 0x3d, 0x61], '', 'ok=1'));
    expect(entries).toEqual([
      { key: 'Dup', value: '1' },
      { key: 'ok', value: '1' },
    ]);
  });

  it.each([
    ['control characters', [0x70, 0x3d, 0x61, 0x0a, 0x62], 'base64:YQpi'],
    ['NUL', [0x70, 0x3d, 0x00], 'base64:AA=='],
    ['invalid UTF-8', [0x70, 0x3d, 0xff], 'base64:/w=='],
    ['UTF-8 text', [0x70, 0x3d, 0xc3, 0xa9], 'é'],
    ['a tab is fine', [0x70, 0x3d, 0x09], '\t'],
  ])('sanitises %s', (_name, raw, value) => {
    expect(decodeTxt([Uint8Array.from(raw)])[0]?.value).toBe(value);
  });

  it('is bounded', () => {
    expect(decodeTxt(Array.from({ length: 500 }, (_, i) => new TextEncoder().encode(`k${i}=v`)))).toHaveLength(64);
  });

  it.each([
    ['rp', 'MDNS_TXT_RP'],
    ['adminurl', 'MDNS_TXT_ADMINURL'],
    ['product-name', 'MDNS_TXT_PRODUCT_NAME'],
  ])('txtPropertyName(%s) = %s', (key, name) => {
    expect(txtPropertyName(key)).toBe(name);
  });
});

describe('RecordCache', () => {
  it('keeps records for their TTL and expires them', () => {
    const cache = new RecordCache(100);
    expect(cache.ingest(rec({ name: 'Cam._rtsp._tcp.local', type: 'SRV', ttl: 10, data: { port: 554, target: 'cam.local' } }), 0)).toEqual([
      'cam._rtsp._tcp.local',
    ]);
    expect(cache.get('CAM._rtsp._tcp.local.', 'SRV')).toHaveLength(1);
    expect(cache.nextDeadline()).toBe(8_000);
    expect(cache.expire(9_999)).toEqual([]);
    expect(cache.expire(10_000)).toEqual(['cam._rtsp._tcp.local']);
    expect(cache.size).toBe(0);
  });

  it('a goodbye (TTL 0) removes the record at once', () => {
    const cache = new RecordCache(100);
    cache.ingest(rec({ name: '_ipp._tcp.local', type: 'PTR', data: 'P._ipp._tcp.local' }), 0);
    cache.ingest(rec({ name: '_ipp._tcp.local', type: 'PTR', data: 'Q._ipp._tcp.local' }), 0);
    expect(cache.ingest(rec({ name: '_ipp._tcp.local', type: 'PTR', ttl: 0, data: 'p._IPP._tcp.local' }), 5)).toEqual(['_ipp._tcp.local']);
    expect(cache.get('_ipp._tcp.local', 'PTR').map((r) => r.data)).toEqual(['Q._ipp._tcp.local']);
    expect(cache.ingest(rec({ name: '_ipp._tcp.local', type: 'PTR', ttl: 0, data: 'gone._ipp._tcp.local' }), 5)).toEqual([]);
  });

  it('the cache-flush bit replaces records of the same name and type older than a second', () => {
    const cache = new RecordCache(100);
    cache.ingest(rec({ name: 'host.local', type: 'A', data: '10.0.0.1' }), 0);
    cache.ingest(rec({ name: 'host.local', type: 'A', flush: true, data: '10.0.0.2' }), 500);
    expect(cache.get('host.local', 'A')).toHaveLength(2); // same announcement burst
    cache.ingest(rec({ name: 'host.local', type: 'A', flush: true, data: '10.0.0.3' }), 2_000);
    expect(cache.get('host.local', 'A').map((r) => r.data)).toEqual(['10.0.0.3']);
  });

  it('due refreshes at 80, 85, 90 and 95 % of the TTL, each once; a new reception starts over', () => {
    const cache = new RecordCache(100);
    cache.ingest(rec({ name: 'x.local', type: 'A', ttl: 100, data: '10.0.0.1' }), 0);
    const due = (now: number): number => cache.dueRefreshes(now, () => true).length;
    expect(due(79_000)).toBe(0);
    expect(due(80_000)).toBe(1);
    expect(due(81_000)).toBe(0);
    expect(cache.nextDeadline()).toBe(85_000);
    expect(due(96_000)).toBe(1); // late timer: the points passed count once
    expect(cache.nextDeadline()).toBe(100_000);
    cache.ingest(rec({ name: 'x.local', type: 'A', ttl: 100, data: '10.0.0.1' }), 97_000);
    expect(cache.nextDeadline()).toBe(177_000);
  });

  it('refuses records beyond its size', () => {
    const cache = new RecordCache(2);
    cache.ingest(rec({ name: 'a.local', type: 'A', data: '10.0.0.1' }), 0);
    cache.ingest(rec({ name: 'b.local', type: 'A', data: '10.0.0.2' }), 0);
    expect(cache.ingest(rec({ name: 'c.local', type: 'A', data: '10.0.0.3' }), 0)).toBeUndefined();
    expect(cache.ingest(rec({ name: 'a.local', type: 'A', data: '10.0.0.1' }), 1)).toEqual([]); // a refresh still fits
  });
});

describe('service instances', () => {
  const type = parseServiceType('_ipp._tcp')!;
  const full = 'Office Printer._ipp._tcp.local';

  function cacheWith(records: IncomingRecord[]): RecordCache {
    const cache = new RecordCache(100);
    for (const r of records) cache.ingest(r, 0);
    return cache;
  }

  it('needs SRV, then an address; then it is a device', () => {
    const ptr = rec({ name: '_ipp._tcp.local', type: 'PTR', data: full });
    expect(resolveInstance(cacheWith([ptr]), type, full)).toEqual({ missing: { kind: 'srv', name: full } });
    const srv = rec({ name: full, type: 'SRV', data: { port: 631, target: 'printer.local' } });
    expect(resolveInstance(cacheWith([ptr, srv]), type, full).missing).toEqual({ kind: 'address', host: 'printer.local' });
    const cache = cacheWith([
      ptr,
      srv,
      rec({ name: full, type: 'TXT', data: bytes('rp=ipp/print') }),
      rec({ name: 'printer.local', type: 'AAAA', data: 'fe80::1' }),
      rec({ name: 'printer.local', type: 'AAAA', data: '2001:db8::7' }),
      rec({ name: 'printer.local', type: 'A', data: '192.168.1.20' }),
    ]);
    const { instance, missing } = resolveInstance(cache, type, full);
    expect(missing).toBeUndefined();
    expect(instanceDevice(instance!)).toEqual({
      id: full,
      properties: {
        MDNS_INSTANCE: 'Office Printer',
        MDNS_SERVICE_TYPE: '_ipp._tcp',
        MDNS_FULL_NAME: full,
        MDNS_HOST: 'printer.local',
        MDNS_PORT: '631',
        MDNS_ADDRESS: '192.168.1.20',
        MDNS_ADDRESSES: '192.168.1.20,2001:db8::7',
        MDNS_TXT_RP: 'ipp/print',
      },
    });
  });

  it('keeps dots inside instance names', () => {
    const name = 'Printer v2.1._ipp._tcp.local';
    const cache = cacheWith([
      rec({ name, type: 'SRV', data: { port: 1, target: 'h.local' } }),
      rec({ name: 'h.local', type: 'A', data: '10.0.0.1' }),
    ]);
    expect(resolveInstance(cache, type, name).instance?.instance).toBe('Printer v2.1');
  });

  it.each([
    [{ txt: [] }, true],
    [{ instanceName: /^Office/u, txt: [] }, true],
    [{ instanceName: /^Lobby/u, txt: [] }, false],
    [{ host: /^printer\.local$/u, txt: [] }, true],
    [{ host: /^other/u, txt: [] }, false],
    [{ txt: [{ key: 'RP' }] }, true],
    [{ txt: [{ key: 'rp', value: /^ipp\//u }] }, true],
    [{ txt: [{ key: 'rp', value: /^lpr/u }] }, false],
    [{ txt: [{ key: 'missing' }] }, false],
  ])('filters %o → %s', (filters, pass) => {
    const instance = {
      fullName: full,
      instance: 'Office Printer',
      type: '_ipp._tcp',
      host: 'printer.local',
      port: 631,
      addresses: [],
      txt: [{ key: 'rp', value: 'ipp/print' }],
    };
    expect(passesFilters(instance, filters)).toBe(pass);
  });
});
