/**
 * Just enough protobuf for Sparkplug B payloads (sparkplug_b.proto, `org.eclipse.tahu.protobuf`):
 *
 *   Payload { uint64 timestamp = 1; repeated Metric metrics = 2; uint64 seq = 3; string uuid = 4; bytes body = 5; }
 *   Metric  { string name = 1; uint64 alias = 2; uint64 timestamp = 3; uint32 datatype = 4; bool is_null = 7;
 *             oneof value { uint32 int_value = 10; uint64 long_value = 11; float float_value = 12;
 *                           double double_value = 13; bool boolean_value = 14; string string_value = 15; ... } }
 *
 * The decoder reads those fields, skips everything else (metadata, datasets, templates,
 * extensions), and is bounded: at most `maxMetrics` metrics are kept, strings are cut, and
 * malformed input (truncated varints, lengths past the end, groups) throws PayloadError.
 * The encoder writes the same subset (the handler's rebirth request, test publishers).
 */
import { PayloadError } from './bounded.ts';

export const DataType = {
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
} as const;

export type MetricValue = string | number | bigint | boolean;

export interface Metric {
  readonly name?: string;
  readonly alias?: bigint;
  readonly datatype?: number;
  readonly value?: MetricValue;
}

export interface SparkplugPayload {
  readonly timestamp?: bigint;
  readonly seq?: bigint;
  readonly metrics: readonly Metric[];
}

const MAX_STRING = 1024;
const decoder = new TextDecoder('utf-8', { fatal: false });

class Reader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) throw new PayloadError('bad_protobuf', 'truncated varint');
      const byte = this.buf[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    throw new PayloadError('bad_protobuf', 'varint longer than 10 bytes');
  }

  smallVarint(): number {
    const value = this.varint();
    if (value > 0xffff_ffffn) throw new PayloadError('bad_protobuf', 'value out of range');
    return Number(value);
  }

  bytes(): Uint8Array {
    const length = this.smallVarint();
    if (length > this.end - this.pos) throw new PayloadError('bad_protobuf', 'length past the end');
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  fixed(size: 4 | 8): DataView {
    if (size > this.end - this.pos) throw new PayloadError('bad_protobuf', 'truncated fixed field');
    const view = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, size);
    this.pos += size;
    return view;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.fixed(8);
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.fixed(4);
    else throw new PayloadError('bad_protobuf', `unsupported wire type ${wireType}`);
  }
}

function text(bytes: Uint8Array): string {
  return decoder.decode(bytes.subarray(0, MAX_STRING * 4)).slice(0, MAX_STRING);
}

function decodeMetric(bytes: Uint8Array): Metric {
  const r = new Reader(bytes);
  const metric: { name?: string; alias?: bigint; datatype?: number; value?: MetricValue } = {};
  while (r.pos < r.end) {
    const key = r.smallVarint();
    const field = key >>> 3;
    const wire = key & 7;
    switch (field) {
      case 1:
        if (wire !== 2) throw new PayloadError('bad_protobuf', 'metric name is not length-delimited');
        metric.name = text(r.bytes());
        break;
      case 2:
        metric.alias = r.varint();
        break;
      case 4:
        metric.datatype = r.smallVarint();
        break;
      case 10:
        metric.value = r.smallVarint();
        break;
      case 11:
        metric.value = r.varint();
        break;
      case 12:
        metric.value = r.fixed(4).getFloat32(0, true);
        break;
      case 13:
        metric.value = r.fixed(8).getFloat64(0, true);
        break;
      case 14:
        metric.value = r.varint() !== 0n;
        break;
      case 15:
        metric.value = text(r.bytes());
        break;
      default:
        r.skip(wire);
    }
  }
  return metric;
}

/** Decodes a Sparkplug B payload, keeping at most `maxMetrics` metrics. Throws PayloadError. */
export function decodeSparkplugPayload(bytes: Uint8Array, maxMetrics = 1024): SparkplugPayload {
  const r = new Reader(bytes);
  const metrics: Metric[] = [];
  let timestamp: bigint | undefined;
  let seq: bigint | undefined;
  while (r.pos < r.end) {
    const key = r.smallVarint();
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 1 && wire === 0) timestamp = r.varint();
    else if (field === 3 && wire === 0) seq = r.varint();
    else if (field === 2 && wire === 2) {
      const metric = r.bytes();
      if (metrics.length < maxMetrics) metrics.push(decodeMetric(metric));
    } else r.skip(wire);
  }
  return { ...(timestamp === undefined ? {} : { timestamp }), ...(seq === undefined ? {} : { seq }), metrics };
}

/** Reads a metric's value as an integer (bdSeq is Int64/UInt64 but some nodes send it as Int32). */
export function metricInteger(metric: Metric | undefined): bigint | undefined {
  const v = metric?.value;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return undefined;
}

// ---- encoding ----

function varintBytes(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

function keyBytes(field: number, wire: number): number[] {
  return varintBytes(BigInt((field << 3) | wire));
}

function lengthDelimited(field: number, bytes: Uint8Array | number[]): number[] {
  return [...keyBytes(field, 2), ...varintBytes(BigInt(bytes.length)), ...bytes];
}

function encodeMetric(metric: Metric): number[] {
  const out: number[] = [];
  if (metric.name !== undefined) out.push(...lengthDelimited(1, [...new TextEncoder().encode(metric.name)]));
  if (metric.alias !== undefined) out.push(...keyBytes(2, 0), ...varintBytes(metric.alias));
  const datatype = metric.datatype ?? inferDatatype(metric.value);
  out.push(...keyBytes(4, 0), ...varintBytes(BigInt(datatype)));
  const v = metric.value;
  if (v === undefined) out.push(...keyBytes(7, 0), 1);
  else if (typeof v === 'boolean') out.push(...keyBytes(14, 0), v ? 1 : 0);
  else if (typeof v === 'string') out.push(...lengthDelimited(15, [...new TextEncoder().encode(v)]));
  else if (typeof v === 'bigint') out.push(...keyBytes(11, 0), ...varintBytes(v));
  else if (datatype === DataType.Double || datatype === DataType.Float || !Number.isInteger(v)) {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, v, true);
    out.push(...keyBytes(13, 1), ...new Uint8Array(view.buffer));
  } else if (datatype === DataType.Int64 || datatype === DataType.UInt64) out.push(...keyBytes(11, 0), ...varintBytes(BigInt(v)));
  else out.push(...keyBytes(10, 0), ...varintBytes(BigInt(v >>> 0)));
  return out;
}

function inferDatatype(value: MetricValue | undefined): number {
  if (typeof value === 'boolean') return DataType.Boolean;
  if (typeof value === 'string') return DataType.String;
  if (typeof value === 'bigint') return DataType.Int64;
  if (typeof value === 'number') return Number.isInteger(value) ? DataType.Int32 : DataType.Double;
  return DataType.String;
}

/** Encodes a Sparkplug B payload (the subset above). */
export function encodeSparkplugPayload(payload: SparkplugPayload): Uint8Array {
  const out: number[] = [];
  if (payload.timestamp !== undefined) out.push(...keyBytes(1, 0), ...varintBytes(payload.timestamp));
  for (const metric of payload.metrics) out.push(...lengthDelimited(2, encodeMetric(metric)));
  if (payload.seq !== undefined) out.push(...keyBytes(3, 0), ...varintBytes(payload.seq));
  return Uint8Array.from(out);
}
