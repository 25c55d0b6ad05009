/**
 * The cluster-wide extended resource `tether.dev/<name>` on the real apiserver, with a controller
 * that watches every namespace (no `--namespace`), under exactly its RBAC rules: of DRA
 * DeviceDiscoveries of one name in two namespaces, only the oldest one's DeviceClass carries
 * `extendedResourceName`; the younger one's goes without it and gets an
 * `ExtendedResourceNameTaken` Warning Event; once the holder goes, the next oldest takes the name
 * over — and an older discovery that switches to DRA takes it from a younger holder.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceClassName } from '../../api/dra-attributes.ts';
import type { DeviceDiscovery } from '../../api/schema.ts';
import type { DeviceClass } from '../../controller/dra/objects.ts';
import { DEFAULT_CONFIG } from '../../controller/runtime/config.ts';
import { startController, type Controller } from '../../controller/main.ts';
import { KubeClient, isApiError, type KubeObject } from '../../kube/client.ts';
import { Api, RESOURCES } from '../../kube/resources.ts';
import { controllerServiceAccount } from '../support/fake-cluster.ts';
import { API_VERSION, createNamespace, deleteNamespace, loadKubeConfig, uniqueSuffix, waitFor } from './support.ts';

const log = pino({ level: process.env['TETHER_TEST_LOG'] ?? 'silent' });
const suffix = uniqueSuffix();
// The older discovery's namespace sorts LAST: the name must go by age, not by the tie-break.
const olderNamespace = `it-erh-b-${suffix}`;
const youngerNamespace = `it-erh-a-${suffix}`;

let admin: Api;
let controller: Controller | undefined;
let cleanupRbac: () => Promise<void> = () => Promise.resolve();
/** Discovery names the tests used (their DeviceClasses are cluster-scoped: deleted in afterAll). */
const names: string[] = [];

beforeAll(async () => {
  const kc = loadKubeConfig();
  admin = new Api(new KubeClient(kc));
  await createNamespace(olderNamespace);
  await createNamespace(youngerNamespace);
  const account = await controllerServiceAccount(kc, admin, olderNamespace, `tether-controller-erh-${suffix}`);
  cleanupRbac = account.cleanup;
  // No namespace: the controller watches all of them, as a cluster-wide install does.
  // statusBatchMs far beyond the tests: the reconcile that follows each status write (and any
  // Node or Device change) never comes, so a discovery's class changes only if the change of
  // its same-named peer triggers it — not because some other reconcile happened to run later.
  controller = await startController(
    { ...DEFAULT_CONFIG, namespace: undefined, httpHost: '127.0.0.1', httpPort: 0, statusBatchMs: 600_000 },
    { kubeConfig: account.kubeConfig, log },
  );
  await waitFor(() => controller?.isReady(), { description: 'controller caches synced' });
});

afterAll(async () => {
  await controller?.stop();
  for (const namespace of [olderNamespace, youngerNamespace]) {
    for (const name of names) {
      await admin?.delete(RESOURCES.deviceClasses, undefined, deviceClassName(namespace, name)).catch(() => undefined);
    }
    await deleteNamespace(namespace);
  }
  await cleanupRbac();
});

/** A discovery name no other test (or rerun) uses: its DeviceClasses and extended resource are cluster-wide. */
function freshName(): string {
  const name = `erh-${uniqueSuffix()}`;
  names.push(name);
  return name;
}

async function createDiscovery(namespace: string, name: string, backend: 'DRA' | 'DevicePlugin' = 'DRA'): Promise<DeviceDiscovery> {
  const body = {
    apiVersion: API_VERSION,
    kind: 'DeviceDiscovery',
    metadata: { name, namespace },
    spec: { handler: 'debug-echo', backend },
  };
  return admin.create<DeviceDiscovery & KubeObject>(RESOURCES.deviceDiscoveries, namespace, body as DeviceDiscovery & KubeObject);
}

/**
 * Creates the younger discovery in a later second than `older`: creationTimestamp has whole
 * seconds, and within one the namespace tie-break (not age) would decide.
 */
async function createYounger(older: DeviceDiscovery, name: string): Promise<void> {
  await waitFor(() => Date.now() >= createdMs(older) + 1_000, { description: 'a later second than the older discovery' });
  const younger = await createDiscovery(youngerNamespace, name);
  expect(createdMs(younger)).toBeGreaterThan(createdMs(older));
}

