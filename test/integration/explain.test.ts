/**
 * `tether explain` as a user runs it (the real CLI process) against the real control plane, in
 * states users hit: a pod Pending because a device's only slot is held (capacity exhausted; the
 * scheduler's own reason), a pod asking for a device that is gone, a device gone offline under
 * a real agent, and discoveries with a missing Secret or bad details (the real agent's Warning
 * events).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { deviceName } from '../../api/names.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { builtinHandlers } from '../../discovery-handlers/registry.ts';
import { startAgentNode, type AgentNode } from './agent-node.ts';
import { api, API_VERSION, GROUP, kubeconfigPath, useTestNamespace, VERSION, waitFor } from './support.ts';

const ns = useTestNamespace('explain');
const cli = fileURLToPath(new URL('../../bin/tether.ts', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** One real agent (node edge-1) for the tests that need one, started by the first of them. */
let node: Promise<AgentNode> | undefined;
function agentNode(): Promise<AgentNode> {
  node ??= startAgentNode({
    name: 'edge-1',
    namespace: ns.name,
    handlers: builtinHandlers(),
    log: pino({ level: 'silent' }),
    startupTimeoutMs: 1_000,
  }).then((started) => {
    cleanups.push(() => started.stop());
    return started;
  });
  return node;
}

async function createDiscovery(name: string, spec: object): Promise<void> {
  await api().custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns.name,
    plural: 'devicediscoveries',
    body: { apiVersion: API_VERSION, kind: 'DeviceDiscovery', metadata: { name }, spec },
  });
}

/** Runs `explain` until its output has `expected` (the agent acts asynchronously). */
function explainUntil(target: string, expected: string, description: string): Promise<string> {
  return waitFor(
    async () => {
      const text = await explain(target);
      return text.includes(expected) ? text : undefined;
    },
    { timeoutMs: 30_000, description },
  );
}

async function explain(target: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [cli, 'explain', target, '-n', ns.name, '--kubeconfig', kubeconfigPath()],
    { timeout: 30_000 },
  );
  return stdout;
}

function viewer(name: string, resource: string): object {
  return {
    metadata: { name },
    spec: { containers: [{ name: 'main', image: 'example.com/viewer:1', resources: { limits: { [resource]: '1' } } }] },
  };
}

