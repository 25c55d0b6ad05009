/**
 * A stand-in DRA driver for the e2e's containerd-2 node: the smallest kubelet plugin that lets a
 * ResourceClaim run a pod there, so the node itself (kubelet plugin registration through its
 * `plugins_registry`, the scheduler's allocation, `NodePrepareResources`, containerd 2's CDI
 * injection) is proven apart from Tether's own DRA backend. Not Tether code, and not a model
 * of it: driver `e2e-stand-in.tether.dev`, one CDI spec per prepared claim, no checkpoint.
 *
 * - registration: `<plugins_registry>/<driver>-reg.sock` serving pluginregistration v1
 *   (`GetInfo` → type `DRAPlugin`, the service socket as the kubelet sees it, the DRAPlugin v1
 *   service name);
 * - service: `<plugins>/<driver>/dra.sock` serving `DRAPlugin` v1: prepare reads the claim's
 *   allocation from the apiserver (its uid must match), writes `<cdi dir>/<driver>-<claim uid>.json`
 *   with one CDI device per allocated device whose edits set `DRA_STAND_IN_DEVICE=<device>` and
 *   `DRA_STAND_IN_CLAIM=<claim>`, and answers with those CDI ids; unprepare removes the spec.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadDraProtos } from '../../proto/load.ts';
import { NODE_CDI_DIR, type NodeLayout } from './layout.ts';

/** The stand-in's DRA driver name (not Tether's `tether.dev`). */
export const STAND_IN_DRIVER = 'e2e-stand-in.tether.dev';
const CDI_KIND = `${STAND_IN_DRIVER}/device`;

interface ClaimRef {
  namespace: string;
  uid: string;
  name: string;
}

interface AllocationResult {
  request: string;
  driver: string;
  pool: string;
  device: string;
}

/** What the stand-in saw (the tests assert on it). */
export interface StandInCalls {
  prepared: string[];
  unprepared: string[];
}

export interface StandInDriver {
  readonly calls: StandInCalls;
  /** Resolves once the kubelet reported the registration (NotifyRegistrationStatus). */
  readonly registered: Promise<void>;
  stop(): Promise<void>;
}

/** Reads a ResourceClaim (`resource.k8s.io/v1`) from the apiserver. */
export type ReadClaim = (namespace: string, name: string) => Promise<unknown>;

/** A claim's allocation results for the stand-in; the claim's uid must be the one the kubelet names. */
async function allocationOf(readClaim: ReadClaim, claim: ClaimRef): Promise<AllocationResult[]> {
  const body = (await readClaim(claim.namespace, claim.name)) as {
    metadata: { uid: string };
    status?: { allocation?: { devices?: { results?: AllocationResult[] } } };
  };
  if (body.metadata.uid !== claim.uid)
    throw new Error(`claim ${claim.namespace}/${claim.name} has uid ${body.metadata.uid}, not ${claim.uid}`);
  return (body.status?.allocation?.devices?.results ?? []).filter((r) => r.driver === STAND_IN_DRIVER);
}

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

async function listen(server: Server, socket: string): Promise<void> {
  rmSync(socket, { force: true });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => (error === null ? resolve() : reject(error))),
  );
}

