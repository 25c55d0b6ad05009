import { describe, expect, it } from 'vitest';
import { FLAG_DEFAULTS, FlagError, controllerConfig, parseHttpAddress, type ControllerFlags } from './flags.ts';

const flags: ControllerFlags = { ...FLAG_DEFAULTS, leaderElect: true };
const env = { hostname: 'host-1' };

describe('controller flags', () => {
  it('defaults to leader election in the pod namespace, with a unique identity', () => {
    const config = controllerConfig(flags, { ...env, podName: 'ctl-0', podNamespace: 'tether-system' });
    expect(config.leaderElection).toMatchObject({
      namespace: 'tether-system',
      name: 'tether-controller',
      leaseDurationSeconds: 90,
      renewDeadlineMs: 60_000,
      retryPeriodMs: 30_000,
    });
    expect(config.leaderElection?.identity).toMatch(/^ctl-0_[0-9a-f]{8}$/);
    expect(config.httpPort).toBe(8081);
    expect(config.nodeLossGraceMs).toBe(300_000);
    expect(config.namespace).toBeUndefined();
  });

  it('runs without leader election when asked, in one namespace', () => {
    const config = controllerConfig({ ...flags, leaderElect: false, namespace: 'edge' }, env);
    expect(config.leaderElection).toBeUndefined();
    expect(config.namespace).toBe('edge');
  });

  it.each([
    { what: 'retry ≥ renew', change: { retryPeriod: 60_000 } },
    { what: 'renew ≥ lease', change: { renewDeadline: 90_000 } },
    { what: 'no workers', change: { deviceWorkers: 0 } },
    { what: 'max below base', change: { brokerBackoffMax: 1 } },
    { what: 'a bad address', change: { httpAddress: 'nope' } },
  ])('refuses $what', ({ change }) => {
    expect(() => controllerConfig({ ...flags, ...change }, env)).toThrow(FlagError);
  });

  it.each([
    { address: ':8081', host: '0.0.0.0', port: 8081 },
    { address: '127.0.0.1:0', host: '127.0.0.1', port: 0 },
    { address: '[::1]:9000', host: '::1', port: 9000 },
    { address: '', host: '', port: -1 },
  ])('parses $address', ({ address, host, port }) => {
    expect(parseHttpAddress(address)).toEqual({ host, port });
  });
});
