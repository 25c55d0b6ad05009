/**
 * Dynamic Resource Allocation on the containerd-2 node (node 2; docs/e2e.md).
 *
 * 1. The node itself, with a stand-in driver (dra-driver.ts, driver `e2e-stand-in.tether.dev`,
 *    not Tether's code): it registers through the node's `plugins_registry`; a hand-written
 *    ResourceSlice and DeviceClass; ResourceClaims allocated by the real scheduler, prepared by
 *    the real kubelet through `NodePrepareResources`, injected by containerd 2's CDI: each pod
 *    prints the variables of its claim's CDI spec. Figures: ResourceClaim created → pod Running,
 *    p50/p99 (printed, no timed assertions); pods deleted → every claim unprepared.
 * 2. Tether's DRA backend (`spec.backend: DRA`), installed by the chart on node 2 — skipped
 *    until it lands; each `it.skip` names what it waits for. None of them may be turned on by
 *    making the test weaker: each must fail while its feature is missing.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { useTestNamespace } from '../integration/support.ts';
import { startStandInDriver, STAND_IN_DRIVER, type StandInDriver } from './dra-driver.ts';
import { BUSYBOX_IMAGE, nodeLayout } from './layout.ts';
import { api, deletePod, waitFor, waitPodLogLines, waitPodRunning } from './support.ts';

const layout = nodeLayout(process.env, 2);
const node2 = (): string => inject('e2eNode2Name');
const RESOURCE = { group: 'resource.k8s.io', version: 'v1' } as const;
/** Claims run one after another (each pod Running before the next claim): the latency figures. */
const CLAIMS = 6;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** A busybox pod using ResourceClaim `claim` (as `dev`), printing what the stand-in's CDI spec sets. */
function claimPod(name: string, claim: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { 'tether.dev/e2e': 'true' } },
    spec: {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      nodeSelector: { 'kubernetes.io/hostname': node2() },
      resourceClaims: [{ name: 'dev', resourceClaimName: claim }],
      containers: [
        {
          name: 'main',
          image: BUSYBOX_IMAGE,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', `trap 'exit 0' TERM; env | grep -E '^DRA_STAND_IN_' | sort; sleep 3600 & wait`],
          resources: { claims: [{ name: 'dev' }] },
        },
      ],
    },
  };
}

