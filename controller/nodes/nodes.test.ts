import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Device } from '../../api/schema.ts';
import { device } from '../../test/support/broker-fixtures.ts';
import { deviceMentions, nodeInfo, nodeSelected, nodesReferenced, planNodeRelease } from './nodes.ts';

const NOW = Date.parse('2026-01-01T00:10:00Z');
const GRACE = 300_000;

function node(
  ready: 'True' | 'False' | 'Unknown' | undefined,
  since = '2026-01-01T00:09:00Z',
  extra: Partial<V1Node['spec']> = {},
): V1Node {
  return {
    metadata: { name: 'n', labels: { zone: 'a', cores: '8' }, creationTimestamp: '2026-01-01T00:00:00Z' as unknown as Date },
    spec: { ...extra },
    status: ready === undefined ? {} : { conditions: [{ type: 'Ready', status: ready, lastTransitionTime: since as unknown as Date }] },
  };
}

describe('nodeInfo', () => {
  it.each([
    { what: 'Ready', n: node('True'), health: 'Ready' },
    { what: 'NotReady within the grace period', n: node('False'), health: 'NotReady', lostAtMs: Date.parse('2026-01-01T00:14:00Z') },
    { what: 'Unknown within the grace period', n: node('Unknown'), health: 'NotReady' },
    { what: 'NotReady beyond the grace period', n: node('False', '2026-01-01T00:04:59Z'), health: 'Lost' },
    { what: 'no Ready condition since creation (10 min ago)', n: node(undefined), health: 'Lost' },
    { what: 'deleted (absent from the cache)', n: undefined, health: 'Lost' },
  ])('$what → $health', ({ n, health, lostAtMs }) => {
    const info = nodeInfo('n', n, NOW, GRACE);
    expect(info.health).toBe(health);
    if (lostAtMs !== undefined) expect(info.lostAtMs).toBe(lostAtMs);
  });

  it('reports cordoned nodes as unschedulable', () => {
    expect(nodeInfo('n', node('True', undefined, { unschedulable: true }), NOW, GRACE).schedulable).toBe(false);
  });
});

describe('nodeSelected', () => {
  const info = nodeInfo('edge-1', { ...node('True'), metadata: { name: 'edge-1', labels: { zone: 'a', cores: '8' } } }, NOW, GRACE);
  it.each([
    { what: 'no selector', selector: undefined, selected: true },
    {
      what: 'In',
      selector: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In' as const, values: ['a', 'b'] }] }] },
      selected: true,
    },
    {
      what: 'NotIn',
      selector: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'NotIn' as const, values: ['a'] }] }] },
      selected: false,
    },
    {
      what: 'Exists',
      selector: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'Exists' as const }] }] },
      selected: true,
    },
    {
      what: 'DoesNotExist',
      selector: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' as const }] }] },
      selected: true,
    },
    {
      what: 'Gt',
      selector: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'cores', operator: 'Gt' as const, values: ['4'] }] }] },
      selected: true,
    },
    {
      what: 'Lt',
      selector: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'cores', operator: 'Lt' as const, values: ['4'] }] }] },
      selected: false,
    },
    {
      what: 'matchFields on the name',
      selector: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In' as const, values: ['edge-1'] }] }] },
      selected: true,
    },
    {
      what: 'terms are ORed',
      selector: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'zone', operator: 'In' as const, values: ['x'] }] },
          { matchExpressions: [{ key: 'zone', operator: 'In' as const, values: ['a'] }] },
        ],
      },
      selected: true,
    },
    { what: 'an empty term selects nothing', selector: { nodeSelectorTerms: [{}] }, selected: false },
  ])('$what', ({ selector, selected }) => {
    expect(nodeSelected(selector, info)).toBe(selected);
  });
});

/** A Device as the apiserver returns it after agents applied: managedFields included. */
function applied(): Device {
  const d = device(['a', 'b'], 3, { properties: { P: 'v' }, slots: { '0': 'a', '1': 'b' } });
  d.status = {
    nodeStates: [
      { node: 'a', state: 'Online' },
      { node: 'b', state: 'Online' },
    ],
  };
  const identity = { 'f:capacity': {}, 'f:deviceId': {}, 'f:discovery': {}, 'f:properties': { 'f:P': {} }, 'f:shared': {} };
  d.metadata.managedFields = [
    { manager: 'tether-agent/a', operation: 'Apply', fieldsV1: { 'f:spec': { ...identity, 'f:nodes': { 'v:"a"': {} } } } },
    { manager: 'tether-agent/b', operation: 'Apply', fieldsV1: { 'f:spec': { ...identity, 'f:nodes': { 'v:"b"': {} } } } },
    { manager: 'tether-agent/a/slots', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:slots': { 'f:0': {} } } } },
    { manager: 'tether-agent/b/slots', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:slots': { 'f:1': {} } } } },
    {
      manager: 'tether-agent/a',
      operation: 'Apply',
      subresource: 'status',
      fieldsV1: { 'f:status': { 'f:nodeStates': { 'k:{"node":"a"}': {} } } },
    },
    { manager: 'tether-controller', operation: 'Apply', subresource: 'status', fieldsV1: { 'f:status': { 'f:conditions': {} } } },
  ];
  return d;
}

describe('planNodeRelease', () => {
  it('releases slots, the nodes entry and the nodeStates entry under the node’s own managers; co-owned identity is left out', () => {
    const applies = planNodeRelease(applied(), 'a');
    expect(applies.map((a) => [a.fieldManager, a.subresource ?? ''])).toEqual([
      ['tether-agent/a/slots', ''],
      ['tether-agent/a', ''],
      ['tether-agent/a', 'status'],
    ]);
    for (const a of applies) {
      expect(a.body).toEqual({
        apiVersion: 'tether.dev/v1alpha1',
        kind: 'Device',
        metadata: { name: 'cams-0123456789abcdef', namespace: 'ns' },
      });
    }
  });

  it('re-applies identity fields only the lost node owns (else the apiserver would drop required fields)', () => {
    const d = applied();
    d.metadata.managedFields = d.metadata.managedFields!.filter((e) => e.manager !== 'tether-agent/b');
    const main = planNodeRelease(d, 'a').find((a) => a.fieldManager === 'tether-agent/a' && a.subresource === undefined);
    expect(main?.body.spec).toEqual({ discovery: 'cams', deviceId: 'urn:1', shared: true, capacity: 3, properties: { P: 'v' } });
  });

  it('applies nothing for managers that do not exist', () => {
    expect(planNodeRelease(applied(), 'zzz')).toEqual([]);
    // b has no status manager entry.
    expect(planNodeRelease(applied(), 'b').map((a) => a.fieldManager)).toEqual(['tether-agent/b/slots', 'tether-agent/b']);
  });

  it('finds every node a Device mentions', () => {
    const d = applied();
    d.spec.slots = { '2': 'c' };
    d.status = { nodeStates: [{ node: 'd', state: 'Offline' }] };
    expect(nodesReferenced(d)).toEqual(['a', 'b', 'c', 'd']);
    expect(deviceMentions(d, 'c')).toBe(true);
    expect(deviceMentions(d, 'e')).toBe(false);
  });
});