async function deviceClass(namespace: string, name: string): Promise<DeviceClass | undefined> {
  try {
    return await admin.get<DeviceClass & KubeObject>(RESOURCES.deviceClasses, undefined, deviceClassName(namespace, name));
  } catch (error) {
    if (isApiError(error, 404)) return undefined;
    throw error;
  }
}

/** Waits until the DeviceClass of `namespace/name` exists and carries `tether.dev/<name>`. */
async function holding(namespace: string, name: string, what: string): Promise<void> {
  await waitFor(async () => (await deviceClass(namespace, name))?.spec.extendedResourceName === `tether.dev/${name}`, {
    description: `DeviceClass of ${namespace}/${name} with tether.dev/${name} (${what})`,
  });
}

interface EventRecord {
  type?: string;
  reason?: string;
  note?: string;
  regarding?: { kind?: string; namespace?: string; name?: string };
}

async function nameTakenEvent(namespace: string, name: string): Promise<EventRecord | undefined> {
  const list = await admin.list<EventRecord & KubeObject>(RESOURCES.events, { namespace });
  return list.items.find(
    (e) =>
      e.reason === 'ExtendedResourceNameTaken' &&
      e.regarding?.kind === 'DeviceDiscovery' &&
      e.regarding.namespace === namespace &&
      e.regarding.name === name,
  );
}

/** Creation time in ms (the client hands the apiserver's RFC 3339 string through as is). */
function createdMs(discovery: DeviceDiscovery): number {
  return new Date(discovery.metadata.creationTimestamp as Date | string).getTime();
}

describe('extended resource names of same-named DRA discoveries, controller watching all namespaces', () => {
  it('gives tether.dev/<name> to the oldest discovery only, warns the younger one, and hands it over when the oldest goes', async () => {
    const name = freshName();
    const older = await createDiscovery(olderNamespace, name);
    await holding(olderNamespace, name, 'the only one');

    await createYounger(older, name);
    const youngerClass = await waitFor(() => deviceClass(youngerNamespace, name), {
      description: `DeviceClass of ${youngerNamespace}/${name}`,
    });
    expect(youngerClass.spec.selectors).toHaveLength(1);
    expect(youngerClass.spec.extendedResourceName).toBeUndefined();
    const warning = await waitFor(() => nameTakenEvent(youngerNamespace, name), {
      description: `ExtendedResourceNameTaken Event about ${youngerNamespace}/${name}`,
    });
    expect(warning.type).toBe('Warning');
    expect(warning.note).toContain(`${olderNamespace}/${name}`);
    // Still one holder: the older discovery's class keeps the name, the younger's stays without.
    expect((await deviceClass(olderNamespace, name))?.spec.extendedResourceName).toBe(`tether.dev/${name}`);
    expect((await deviceClass(youngerNamespace, name))?.spec.extendedResourceName).toBeUndefined();
    expect(await nameTakenEvent(olderNamespace, name)).toBeUndefined();

    await admin.delete(RESOURCES.deviceDiscoveries, olderNamespace, name);
    await holding(youngerNamespace, name, 'taken over once the older discovery is deleted');
    await waitFor(async () => (await deviceClass(olderNamespace, name)) === undefined, {
      description: `DeviceClass of ${olderNamespace}/${name} swept`,
    });
  });

  it('an older discovery that switches to DRA takes tether.dev/<name> from the younger holder', async () => {
    const name = freshName();
    const older = await createDiscovery(olderNamespace, name, 'DevicePlugin');
    await createYounger(older, name);
    await holding(youngerNamespace, name, 'the only DRA one');

    const backend = {
      apiVersion: API_VERSION,
      kind: 'DeviceDiscovery',
      metadata: { name, namespace: olderNamespace },
      spec: { backend: 'DRA' },
    };
    await admin.apply(RESOURCES.deviceDiscoveries, backend, { fieldManager: 'test-backend', force: true });
    await holding(olderNamespace, name, 'the older one, now DRA');
    await waitFor(
      async () => {
        const youngerClass = await deviceClass(youngerNamespace, name);
        return youngerClass !== undefined && youngerClass.spec.extendedResourceName === undefined;
      },
      {
        description: `DeviceClass of ${youngerNamespace}/${name} without tether.dev/${name}`,
      },
    );
    expect(await waitFor(() => nameTakenEvent(youngerNamespace, name), { description: 'ExtendedResourceNameTaken Event' })).toMatchObject({
      type: 'Warning',
    });
  });
});
