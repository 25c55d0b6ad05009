/**
 * A standalone agent serving 10 debug-echo devices to the kubelet whose device-plugins
 * dir is argv[2] — the process whose RSS bench/measures/foundation.ts reads.
 */
import { pino } from 'pino';
import { createDebugEchoHandler, parseDebugEchoDetails } from '../discovery-handlers/debug-echo/debug-echo.ts';
import { StandaloneAgent } from '../agent/standalone.ts';

const pluginDir = process.argv[2];
if (pluginDir === undefined) throw new Error('usage: idle-agent.ts <device-plugins dir>');
const agent = new StandaloneAgent({
  node: 'idle',
  pluginDir,
  log: pino({ level: 'silent' }),
  discoveries: [
    {
      namespace: 'default',
      name: 'idle',
      handler: createDebugEchoHandler(),
      details: parseDebugEchoDetails({ descriptions: Array.from({ length: 10 }, (_, i) => `device-${i}`) }),
      capacity: 2,
      offlineGraceMs: 60_000,
      properties: new Map(),
    },
  ],
});
agent.start();
process.once('SIGTERM', () => void agent.stop());
