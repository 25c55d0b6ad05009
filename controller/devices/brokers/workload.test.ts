import { describe, expect, it } from 'vitest';
import type { V1Deployment, V1PodTemplateSpec } from '@kubernetes/client-node';
import { brokerName } from '../../../api/labels.ts';
import { deviceName, deviceResourceName } from '../../../api/names.ts';
import { MAX_STATEFULSET_DISCOVERY_NAME_LENGTH, type WorkloadBroker } from '../../../api/schema.ts';
import { DEVICE, DEVICE_UID, broker, device, discovery, nodes } from '../../../test/support/broker-fixtures.ts';
import { brokerObject, desiredBrokers, templateHash } from './desired.ts';
import { planBrokers } from './plan.ts';
import { InjectionError, effectiveInject, parsePointer, workloadKindKey, type WorkloadObject } from './workload.ts';
import { observeWorkload } from './workload-status.ts';

const RESOURCE = deviceResourceName(DEVICE);
const container = { name: 'broker', image: 'b:1' };
const deployment: WorkloadBroker = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { labels: { team: 'edge' } },
  spec: { template: { metadata: { labels: { app: 'b' } }, spec: { containers: [container], runtimeClassName: 'wasmtime' } } },
};
const spinApp: WorkloadBroker = {
  apiVersion: 'core.spinkube.dev/v1alpha1',
  kind: 'SpinApp',
  spec: { image: 'ghcr.io/x/app:1', executor: 'containerd-shim-spin', replicas: 1 },
  inject: {
    resources: ['/spec/resources/limits'],
    nodeSelector: ['/spec/deploymentConfig/nodeSelector'],
    env: ['/spec/variables'],
  },
};

function build(workload: WorkloadBroker, backend?: 'DRA'): WorkloadObject {
  const d = discovery({ broker: { workload }, ...(backend === undefined ? {} : { backend }) });
  return brokerObject({
    device: device(['n1']),
    discovery: d,
    placement: { node: 'n1', name: brokerName(DEVICE, 'n1') },
    templateHash: templateHash(d)!,
    recreations: 0,
    hostname: 'n1.example',
  }) as WorkloadObject;
}

describe('workload kinds', () => {
  it.each([
    ['apps/v1', 'Deployment', 'Deployment.apps'],
    ['core.spinkube.dev/v1alpha1', 'SpinApp', 'SpinApp.core.spinkube.dev'],
    ['v1', 'ReplicationController', 'ReplicationController'],
  ])('%s %s is planned as %s', (apiVersion, kind, key) => {
    expect(workloadKindKey(apiVersion, kind)).toBe(key);
  });

  it('desiredBrokers names the kind, so a change of kind replaces the brokers', () => {
    const d = discovery({ broker: { workload: deployment } });
    expect(desiredBrokers(device(['n1']), d, nodes(), []).kind).toBe('Deployment.apps');
  });

  it('Deployments and StatefulSets inject into /spec/template by default; other kinds nowhere', () => {
    expect(effectiveInject(deployment).podTemplates).toEqual(['/spec/template']);
    expect(effectiveInject({ ...deployment, kind: 'StatefulSet' }).podTemplates).toEqual(['/spec/template']);
    expect(effectiveInject(spinApp).podTemplates).toEqual([]);
  });
});

describe('StatefulSet broker names', () => {
  it.each([
    [MAX_STATEFULSET_DISCOVERY_NAME_LENGTH, true],
    [MAX_STATEFULSET_DISCOVERY_NAME_LENGTH + 1, false],
  ])('a %i-character discovery name gives broker names a StatefulSet can have (≤ 52): %s', (length, fits) => {
    const discoveryName = 'd'.repeat(length);
    const name = brokerName(deviceName({ namespace: 'ns', discovery: discoveryName, deviceId: 'x' }), 'node-with-a-long-name');
    expect(name.length <= 52).toBe(fits);
  });
});

