import { describe, expect, it } from 'vitest';
import type { DesiredBrokers } from './devices/brokers/desired.ts';
import { broker } from '../test/support/broker-fixtures.ts';
import type { BrokerPlan } from './devices/brokers/plan.ts';
import { conditionsMatch, deviceBrokersCondition, discoveryStatus, settleConditions, type DiscoveryStatusInput } from './status.ts';

const desired: DesiredBrokers = {
  kind: 'Pod',
  templateHash: 'h',
  placements: [
    { node: 'a', name: 'b-a' },
    { node: 'b', name: 'b-b' },
  ],
  reason: undefined,
};
const emptyPlan: BrokerPlan = { deletes: [], creates: [], updates: [], waits: [], failed: [], requeueAfterMs: undefined };

describe('deviceBrokersCondition', () => {
  it.each([
    {
      what: 'all ready',
      observed: [broker('b-a', 'a', { templateHash: 'h' }), broker('b-b', 'b', { templateHash: 'h' })],
      plan: emptyPlan,
      status: 'True',
      reason: 'BrokersReady',
      message: '2/2 brokers ready',
    },
    {
      what: 'one pending',
      observed: [
        broker('b-a', 'a', { templateHash: 'h' }),
        broker('b-b', 'b', { templateHash: 'h', phase: 'pending', reason: 'Unschedulable' }),
      ],
      plan: emptyPlan,
      status: 'False',
      reason: 'BrokersNotReady',
      message: '1/2 brokers ready; b-b pending (Unschedulable)',
    },
    {
      what: 'backing off',
      observed: [broker('b-a', 'a', { templateHash: 'h' }), broker('b-b', 'b', { templateHash: 'h', phase: 'failed', reason: 'Error' })],
      plan: {
        ...emptyPlan,
        waits: [{ name: 'b-b', reason: 'BackOff' as const, untilMs: Date.parse('2026-01-01T00:00:10Z'), recreation: 3 }],
      },
      status: 'False',
      reason: 'BackOff',
      message: '1/2 brokers ready; b-b failed (Error); recreation 3 at 2026-01-01T00:00:10Z',
    },
    {
      what: 'rolling',
      observed: [broker('b-a', 'a', { templateHash: 'old' }), broker('b-b', 'b', { templateHash: 'old' })],
      plan: { ...emptyPlan, waits: [{ name: 'b-b', reason: 'RollingUpdate' as const }] },
      status: 'False',
      reason: 'RollingUpdate',
      message: '0/2 brokers ready; rolling brokers to the new template',
    },
  ])('$what → $status/$reason', ({ observed, plan, status, reason, message }) => {
    const c = deviceBrokersCondition(desired, observed, plan, undefined, 4);
    expect(c).toEqual({ type: 'BrokersReady', status, reason, message, observedGeneration: 4 });
  });

  it('reports a refused template, a missing discovery, no template and no nodes', () => {
    expect(deviceBrokersCondition(desired, [], emptyPlan, 'bad: spec.containers', undefined).reason).toBe('InvalidTemplate');
    expect(deviceBrokersCondition({ ...desired, kind: undefined, reason: 'DiscoveryNotFound' }, [], emptyPlan, undefined, 1).status).toBe(
      'False',
    );
    expect(deviceBrokersCondition({ ...desired, kind: undefined, reason: 'NoBrokerTemplate' }, [], emptyPlan, undefined, 1).status).toBe(
      'True',
    );
    expect(deviceBrokersCondition({ ...desired, placements: [], reason: 'NoNodes' }, [], emptyPlan, undefined, 1).reason).toBe('NoNodes');
  });
});

