/**
 * `cli-startup`: how long the `tether` command takes to answer `--help` — what a user feels
 * on every invocation — and its peak RSS. `tether discover <handler> --help` should stay within
 * 300 ms on Node 24. Each command runs as a fresh process, timed from
 * spawn to exit, measured with GNU time (`%e`, `%M`):
 *   - on Node 24 directly (`node_modules/.bin/node bin/tether.mjs …`), and
 *   - through the launcher on the machine's own Node (`node bin/tether.mjs …` with the
 *     system's Node 20, which re-runs the command on Node 24: two process starts).
 * A bare `node -e 0` on each Node is the floor.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { summarize, type Measure, type Measurement } from '../harness.ts';

const ROUNDS = 20;
const LAUNCHER = fileURLToPath(new URL('../../bin/tether.mjs', import.meta.url));
const NODE24 = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));

/** Wall seconds and peak RSS (MiB) of one run, from GNU time. */
function timed(command: string, args: string[]): { ms: number; rssMiB: number } {
  const result = spawnSync('/usr/bin/time', ['-f', '%e %M', command, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  const [seconds = 'NaN', kib = 'NaN'] = result.stderr.trim().split('\n').at(-1)!.split(' ');
  return { ms: Number(seconds) * 1000, rssMiB: Number(kib) / 1024 };
}

function series(name: string, command: string, args: string[]): Measurement[] {
  timed(command, args); // warm the file cache
  const runs = Array.from({ length: ROUNDS }, () => timed(command, args));
  return [
    summarize(
      `${name}: wall`,
      'ms',
      runs.map((r) => r.ms),
      0,
    ),
    summarize(
      `${name}: peak RSS`,
      'MiB',
      runs.map((r) => r.rssMiB),
      0,
    ),
  ];
}

function systemNode(): string {
  return execFileSync('sh', ['-c', 'PATH=/usr/local/bin:/usr/bin:/bin command -v node'], { encoding: 'utf8' }).trim();
}

export const cliMeasures: Measure[] = [
  {
    name: 'cli-startup',
    description:
      'tether --help, tether discover mqtt --help and tether discover --help, as fresh processes (Node 24, and the launcher on the system Node)',
    async run(): Promise<Measurement[]> {
      const system = systemNode();
      const systemVersion = execFileSync(system, ['--version'], { encoding: 'utf8' }).trim();
      return Promise.resolve([
        ...series('node 24: node -e 0 (floor)', NODE24, ['-e', '0']),
        ...series('node 24: tether --help', NODE24, [LAUNCHER, '--help']),
        // A handler's help reads only that handler's serialised details schema; the bare one
        // reads every handler's (for the list), still no handler code and no TypeBox.
        ...series('node 24: tether discover mqtt --help', NODE24, [LAUNCHER, 'discover', 'mqtt', '--help']),
        ...series('node 24: tether discover --help', NODE24, [LAUNCHER, 'discover', '--help']),
        ...series(`${systemVersion}: tether --help (launcher → node 24)`, system, [LAUNCHER, '--help']),
        ...series(`${systemVersion}: tether discover mqtt --help (launcher)`, system, [LAUNCHER, 'discover', 'mqtt', '--help']),
      ]);
    },
  },
];
