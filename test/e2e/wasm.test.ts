/**
 * WebAssembly pods on the e2e's containerd 1.6 node (node 1) through Tether's own wasmtime shim
 * (deploy/wasm-shim): containerd runs `containerd-shim-wasmtime-v1` for the `wasmtime` runtime
 * handler, and the RuntimeClass `wasmtime` (deploy/examples/runtimeclass-wasmtime.yaml) selects it.
 *
 * The pod's image holds nothing but `/wasm-broker.wasm` (the sample broker, a wasm32-wasip2
 * component; deploy/image/wasm-image.ts): runc could not start it, so a Running pod that prints and
 * serves its env is the shim's doing. The env is what Tether's device plugin would give a broker
 * of one MQTT device (agent/allocation/env.ts), plus a variable the broker must leave out.
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { isApiError, useTestNamespace, waitFor } from '../integration/support.ts';
import { nodeLayout } from './layout.ts';
import type { V1Pod } from '@kubernetes/client-node';
import { api, deletePod, podLog, waitPodLogLines, waitPodRunning } from './support.ts';
import { watchUntil } from './watch.ts';
import { ensureWasmRuntime, importWasmBrokerImage, wasmBrokerPod, waitPodReady, wasmRuntimeProblem, wasmShimProcesses } from './wasm.ts';

const layout = nodeLayout();
const ns = useTestNamespace('wasm');
const POD = 'wasm-broker';
const P1_POD = 'wasm-broker-p1';
const PORT = 8080;
/** Far above the deletion wait below, so a SIGTERM the guest ignores fails the test. */
const TERMINATION_GRACE_S = 600;
/** A device name as Tether makes them: its last 16 hex digits are the env suffix. */
const DEVICE = 'mqtt-home-assistant-0123456789abcdef';
const SUFFIX = '0123456789ABCDEF';
const ENV = {
  TETHER_DEVICES: DEVICE,
  [`HA_NAME_${SUFFIX}`]: 'livingroom',
  HA_NAME: 'livingroom',
  [`HA_SENSOR_TEMPERATURE_STATE_TOPIC_${SUFFIX}`]: 'livingroom/sensor/temperature/state',
  HA_SENSOR_TEMPERATURE_STATE_TOPIC: 'livingroom/sensor/temperature/state',
  MQTT_BROKER_URL: 'mqtt://10.250.90.1:1883',
  NOT_A_DEVICE_PROPERTY: 'must not be served',
};
/** What the broker prints and serves: the device's variables, sorted. */
const EXPECTED = Object.keys(ENV)
  .filter((key) => key !== 'NOT_A_DEVICE_PROPERTY')
  .sort()
  .map((key) => `${key}=${ENV[key as keyof typeof ENV]}`);

