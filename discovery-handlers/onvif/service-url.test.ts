import { describe, expect, it } from 'vitest';
import { parseCidr, type Cidr } from '../ipv4.ts';
import { checkServiceUrl, chooseServiceUrl, isReservedAddress, type ServiceUrlPolicy } from './service-url.ts';

const cidr = (text: string): Cidr => parseCidr(text)!;
const lan: ServiceUrlPolicy = { allowedCidrs: [], loopback: false };
const nat: ServiceUrlPolicy = { allowedCidrs: [cidr('172.16.5.0/24')], loopback: false };
const onLoopback: ServiceUrlPolicy = { allowedCidrs: [], loopback: true };
const source = '10.0.0.7';

describe('checkServiceUrl (issue 13: a camera never steers Tether elsewhere)', () => {
  it.each([
    ['the answering address', 'http://10.0.0.7/onvif/device_service', lan, 'http://10.0.0.7/onvif/device_service'],
    [
      'the answering address, other port, https',
      'https://10.0.0.7:8443/onvif/device_service',
      lan,
      'https://10.0.0.7:8443/onvif/device_service',
    ],
    ['an RTSP stream on the camera', 'rtsp://10.0.0.7:554/stream1', lan, 'rtsp://10.0.0.7:554/stream1'],
    ['inside an allowed block', 'http://172.16.5.20/onvif/media', nat, 'http://172.16.5.20/onvif/media'],
    ['userinfo is dropped', 'http://admin:x@10.0.0.7/onvif/device_service', lan, 'http://10.0.0.7/onvif/device_service'],
    [
      'a loopback URL from a LAN camera, even when probing on loopback',
      'http://127.0.0.1:8080/x',
      onLoopback,
      { refused: 'not-the-camera' },
    ],
  ])('%s', (_what, url, policy, expected) => {
    const result = checkServiceUrl(url, source, policy);
    expect(result).toEqual(typeof expected === 'string' ? { url: expected } : expected);
  });

  it.each([
    ['loopback (the reported SSRF)', 'http://127.0.0.1:9999/onvif/device_service', 'reserved-address'],
    ['loopback, shorthand', 'http://127.1:9999/onvif/device_service', 'reserved-address'],
    ['loopback, as one number', 'http://2130706433/onvif/device_service', 'reserved-address'],
    ['loopback, hex', 'http://0x7f.0.0.1/onvif/device_service', 'reserved-address'],
    ['link-local (cloud metadata)', 'http://169.254.169.254/latest/meta-data/', 'reserved-address'],
    ['multicast', 'http://239.255.255.250:3702/', 'reserved-address'],
    ['unspecified', 'http://0.0.0.0:80/', 'reserved-address'],
    ['broadcast', 'http://255.255.255.255/', 'reserved-address'],
    ['another LAN host', 'http://10.0.0.1/admin', 'not-the-camera'],
    ['a host name', 'http://camera.example.com/onvif/device_service', 'not-an-ip'],
    ['localhost', 'http://localhost:8080/', 'not-an-ip'],
    ['IPv6 loopback', 'http://[::1]/onvif/device_service', 'not-an-ip'],
    ['IPv6 link-local', 'http://[fe80::1]/onvif/device_service', 'not-an-ip'],
    ['an RTSP host in octal-looking form', 'rtsp://010.0.0.7/stream', 'not-an-ip'],
    ['an RTSP loopback shorthand', 'rtsp://127.1/stream', 'not-an-ip'],
    ['not a URL', 'http//10.0.0.7', 'not-a-url'],
  ])('refuses %s', (_what, url, refused) => {
    expect(checkServiceUrl(url, source, nat)).toEqual({ refused });
    expect(checkServiceUrl(url, source, lan)).toEqual({ refused });
  });

  it('never allows a reserved address, not even inside an allowed block or as the source', () => {
    const wide: ServiceUrlPolicy = { allowedCidrs: [cidr('0.0.0.0/0')], loopback: false };
    expect(checkServiceUrl('http://169.254.1.1/', source, wide)).toEqual({ refused: 'reserved-address' });
    expect(checkServiceUrl('http://127.0.0.1/', source, wide)).toEqual({ refused: 'reserved-address' });
    expect(checkServiceUrl('http://10.9.9.9/', source, wide)).toEqual({ url: 'http://10.9.9.9/' });
    // A camera answering from a link-local address is not contacted at all.
    expect(checkServiceUrl('http://169.254.3.4/onvif/device_service', '169.254.3.4', lan)).toEqual({ refused: 'reserved-address' });
  });

  it('loopback only when the operator probes on loopback, and only the exact answering address', () => {
    expect(checkServiceUrl('http://127.0.9.1:8080/x', '127.0.9.1', lan)).toEqual({ refused: 'reserved-address' });
    expect(checkServiceUrl('http://127.0.9.1:8080/x', '127.0.9.1', onLoopback)).toEqual({ url: 'http://127.0.9.1:8080/x' });
    expect(checkServiceUrl('http://127.0.0.1:9999/x', '127.0.9.1', onLoopback)).toEqual({ refused: 'not-the-camera' });
  });
});

describe('chooseServiceUrl', () => {
  it('prefers the XAddr on the answering address, then one in an allowed block; never falls back to xaddrs[0]', () => {
    expect(chooseServiceUrl(['http://172.16.5.9/a', 'http://10.0.0.7/b'], source, nat)).toBe('http://10.0.0.7/b');
    expect(chooseServiceUrl(['http://127.0.0.1:9999/a', 'http://172.16.5.9/a'], source, nat)).toBe('http://172.16.5.9/a');
    expect(chooseServiceUrl(['http://127.0.0.1:9999/onvif/device_service'], source, lan)).toBeUndefined();
    expect(chooseServiceUrl(['http://10.0.0.8/onvif/device_service', 'http://cam.local/x'], source, lan)).toBeUndefined();
  });
});

describe('isReservedAddress', () => {
  it.each([
    ['0.1.2.3', true],
    ['127.0.0.1', true],
    ['169.254.0.1', true],
    ['224.0.0.251', true],
    ['239.255.255.250', true],
    ['255.255.255.255', true],
    ['10.0.0.1', false],
    ['192.168.1.1', false],
    ['not an ip', true],
  ])('%s → %s', (ip, reserved) => expect(isReservedAddress(ip, false)).toBe(reserved));
});