describe('parsePointer', () => {
  it.each([
    ['/spec/resources/limits', ['resources', 'limits']],
    ['/spec/a~1b/c~0d', ['a/b', 'c~d']],
    ['/spec/containers/0/env', ['containers', '0', 'env']],
  ])('%s', (pointer, tokens) => {
    expect(parsePointer(pointer, 'f')).toEqual(tokens);
  });

  it.each(['/status/x', 'spec/x', '/spec', '/spec//x', '/spec/a~2'])('refuses %s with the field path', (pointer) => {
    expect(() => parsePointer(pointer, 'spec.broker.workload.inject.resources[0]')).toThrow(
      /^spec\.broker\.workload\.inject\.resources\[0\]: .* is not a JSON pointer into \/spec/,
    );
  });
});

describe('workloadObject', () => {
  it('a Deployment: broker labels and owner, the device and the pin in its pod template, a stable selector, Recreate', () => {
    const object = build(deployment) as unknown as V1Deployment;
    expect(object.apiVersion).toBe('apps/v1');
    expect(object.kind).toBe('Deployment');
    expect(object.metadata?.name).toBe(brokerName(DEVICE, 'n1'));
    expect(object.metadata?.labels).toMatchObject({ team: 'edge', 'tether.dev/device': DEVICE, 'tether.dev/node': 'n1' });
    expect(object.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'Device', uid: DEVICE_UID, controller: true })]);
    const template = object.spec!.template;
    expect(template.metadata?.labels).toMatchObject({ app: 'b', 'tether.dev/device': DEVICE, 'tether.dev/component': 'broker' });
    expect(template.metadata?.annotations).toEqual({ 'tether.dev/node': 'n1' });
    expect(template.spec?.runtimeClassName).toBe('wasmtime');
    expect(template.spec?.containers[0]?.resources?.limits).toEqual({ [RESOURCE]: '1' });
    expect(template.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] },
    ]);
    // The selector holds no template hash (a selector is immutable; the hash changes on rollouts).
    expect(object.spec?.selector).toEqual({
      matchLabels: {
        'app.kubernetes.io/managed-by': 'tether-controller',
        'tether.dev/component': 'broker',
        'tether.dev/device': DEVICE,
        'tether.dev/node': 'n1',
      },
    });
    expect(object.spec?.strategy).toEqual({ type: 'Recreate' });
  });

  it("keeps the template's own selector and strategy", () => {
    const own = {
      ...deployment,
      spec: { ...deployment.spec, selector: { matchLabels: { app: 'b' } }, strategy: { type: 'RollingUpdate' } },
    };
    const object = build(own) as unknown as V1Deployment;
    expect(object.spec?.selector).toEqual({ matchLabels: { app: 'b' } });
    expect(object.spec?.strategy).toEqual({ type: 'RollingUpdate' });
  });

  it('a DRA discovery: the claim goes into the pod template, not the extended resource', () => {
    const template = (build(deployment, 'DRA') as unknown as V1Deployment).spec!.template;
    expect(template.spec?.resourceClaims).toEqual([{ name: 'tether-device', resourceClaimTemplateName: expect.any(String) }]);
    expect(template.spec?.containers[0]?.resources?.limits).toBeUndefined();
  });

  it('a custom kind: resources, node selector and env where inject says, creating missing objects', () => {
    const object = build(spinApp);
    expect(object.apiVersion).toBe('core.spinkube.dev/v1alpha1');
    expect(object.spec).toEqual({
      image: 'ghcr.io/x/app:1',
      executor: 'containerd-shim-spin',
      replicas: 1,
      resources: { limits: { [RESOURCE]: '1' } },
      deploymentConfig: { nodeSelector: { 'kubernetes.io/hostname': 'n1.example' } },
      variables: [
        { name: 'TETHER_DEVICE', value: DEVICE },
        { name: 'TETHER_DISCOVERY', value: 'cams' },
        { name: 'TETHER_NODE', value: 'n1' },
      ],
    });
    // The template itself is untouched.
    expect(spinApp.spec).not.toHaveProperty('resources');
  });

  it('keeps what the lists and maps hold, replacing same-named env vars', () => {
    const withValues = {
      ...spinApp,
      spec: {
        ...spinApp.spec,
        resources: { limits: { cpu: '1' } },
        variables: [
          { name: 'A', value: 'a' },
          { name: 'TETHER_NODE', value: 'x' },
        ],
      },
    };
    const spec = build(withValues).spec!;
    expect(spec.resources).toEqual({ limits: { cpu: '1', [RESOURCE]: '1' } });
    expect((spec.variables as { name: string }[]).map((v) => v.name)).toEqual(['A', 'TETHER_DEVICE', 'TETHER_DISCOVERY', 'TETHER_NODE']);
  });

  it('a pod template at a custom path, entering lists by index', () => {
    const custom: WorkloadBroker = {
      apiVersion: 'example.com/v1',
      kind: 'Thing',
      spec: { workers: [{ pod: { spec: { containers: [container] } } }] },
      inject: { podTemplates: ['/spec/workers/0/pod'] },
    };
    const pod = (build(custom).spec!.workers as { pod: V1PodTemplateSpec }[])[0]!.pod;
    expect(pod.spec?.containers[0]?.resources?.limits).toEqual({ [RESOURCE]: '1' });
    expect(pod.metadata?.labels?.['tether.dev/device']).toBe(DEVICE);
  });

  it.each<[string, WorkloadBroker, RegExp]>([
    [
      'a list index that does not exist',
      { ...spinApp, inject: { resources: ['/spec/containers/0/resources/limits'] }, spec: { containers: [] } },
      /^spec\.broker\.workload\.inject\.resources\[0\]: \/spec\/containers\/0\/resources\/limits: \/spec\/containers has no element 0$/,
    ],
    [
      'a string on the way',
      { ...spinApp, inject: { resources: ['/spec/image/limits'] } },
      /inject\.resources\[0\]: \/spec\/image\/limits: \/spec\/image is a string, not an object or a list$/,
    ],
    [
      'a resource list that is a list',
      { ...spinApp, inject: { resources: ['/spec/r'] }, spec: { r: [] } },
      /inject\.resources\[0\]: \/spec\/r is a list, not a resource list$/,
    ],
    [
      'no pod template where one is said to be',
      { ...deployment, spec: { replicas: 1 } },
      /inject\.podTemplates\[0\]: \/spec\/template: the spec has no pod template there$/,
    ],
    [
      'env that is not a list',
      { ...spinApp, inject: { resources: ['/spec/r'], env: ['/spec/image'] } },
      /inject\.env\[0\]: \/spec\/image is a string, not a list$/,
    ],
  ])('refuses %s, naming the field and the pointer', (_what, workload, message) => {
    expect(() => build(workload)).toThrow(InjectionError);
    expect(() => build(workload)).toThrow(message);
  });

  it('refuses a DRA discovery whose custom kind has no pod template to carry the claim', () => {
    expect(() => build(spinApp, 'DRA')).toThrow(/^spec\.broker\.workload\.inject: a DRA discovery .* set inject\.podTemplates$/);
  });
});

