/**
 * Property-based check of the rule of issue 13: whatever URL a camera names, Tether only
 * ever calls or publishes one on the address the camera answered from or inside the
 * operator's blocks — never a reserved address.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cidrContains, parseCidr, type Cidr } from '../ipv4.ts';
import { checkServiceUrl, isReservedAddress } from './service-url.ts';
import { FUZZ_RUNS } from '../../test/support/fuzz.ts';

const host = fc.oneof(
  fc.ipV4(),
  fc.ipV4Extended(),
  fc.domain(),
  fc.ipV6().map((ip) => `[${ip}]`),
  fc.constantFrom(
    '127.0.0.1',
    '127.1',
    '2130706433',
    '0x7f000001',
    '169.254.169.254',
    '0.0.0.0',
    '255.255.255.255',
    '224.0.0.1',
    'localhost',
    '010.0.0.7',
  ),
);
const url = fc
  .tuple(
    fc.constantFrom('http', 'https', 'rtsp', 'ftp', 'file'),
    fc.option(fc.constantFrom('admin:pw@', 'u@'), { nil: '' }),
    host,
    fc.option(fc.integer({ min: 0, max: 70_000 }), { nil: undefined }),
    fc.webPath(),
  )
  .map(([scheme, userinfo, h, port, path]) => `${scheme}://${userinfo}${h}${port === undefined ? '' : `:${port}`}${path}`);
const cidrs = fc.array(
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([ip, prefix]) => parseCidr(`${ip}/${prefix}`)!),
  { maxLength: 3 },
);

describe('checkServiceUrl under fuzzing (issue 13)', () => {
  it('an accepted URL names the answering address or an allowed block, never a reserved address, without userinfo', () => {
    fc.assert(
      fc.property(
        fc.oneof(url, fc.string({ maxLength: 80 })),
        fc.oneof(fc.ipV4(), fc.constantFrom('127.0.0.1', '169.254.1.1')),
        cidrs,
        fc.boolean(),
        (u, source, allowed: Cidr[], loopback) => {
          const result = checkServiceUrl(u, source, { allowedCidrs: allowed, loopback });
          if (!('url' in result)) return;
          const parsed = new URL(result.url);
          expect(parsed.hostname === source || allowed.some((c) => cidrContains(c, parsed.hostname))).toBe(true);
          expect(isReservedAddress(parsed.hostname, loopback)).toBe(false);
          expect(isReservedAddress(source, loopback)).toBe(false);
          expect(parsed.username + parsed.password).toBe('');
        },
      ),
      { numRuns: FUZZ_RUNS * 3 },
    );
  });
});
