/**
 * CLI for the e2e node: `node test/e2e/main.ts up|down|status|restart-kubelet`.
 *   up               start (or reuse) the e2e control plane and the node;
 *                    prints `export KUBECONFIG=…`
 *   down             tear the node down (the control plane stays; stop it
 *                    with `TETHER_CACHE=<cache>/e2e npm run cluster:down`)
 *   status           what runs
 *   restart-kubelet  restart only the kubelet and wait for Ready
 */
import { clusterStatus } from '../cluster/cluster.ts';
import { isRunning } from '../cluster/processes.ts';
import type { RunningComponent } from '../cluster/processes.ts';
import { readFileSync } from 'node:fs';
import { e2eClusterUp, ensureE2eCacheDir } from './cluster.ts';
import { nodeLayout } from './layout.ts';
import { nodeDown, nodeUp, restartKubelet } from './node.ts';

const layout = nodeLayout();
const layout2 = nodeLayout(process.env, 2);

async function up(): Promise<void> {
  const started = Date.now();
  ensureE2eCacheDir(layout);
  const cluster = await e2eClusterUp(layout);
  for (const nodeLayoutN of [layout, layout2]) {
    const node = await nodeUp(cluster, { layout: nodeLayoutN });
    process.stderr.write(`[e2e] node ${node.name} ${node.reused ? 'reused' : 'started'}; ${((Date.now() - started) / 1000).toFixed(1)} s ${JSON.stringify(node.timings)}\n`);
  }
  process.stdout.write(`export KUBECONFIG=${cluster.kubeconfig}\n`);
}

async function status(): Promise<void> {
  const cluster = await clusterStatus({ cacheDir: layout.e2eDir });
  process.stdout.write(`control plane: ${cluster.ready ? 'ready' : 'NOT ready'}${cluster.info ? ` (${cluster.info.server})` : ''}\n`);
  let state: { containerd?: RunningComponent; kubelet?: RunningComponent } = {};
  try {
    state = JSON.parse(readFileSync(layout.stateFile, 'utf8')) as typeof state;
  } catch {
    process.stdout.write('node: no state\n');
  }
  for (const [name, component] of Object.entries(state)) {
    if (typeof component === 'object' && component !== null && 'pid' in component) {
      process.stdout.write(`  ${name}: ${isRunning(component) ? `running (pid ${component.pid})` : 'stopped'}\n`);
    }
  }
}

async function restart(): Promise<void> {
  const result = await restartKubelet();
  process.stdout.write(`kubelet restarted: stopped in ${result.stoppedMs} ms, Ready ${result.readyMs} ms after start\n`);
}

async function down(): Promise<void> {
  // Node 2 hangs off node 1's bridge: it goes first.
  await nodeDown({ layout: layout2 });
  await nodeDown({ layout });
}

const commands: Record<string, () => Promise<void>> = { up, down, status, 'restart-kubelet': restart };
const name = process.argv[2] ?? '';
const command = commands[name];
if (command === undefined) {
  process.stderr.write(`usage: node test/e2e/main.ts ${Object.keys(commands).join('|')}\n`);
  process.exit(2);
}
try {
  await command();
} catch (error) {
  process.stderr.write(`[e2e] ${name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
