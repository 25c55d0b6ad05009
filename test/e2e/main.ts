/**
 * CLI for the e2e cluster: `node test/e2e/main.ts <command>` (or `npm run e2e -- <command>`).
 *   up                 start (or reuse) the control plane, both nodes and the device LAN;
 *                      prints the exports for kubectl/helm and writes the chart values
 *                      this cluster needs
 *   down               tear the nodes and the LAN down (the control plane stays; stop it
 *                      with `TETHER_CACHE=<cache>/e2e npm run cluster:down`)
 *   status             what runs
 *   import-image       import Tether's image (the tar `npm run image` builds; built if
 *                      missing) into both nodes' containerd, as `ctr -n k8s.io images
 *                      import` does on a real node
 *   restart-kubelet [2] restart only node 1's (or node 2's) kubelet and wait for Ready
 */
import { readFileSync } from 'node:fs';
import { buildTetherImage } from '../../deploy/image/tether-image.ts';
import { clusterStatus } from '../cluster/cluster.ts';
import { isRunning } from '../cluster/processes.ts';
import type { RunningComponent } from '../cluster/processes.ts';
import { e2eClusterUp, ensureE2eCacheDir, writeE2eChartValues } from './cluster.ts';
import { importTetherImage } from './images.ts';
import { attachToLan, removeLan } from './lan.ts';
import { nodeLayout } from './layout.ts';
import { nodeDown, nodeUp, restartKubelet } from './node.ts';

const layouts = [nodeLayout(), nodeLayout(process.env, 2)] as const;
/** Node 1's and node 2's addresses on the device LAN (as the e2e global setup attaches them). */
const LAN_NODE_ADDRESSES = ['10.250.90.11', '10.250.90.12'] as const;

async function up(): Promise<void> {
  const started = Date.now();
  ensureE2eCacheDir(layouts[0]);
  const cluster = await e2eClusterUp(layouts[0]);
  for (const layout of layouts) {
    const node = await nodeUp(cluster, { layout });
    process.stderr.write(
      `[e2e] node ${node.name} ${node.reused ? 'reused' : 'started'}; ${((Date.now() - started) / 1000).toFixed(1)} s ${JSON.stringify(node.timings)}\n`,
    );
  }
  attachToLan({ address: LAN_NODE_ADDRESSES[0], tag: 'n1' });
  attachToLan({ netns: layouts[1].isolation?.netns, address: LAN_NODE_ADDRESSES[1], tag: 'n2' });
  const values = writeE2eChartValues(layouts[0], cluster.nodeServer);
  process.stderr.write(`[e2e] chart values for this cluster (no kube-proxy): ${values}\n`);
  process.stdout.write(`export KUBECONFIG=${cluster.kubeconfig}\nexport PATH=${cluster.binDir}:$PATH\n`);
}

async function down(): Promise<void> {
  removeLan();
  // Node 2 hangs off node 1's bridge: it goes first.
  await nodeDown({ layout: layouts[1] });
  await nodeDown({ layout: layouts[0] });
}

async function status(): Promise<void> {
  const cluster = await clusterStatus({ cacheDir: layouts[0].e2eDir });
  process.stdout.write(`control plane: ${cluster.ready ? 'ready' : 'NOT ready'}${cluster.info ? ` (${cluster.info.server})` : ''}\n`);
  for (const layout of layouts) {
    let state: { containerd?: RunningComponent; kubelet?: RunningComponent } = {};
    try {
      state = JSON.parse(readFileSync(layout.stateFile, 'utf8')) as typeof state;
    } catch {
      process.stdout.write(`node ${layout.nodeName}: no state\n`);
      continue;
    }
    process.stdout.write(`node ${layout.nodeName}:\n`);
    for (const [name, component] of Object.entries(state)) {
      if (typeof component === 'object' && component !== null && 'pid' in component) {
        process.stdout.write(`  ${name}: ${isRunning(component) ? `running (pid ${component.pid})` : 'stopped'}\n`);
      }
    }
  }
}

async function importImage(): Promise<void> {
  // The tar `npm run image` wrote (a cache hit: nothing is rebuilt when the checkout is unchanged).
  const image = await buildTetherImage({ log: (m) => process.stderr.write(`[image] ${m}\n`) });
  for (const layout of layouts) {
    const imported = importTetherImage(layout, image);
    process.stdout.write(`${layout.nodeName}: ${image.reference} ${imported ? 'imported' : 'already there'} (${image.indexDigest})\n`);
  }
}

async function restart(which?: string): Promise<void> {
  const layout = which === '2' ? layouts[1] : layouts[0];
  const result = await restartKubelet({ layout });
  process.stdout.write(
    `kubelet of ${layout.nodeName} restarted: stopped in ${result.stoppedMs} ms, Ready ${result.readyMs} ms after start\n`,
  );
}

const commands: Record<string, (arg?: string) => Promise<void>> = {
  up,
  down,
  status,
  'import-image': importImage,
  'restart-kubelet': restart,
};
const name = process.argv[2] ?? '';
const command = commands[name];
if (command === undefined) {
  process.stderr.write(`usage: node test/e2e/main.ts ${Object.keys(commands).join('|')}\n`);
  process.exit(2);
}
try {
  await command(process.argv[3]);
} catch (error) {
  process.stderr.write(`[e2e] ${name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
