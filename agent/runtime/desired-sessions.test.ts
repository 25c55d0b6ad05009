import { describe, expect, it } from 'vitest';
import type { DeviceDiscovery } from '../../api/schema.ts';
import { DetailsError, type AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import type { ObjectRef } from '../discovery/properties.ts';
import { desiredSessions, type DesiredSessionsInput } from './desired-sessions.ts';

const echo: AnyDiscoveryHandler = {
  name: 'echo',
  parseDetails: (raw) => {
    if ((raw as { bad?: boolean }).bad === true) throw new DetailsError('details.bad', 'must not be set');
    return raw;
  },
  isShared: () => false,
  run: () => Promise.resolve(),
};

function discovery(
  name: string,
  spec: Partial<DeviceDiscovery['spec']> = {},
  metadata: Partial<DeviceDiscovery['metadata']> = {},
): DeviceDiscovery {
  return {
    apiVersion: 'tether.dev/v1alpha1',
    kind: 'DeviceDiscovery',
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, ...metadata },
    spec: { handler: 'echo', ...spec },
  };
}

const zone = (value: string): DeviceDiscovery['spec']['nodeSelector'] => ({
  nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: [value] }] }],
});

function input(discoveries: DeviceDiscovery[], overrides: Partial<DesiredSessionsInput> = {}): DesiredSessionsInput {
  return {
    node: { name: 'n1', labels: { zone: 'a' } },
    discoveries,
    handlerFor: (d) =>
      d.spec.handler === 'echo' ? { handler: echo, source: 'BuiltIn', shadowed: false } : { handler: undefined, reason: 'not here' },
    lookup: () => undefined,
    ...overrides,
  };
}

describe('desiredSessions', () => {
  it('runs every discovery that selects this node, with its spec as the session spec', () => {
    const result = desiredSessions(input([discovery('cams', { capacity: 3, offlineGracePeriodSeconds: 5, details: { x: 1 } })]));
    expect(result.problems).toEqual([]);
    expect(result.sessions).toHaveLength(1);
    const [session] = result.sessions;
    expect(session?.key).toBe('ns/cams');
    expect(session?.spec).toMatchObject({
      namespace: 'ns',
      name: 'cams',
      handler: echo,
      details: { x: 1 },
      capacity: 3,
      offlineGraceMs: 5_000,
      uid: 'uid-cams',
    });
  });

  it('defaults: capacity 1, a 60 s grace period, empty details', () => {
    const [session] = desiredSessions(input([discovery('cams')])).sessions;
    expect(session?.spec).toMatchObject({ capacity: 1, offlineGraceMs: 60_000, details: {} });
  });

  it.each([
    ['a selector for another zone', discovery('x', { nodeSelector: zone('b') })],
    ['a discovery being deleted', discovery('x', {}, { deletionTimestamp: new Date(0) })],
  ])('skips %s silently', (_what, d) => {
    expect(desiredSessions(input([d]))).toEqual({ sessions: [], problems: [], notices: [], refs: [] });
  });

  it('marks discoveries with a broker template (lean mode keeps their per-device resources), without restarting on a change', () => {
    const broker = { pod: { spec: { containers: [{ name: 'b', image: 'b' }] } } };
    const [plain] = desiredSessions(input([discovery('cams')])).sessions;
    const [brokered] = desiredSessions(input([discovery('cams', { broker })])).sessions;
    expect([plain?.brokered, brokered?.brokered]).toEqual([false, true]);
    expect(brokered?.fingerprint).toBe(plain?.fingerprint);
  });

  it('selects by node labels', () => {
    const result = desiredSessions(
      input([discovery('here', { nodeSelector: zone('a') }), discovery('there', { nodeSelector: zone('b') })]),
    );
    expect(result.sessions.map((s) => s.key)).toEqual(['ns/here']);
  });

  it.each([
    ['HandlerUnavailable', discovery('x', { handler: 'nope' }), /nope is not available/],
    ['InvalidDetails', discovery('x', { details: { bad: true } }), /Rejected discovery details/],
    [
      'PropertiesUnresolved',
      discovery('x', { properties: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } }] }),
      /Secret ns\/creds not found/,
    ],
  ])('reports %s for a selected discovery that cannot run', (reason, d, message) => {
    const result = desiredSessions(input([d]));
    expect(result.sessions).toEqual([]);
    expect(result.problems.map((p) => p.reason)).toEqual([reason]);
    expect(result.problems[0]?.message).toMatch(message);
  });

  it('keeps the parse error for InvalidDetails', () => {
    const [problem] = desiredSessions(input([discovery('x', { details: { bad: true } })])).problems;
    expect(problem?.error).toBeInstanceOf(DetailsError);
  });

  it('resolves properties from the looked-up objects and lists exactly the referenced ones', () => {
    const d = discovery('cams', {
      properties: [
        { name: 'SITE', value: 'plant' },
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } },
        { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
      ],
    });
    const data: Record<string, Record<string, string>> = { 'Secret/creds': { token: 't-1' }, 'ConfigMap/settings': { mode: 'fast' } };
    const lookup = (ref: ObjectRef): Record<string, string> | undefined => data[`${ref.kind}/${ref.name}`];
    const result = desiredSessions(input([d], { lookup }));
    expect(Object.fromEntries(result.sessions[0]?.spec.properties ?? [])).toEqual({ SITE: 'plant', TOKEN: 't-1', MODE: 'fast' });
    expect(result.refs).toEqual([
      { kind: 'Secret', namespace: 'ns', name: 'creds' },
      { kind: 'ConfigMap', namespace: 'ns', name: 'settings' },
    ]);
  });

  it('lists the references of an unresolved discovery too (so they get watched)', () => {
    const d = discovery('cams', { properties: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } }] });
    expect(desiredSessions(input([d])).refs).toEqual([{ kind: 'Secret', namespace: 'ns', name: 'creds' }]);
  });

  describe('fingerprint (a change restarts the session)', () => {
    const base = discovery('cams', { details: { a: 1 }, properties: [{ name: 'P', value: '1' }] });
    const fingerprintOf = (d: DeviceDiscovery): string | undefined => desiredSessions(input([d])).sessions[0]?.fingerprint;

    it.each([
      ['details', discovery('cams', { details: { a: 2 }, properties: [{ name: 'P', value: '1' }] })],
      ['a property value', discovery('cams', { details: { a: 1 }, properties: [{ name: 'P', value: '2' }] })],
      ['the grace period', discovery('cams', { details: { a: 1 }, properties: [{ name: 'P', value: '1' }], offlineGracePeriodSeconds: 1 })],
      ['the uid (re-created)', discovery('cams', { details: { a: 1 }, properties: [{ name: 'P', value: '1' }] }, { uid: 'other' })],
    ])('changes with %s', (_what, changed) => {
      expect(fingerprintOf(changed)).not.toBe(fingerprintOf(base));
    });

    it('does not change with capacity (resized in place)', () => {
      const resized = discovery('cams', { details: { a: 1 }, properties: [{ name: 'P', value: '1' }], capacity: 5 });
      expect(fingerprintOf(resized)).toBe(fingerprintOf(base));
    });
  });
});
