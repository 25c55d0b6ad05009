import { describe, expect, it } from 'vitest';
import { parseCidr } from '../ipv4.ts';
import { checkEndpointUrl, hostPort, withHost } from './urls.ts';

const policy = { allowedCidrs: [parseCidr('10.5.0.0/16')!] };

describe('checkEndpointUrl: never steered off the address that answered', () => {
  it.each([
    ['the answering address', 'opc.tcp://10.0.0.7:4841/ua', 'opc.tcp://10.0.0.7:4841/ua'],
    ['default port', 'opc.tcp://10.0.0.7', 'opc.tcp://10.0.0.7:4840'],
    ['a host name → the answering address', 'opc.tcp://press-1.factory:4841/', 'opc.tcp://10.0.0.7:4841/'],
    ["asyncua's 0.0.0.0 → the answering address", 'opc.tcp://0.0.0.0:4840/freeopcua/server/', 'opc.tcp://10.0.0.7:4840/freeopcua/server/'],
    ['localhost → the answering address', 'opc.tcp://localhost:4841', 'opc.tcp://10.0.0.7:4841'],
    ['loopback → the answering address', 'opc.tcp://127.0.0.1:9999', 'opc.tcp://10.0.0.7:9999'],
    ['inside allowedEndpointCidrs', 'opc.tcp://10.5.3.3:4840/', 'opc.tcp://10.5.3.3:4840/'],
    ['userinfo, query and fragment dropped', 'opc.tcp://u:p@10.0.0.7:4841/a?b#c', 'opc.tcp://10.0.0.7:4841/a'],
  ])('%s', (_label, url, expected) => {
    expect(checkEndpointUrl(url, '10.0.0.7', policy)).toEqual({ url: expected });
  });

  it.each([
    ['another host', 'opc.tcp://10.0.0.8:4841', 'not-the-server'],
    ['link-local', 'opc.tcp://169.254.1.1:4840', 'reserved-address'],
    ['multicast', 'opc.tcp://224.0.0.251:4840', 'reserved-address'],
    ['broadcast', 'opc.tcp://255.255.255.255:4840', 'reserved-address'],
    ['a non-canonical quad', 'opc.tcp://010.0.0.7:4840', 'not-ipv4'],
    ['an integer host', 'opc.tcp://167772167:4840', 'not-ipv4'],
    ['IPv6', 'opc.tcp://[fe80::1]:4840', 'not-ipv4'],
    ['another scheme', 'https://10.0.0.7/', 'not-opc-tcp'],
    ['an empty host', 'opc.tcp://', 'not-ipv4'],
    ['oversized', `opc.tcp://10.0.0.7:4840/${'a'.repeat(2000)}`, 'not-a-url'],
  ])('refuses %s', (_label, url, reason) => {
    expect(checkEndpointUrl(url, '10.0.0.7', policy)).toEqual({ refused: reason });
  });

  it('accepts loopback only when loopback answered', () => {
    expect(checkEndpointUrl('opc.tcp://127.0.0.1:4841', '127.0.0.1', policy)).toEqual({ url: 'opc.tcp://127.0.0.1:4841' });
    expect(checkEndpointUrl('opc.tcp://127.0.0.2:4841', '127.0.0.1', policy)).toEqual({ refused: 'not-the-server' });
  });

  it('refuses everything when the answering address itself is unusable', () => {
    expect(checkEndpointUrl('opc.tcp://press:4841', '0.0.0.0', policy)).toEqual({ refused: 'reserved-address' });
  });
});

describe('hostPort / withHost', () => {
  it('reads and replaces the host of operator URLs', () => {
    expect(hostPort('opc.tcp://plc.example:4855/x')).toEqual({ host: 'plc.example', port: 4855 });
    expect(hostPort('opc.tcp://10.0.0.1')).toEqual({ host: '10.0.0.1', port: 4840 });
    expect(hostPort('opc.tcp://10.0.0.1:99999')).toBeUndefined();
    expect(withHost('opc.tcp://plc.example:4855/x', '10.0.0.9')).toBe('opc.tcp://10.0.0.9:4855/x');
  });
});
