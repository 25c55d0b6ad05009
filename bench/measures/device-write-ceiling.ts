/**
 * The apiserver's own ceiling for Device objects on this machine (#15), with no agent: N
 * Devices written straight to the real control plane, 32 requests in flight (the agent's
 * publisher limit), three ways:
 *   - POST create, the cheapest first write there is;
 *   - server-side apply of the identity (what the agent's first write is);
 *   - server-side apply of the status entry (its second).
 * Reports writes per second and the time 10 000 Devices would take at that rate, so the
 * agent's figure for 10 000 Device objects can be read against what the apiserver allows.
 *
 *   npm run bench -- device-write-ceiling     TETHER_BENCH_CEILING_DEVICES (default 2000)
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { API_VERSION } from '../../api/group.ts';
import { DISCOVERY_LABEL } from '../../api/labels.ts';
import { deviceName } from '../../api/names.ts';
import { nodeStateApply } from '../../agent/publish/device-object.ts';
import { KubeClient } from '../../kube/client.ts';
import { KubeConfig as TetherKubeConfig } from '../../kube/kubeconfig.ts';
import { clusterUp } from '../../test/cluster/cluster.ts';
import { summarize, type Measure, type Measurement } from '../harness.ts';
import { quietApiserver } from './device-plugin-modes.ts';

const IN_FLIGHT = 32;

/** Device i of discovery `discovery` ('created' or 'applied'), named as the agent names it. */
function name(namespace: string, discovery: string, i: number): string {
  return deviceName({ namespace, discovery, deviceId: `device-${i}`, node: 'ceiling-node' });
}

function device(namespace: string, i: number, discovery: string): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata: { name: name(namespace, discovery, i), namespace, labels: { [DISCOVERY_LABEL]: discovery } },
    spec: {
      discovery,
      deviceId: `device-${i}`,
      shared: false,
      capacity: 2,
      properties: { DEBUG_ECHO_DESCRIPTION: `device-${i}` },
      nodes: ['ceiling-node'],
    },
  };
}

/** Runs write(i) for i < n with IN_FLIGHT at once; returns writes per second. */
async function rate(n: number, write: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) await write(next++);
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

async function ceiling(): Promise<Measurement[]> {
  const n = Number(process.env['TETHER_BENCH_CEILING_DEVICES'] ?? 2_000);
  const info = await clusterUp({ log: (m) => process.stderr.write(`${m}\n`) });
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  await quietApiserver(core);
  const namespace = `bench-ceiling-${Date.now().toString(36)}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const tkc = new TetherKubeConfig();
  tkc.loadFromFile(info.kubeconfig);
  const client = new KubeClient(tkc);
  const base = `/apis/tether.dev/v1alpha1/namespaces/${namespace}/devices`;
  const apply = { contentType: 'application/apply-patch+yaml', query: { fieldManager: 'tether-agent/ceiling-node', force: true } };
  try {
    const create = await rate(n, (i) =>
      client.request('POST', base, { body: device(namespace, i, 'created'), verb: 'create', resource: 'devices' }),
    );
    const identity = await rate(n, (i) =>
      client.request('PATCH', `${base}/${name(namespace, 'applied', i)}`, {
        body: device(namespace, i, 'applied'),
        ...apply,
        verb: 'apply',
        resource: 'devices',
      }),
    );
    const status = await rate(n, (i) =>
      client.request('PATCH', `${base}/${name(namespace, 'applied', i)}/status`, {
        body: nodeStateApply(name(namespace, 'applied', i), namespace, 'ceiling-node', 'Online', new Date()),
        ...apply,
        verb: 'apply',
        resource: 'devices/status',
      }),
    );
    const tenThousand = (perDevice: number): number => Number((10_000 / perDevice).toFixed(1));
    const both = 1 / (1 / identity + 1 / status);
    return [
      summarize(`device-write-ceiling: POST create, ${n} Devices, ${IN_FLIGHT} in flight`, 'writes/s', [create], 0),
      summarize('device-write-ceiling: server-side apply, identity', 'writes/s', [identity], 0),
      summarize('device-write-ceiling: server-side apply, status', 'writes/s', [status], 0),
      summarize('device-write-ceiling: 10 000 Devices at the create rate (one write each)', 's', [tenThousand(create)], 1),
      summarize("device-write-ceiling: 10 000 Devices at the agent's two applies each", 's', [tenThousand(both)], 1),
    ];
  } finally {
    await client.request('DELETE', base, { verb: 'delete', resource: 'devices' }).catch(() => undefined);
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    client.close();
  }
}

export const deviceWriteCeilingMeasures: Measure[] = [
  {
    name: 'device-write-ceiling',
    description: "the apiserver's own rate for Device writes here (create, identity apply, status apply), no agent",
    onlyWhenNamed: true,
    run: ceiling,
  },
];
