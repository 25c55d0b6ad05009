import { describe, expect, it } from 'vitest';
import { PayloadError } from './bounded.ts';
import { DataType, decodeSparkplugPayload, encodeSparkplugPayload, type SparkplugPayload } from './sparkplug-payload.ts';
import { parseSparkplugTopic, SparkplugConvention, type SparkplugOptions } from './sparkplug.ts';
import { msg, recordingContext } from '../../test/support/mqtt-convention.ts';

const birth = (bdSeq: number, extra: SparkplugPayload['metrics'] = []): Uint8Array =>
  encodeSparkplugPayload({
    timestamp: 1_700_000_000_000n,
    seq: 0n,
    metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: BigInt(bdSeq) }, { name: 'Node Control/Rebirth', value: false }, ...extra],
  });
const death = (bdSeq: number): Uint8Array =>
  encodeSparkplugPayload({ metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: BigInt(bdSeq) }] });

describe('Sparkplug B payloads', () => {
  it('round-trips the fields Tether uses', () => {
    const payload: SparkplugPayload = {
      timestamp: 1_700_000_000_123n,
      seq: 3n,
      metrics: [
        { name: 'bdSeq', datatype: DataType.Int64, value: 42n },
        { name: 'Temperature', datatype: DataType.Double, value: 21.5 },
        { name: 'Properties/Hardware Make', datatype: DataType.String, value: 'Acme' },
        { name: 'Enabled', datatype: DataType.Boolean, value: true },
        { name: 'Count', datatype: DataType.Int32, value: 7 },
      ],
    };
    expect(decodeSparkplugPayload(encodeSparkplugPayload(payload))).toEqual(payload);
  });

  it('skips fields it does not read (metadata, properties, datasets)', () => {
    // Metric with field 8 (metadata, length-delimited) and field 5 (is_historical, varint) before the name.
    const metric = [0x42, 0x02, 0x08, 0x01, 0x28, 0x01, 0x0a, 0x01, 0x78];
    const bytes = Uint8Array.from([0x12, metric.length, ...metric, 0x2a, 0x03, 0x61, 0x62, 0x63]);
    expect(decodeSparkplugPayload(bytes)).toEqual({ metrics: [{ name: 'x' }] });
  });

  it.each([
    ['a truncated varint', [0x08, 0xff]],
    ['a length past the end', [0x12, 0x7f, 0x00]],
    ['a start-group wire type', [0x0b]],
    ['a varint longer than 10 bytes', [0x08, ...Array<number>(11).fill(0xff), 0x01]],
    ['a truncated double', [0x12, 0x04, 0x69, 0x01, 0x00, 0x00]],
  ])('refuses %s', (_name, bytes) => {
    expect(() => decodeSparkplugPayload(Uint8Array.from(bytes))).toThrow(PayloadError);
  });

  it('keeps at most maxMetrics metrics', () => {
    const payload = encodeSparkplugPayload({ metrics: Array.from({ length: 50 }, (_, i) => ({ name: `m${i}`, value: i })) });
    expect(decodeSparkplugPayload(payload, 10).metrics).toHaveLength(10);
  });

  it('never throws anything but PayloadError on random bytes', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: 1 + (i % 64) }, random);
      try {
        decodeSparkplugPayload(bytes);
      } catch (error) {
        expect(error).toBeInstanceOf(PayloadError);
      }
    }
  });
});

describe('parseSparkplugTopic', () => {
  it.each([
    ['spBv1.0/plant/NBIRTH/edge1', { group: 'plant', type: 'NBIRTH', node: 'edge1' }],
    ['spBv1.0/plant/DDEATH/edge1/pump', { group: 'plant', type: 'DDEATH', node: 'edge1', device: 'pump' }],
    ['spBv1.0/plant/NBIRTH/edge1/extra', undefined],
    ['spBv1.0/plant/DBIRTH/edge1', undefined],
    ['spBv1.0/plant/NCMD/edge1', undefined],
    ['spBv1.0/STATE/host', undefined],
    ['spAv1.0/plant/NBIRTH/edge1', undefined],
  ])('%s', (topic, expected) => {
    expect(parseSparkplugTopic(topic)).toEqual(expected);
  });
});

