/**
 * Property-based fuzzing of what an external (Akri v0) discovery handler sends: Discover
 * responses and registrations decoded from the wire may hold anything a buggy or hostile
 * handler put there — within what protobuf decoding guarantees (field types), fields absent or
 * of any content and size. readDiscoverResponse and parseRegistration never throw and keep
 * their bounds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DiscoverResponse, RegisterDiscoveryHandlerRequest } from '../../proto/types.ts';
import { DEFAULT_WIRE_LIMITS, readDiscoverResponse, type WireLimits } from './devices.ts';
import { parseRegistration } from './endpoint.ts';
import { expectFast, FUZZ_RUNS } from '../../test/support/fuzz.ts';

const limits: WireLimits = {
  ...DEFAULT_WIRE_LIMITS,
  maxDevices: 20,
  maxIdLength: 64,
  maxProperties: 8,
  maxPropertyValueLength: 64,
  maxMounts: 4,
  maxPathLength: 64,
};
const text = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom('', '/dev/ttyUSB0', '/a\u0000b', 'relative/path', '/'),
);
const path = fc.record(
  {
    container_path: text,
    host_path: text,
    read_only: fc.boolean(),
    permissions: fc.constantFrom('rw', 'rwm', 'x', '', 'rrrr'),
  },
  { requiredKeys: [] },
);
const device = fc.record(
  {
    id: text,
    properties: fc.dictionary(text, text, { maxKeys: 12 }),
    mounts: fc.array(path, { maxLength: 6 }),
    device_specs: fc.array(path, { maxLength: 6 }),
  },
  { requiredKeys: [] },
);

describe('Akri v0 messages under fuzzing (issue 13)', () => {
  it('Discover responses: accepted with bounded devices, or refused as a whole; never a throw', () => {
    fc.assert(
      fc.property(fc.record({ devices: fc.array(device, { maxLength: 25 }) }, { requiredKeys: [] }), (raw) => {
        const response = raw as unknown as DiscoverResponse;
        let result: ReturnType<typeof readDiscoverResponse> | undefined;
        expectFast(() => void (result = readDiscoverResponse(response, limits)));
        if (result === undefined || !result.ok) return;
        for (const d of result.devices) {
          expect(d.id.length).toBeGreaterThan(0);
          expect(d.id.length).toBeLessThanOrEqual(limits.maxIdLength);
          expect(Object.keys(d.properties).length).toBeLessThanOrEqual(limits.maxProperties);
          for (const value of Object.values(d.properties)) expect(typeof value).toBe('string');
          for (const m of [...(d.mounts ?? []), ...(d.deviceNodes ?? [])]) {
            for (const p of [m.containerPath, m.hostPath]) {
              expect(p.startsWith('/')).toBe(true);
              expect(p).not.toContain('\u0000');
            }
          }
        }
      }),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('registrations: an address or a reason; never a throw', () => {
    const request = fc.record(
      {
        name: fc.oneof(text, fc.constantFrom('debugEcho', 'onvif', 'a'.repeat(300))),
        endpoint: fc.oneof(text, fc.constantFrom('/var/lib/akri/x.sock', '10.0.0.1:8080', 'http://[::1]:80', 'https://h:1', 'host:99999')),
        endpoint_type: fc.constantFrom('UDS', 'NETWORK', 'X'),
        shared: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(request, (raw) => {
        expectFast(() => {
          const parsed = parseRegistration(raw as unknown as RegisterDiscoveryHandlerRequest);
          if (typeof parsed !== 'string') expect(parsed.key).toBe(`${parsed.name}@${parsed.endpoint}`);
        });
      }),
      { numRuns: FUZZ_RUNS },
    );
  });
});