describe.skipIf(layout.runtime !== 'containerd-2')(
  'DRA on the containerd-2 node (TETHER_E2E_NODE2_RUNTIME=containerd-1.6 skips this)',
  () => {
    describe('the node runs ResourceClaims (stand-in driver, hand-written slice)', () => {
      const ns = useTestNamespace('dra-node');
      const className = 'e2e-stand-in';
      let sliceName: string;
      let driver: StandInDriver | undefined;
      const pods: string[] = [];

      beforeAll(async () => {
        sliceName = `e2e-stand-in-${node2()}`;
        driver = await startStandInDriver(layout, (namespace, name) =>
          api().custom.getNamespacedCustomObject({ ...RESOURCE, namespace, plural: 'resourceclaims', name }),
        );
        const { custom } = api();
        await custom.createClusterCustomObject({
          ...RESOURCE,
          plural: 'deviceclasses',
          body: {
            apiVersion: 'resource.k8s.io/v1',
            kind: 'DeviceClass',
            metadata: { name: className },
            spec: { selectors: [{ cel: { expression: `device.driver == "${STAND_IN_DRIVER}"` } }] },
          },
        });
        await custom.createClusterCustomObject({
          ...RESOURCE,
          plural: 'resourceslices',
          body: {
            apiVersion: 'resource.k8s.io/v1',
            kind: 'ResourceSlice',
            metadata: { name: sliceName },
            spec: {
              driver: STAND_IN_DRIVER,
              nodeName: node2(),
              pool: { name: node2(), generation: 1, resourceSliceCount: 1 },
              devices: Array.from({ length: CLAIMS }, (_, i) => ({ name: `dev-${i}`, attributes: { index: { int: i } } })),
            },
          },
        });
      });

      afterAll(async () => {
        // Pods first (the kubelet unprepares their claims through the driver), then the driver.
        for (const pod of pods) await deletePod(ns.name, pod).catch(() => undefined);
        const { custom } = api();
        await custom.deleteClusterCustomObject({ ...RESOURCE, plural: 'resourceslices', name: sliceName }).catch(() => undefined);
        await custom.deleteClusterCustomObject({ ...RESOURCE, plural: 'deviceclasses', name: className }).catch(() => undefined);
        await driver?.stop();
      });

      it("registers with node 2's kubelet through its plugins_registry", async () => {
        // The kubelet's NotifyRegistrationStatus: a refusal rejects at once with the kubelet's reason.
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${STAND_IN_DRIVER}: no registration status from the kubelet in 30 s`)), 30_000);
        });
        await Promise.race([driver!.registered, timeout]).finally(() => clearTimeout(timer));
      });

      it('pods with ResourceClaims run with the env of their CDI specs (ResourceClaim created → pod Running figures)', async () => {
        const { custom, core } = api();
        const latencies: number[] = [];
        const devices = new Set<string>();
        for (let i = 0; i < CLAIMS; i++) {
          const claim = `claim-${i}`;
          const pod = `dra-pod-${i}`;
          const created = Date.now();
          await custom.createNamespacedCustomObject({
            ...RESOURCE,
            namespace: ns.name,
            plural: 'resourceclaims',
            body: {
              apiVersion: 'resource.k8s.io/v1',
              kind: 'ResourceClaim',
              metadata: { name: claim },
              spec: { devices: { requests: [{ name: 'dev', exactly: { deviceClassName: className } }] } },
            },
          });
          await core.createNamespacedPod({ namespace: ns.name, body: claimPod(pod, claim) });
          pods.push(pod);
          const running = await waitPodRunning(ns.name, pod, 60_000);
          latencies.push(Date.now() - created);
          expect(running.spec?.nodeName).toBe(node2());
          const log = await waitPodLogLines(ns.name, pod, [`DRA_STAND_IN_CLAIM=${claim}`]);
          const device = /^DRA_STAND_IN_DEVICE=(dev-\d+)$/m.exec(log)?.[1];
          expect(device, `pod ${pod} log:\n${log}`).toBeDefined();
          devices.add(device!);
        }
        // One device per claim: the scheduler allocated distinct devices of the slice.
        expect(devices.size).toBe(CLAIMS);
        expect(driver!.calls.prepared.sort()).toEqual(Array.from({ length: CLAIMS }, (_, i) => `claim-${i}`).sort());
        const sorted = [...latencies].sort((a, b) => a - b);
        process.stderr.write(
          `[dra] stand-in driver: ResourceClaim created → pod Running on ${node2()}, ${CLAIMS} claims: ` +
            `p50 ${percentile(sorted, 50)} ms, p99 ${percentile(sorted, 99)} ms (all: ${latencies.join(', ')} ms)\n`,
        );
      });

      it('deleting the pods unprepares every claim', async () => {
        for (const pod of pods.splice(0)) await deletePod(ns.name, pod);
        await waitFor(() => (driver!.calls.unprepared.length >= CLAIMS ? true : undefined), {
          timeoutMs: 30_000,
          description: `${CLAIMS} claims unprepared`,
        });
        expect([...new Set(driver!.calls.unprepared)].sort()).toEqual(Array.from({ length: CLAIMS }, (_, i) => `claim-${i}`).sort());
      });
    });

    describe("Tether's DRA backend (spec.backend: DRA), installed by the chart", () => {
      // Waiting for: the agent's --dra kubelet plugin (agent/dra/: registration, NodePrepareResources
      // writing a CDI spec with the device-plugin env scheme) and the chart value that passes --dra.
      it.skip('a debug-echo DRA discovery: a pod with a ResourceClaim (template) runs with DEBUG_ECHO_DESCRIPTION / TETHER_DEVICES; figures', () => {
        // Not yet written against code: it needs agent/dra/ (missing at this commit).
      });
      // Waiting for: the controller's DeviceClass per DRA discovery with extendedResourceName
      // tether.dev/<discovery> (KEP-5004), and the agent's ResourceSlices for the discovery's pool.
      it.skip('a pod requesting only the extended resource tether.dev/<discovery> is served through DRA', () => {
        // Not yet written against code: no DeviceClass is created by the controller at this commit.
      });
      // Waiting for: consumable capacity in the agent's ResourceSlices (allowMultipleAllocations +
      // capacity), so N claims share one device.
      it.skip('capacity: N claims share one device; the N+1th pod stays Pending', () => {
        // Not yet written against code: the ResourceSlice publisher is missing at this commit.
      });
      // Waiting for: device taints from the agent (NoExecute with spec.dra.evictOnOffline) and
      // their removal when the device is back.
      it.skip('device offline → NoExecute taint → the pod is evicted; back online → taint removed', () => {
        // Not yet written against code: device taints are missing at this commit.
      });
      // Waiting for: the kubelet plugin's checkpoint of prepared claims.
      it.skip('agent restart: prepared claims intact (no unprepare/re-prepare), pods keep running, no slice churn', () => {
        // Not yet written against code: agent/dra/ is missing at this commit.
      });
    });
  },
);