describe('conditions', () => {
  const draft = { type: 'BrokersReady', status: 'True' as const, reason: 'BrokersReady', message: '1/1 brokers ready' };
  it('keeps lastTransitionTime while the status stays and moves it when it changes', () => {
    const first = settleConditions([draft], undefined, Date.parse('2026-01-01T00:00:00Z'));
    expect(first[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    const same = settleConditions([{ ...draft, message: 'other' }], first, Date.parse('2026-01-01T01:00:00Z'));
    expect(same[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    const flipped = settleConditions([{ ...draft, status: 'False' }], first, Date.parse('2026-01-01T01:00:00Z'));
    expect(flipped[0]?.lastTransitionTime).toBe('2026-01-01T01:00:00Z');
  });

  it('matches ignoring transition times only', () => {
    const settled = settleConditions([draft], undefined, 0);
    expect(conditionsMatch([draft], settled)).toBe(true);
    expect(conditionsMatch([{ ...draft, message: 'x' }], settled)).toBe(false);
    expect(conditionsMatch([draft], undefined)).toBe(false);
  });
});

describe('discoveryStatus', () => {
  const base: DiscoveryStatusInput = {
    generation: 7,
    hasBrokerTemplate: true,
    devices: 3,
    nodes: 2,
    placements: 4,
    ready: 4,
    running: 4,
    backingOff: 0,
    invalidTemplate: undefined,
  };
  const byType = (input: DiscoveryStatusInput): Record<string, string> =>
    Object.fromEntries(discoveryStatus(input).conditions.map((c) => [c.type, `${c.status}/${c.reason}`]));

  it.each([
    {
      what: 'healthy',
      input: base,
      want: { Discovering: 'True/NodesSelected', DevicesAvailable: 'True/DevicesFound', BrokersReady: 'True/BrokersReady' },
    },
    {
      what: 'no nodes, no devices',
      input: { ...base, nodes: 0, devices: 0, placements: 0, ready: 0 },
      want: { Discovering: 'False/NoNodes', DevicesAvailable: 'False/NoDevices', BrokersReady: 'True/BrokersReady' },
    },
    { what: 'brokers not ready', input: { ...base, ready: 3 }, want: { BrokersReady: 'False/BrokersNotReady' } },
    { what: 'backing off', input: { ...base, ready: 3, backingOff: 1 }, want: { BrokersReady: 'False/BackOff' } },
    { what: 'no broker template', input: { ...base, hasBrokerTemplate: false }, want: { BrokersReady: 'True/NoBrokerTemplate' } },
    { what: 'refused template', input: { ...base, invalidTemplate: 'bad' }, want: { BrokersReady: 'False/InvalidTemplate' } },
  ])('$what', ({ input, want }) => {
    expect(byType(input)).toMatchObject(want);
  });

  it('HandlersHealthy: True without node problems; otherwise which nodes cannot run it and why', () => {
    const condition = (input: DiscoveryStatusInput) => discoveryStatus(input).conditions.find((c) => c.type === 'HandlersHealthy');
    expect(condition(base)).toMatchObject({ status: 'True', reason: 'NoNodeProblems' });
    const one = condition({
      ...base,
      nodeProblems: [
        { node: 'edge-2', reason: 'InvalidDetails', message: 'Rejected discovery details: details.descriptions: must be a list' },
      ],
    });
    expect(one).toMatchObject({
      status: 'False',
      reason: 'InvalidDetails',
      message: '1 node cannot run the discovery: edge-2: InvalidDetails: Rejected discovery details: details.descriptions: must be a list',
    });
    const mixed = condition({
      ...base,
      nodeProblems: [
        { node: 'b', reason: 'PropertiesUnresolved', message: 'Secret cams/login not found' },
        { node: 'a', reason: 'HandlerUnavailable', message: 'no onvif handler' },
      ],
    });
    expect(mixed).toMatchObject({
      status: 'False',
      reason: 'NodeProblems',
      message:
        '2 nodes cannot run the discovery: a: HandlerUnavailable: no onvif handler; b: PropertiesUnresolved: Secret cams/login not found',
    });
  });

  it('HandlersHealthy names at most five nodes and stays bounded', () => {
    const many = Array.from({ length: 40 }, (_, i) => ({
      node: `node-${String(i).padStart(2, '0')}`,
      reason: 'InvalidDetails',
      message: 'x'.repeat(500),
    }));
    const condition = discoveryStatus({ ...base, nodeProblems: many }).conditions.find((c) => c.type === 'HandlersHealthy')!;
    expect(condition.message.length).toBeLessThanOrEqual(2000);
    expect(condition.message).toMatch(/^40 nodes cannot run the discovery: node-00: /);
    expect(condition.message).not.toContain('node-05');
    expect(condition.message).toMatch(/; and 35 more nodes$/);
  });

  it('reports counts and observedGeneration', () => {
    const { status, conditions } = discoveryStatus(base);
    expect(status).toEqual({ observedGeneration: 7, devices: 3, brokers: 4, nodes: 2 });
    for (const c of conditions) expect(c.observedGeneration).toBe(7);
  });
});
