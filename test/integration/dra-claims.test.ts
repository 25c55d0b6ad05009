/**
 * The DRA kubelet plugin's driver reading real ResourceClaims: a claim allocated to a Tether
 * device (status written as the scheduler would) is prepared from the apiserver's answer with the
 * agent's own client; a claim that does not exist fails only itself.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { draDevicePool } from '../../api/dra-names.ts';
import { deviceName } from '../../api/names.ts';
import type { ServedDevice } from '../../agent/device.ts';
import { kubeClaimReader } from '../../agent/dra/backend.ts';
import type { CdiSpec } from '../../agent/dra/cdi-spec.ts';
import { DraDriver } from '../../agent/dra/driver.ts';
import { KubeClient, objectPath, type KubeObject } from '../../kube/client.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { loadKubeConfig, useTestNamespace } from './support.ts';

const ns = useTestNamespace('it-dra-claims');
const admin = new Api(new KubeClient(loadKubeConfig()));
const NODE = 'dra-claims-node';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'it-dra-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it('prepares a real allocated ResourceClaim and refuses a missing one per claim', async () => {
  const device: ServedDevice = {
    name: deviceName({ namespace: ns.name, discovery: 'cams', deviceId: 'cam-1', node: NODE }),
    namespace: ns.name,
    discovery: 'cams',
    deviceId: 'cam-1',
    shared: false,
    capacity: 1,
    online: true,
    properties: { 'onvif.ip': '10.0.0.9' },
    mounts: [],
    deviceNodes: [],
  };
  const pool = draDevicePool(device, NODE);
  const claim = await admin.create<KubeObject>(RESOURCES.resourceClaims, ns.name, {
    metadata: { name: 'cam' },
    spec: { devices: { requests: [{ name: 'cam', exactly: { deviceClassName: 'tether-cams' } }] } },
  } as KubeObject);
  const uid = claim.metadata?.uid ?? '';
  const results = [{ request: 'cam', driver: 'tether.dev', pool, device: device.name }];
  await admin.client.request('PUT', objectPath(RESOURCES.resourceClaims, ns.name, 'cam', 'status'), {
    verb: 'update',
    resource: 'resourceclaims/status',
    body: { ...claim, status: { allocation: { devices: { results } } } },
  });

  const driver = new DraDriver({
    cdiDir: join(dir, 'cdi'),
    stateDir: join(dir, 'state'),
    claims: kubeClaimReader(admin),
    log: pino({ level: 'silent' }),
  });
  await driver.start();
  driver.setDevices([device]);
  const response = await driver.prepare([
    { namespace: ns.name, name: 'cam', uid },
    { namespace: ns.name, name: 'absent', uid: 'f00d' },
  ]);
  expect(response.claims[uid]).toEqual({
    error: '',
    devices: [
      { request_names: ['cam'], pool_name: pool, device_name: device.name, cdi_device_ids: [`tether.dev/device=${uid}-${device.name}`] },
    ],
  });
  expect(response.claims['f00d']?.error).toMatch(/reading ResourceClaim .*\/absent/);
  const spec = JSON.parse(await readFile(join(dir, 'cdi', `tether.dev-${uid}.json`), 'utf8')) as CdiSpec;
  expect(spec.containerEdits?.env).toContain('ONVIF_IP=10.0.0.9');
});
