/**
 * Property-based fuzzing of what MQTT devices publish, for each convention (Home Assistant,
 * Homie, Sparkplug B, generic rules) and the Sparkplug protobuf decoder: a convention fails
 * only with PayloadError (the engine counts those as bad payloads), every view it reports is
 * strings only, and each message is handled fast.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PayloadError } from './bounded.ts';
import type { Convention } from './convention.ts';
import { compileTemplate, GenericConvention, type Template } from './generic.ts';
import { HomeAssistantConvention } from './home-assistant.ts';
import { HomieConvention } from './homie.ts';
import { DataType, decodeSparkplugPayload, encodeSparkplugPayload } from './sparkplug-payload.ts';
import { SparkplugConvention } from './sparkplug.ts';
import { msg, recordingContext } from '../../test/support/mqtt-convention.ts';
import { expectFast, FUZZ_RUNS } from '../../test/support/fuzz.ts';

const t = (source: string): Template => {
  const compiled = compileTemplate(source);
  if (typeof compiled === 'string') throw new Error(compiled);
  return compiled;
};

const level = fc.oneof(
  fc.constantFrom('a', 'dev-1', 'Dev_1', '$state', '$description', 'config', 'status', ''),
  fc.string({ maxLength: 12 }).map((s) => s.replaceAll('/', '').replaceAll('+', '').replaceAll('#', '').replaceAll('\0', '')),
);
/** JSON values shaped like what conventions read, with hostile keys and types mixed in. */
const json = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record(
    {
      homie: fc.constantFrom('5.0', '5.x', 5, '4.0'),
      name: fc.jsonValue({ maxDepth: 1 }),
      version: fc.jsonValue({ maxDepth: 1 }),
      nodes: fc.dictionary(
        level,
        fc.record({
          name: fc.jsonValue({ maxDepth: 1 }),
          properties: fc.dictionary(
            level,
            fc.record({ datatype: fc.constantFrom('float', 'banana', 7), settable: fc.jsonValue({ maxDepth: 1 }) }),
          ),
        }),
        { maxKeys: 4 },
      ),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      uniq_id: fc.jsonValue({ maxDepth: 1 }),
      name: fc.jsonValue({ maxDepth: 1 }),
      '~': fc.string({ maxLength: 10 }),
      stat_t: fc.string({ maxLength: 10 }),
      avty_t: fc.jsonValue({ maxDepth: 1 }),
      dev: fc.jsonValue({ maxDepth: 2 }),
      device: fc.record({ ids: fc.jsonValue({ maxDepth: 1 }), name: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] }),
      cmps: fc.dictionary(level, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    },
    { requiredKeys: [] },
  ),
);
const sparkplug = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc
    .array(
      fc.record(
        {
          name: fc.string({ maxLength: 20 }),
          alias: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          datatype: fc.constantFrom(DataType.Int64, DataType.String, DataType.Boolean, DataType.Double, 99),
          value: fc.oneof(fc.string({ maxLength: 20 }), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), fc.boolean(), fc.double()),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 8 },
    )
    .map((metrics) => {
      try {
        return encodeSparkplugPayload({ metrics, seq: 1n });
      } catch {
        return new Uint8Array([0x08]); // a metric the encoder refuses: a truncated varint instead
      }
    }),
);
const payload = fc.oneof(
  json.map((v) => JSON.stringify(v) ?? ''),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom(
    '',
    'ready',
    'lost',
    'online',
    'Online',
    'offline',
    '{',
    '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
    '{"__proto__":{"polluted":1},"uniq_id":"a","constructor":{"prototype":{"x":1}}}',
    '{"homie":"5.0","nodes":{"__proto__":{"properties":{}}}}',
  ),
);

interface Case {
  readonly name: string;
  readonly make: () => Convention;
  readonly topic: fc.Arbitrary<string>;
  readonly payload: fc.Arbitrary<string | Uint8Array>;
}

