import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { brokerName } from '../../../api/labels.ts';
import { brokerObject, brokerPodSpec, desiredBrokers, templateHash } from './desired.ts';
import { DEVICE, DEVICE_UID, broker, device, discovery, nodes } from '../../../test/support/broker-fixtures.ts';

describe('desiredBrokers placement', () => {
  const cases: {
    what: string;
    seeing: string[];
    capacity: number;
    health?: Parameters<typeof nodes>[0];
    existing?: ReturnType<typeof broker>[];
    count: number;
    reason?: string;
    mustInclude?: string[];
    mustExclude?: string[];
  }[] = [
    { what: 'one broker per node that sees the device', seeing: ['a', 'b'], capacity: 2, count: 2, mustInclude: ['a', 'b'] },
    { what: 'never more brokers than capacity', seeing: ['a', 'b', 'c', 'd'], capacity: 2, count: 2, reason: 'CapacityReached' },
    { what: 'capacity larger than nodes: one per node', seeing: ['a'], capacity: 8, count: 1 },
    { what: 'no nodes: no brokers', seeing: [], capacity: 2, count: 0, reason: 'NoNodes' },
    {
      what: 'NotReady nodes get no new broker',
      seeing: ['a', 'b'],
      capacity: 2,
      health: { b: 'NotReady' },
      count: 1,
      mustExclude: ['b'],
      reason: 'NoEligibleNode',
    },
    { what: 'cordoned nodes get no new broker', seeing: ['a', 'b'], capacity: 2, health: { a: 'Cordoned' }, count: 1, mustExclude: ['a'] },
    { what: 'lost nodes get none', seeing: ['a', 'b'], capacity: 2, health: { a: 'Lost', b: 'Lost' }, count: 0, reason: 'NoEligibleNode' },
    {
      what: 'an existing broker on a NotReady node keeps its place',
      seeing: ['a', 'b'],
      capacity: 1,
      health: { a: 'NotReady' },
      existing: [broker(brokerName(DEVICE, 'a'), 'a')],
      count: 1,
      mustInclude: ['a'],
    },
    {
      what: 'an existing broker on a lost node loses its place',
      seeing: ['a', 'b'],
      capacity: 1,
      health: { a: 'Lost' },
      existing: [broker(brokerName(DEVICE, 'a'), 'a')],
      count: 1,
      mustInclude: ['b'],
    },
    {
      what: 'an existing broker keeps its place over a new node (stable placement)',
      seeing: ['a', 'b', 'c'],
      capacity: 1,
      existing: [broker(brokerName(DEVICE, 'c'), 'c')],
      count: 1,
      mustInclude: ['c'],
    },
    {
      what: 'a broker of another Device uid (same name) does not hold a place',
      seeing: ['a', 'b', 'c'],
      capacity: 3,
      existing: [broker(brokerName(DEVICE, 'c'), 'c', { ownerUid: 'old' })],
      count: 3,
    },
    { what: 'duplicate node entries count once', seeing: ['a', 'a'], capacity: 2, count: 1 },
  ];

  it.each(cases)('$what', ({ seeing, capacity, health, existing, count, reason, mustInclude, mustExclude }) => {
    const desired = desiredBrokers(device(seeing, capacity), discovery(), nodes(health), existing ?? []);
    expect(desired.placements).toHaveLength(count);
    const placed = desired.placements.map((p) => p.node);
    for (const n of mustInclude ?? []) expect(placed).toContain(n);
    for (const n of mustExclude ?? []) expect(placed).not.toContain(n);
    if (reason !== undefined) expect(desired.reason).toBe(reason);
    for (const p of desired.placements) expect(p.name.length).toBeLessThanOrEqual(63);
  });

  it('a new broker goes to the node holding the device’s slot (elsewhere that slot is Unhealthy)', () => {
    for (const holder of ['a', 'b', 'c']) {
      const desired = desiredBrokers(device(['a', 'b', 'c'], 1, { slots: { '0': holder } }), discovery(), nodes(), []);
      expect(desired.placements.map((p) => p.node)).toEqual([holder]);
    }
  });

  it('has no brokers without a template or a discovery', () => {
    expect(desiredBrokers(device(['a']), discovery({ broker: undefined }), nodes(), []).reason).toBe('NoBrokerTemplate');
    expect(desiredBrokers(device(['a']), undefined, nodes(), []).reason).toBe('DiscoveryNotFound');
  });

  it('names brokers deterministically, <device>-<node hash>', () => {
    const first = desiredBrokers(device(['a', 'b']), discovery(), nodes(), []);
    const again = desiredBrokers(device(['b', 'a']), discovery(), nodes(), []);
    expect(again.placements).toEqual(first.placements);
    expect(first.placements.map((p) => p.name).sort()).toEqual([brokerName(DEVICE, 'a'), brokerName(DEVICE, 'b')].sort());
    expect(brokerName(DEVICE, 'a')).toMatch(new RegExp(`^${DEVICE}-[0-9a-f]{10}$`));
    expect(brokerName(`${'d'.repeat(40)}-0123456789abcdef`, 'a')).toHaveLength(63);
  });

  it('spreads capacity-limited brokers of many devices over their nodes', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const d = device(['a', 'b', 'c', 'd'], 1);
      d.metadata.name = `cams-${i.toString(16).padStart(16, '0')}`;
      const [p] = desiredBrokers(d, discovery(), nodes(), []).placements;
      counts.set(p!.node, (counts.get(p!.node) ?? 0) + 1);
    }
    expect(counts.size).toBe(4);
    for (const n of counts.values()) expect(n).toBeGreaterThan(20);
  });

  it('changes the template hash only when the broker template changes', () => {
    const base = templateHash(discovery());
    expect(templateHash(discovery({ capacity: 7 }))).toBe(base);
    expect(templateHash(discovery({ broker: { pod: { spec: { containers: [{ name: 'broker', image: 'b:2' }] } } } }))).not.toBe(base);
  });
});