describe('observeWorkload (kind-aware readiness)', () => {
  const meta = (generation = 2): WorkloadObject['metadata'] => ({
    name: 'b',
    uid: 'u',
    generation,
    labels: { 'tether.dev/template-hash': 'h' },
    annotations: { 'tether.dev/node': 'n1' },
    ownerReferences: [{ apiVersion: 'tether.dev/v1alpha1', kind: 'Device', name: DEVICE, uid: DEVICE_UID, controller: true }],
  });
  const deploy = (status: Record<string, unknown> | undefined, replicas?: number): WorkloadObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(),
    spec: replicas === undefined ? {} : { replicas },
    ...(status === undefined ? {} : { status }),
  });
  const sts = (status: Record<string, unknown>): WorkloadObject => ({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta(),
    spec: {},
    status,
  });
  const custom = (status: Record<string, unknown> | undefined, generation = 2): WorkloadObject => ({
    apiVersion: 'core.spinkube.dev/v1alpha1',
    kind: 'SpinApp',
    metadata: meta(generation),
    spec: {},
    ...(status === undefined ? {} : { status }),
  });
  const ok = (type: string, status = 'True', extra = {}): Record<string, unknown> => ({ type, status, ...extra });

  it.each<[string, WorkloadObject, string]>([
    ['Deployment without status', deploy(undefined), 'pending'],
    [
      'Deployment whose generation is not observed yet',
      deploy({ observedGeneration: 1, updatedReplicas: 1, availableReplicas: 1 }),
      'pending',
    ],
    ['Deployment available and updated', deploy({ observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 }), 'ready'],
    [
      'Deployment with a pod not available yet',
      deploy({ observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 0 }),
      'running',
    ],
    [
      'Deployment short of its 2 replicas',
      deploy({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 }, 2),
      'running',
    ],
    [
      'Deployment past its progress deadline',
      deploy({ observedGeneration: 2, replicas: 1, conditions: [ok('Progressing', 'False', { reason: 'ProgressDeadlineExceeded' })] }),
      'failed',
    ],
    [
      'StatefulSet ready on the current revision',
      sts({ observedGeneration: 2, readyReplicas: 1, updatedReplicas: 1, currentRevision: 'r2', updateRevision: 'r2' }),
      'ready',
    ],
    [
      'StatefulSet mid-roll',
      sts({ observedGeneration: 2, replicas: 1, readyReplicas: 1, updatedReplicas: 1, currentRevision: 'r1', updateRevision: 'r2' }),
      'running',
    ],
    ['custom kind without conditions', custom(undefined), 'pending'],
    ['custom kind Ready=True', custom({ conditions: [ok('Ready')] }), 'ready'],
    ['custom kind Ready=False', custom({ conditions: [ok('Ready', 'False', { reason: 'Starting' })] }), 'running'],
    ['custom kind Ready=True for an older generation', custom({ observedGeneration: 1, conditions: [ok('Ready')] }), 'running'],
    [
      'anything being deleted',
      { ...custom({ conditions: [ok('Ready')] }), metadata: { ...meta(), deletionTimestamp: '2026-01-01T00:00:00Z' } },
      'terminating',
    ],
  ])('%s → %s', (_what, object, phase) => {
    const observed = observeWorkload(object, 'X.example');
    expect(observed.phase).toBe(phase);
    expect(observed).toMatchObject({ kind: 'X.example', name: 'b', node: 'n1', templateHash: 'h', ownerUid: DEVICE_UID });
  });

  it('a not-ready custom kind carries its Ready reason and message for status', () => {
    const observed = observeWorkload(custom({ conditions: [ok('Ready', 'False', { reason: 'Pulling', message: 'pulling image' })] }), 'K');
    expect(observed.reason).toBe('Pulling: pulling image');
  });
});

