import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { observeJob, observePod } from './observe.ts';

type Json = Record<string, unknown>;
const pod = (status: Json, meta: Json = {}): V1Pod => ({
  metadata: {
    name: 'p',
    uid: 'u',
    labels: { 'tether.dev/template-hash': 'h' },
    annotations: { 'tether.dev/node': 'n', 'tether.dev/recreations': '3' },
    ownerReferences: [{ apiVersion: 'tether.dev/v1alpha1', kind: 'Device', name: 'd', uid: 'dev', controller: true }],
    ...meta,
  },
  status,
});

describe('observePod', () => {
  it.each([
    {
      what: 'unscheduled',
      status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes' }] },
      phase: 'pending',
      reason: 'Unschedulable: 0/3 nodes',
    },
    { what: 'running, not ready', status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] }, phase: 'running' },
    { what: 'ready', status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }, phase: 'ready' },
    {
      what: 'refused at admission',
      status: { phase: 'Failed', reason: 'UnexpectedAdmissionError', message: 'no device' },
      phase: 'failed',
      reason: 'UnexpectedAdmissionError: no device',
    },
    {
      what: 'crashed',
      status: {
        phase: 'Failed',
        containerStatuses: [{ name: 'c', state: { terminated: { exitCode: 2, reason: 'Error', finishedAt: '2026-01-01T00:00:05Z' } } }],
      },
      phase: 'failed',
      reason: 'container exited with code 2 (Error)',
      failedAtMs: Date.parse('2026-01-01T00:00:05Z'),
    },
    { what: 'exited', status: { phase: 'Succeeded' }, phase: 'succeeded' },
  ])('$what → $phase', ({ status, phase, reason, failedAtMs }) => {
    const b = observePod(pod(status), 42);
    // failedAtMs: the later of the container finish time and the first-seen time (42).
    expect(b.phase).toBe(phase);
    expect(b).toMatchObject({ kind: 'Pod', name: 'p', node: 'n', templateHash: 'h', ownerUid: 'dev', recreations: 3 });
    if (reason !== undefined) expect(b.reason).toBe(reason);
    if (phase === 'failed' || phase === 'succeeded') expect(b.failedAtMs).toBe(Math.max(failedAtMs ?? 0, 42));
    else expect(b.failedAtMs).toBeUndefined();
  });

  it('a pod being deleted is terminating whatever its phase', () => {
    expect(observePod(pod({ phase: 'Failed' }, { deletionTimestamp: '2026-01-01T00:00:00Z' })).phase).toBe('terminating');
  });

  it('reads a missing or bad recreation count as 0', () => {
    expect(observePod(pod({}, { annotations: { 'tether.dev/recreations': 'x' } })).recreations).toBe(0);
  });
});

describe('observeJob', () => {
  const job = (status: Json): V1Job => ({ metadata: { name: 'j', uid: 'u' }, status });
  it.each([
    { status: {}, phase: 'pending' },
    { status: { active: 1 }, phase: 'running' },
    { status: { active: 1, ready: 1 }, phase: 'ready' },
    { status: { conditions: [{ type: 'Complete', status: 'True' }] }, phase: 'succeeded' },
    { status: { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] }, phase: 'failed' },
  ])('$phase', ({ status, phase }) => {
    expect(observeJob(job(status)).phase).toBe(phase);
  });
});