/** Starts the stand-in on `layout`'s node; `readClaim` reads claims. */
export async function startStandInDriver(layout: NodeLayout, readClaim: ReadClaim): Promise<StandInDriver> {
  if (layout.cdiSpecDir === undefined) throw new Error(`node ${layout.nodeName} has no CDI dir (runtime ${layout.runtime})`);
  const cdiDir = layout.cdiSpecDir;
  const protos = loadDraProtos();
  const calls: StandInCalls = { prepared: [], unprepared: [] };
  const serviceDir = join(layout.pluginsDir, STAND_IN_DRIVER);
  mkdirSync(serviceDir, { recursive: true });
  mkdirSync(layout.pluginsRegistryDir, { recursive: true });
  const specFile = (uid: string): string => join(cdiDir, `${STAND_IN_DRIVER}-${uid}.json`);

  const prepareOne = async (claim: ClaimRef): Promise<{ devices: unknown[]; error: string }> => {
    try {
      const results = await allocationOf(readClaim, claim);
      const devices = results.map((r) => ({ ...r, cdiName: `${claim.uid}-${r.device}` }));
      const spec = {
        cdiVersion: '0.6.0',
        kind: CDI_KIND,
        devices: devices.map((d) => ({
          name: d.cdiName,
          containerEdits: { env: [`DRA_STAND_IN_DEVICE=${d.device}`, `DRA_STAND_IN_CLAIM=${claim.name}`] },
        })),
      };
      writeFileSync(`${specFile(claim.uid)}.tmp`, JSON.stringify(spec));
      rmSync(specFile(claim.uid), { force: true });
      writeFileSync(specFile(claim.uid), JSON.stringify(spec));
      rmSync(`${specFile(claim.uid)}.tmp`, { force: true });
      calls.prepared.push(claim.name);
      return {
        devices: devices.map((d) => ({
          request_names: [d.request],
          pool_name: d.pool,
          device_name: d.device,
          cdi_device_ids: [`${CDI_KIND}=${d.cdiName}`],
        })),
        error: '',
      };
    } catch (error) {
      return { devices: [], error: (error as Error).message };
    }
  };

  const prepare: Unary<{ claims: ClaimRef[] }, unknown> = (call, callback) => {
    void Promise.all(call.request.claims.map(async (c) => [c.uid, await prepareOne(c)] as const)).then(
      (entries) => callback(null, { claims: Object.fromEntries(entries) }),
      (error: unknown) => callback({ code: status.INTERNAL, details: String(error) }),
    );
  };
  const unprepare: Unary<{ claims: ClaimRef[] }, unknown> = (call, callback) => {
    const claims: Record<string, { error: string }> = {};
    for (const claim of call.request.claims) {
      rmSync(specFile(claim.uid), { force: true });
      calls.unprepared.push(claim.name);
      claims[claim.uid] = { error: '' };
    }
    callback(null, { claims });
  };
  const dra = { NodePrepareResources: prepare, NodeUnprepareResources: unprepare } as UntypedServiceImplementation;
  const service = new Server();
  service.addService((protos.DRAPlugin.v1 as unknown as { service: ServiceDefinition }).service, dra);
  await listen(service, join(serviceDir, 'dra.sock'));

  let onRegistered: () => void = () => undefined;
  let onRefused: (error: Error) => void = () => undefined;
  const registered = new Promise<void>((resolve, reject) => {
    onRegistered = resolve;
    onRefused = reject;
  });
  const registration = new Server();
  const getInfo: Unary<unknown, unknown> = (_call, callback) =>
    callback(null, {
      type: 'DRAPlugin',
      name: STAND_IN_DRIVER,
      // As the kubelet sees it, in the node's mount namespace.
      endpoint: join('/var/lib/kubelet/plugins', STAND_IN_DRIVER, 'dra.sock'),
      // The kubelet (v1.37) names services `<version>.DRAPlugin` here, not by their full proto package.
      supported_versions: ['v1.DRAPlugin'],
    });
  const notify: Unary<{ plugin_registered: boolean; error: string }, unknown> = (call, callback) => {
    if (call.request.plugin_registered) onRegistered();
    else onRefused(new Error(`the kubelet refused ${STAND_IN_DRIVER}: ${call.request.error}`));
    callback(null, {});
  };
  registration.addService((protos.Registration as unknown as { service: ServiceDefinition }).service, {
    GetInfo: getInfo,
    NotifyRegistrationStatus: notify,
  });
  const registrationSocket = join(layout.pluginsRegistryDir, `${STAND_IN_DRIVER}-reg.sock`);
  await listen(registration, registrationSocket);

  return {
    calls,
    registered,
    stop: async () => {
      // The registration socket first: the kubelet unregisters the plugin when it goes.
      await new Promise<void>((resolve) => registration.tryShutdown(() => resolve()));
      rmSync(registrationSocket, { force: true });
      await new Promise<void>((resolve) => service.tryShutdown(() => resolve()));
      rmSync(join(serviceDir, 'dra.sock'), { force: true });
    },
  };
}

/** The node's CDI dir as containerd sees it (for messages). */
export const STAND_IN_CDI_DIR = NODE_CDI_DIR;