describe('tether explain', () => {
  it('a pod Pending on a device whose only slot is held: the device, the holder, the scheduler’s reason', async () => {
    const name = deviceName({ namespace: ns.name, discovery: 'cams', deviceId: 'cam-1' });
    await api().custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns.name,
      plural: 'devices',
      body: {
        apiVersion: API_VERSION,
        kind: 'Device',
        metadata: { name },
        spec: { discovery: 'cams', deviceId: 'cam-1', shared: true, capacity: 1, nodes: ['edge-1'], slots: { '0': 'edge-1' } },
      },
    });
    await api().core.createNamespacedPod({ namespace: ns.name, body: viewer('viewer', `tether.dev/${name}`) });
    // The scheduler's verdict is there before we ask (this cluster has no nodes: its own words).
    const verdict = await waitFor(
      async () =>
        (await api().core.readNamespacedPod({ namespace: ns.name, name: 'viewer' })).status?.conditions?.find(
          (c) => c.type === 'PodScheduled' && c.status === 'False',
        )?.message,
      { description: 'viewer unschedulable' },
    );
    const out = await explain('pod/viewer');
    expect(out).toContain(`Pod ${ns.name}/viewer is Pending.`);
    expect(out).toContain(`It asks for 1 × tether.dev/${name}: the device ${name}.`);
    expect(out).toContain('seen by edge-1; 1 of 1 slot(s) held (slot 0 by edge-1); 0 free.');
    expect(out).toContain(`The scheduler says: ${verdict}`);
  });

  it('a pod asking for a device that is gone says the device is gone', async () => {
    await api().core.createNamespacedPod({ namespace: ns.name, body: viewer('orphan', 'tether.dev/cams-ffffffffffffffff') });
    expect(await explain('pod/orphan')).toContain(`no Device or DeviceDiscovery named cams-ffffffffffffffff exists in ${ns.name}`);
  });

  it('a discovery whose Secret is missing: the real agent’s warning', async () => {
    await createDiscovery('lobby', {
      handler: 'debug-echo',
      details: { descriptions: ['lobby-cam'] },
      properties: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'lobby-login', key: 'token' } } }],
    });
    await agentNode();
    const out = await explainUntil('discovery/lobby', 'PropertiesUnresolved', 'the agent’s warning in explain');
    expect(out).toContain(`DeviceDiscovery ${ns.name}/lobby runs the debug-echo handler`);
    expect(out).toContain('It has found no device (yet).');
    expect(out).toMatch(/PropertiesUnresolved: .*lobby-login.*\(node edge-1\)/);
  });

  it('a discovery with bad details: the real agent’s rejection, with the field path', async () => {
    await createDiscovery('hallway', { handler: 'debug-echo', details: { descriptions: 'hall-cam' } });
    await agentNode();
    const out = await explainUntil('discovery/hallway', 'InvalidDetails', 'the agent’s InvalidDetails warning in explain');
    expect(out).toContain(`DeviceDiscovery ${ns.name}/hallway runs the debug-echo handler`);
    expect(out).toContain('It has found no device (yet).');
    expect(out).toMatch(/InvalidDetails: .*details\.descriptions.*\(node edge-1\)/);
    // The node's report on the DeviceDiscovery status, while the problem lasts…
    const reported = await explainUntil('discovery/hallway', 'Nodes that cannot run it:', 'the node report in explain');
    expect(reported).toMatch(/ {2}edge-1: InvalidDetails: Rejected discovery details: details\.descriptions.* \(since /);
    // …and gone once the details are fixed.
    await api().custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: ns.name,
        plural: 'devicediscoveries',
        name: 'hallway',
        body: { spec: { details: { descriptions: ['hall-cam'] } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitFor(
      async () => {
        const d = (await api().custom.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: ns.name,
          plural: 'devicediscoveries',
          name: 'hallway',
        })) as DeviceDiscovery;
        return (d.status?.nodeReports ?? []).length === 0;
      },
      { timeoutMs: 30_000, description: 'the node report removed after the fix' },
    );
  });

  it('a device that went offline under a real agent: offline within its grace period, and who wants it', async () => {
    const availabilityFile = join(mkdtempSync(join(tmpdir(), 'tether-explain-')), 'door-cam');
    writeFileSync(availabilityFile, 'ONLINE\n');
    await createDiscovery('doorbell', {
      handler: 'debug-echo',
      details: { descriptions: ['door-cam'], shared: true, availabilityFile },
      offlineGracePeriodSeconds: 600,
    });
    await agentNode();
    const name = deviceName({ namespace: ns.name, discovery: 'doorbell', deviceId: 'door-cam' });
    const online = await explainUntil(`device/${name}`, 'seen by edge-1', 'the agent’s Device in explain');
    expect(online).not.toContain('offline');
    // A new Device never sits with an empty status: the agent writes its Online entry at once.
    const nodeStates = await waitFor(
      async () =>
        (
          (await api().custom.getNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: ns.name,
            plural: 'devices',
            name,
          })) as Device
        ).status?.nodeStates,
      { description: 'the new Device’s status' },
    );
    expect(nodeStates).toEqual([expect.objectContaining({ node: 'edge-1', state: 'Online' })]);
    await api().core.createNamespacedPod({ namespace: ns.name, body: viewer('door-viewer', `tether.dev/${name}`) });

    writeFileSync(availabilityFile, 'OFFLINE\n');
    const out = await explainUntil(`device/${name}`, '(offline, within its grace period)', 'the device offline in explain');
    expect(out).toContain('seen by edge-1 (offline, within its grace period)');
    expect(out).toMatch(/door-viewer/);
  });
});