describe('planBrokers with workloads', () => {
  const policy = { baseMs: 1000, maxMs: 8000, resetAfterMs: 60_000 };
  const kind = 'Deployment.apps';
  const desired = (names: string[]) => ({
    kind,
    templateHash: 'new',
    placements: names.map((n) => ({ node: n, name: `b-${n}` })),
    reason: undefined,
  });
  const plan = (names: string[], observed: ReturnType<typeof broker>[]) =>
    planBrokers({ desired: desired(names), observed, deviceUid: DEVICE_UID, nowMs: 100_000, backoff: policy });

  it('re-applies an outdated workload in place instead of deleting it', () => {
    const p = plan(['a'], [broker('b-a', 'a', { kind, templateHash: 'old', phase: 'ready' })]);
    expect(p.deletes).toEqual([]);
    expect(p.updates).toEqual([{ placement: { node: 'a', name: 'b-a' }, recreations: 0 }]);
  });

  it('rolls available workloads one at a time', () => {
    const p = plan(
      ['a', 'b'],
      [
        broker('b-a', 'a', { kind, templateHash: 'old', phase: 'ready' }),
        broker('b-b', 'b', { kind, templateHash: 'old', phase: 'ready' }),
      ],
    );
    expect(p.updates.map((u) => u.placement.name)).toEqual(['b-a']);
    expect(p.waits).toEqual([{ name: 'b-b', reason: 'RollingUpdate' }]);
  });

  it('never recreates a failed workload (its own controller restarts its pods), and reports it', () => {
    const p = plan(['a'], [broker('b-a', 'a', { kind, templateHash: 'new', phase: 'failed', reason: 'ProgressDeadlineExceeded' })]);
    expect(p.deletes).toEqual([]);
    expect(p.creates).toEqual([]);
    expect(p.failed.map((b) => b.name)).toEqual(['b-a']);
  });

  it('replaces brokers of another kind (Pod → Deployment)', () => {
    const p = plan(['a'], [broker('b-a', 'a', { kind: 'Pod', templateHash: 'old', phase: 'ready' })]);
    expect(p.deletes).toEqual([expect.objectContaining({ kind: 'Pod', name: 'b-a', reason: 'KindChanged' })]);
  });
});
