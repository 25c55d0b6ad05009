import { describe, expect, it } from 'vitest';
import type { PodResources } from '../../proto/types.ts';
import { planLedgerReconcile } from './reconcile.ts';

const pod = (name: string, resource: string, ids: string[]): PodResources => ({
  name,
  namespace: 'default',
  containers: [{ name: 'main', devices: [{ resource_name: resource, device_ids: ids }], cpu_ids: [], memory: [], dynamic_resources: [] }],
});

const base = {
  node: 'n1',
  isOwnResource: (r: string) => r.startsWith('tether.dev/'),
  missingSince: new Map<string, number>(),
  now: 10_000,
  graceMs: 5_000,
};

describe('planLedgerReconcile', () => {
  it('keeps slots a pod holds', () => {
    const plan = planLedgerReconcile({
      ...base,
      held: [['cams-0000000000000001-0', { node: 'n1', resource: 'tether.dev/cams' }]],
      pods: [pod('p', 'tether.dev/cams', ['cams-0000000000000001-0'])],
    });
    expect(plan).toEqual({ free: [], adopt: [], restore: [], missingSince: new Map() });
  });

  it('frees a slot only after it has been missing for the grace period', () => {
    const held = [['s-0000000000000001-0', { node: 'n1', resource: 'tether.dev/s' }]] as const;
    const first = planLedgerReconcile({ ...base, held, pods: [] });
    expect(first.free).toEqual([]);
    expect(first.missingSince.get('s-0000000000000001-0')).toBe(10_000);
    const later = planLedgerReconcile({ ...base, held, pods: [], missingSince: first.missingSince, now: 15_000 });
    expect(later.free).toEqual(['s-0000000000000001-0']);
  });

  it('forgets the missing mark when the pod shows up', () => {
    const held = [['s-0000000000000001-0', { node: 'n1', resource: 'tether.dev/s' }]] as const;
    const plan = planLedgerReconcile({
      ...base,
      held,
      pods: [pod('p', 'tether.dev/s', ['s-0000000000000001-0'])],
      missingSince: new Map([['s-0000000000000001-0', 1]]),
    });
    expect(plan.missingSince.size).toBe(0);
    expect(plan.free).toEqual([]);
  });

  it('adopts slots the kubelet holds that the ledger lacks, ignoring other plugins', () => {
    const plan = planLedgerReconcile({
      ...base,
      held: [],
      pods: [pod('p', 'tether.dev/s-0000000000000001', ['s-0000000000000001-1']), pod('q', 'nvidia.com/gpu', ['GPU-1'])],
    });
    expect(plan.adopt).toEqual([{ slot: 's-0000000000000001-1', resource: 'tether.dev/s-0000000000000001' }]);
  });

  it('never frees slots held by other nodes', () => {
    const plan = planLedgerReconcile({
      ...base,
      held: [['s-0000000000000001-0', { node: 'n2', resource: 'tether.dev/s' }]],
      pods: [],
      graceMs: 0,
    });
    expect(plan.free).toEqual([]);
  });
});

describe('planLedgerReconcile after a restart', () => {
  it('fills in the resource of a slot restored from the Device without one', () => {
    const plan = planLedgerReconcile({
      ...base,
      held: [['s-0000000000000001-0', { node: 'n1', resource: '' }]],
      pods: [pod('p', 'tether.dev/s', ['s-0000000000000001-0'])],
    });
    expect(plan.adopt).toEqual([{ slot: 's-0000000000000001-0', resource: 'tether.dev/s' }]);
  });
});

describe('planLedgerReconcile after the cluster released this node (node loss)', () => {
  const held = [
    ['s-0000000000000001-0', { node: 'n1', resource: 'tether.dev/s' }],
    ['s-0000000000000001-1', { node: 'n1', resource: 'tether.dev/s' }],
  ] as const;
  const pods = [pod('p', 'tether.dev/s', ['s-0000000000000001-0', 's-0000000000000001-1'])];

  it('restores the slots in use that the cluster no longer records, and only those', () => {
    const plan = planLedgerReconcile({ ...base, held, pods, isUnrecorded: (slot) => slot.endsWith('-1') });
    expect(plan.restore).toEqual(['s-0000000000000001-1']);
    expect(plan.adopt).toEqual([]);
  });

  it('restores nothing a pod no longer uses (that slot is freed instead)', () => {
    const plan = planLedgerReconcile({ ...base, held, pods: [], graceMs: 0, isUnrecorded: () => true });
    expect(plan.restore).toEqual([]);
    expect(plan.free).toEqual(['s-0000000000000001-0', 's-0000000000000001-1']);
  });
});