const CASES: readonly Case[] = [
  {
    name: 'home-assistant',
    make: () =>
      new HomeAssistantConvention(
        { prefix: 'homeassistant', statusTopic: 'homeassistant/status', groupBy: 'device' },
        recordingContext({ maxPayloadBytes: 4096 }),
      ),
    topic: fc.oneof(
      fc
        .tuple(fc.constantFrom('sensor', 'light', 'device', 'binary_sensor'), level, level)
        .map(([c, n, o]) => `homeassistant/${c}/${n}/${o}/config`),
      fc.tuple(fc.constantFrom('sensor', 'device'), level).map(([c, o]) => `homeassistant/${c}/${o}/config`),
      fc.constant('homeassistant/status'),
    ),
    payload,
  },
  {
    name: 'homie',
    make: () => new HomieConvention({ domain: 'homie' }, recordingContext({ maxPayloadBytes: 4096 })),
    topic: fc.tuple(level, fc.constantFrom('$state', '$description')).map(([d, a]) => `homie/5/${d}/${a}`),
    payload,
  },
  {
    name: 'sparkplug',
    make: () => new SparkplugConvention({ nodes: true, rebirth: true }, recordingContext({ maxPayloadBytes: 4096 })),
    topic: fc
      .tuple(
        level,
        fc.constantFrom('NBIRTH', 'NDEATH', 'DBIRTH', 'DDEATH', 'NDATA', 'DDATA', 'STATE', 'NCMD'),
        level,
        fc.option(level, { nil: undefined }),
      )
      .map(([g, type, n, d]) => `spBv1.0/${g}/${type}/${n}${d === undefined ? '' : `/${d}`}`),
    payload: fc.oneof(sparkplug, payload),
  },
  {
    name: 'generic',
    make: () =>
      new GenericConvention(
        [
          {
            topic: 'tele/+/INFO1',
            deviceId: t('tasmota-{topic[1]}'),
            properties: [
              ['FIRMWARE', t('{json.Info1.Version}')],
              ['RAW', t('{payload}')],
            ],
          },
          {
            topic: 'tele/+/LWT',
            deviceId: t('tasmota-{topic[1]}'),
            properties: [],
            presence: { value: t('{payload}'), online: ['Online'], offline: ['Offline'] },
          },
          {
            topic: 'sensors/#',
            deviceId: t('{json.id}'),
            properties: [
              ['A', t('{json.list[1]}')],
              ['B', t('{topic[3]}')],
            ],
            silenceMs: 1000,
          },
        ],
        recordingContext({ maxPayloadBytes: 4096 }),
      ),
    topic: fc.oneof(
      fc.tuple(level, fc.constantFrom('INFO1', 'LWT')).map(([d, k]) => `tele/${d}/${k}`),
      fc.array(level, { minLength: 1, maxLength: 4 }).map((levels) => `sensors/${levels.join('/')}`),
    ),
    payload: fc.oneof(
      payload,
      fc
        .record(
          { id: fc.jsonValue({ maxDepth: 1 }), list: fc.jsonValue({ maxDepth: 2 }), Info1: fc.jsonValue({ maxDepth: 2 }) },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v)),
    ),
  },
];

describe('MQTT conventions under fuzzing (issue 13)', () => {
  it.each(CASES)('$name: sequences of messages fail only with PayloadError; views are strings; fast', ({ make, topic, payload: body }) => {
    const message = fc.record({
      topic,
      payload: fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 9, arbitrary: body }),
      retain: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 8 }),
        fc.array(fc.constantFrom('expire', 'resync', 'settle'), { maxLength: 3 }),
        (messages, extra) => {
          const convention = make();
          let now = 0;
          for (const m of messages) {
            if (!convention.accepts(m.topic)) continue;
            expectFast(() => {
              try {
                convention.handle(msg(m.topic, m.payload, m.retain), (now += 100));
              } catch (error) {
                expect(error).toBeInstanceOf(PayloadError);
              }
            });
          }
          for (const step of extra) {
            if (step === 'expire') convention.expire((now += 10_000));
            else if (step === 'resync') convention.beginResync();
            else convention.settleResync(true);
          }
          for (const view of convention.views()) {
            expect(typeof view.id).toBe('string');
            for (const value of Object.values(view.properties)) expect(typeof value).toBe('string');
          }
        },
      ),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('Sparkplug payloads: decoded or PayloadError, bounded metrics, fast', () => {
    fc.assert(
      fc.property(sparkplug, (bytes) => {
        expectFast(() => {
          try {
            expect(decodeSparkplugPayload(bytes, 16).metrics.length).toBeLessThanOrEqual(16);
          } catch (error) {
            expect(error).toBeInstanceOf(PayloadError);
          }
        });
      }),
      { numRuns: FUZZ_RUNS },
    );
  });
});