describe('broker objects', () => {
  it('a Pod broker: owner, labels, node pin, one slot of the device resource', () => {
    const d = device(['node-a']);
    const hash = templateHash(discovery())!;
    const pod = brokerObject({
      device: d,
      discovery: discovery(),
      placement: { node: 'node-a', name: 'x' },
      templateHash: hash,
      recreations: 2,
    }) as V1Pod;
    expect(pod.kind).toBe('Pod');
    expect(pod.metadata?.ownerReferences).toEqual([
      { apiVersion: 'tether.dev/v1alpha1', kind: 'Device', name: DEVICE, uid: DEVICE_UID, controller: true },
    ]);
    expect(pod.metadata?.labels).toMatchObject({
      'tether.dev/discovery': 'cams',
      'tether.dev/device': DEVICE,
      'tether.dev/node': 'node-a',
      'tether.dev/component': 'broker',
      'tether.dev/template-hash': hash,
      'app.kubernetes.io/managed-by': 'tether-controller',
    });
    expect(pod.metadata?.annotations).toMatchObject({ 'tether.dev/node': 'node-a', 'tether.dev/recreations': '2' });
    const container = pod.spec!.containers[0]!;
    expect(container.resources?.limits).toEqual({ [`tether.dev/${DEVICE}`]: '1' });
    expect(container.resources?.requests).toEqual({ [`tether.dev/${DEVICE}`]: '1' });
    expect(pod.spec?.nodeName).toBeUndefined();
    expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-a'] }] },
    ]);
  });

  it('ANDs the pin into every node-affinity term of the template and keeps other resources', () => {
    const spec = brokerPodSpec(
      {
        containers: [
          { name: 'c', image: 'i', resources: { limits: { cpu: '1' } } },
          { name: 'side', image: 'i' },
        ],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: 'zone', operator: 'In', values: ['x'] }] },
                { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['other'] }] },
              ],
            },
          },
        },
      },
      device(['n']),
      'n',
    );
    const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    expect(terms).toEqual([
      {
        matchExpressions: [{ key: 'zone', operator: 'In', values: ['x'] }],
        matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n'] }],
      },
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n'] }] },
    ]);
    expect(spec.containers[0]?.resources?.limits).toEqual({ cpu: '1', [`tether.dev/${DEVICE}`]: '1' });
    expect(spec.containers[1]?.resources).toBeUndefined();
  });

  it('a Job broker carries the labels and the pin on its pod template', () => {
    const disc = discovery({
      broker: {
        job: { spec: { backoffLimit: 2, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'j', image: 'i' }] } } } },
      },
    });
    const job = brokerObject({
      device: device(['n']),
      discovery: disc,
      placement: { node: 'n', name: 'j1' },
      templateHash: 'h',
      recreations: 0,
    }) as V1Job;
    expect(job.kind).toBe('Job');
    expect(job.spec?.backoffLimit).toBe(2);
    expect(job.spec?.template.metadata?.labels).toMatchObject({ 'tether.dev/device': DEVICE, 'tether.dev/component': 'broker' });
    expect(job.spec?.template.spec?.containers[0]?.resources?.limits).toEqual({ [`tether.dev/${DEVICE}`]: '1' });
    expect(job.metadata?.annotations?.['tether.dev/recreations']).toBeUndefined();
  });

  it('omits the node label when the node name cannot be a label value', () => {
    const long = `n${'x'.repeat(70)}.example.com`;
    const pod = brokerObject({
      device: device([long]),
      discovery: discovery(),
      placement: { node: long, name: 'x' },
      templateHash: 'h',
      recreations: 0,
    });
    expect(pod.metadata?.labels?.['tether.dev/node']).toBeUndefined();
    expect(pod.metadata?.annotations?.['tether.dev/node']).toBe(long);
  });
});