describe('Wasm pods on the containerd 1.6 node (RuntimeClass wasmtime)', () => {
  let podIp: string;

  beforeAll(async () => {
    const problem = wasmRuntimeProblem(layout);
    if (problem !== undefined) throw new Error(`node 1 cannot run Wasm pods: ${problem}`);
    const image = await ensureWasmRuntime(layout);
    process.stderr.write(
      `[wasm] image ${image.name} ${image.manifestDigest.slice(0, 19)} (${image.kind}, ${image.imported ? 'imported' : 'already imported'})\n`,
    );
  });

  it('reaches Running, logs the device env and serves it over HTTP from the pod network', async () => {
    const started = Date.now();
    const body = wasmBrokerPod(POD, { node: inject('e2eNodeName'), env: ENV, port: PORT });
    // A long grace period: only a guest that ends on SIGTERM lets the deletion below finish in time.
    body.spec!.terminationGracePeriodSeconds = TERMINATION_GRACE_S;
    await api().core.createNamespacedPod({ namespace: ns.name, body });
    const pod = await waitPodRunning(ns.name, POD, 120_000);
    const runningMs = Date.now() - started;
    const ready = await waitPodReady(ns.name, POD, 60_000);
    const readyMs = Date.now() - started;
    expect(ready.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    podIp = pod.status?.podIP ?? '';
    expect(podIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

    const log = await waitPodLogLines(ns.name, POD, [...EXPECTED, `wasm-broker: listening on 0.0.0.0:${PORT}`]);
    expect(log).not.toContain('NOT_A_DEVICE_PROPERTY');

    const response = await fetch(`http://${podIp}:${PORT}/`, { signal: AbortSignal.timeout(10_000) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await response.text()).toBe(`${EXPECTED.join('\n')}\n`);
    const missing = await fetch(`http://${podIp}:${PORT}/nope`, { signal: AbortSignal.timeout(10_000) });
    expect(missing.status).toBe(404);

    const shims = wasmShimProcesses();
    expect(shims.length).toBeGreaterThan(0);
    const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;
    process.stderr.write(
      `[wasm] pod created → Running in ${runningMs} ms, Ready (readiness probe on /healthz) in ${readyMs} ms; shim processes (pid←ppid RSS/PSS cgroup):\n${shims.map((p) => `  ${p.pid}←${p.ppid} ${mib(p.rssKiB)}/${mib(p.pssKiB)} ${p.cgroup}`).join('\n')}\n  PSS total ${mib(shims.reduce((sum, p) => sum + p.pssKiB, 0))}\n`,
    );
  });

  it('runs a WASI preview 1 module too: env in, stdout out, its exit status the container’s', async () => {
    // The same broker built for wasm32-wasip1: no sockets there, so it prints its env, fails to listen and exits 1.
    const image = await importWasmBrokerImage(layout, 'wasm32-wasip1');
    expect(image.kind).toBe('module');
    const pod = wasmBrokerPod(P1_POD, { node: inject('e2eNodeName'), env: ENV, port: PORT, image: image.name });
    pod.spec!.restartPolicy = 'Never';
    delete pod.spec!.containers[0]!.readinessProbe;
    await api().core.createNamespacedPod({ namespace: ns.name, body: pod });
    const ended = await watchUntil<V1Pod>(api().kc, {
      path: `/api/v1/namespaces/${ns.name}/pods`,
      fieldSelector: `metadata.name=${P1_POD}`,
      predicate: (p) => p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded',
      timeoutMs: 120_000,
      description: `pod ${P1_POD} ended`,
      describe: (p) => JSON.stringify({ phase: p.status?.phase, containerStatuses: p.status?.containerStatuses }),
    });
    expect(ended.status?.phase).toBe('Failed');
    expect(ended.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(1);
    const log = await podLog(ns.name, P1_POD);
    // stdout (the env) and stderr (the broker's own messages) are separate pipes: the log keeps
    // each stream's order, not their interleaving.
    const lines = log.split('\n');
    expect(lines.filter((line) => line !== '' && !line.startsWith('wasm-broker: '))).toEqual(EXPECTED);
    expect(log).toContain(`wasm-broker: cannot listen on 0.0.0.0:${PORT}`);
    // Gone at once (its containers have ended): wait for 404, not a DELETED event a watch could miss.
    await api().core.deleteNamespacedPod({ namespace: ns.name, name: P1_POD });
    await waitFor(
      () =>
        api()
          .core.readNamespacedPod({ namespace: ns.name, name: P1_POD })
          .then(
            () => false,
            (error: unknown) => isApiError(error, 404),
          ),
      { timeoutMs: 60_000, description: `pod ${P1_POD} gone` },
    );
  });

  it('stops on pod deletion: SIGTERM ends the guest, the shim exits', async () => {
    const started = Date.now();
    // The pod's grace period is 600 s: a guest the shim did not stop on SIGTERM would hold it that long.
    await deletePod(ns.name, POD, 120_000);
    const deletedMs = Date.now() - started;
    await waitFor(() => wasmShimProcesses().length === 0, { timeoutMs: 30_000, description: 'no wasm shim process left' });
    process.stderr.write(`[wasm] pod deleted in ${deletedMs} ms\n`);
  });
});
