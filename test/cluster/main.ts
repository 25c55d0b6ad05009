/**
 * CLI for the test cluster: `node test/cluster/main.ts up|down|status|env`.
 *   up      build if needed, start (or reuse) the control plane, install CRDs;
 *           prints `export KUBECONFIG=…` (progress goes to stderr)
 *   down    stop the processes `up` started and remove the state dir
 *   status  show whether each component runs and the apiserver is ready
 *   env     print `export KUBECONFIG=…` of the current cluster
 */
import { clusterDown, clusterStatus, clusterUp } from './cluster.ts';

async function up(): Promise<void> {
  const started = Date.now();
  const info = await clusterUp();
  process.stderr.write(
    `[cluster] ${info.reused ? 'reused' : 'started'} ${info.k8sVersion} in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      `state in ${info.stateDir}\n`,
  );
  process.stdout.write(`export KUBECONFIG=${info.kubeconfig}\n`);
}

async function status(): Promise<void> {
  const { info, running, ready } = await clusterStatus();
  if (info === undefined) {
    process.stdout.write('no cluster state\n');
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`server ${info.server} (${info.k8sVersion}) ${ready ? 'ready' : 'NOT ready'}\n`);
  for (const [name, alive] of Object.entries(running)) process.stdout.write(`  ${name}: ${alive ? 'running' : 'stopped'}\n`);
  process.stdout.write(`kubeconfig ${info.kubeconfig}\n`);
  if (!ready) process.exitCode = 1;
}

async function env(): Promise<void> {
  const { info } = await clusterStatus();
  if (info === undefined) throw new Error('no cluster: run `npm run cluster:up` first');
  process.stdout.write(`export KUBECONFIG=${info.kubeconfig}\n`);
}

const commands: Record<string, () => Promise<void>> = { up, down: () => clusterDown(), status, env };

const name = process.argv[2] ?? '';
const command = commands[name];
if (command === undefined) {
  process.stderr.write(`usage: node test/cluster/main.ts ${Object.keys(commands).join('|')}\n`);
  process.exit(2);
}
try {
  await command();
} catch (error) {
  process.stderr.write(`[cluster] ${name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
