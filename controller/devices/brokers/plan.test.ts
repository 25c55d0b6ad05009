import { describe, expect, it } from 'vitest';
import type { DesiredBrokers } from './desired.ts';
import { DEVICE_UID, broker } from '../../../test/support/broker-fixtures.ts';
import { failureBackoff, planBrokers, type BackoffPolicy, type PlanInput } from './plan.ts';
import type { ObservedBroker } from './observe.ts';

const policy: BackoffPolicy = { baseMs: 1_000, maxMs: 8_000, resetAfterMs: 60_000 };
const NOW = 1_000_000;

function desired(nodes: string[], hash = 'h1', kind: 'Pod' | 'Job' = 'Pod'): DesiredBrokers {
  return { kind, templateHash: hash, placements: nodes.map((n) => ({ node: n, name: `b-${n}` })), reason: undefined };
}

function up(node: string, overrides: Partial<ObservedBroker> = {}): ObservedBroker {
  return broker(`b-${node}`, node, { templateHash: 'h1', ...overrides });
}

function plan(input: Partial<PlanInput> & { desired: DesiredBrokers; observed: ObservedBroker[] }): ReturnType<typeof planBrokers> {
  return planBrokers({ deviceUid: DEVICE_UID, nowMs: NOW, backoff: policy, ...input });
}

const names = (items: readonly { name?: string; placement?: { name: string } }[]): string[] =>
  items.map((i) => i.name ?? i.placement!.name).sort();

