import { describe, expect, it } from 'vitest';
import { DetailsError } from '../contract.ts';
import { parseUsbDetails } from './details.ts';

describe('parseUsbDetails', () => {
  it('has defaults: every non-hub device, auto identity, usb/tty/video/hidraw nodes rw, poll every second', () => {
    expect(parseUsbDetails(undefined)).toEqual({
      match: [],
      exclude: [],
      identity: 'auto',
      nodes: ['usb', 'tty', 'video4linux', 'hidraw'],
      permissions: 'rw',
      pollIntervalMs: 1000,
      shared: false,
    });
  });

  it('parses matchers: ids in any case, class names and hex, patterns', () => {
    const d = parseUsbDetails({
      match: [
        { vendorId: '0x0403', productId: '6001' },
        { class: 'video' },
        { class: '02', subclass: 2, protocol: '0x01', driver: 'cdc_*' },
      ],
    });
    expect(d.match[0]).toMatchObject({ vendorId: '0403', productId: '6001', classes: undefined });
    expect(d.match[1]!.classes).toEqual({ class: 0x0e, subclass: undefined, protocol: undefined });
    expect(d.match[2]!.classes).toEqual({ class: 2, subclass: 2, protocol: 1 });
    expect(d.match[2]!.driver!.test('cdc_acm')).toBe(true);
  });

  it.each([
    ['not an object', 'usb', 'details'],
    ['unknown field', { matches: [] }, 'details.matches'],
    ['match not a list', { match: { vendorId: '0403' } }, 'details.match'],
    ['empty matcher', { match: [{}] }, 'details.match[0]'],
    ['unknown matcher field', { match: [{ vendor: '0403' }] }, 'details.match[0].vendor'],
    ['short vendor id', { match: [{ vendorId: '403' }] }, 'details.match[0].vendorId'],
    ['numeric product id', { exclude: [{ productId: 6001 }] }, 'details.exclude[0].productId'],
    ['unknown class name', { match: [{ class: 'camera' }] }, 'details.match[0].class'],
    ['class out of range', { match: [{ class: 256 }] }, 'details.match[0].class'],
    ['subclass without class', { match: [{ subclass: 1 }] }, 'details.match[0].class'],
    ['bad regex', { match: [{ serial: '/[/' }] }, 'details.match[0].serial'],
    ['bad identity', { identity: 'devnum' }, 'details.identity'],
    ['bad node kind', { nodes: ['usb', 'block'] }, 'details.nodes[1]'],
    ['bad permissions', { permissions: 'wr' }, 'details.permissions'],
    ['poll too slow', { pollIntervalSeconds: 120 }, 'details.pollIntervalSeconds'],
  ])('rejects %s at %s', (_what, raw, path) => {
    try {
      parseUsbDetails(raw);
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(DetailsError);
      expect((error as DetailsError).path).toBe(path);
    }
  });
});