describe('SparkplugConvention', () => {
  const options: SparkplugOptions = { nodes: true, rebirth: false };
  const node = 'sparkplug/plant/edge1';
  const pump = 'sparkplug/plant/edge1/pump';

  it('births and deaths of nodes and devices; a node death takes its devices', () => {
    const sp = new SparkplugConvention(options, recordingContext());
    expect(sp.handle(msg('spBv1.0/plant/NBIRTH/edge1', birth(1, [{ name: 'Properties/Hardware Make', value: 'Acme' }]), false), 0)).toEqual(
      [node],
    );
    expect(sp.view(node)?.properties).toEqual({
      SPARKPLUG_GROUP_ID: 'plant',
      SPARKPLUG_EDGE_NODE_ID: 'edge1',
      SPARKPLUG_COMMAND_TOPIC: 'spBv1.0/plant/NCMD/edge1',
      SPARKPLUG_METRICS: 'bdSeq,Node Control/Rebirth,Properties/Hardware Make',
      SPARKPLUG_PROPERTY_HARDWARE_MAKE: 'Acme',
    });
    sp.handle(msg('spBv1.0/plant/DBIRTH/edge1/pump', encodeSparkplugPayload({ metrics: [{ name: 'rpm', value: 1200 }] }), false), 0);
    expect(sp.view(pump)?.properties).toMatchObject({
      SPARKPLUG_DEVICE_ID: 'pump',
      SPARKPLUG_COMMAND_TOPIC: 'spBv1.0/plant/DCMD/edge1/pump',
      SPARKPLUG_METRICS: 'rpm',
    });
    expect(sp.handle(msg('spBv1.0/plant/DDEATH/edge1/pump', encodeSparkplugPayload({ metrics: [] }), false), 0)).toEqual([pump]);
    expect(sp.view(pump)).toBeUndefined();
    sp.handle(msg('spBv1.0/plant/DBIRTH/edge1/pump', encodeSparkplugPayload({ metrics: [] }), false), 0);
    expect(sp.handle(msg('spBv1.0/plant/NDEATH/edge1', death(1), false), 0)).toEqual([node, pump]);
    expect(sp.views()).toEqual([]);
  });

  it('ignores a stale NDEATH (bdSeq of an earlier session) and counts it', () => {
    const context = recordingContext();
    const sp = new SparkplugConvention(options, context);
    sp.handle(msg('spBv1.0/plant/NBIRTH/edge1', birth(2), false), 0);
    expect(sp.handle(msg('spBv1.0/plant/NDEATH/edge1', death(1), false), 0)).toEqual([]);
    expect(sp.view(node)).toBeDefined();
    expect(context.counts).toEqual(['stale_death']);
  });

  it('a new NBIRTH sets its devices offline until their DBIRTH (spec)', () => {
    const sp = new SparkplugConvention(options, recordingContext());
    sp.handle(msg('spBv1.0/plant/NBIRTH/edge1', birth(1), false), 0);
    sp.handle(msg('spBv1.0/plant/DBIRTH/edge1/pump', encodeSparkplugPayload({ metrics: [] }), false), 0);
    expect(sp.handle(msg('spBv1.0/plant/NBIRTH/edge1', birth(2), false), 0)).toEqual([node, pump]);
    expect(sp.view(pump)).toBeUndefined();
  });

  it('asks an unknown node to rebirth, at most once a minute', () => {
    const context = recordingContext();
    const sp = new SparkplugConvention({ ...options, rebirth: true }, context);
    expect(sp.filters).toContain('spBv1.0/+/NDATA/+');
    sp.handle(msg('spBv1.0/plant/NDATA/edge9', encodeSparkplugPayload({ metrics: [] }), false), 1000);
    sp.handle(msg('spBv1.0/plant/DDATA/edge9/x', encodeSparkplugPayload({ metrics: [] }), false), 2000);
    expect(context.published.map((p) => p.topic)).toEqual(['spBv1.0/plant/NCMD/edge9']);
    const request = decodeSparkplugPayload(context.published[0]!.payload);
    expect(request.metrics).toEqual([{ name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true }]);
    sp.handle(msg('spBv1.0/plant/NDATA/edge9', encodeSparkplugPayload({ metrics: [] }), false), 62_000);
    expect(context.published).toHaveLength(2);
  });

  it('goes offline after the configured silence; data keeps it alive', () => {
    const sp = new SparkplugConvention({ ...options, silenceMs: 10_000 }, recordingContext());
    sp.handle(msg('spBv1.0/plant/NBIRTH/edge1', birth(1), false), 0);
    sp.handle(msg('spBv1.0/plant/DBIRTH/edge1/pump', encodeSparkplugPayload({ metrics: [] }), false), 0);
    sp.handle(msg('spBv1.0/plant/DDATA/edge1/pump', encodeSparkplugPayload({ metrics: [] }), false), 8_000);
    expect(sp.expire(15_000)).toEqual([]);
    expect(sp.expire(18_001)).toEqual([pump, node]);
    expect(sp.views()).toEqual([]);
  });

  it('follows only the configured groups and can leave nodes out', () => {
    const sp = new SparkplugConvention({ groups: ['plant'], nodes: false, rebirth: false }, recordingContext());
    expect(sp.accepts('spBv1.0/plant/NBIRTH/e')).toBe(true);
    expect(sp.accepts('spBv1.0/other/NBIRTH/e')).toBe(false);
    sp.handle(msg('spBv1.0/plant/NBIRTH/e', birth(0), false), 0);
    sp.handle(msg('spBv1.0/plant/DBIRTH/e/d', encodeSparkplugPayload({ metrics: [] }), false), 0);
    expect(sp.views().map((v) => v.id)).toEqual(['sparkplug/plant/e/d']);
  });
});