describe('planBrokers', () => {
  const cases: {
    what: string;
    desired: DesiredBrokers;
    observed: ObservedBroker[];
    creates: string[];
    deletes: { name: string; reason: string }[];
    waits?: { name: string; reason: string }[];
    templateBlocked?: boolean;
  }[] = [
    { what: 'creates a broker per placement', desired: desired(['a', 'b']), observed: [], creates: ['b-a', 'b-b'], deletes: [] },
    { what: 'does nothing when the world matches', desired: desired(['a']), observed: [up('a')], creates: [], deletes: [] },
    {
      what: 'deletes brokers of nodes that no longer get one',
      desired: desired(['a']),
      observed: [up('a'), up('b')],
      creates: [],
      deletes: [{ name: 'b-b', reason: 'Unwanted' }],
    },
    {
      what: 'deletes a broker owned by an earlier Device of the same name, then waits for the name',
      desired: desired(['a']),
      observed: [up('a', { ownerUid: 'old' })],
      creates: [],
      deletes: [{ name: 'b-a', reason: 'Orphaned' }],
      waits: [{ name: 'b-a', reason: 'Replacing' }],
    },
    {
      what: 'waits while the same-named broker terminates',
      desired: desired(['a']),
      observed: [up('a', { phase: 'terminating', ownerUid: 'old' })],
      creates: [],
      deletes: [],
      waits: [{ name: 'b-a', reason: 'Terminating' }],
    },
    {
      what: 'replaces a Job by a Pod when the kind changes',
      desired: desired(['a']),
      observed: [up('a', { kind: 'Job' })],
      creates: [],
      deletes: [{ name: 'b-a', reason: 'KindChanged' }],
      waits: [{ name: 'b-a', reason: 'Replacing' }],
    },
    {
      what: 'rolls a not-ready outdated broker at once',
      desired: desired(['a', 'b'], 'h2'),
      observed: [up('a', { phase: 'pending' }), up('b', { phase: 'running' })],
      creates: [],
      deletes: [
        { name: 'b-a', reason: 'Outdated' },
        { name: 'b-b', reason: 'Outdated' },
      ],
    },
    {
      what: 'rolls ready outdated brokers one at a time',
      desired: desired(['a', 'b', 'c'], 'h2'),
      observed: [up('a'), up('b'), up('c')],
      creates: [],
      deletes: [{ name: 'b-a', reason: 'Outdated' }],
      waits: [
        { name: 'b-a', reason: 'Replacing' },
        { name: 'b-b', reason: 'RollingUpdate' },
        { name: 'b-c', reason: 'RollingUpdate' },
      ],
    },
    {
      what: 'holds the roll while another placement is not served',
      desired: desired(['a', 'b'], 'h2'),
      observed: [up('a'), up('b', { templateHash: 'h2', phase: 'pending' })],
      creates: [],
      deletes: [],
      waits: [{ name: 'b-a', reason: 'RollingUpdate' }],
    },
    {
      what: 'rolls Jobs at once',
      desired: desired(['a', 'b'], 'h2', 'Job'),
      observed: [up('a', { kind: 'Job' }), up('b', { kind: 'Job', phase: 'succeeded' })],
      creates: [],
      deletes: [
        { name: 'b-a', reason: 'Outdated' },
        { name: 'b-b', reason: 'Outdated' },
      ],
    },
    {
      what: 'leaves a failed Job alone (its backoffLimit retries)',
      desired: desired(['a'], 'h1', 'Job'),
      observed: [up('a', { kind: 'Job', phase: 'failed' })],
      creates: [],
      deletes: [],
    },
    {
      what: 'creates nothing while the template is refused',
      desired: desired(['a']),
      observed: [],
      creates: [],
      deletes: [],
      templateBlocked: true,
      waits: [{ name: 'b-a', reason: 'InvalidTemplate' }],
    },
  ];

  it.each(cases)('$what', ({ desired: want, observed, creates, deletes, waits, templateBlocked }) => {
    const result = plan({ desired: want, observed, templateBlocked });
    expect(names(result.creates)).toEqual(creates);
    expect(result.deletes.map((d) => ({ name: d.name, reason: d.reason })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(deletes);
    if (waits !== undefined)
      expect(result.waits.map((w) => ({ name: w.name, reason: w.reason })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(waits);
  });

  it('waits out the backoff of a failed broker, then recreates it with the next count', () => {
    const failed = up('a', { phase: 'failed', failedAtMs: NOW - 500, recreations: 0 });
    const early = plan({ desired: desired(['a']), observed: [failed] });
    expect(early.creates).toEqual([]);
    expect(early.deletes).toEqual([]);
    expect(early.waits).toEqual([{ name: 'b-a', reason: 'BackOff', untilMs: NOW + 500, recreation: 1 }]);
    expect(early.requeueAfterMs).toBe(500);
    expect(early.failed).toEqual([failed]);

    const due = plan({ desired: desired(['a']), observed: [{ ...failed, failedAtMs: NOW - 1_000 }] });
    expect(due.deletes.map((d) => d.reason)).toEqual(['Failed']);
    expect(due.creates).toEqual([{ placement: { node: 'a', name: 'b-a' }, recreations: 1 }]);
  });

  it('carries the recreation count to a create that follows a delete in an earlier pass', () => {
    const result = plan({ desired: desired(['a']), observed: [], carried: (n) => (n === 'b-a' ? 4 : undefined) });
    expect(result.creates).toEqual([{ placement: { node: 'a', name: 'b-a' }, recreations: 4 }]);
  });

  it('treats an exited broker Pod like a failed one', () => {
    const result = plan({ desired: desired(['a']), observed: [up('a', { phase: 'succeeded', failedAtMs: NOW - 100 })] });
    expect(result.waits[0]?.reason).toBe('BackOff');
  });
});

describe('failureBackoff', () => {
  const at = (recreations: number, startedAtMs?: number): ObservedBroker =>
    up('a', { phase: 'failed', recreations, failedAtMs: NOW, ...(startedAtMs === undefined ? {} : { startedAtMs }) });
  it.each([
    { recreations: 0, delay: 1_000 },
    { recreations: 1, delay: 2_000 },
    { recreations: 2, delay: 4_000 },
    { recreations: 3, delay: 8_000 },
    { recreations: 10, delay: 8_000 },
    { recreations: 1_000, delay: 8_000 },
  ])('recreation $recreations waits $delay ms (capped)', ({ recreations, delay }) => {
    expect(failureBackoff(at(recreations), policy, NOW)).toEqual({ dueMs: NOW + delay, next: recreations + 1 });
  });

  it('starts over after a broker ran longer than resetAfter', () => {
    expect(failureBackoff(at(5, NOW - 61_000), policy, NOW)).toEqual({ dueMs: NOW + 1_000, next: 1 });
    expect(failureBackoff(at(5, NOW - 10_000), policy, NOW)).toEqual({ dueMs: NOW + 8_000, next: 6 });
  });

  it('bounds recreations per window: never a hot loop', () => {
    // Simulate a broker that fails the instant it is created, for 60 s.
    let t = 0;
    let n = 0;
    let recreations = 0;
    while (true) {
      const { dueMs, next } = failureBackoff(up('a', { phase: 'failed', recreations: n, failedAtMs: t }), policy, t);
      if (dueMs > 60_000) break;
      t = dueMs;
      n = next;
      recreations++;
    }
    // 1 + 2 + 4 + 8 + 8·k ≤ 60 s → 4 + 5 = 9 recreations.
    expect(recreations).toBe(9);
  });
});
