/**
 * `tether explain` as a user runs it (the real CLI process) against the real control plane, in
 * states users hit: a pod Pending because a device's only slot is held (the scheduler's own
 * reason), a pod asking for a device that is gone, and a discovery whose Secret is missing (the
 * real agent's Warning event).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { deviceName } from '../../api/names.ts';
import { builtinHandlers } from '../../discovery-handlers/registry.ts';
import { startAgentNode } from './agent-node.ts';
import { api, API_VERSION, GROUP, kubeconfigPath, useTestNamespace, VERSION, waitFor } from './support.ts';

const ns = useTestNamespace('explain');
const cli = fileURLToPath(new URL('../../bin/tether.ts', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function explain(target: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'explain', target, '-n', ns.name, '--kubeconfig', kubeconfigPath()], { timeout: 30_000 });
  return stdout;
}

function viewer(name: string, resource: string): object {
  return { metadata: { name }, spec: { containers: [{ name: 'main', image: 'example.com/viewer:1', resources: { limits: { [resource]: '1' } } }] } };
}

describe('tether explain', () => {
  it('a pod Pending on a device whose only slot is held: the device, the holder, the scheduler’s reason', async () => {
    const name = deviceName({ namespace: ns.name, discovery: 'cams', deviceId: 'cam-1' });
    await api().custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns.name,
      plural: 'devices',
      body: { apiVersion: API_VERSION, kind: 'Device', metadata: { name }, spec: { discovery: 'cams', deviceId: 'cam-1', shared: true, capacity: 1, nodes: ['edge-1'], slots: { '0': 'edge-1' } } },
    });
    await api().core.createNamespacedPod({ namespace: ns.name, body: viewer('viewer', `tether.dev/${name}`) });
    // The scheduler's verdict is there before we ask (this cluster has no nodes: its own words).
    const verdict = await waitFor(
      async () => (await api().core.readNamespacedPod({ namespace: ns.name, name: 'viewer' })).status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')?.message,
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
    await api().custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns.name,
      plural: 'devicediscoveries',
      body: {
        apiVersion: API_VERSION,
        kind: 'DeviceDiscovery',
        metadata: { name: 'lobby' },
        spec: { handler: 'debug-echo', details: { descriptions: ['lobby-cam'] }, properties: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'lobby-login', key: 'token' } } }] },
      },
    });
    const node = await startAgentNode({ name: 'edge-1', namespace: ns.name, handlers: builtinHandlers(), log: pino({ level: 'silent' }), startupTimeoutMs: 1_000 });
    cleanups.push(() => node.stop());
    const out = await waitFor(
      async () => {
        const text = await explain('discovery/lobby');
        return text.includes('PropertiesUnresolved') ? text : undefined;
      },
      { timeoutMs: 30_000, description: 'the agent’s warning in explain' },
    );
    expect(out).toContain(`DeviceDiscovery ${ns.name}/lobby runs the debug-echo handler`);
    expect(out).toContain('It has found no device (yet).');
    expect(out).toMatch(/PropertiesUnresolved: .*lobby-login.*\(node edge-1\)/);
  });
});
