/**
 * CDI on the containerd-2 node (node 2), before any DRA driver: the Tether agent (the real CLI,
 * `--cdi-kind tether.dev/device`) serves a debug-echo device to node 2's real kubelet through the
 * device-plugin API, so its Allocate answer names the device for CDI as
 * `tether.dev/device=<device>`; the kubelet passes that name to containerd in the CRI
 * `CDIDevices` field, and containerd 2 resolves it against the specs in the node's
 * `/var/run/cdi` and applies its container edits.
 *
 * The spec written here by hand sets variables the agent's Allocate does not (`CDI_SMOKE_*`), so a
 * pod printing them proves the injection came from containerd's CDI and nothing else; a device
 * whose spec is missing makes container creation fail with containerd's CDI error (a runtime that
 * ignored CDI names, like containerd 1.6, would run that pod).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deviceName, deviceResourceName } from '../../api/names.ts';
import { useTestNamespace } from '../integration/support.ts';
import { nodeLayout } from './layout.ts';
import { api, createDiscovery, createPod, devicePod, startAgent, waitPodLogLines, waitPodRunning, type AgentProcess } from './support.ts';
import { watchUntil } from './watch.ts';

const layout = nodeLayout(process.env, 2);
const CDI_KIND = 'tether.dev/device';
const DISCOVERY = 'cdi-echo';
/** A device with a CDI spec, and one without. */
const WITH_SPEC = 'cdi-1';
const WITHOUT_SPEC = 'cdi-2';
const SCRIPT = `env | grep -E '^(CDI_SMOKE_|DEBUG_ECHO_DESCRIPTION=|TETHER_DEVICES=)' | sort`;

const ns = useTestNamespace('cdi');
let agent: AgentProcess | undefined;
let specFile: string | undefined;
let devices: Record<string, string>;

const node2 = (): string => inject('e2eNode2Name');

/** The pod, pinned to node 2 (the resource exists only there anyway). */
function cdiPod(name: string, device: string): V1Pod {
  const pod = devicePod(name, deviceResourceName(device), SCRIPT);
  pod.spec!.nodeSelector = { 'kubernetes.io/hostname': node2() };
  return pod;
}

describe.skipIf(layout.runtime !== 'containerd-2')(
  'CDI on the containerd-2 node (TETHER_E2E_NODE2_RUNTIME=containerd-1.6 skips this)',
  () => {
    beforeAll(async () => {
      devices = Object.fromEntries(
        [WITH_SPEC, WITHOUT_SPEC].map((id) => [id, deviceName({ namespace: ns.name, discovery: DISCOVERY, deviceId: id, node: node2() })]),
      );
      // A CDI spec as a DRA driver would write one (kind vendor/class, one device, container edits).
      const cdiDir = layout.cdiSpecDir!;
      mkdirSync(cdiDir, { recursive: true });
      specFile = join(cdiDir, `tether.dev-e2e-smoke-${ns.name}.json`);
      const spec = {
        cdiVersion: '0.6.0',
        kind: CDI_KIND,
        devices: [
          {
            name: devices[WITH_SPEC],
            containerEdits: { env: [`CDI_SMOKE_DEVICE=${devices[WITH_SPEC]}`, 'CDI_SMOKE_FROM=containerd-cdi'] },
          },
        ],
      };
      writeFileSync(specFile, `${JSON.stringify(spec, null, 2)}\n`);
      agent = await startAgent({
        node: node2(),
        namespace: ns.name,
        devicePluginDir: layout.devicePluginDir,
        podResourcesSocket: layout.podResourcesSocket,
        logFile: join(layout.logDir, 'agent-cdi.log'),
        extraArgs: ['--cdi-kind', CDI_KIND, '--startup-timeout', '3000'],
      });
      await createDiscovery(ns.name, DISCOVERY, {
        handler: 'debug-echo',
        details: { descriptions: [WITH_SPEC, WITHOUT_SPEC] },
        capacity: 1,
      });
    });

    afterAll(async () => {
      await api()
        .core.deleteCollectionNamespacedPod({ namespace: ns.name, gracePeriodSeconds: 0 })
        .catch(() => undefined);
      await agent?.stop();
      if (specFile !== undefined) rmSync(specFile, { force: true });
    });

    it("a pod gets the variables of the device's CDI spec through containerd 2's CDI injection", async () => {
      const device = devices[WITH_SPEC]!;
      await createPod(ns.name, cdiPod('cdi-a', device));
      const pod = await waitPodRunning(ns.name, 'cdi-a', 90_000);
      expect(pod.spec?.nodeName).toBe(node2());
      // From the CDI spec (containerd), and from the Allocate answer (the kubelet) alike.
      const log = await waitPodLogLines(ns.name, 'cdi-a', [
        `CDI_SMOKE_DEVICE=${device}`,
        'CDI_SMOKE_FROM=containerd-cdi',
        `DEBUG_ECHO_DESCRIPTION=${WITH_SPEC}`,
        `TETHER_DEVICES=${device}`,
      ]);
      expect(log).not.toContain(WITHOUT_SPEC);
    });

    it('a device named for CDI without a spec fails container creation with containerd’s CDI error', async () => {
      await createPod(ns.name, cdiPod('cdi-b', devices[WITHOUT_SPEC]!));
      const pod = await watchUntil<V1Pod>(api().kc, {
        path: `/api/v1/namespaces/${ns.name}/pods`,
        fieldSelector: 'metadata.name=cdi-b',
        predicate: (p) => {
          if (p.status?.containerStatuses?.some((c) => c.state?.running !== undefined)) throw new Error('cdi-b runs without its CDI spec');
          return p.status?.containerStatuses?.some((c) => /CDI/i.test(c.state?.waiting?.message ?? '')) ?? false;
        },
        timeoutMs: 60_000,
        description: 'cdi-b waiting with a CDI error',
        describe: (p) => JSON.stringify(p.status?.containerStatuses ?? []),
      });
      const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
      expect(waiting?.reason).toBe('CreateContainerError');
      expect(waiting?.message).toContain(`${CDI_KIND}=${devices[WITHOUT_SPEC]}`);
    });
  },
);
