#!/usr/bin/env node
/**
 * Runs the file-list example handler:
 *   node discovery-handlers/examples/file-list/main.ts \
 *     --agent-socket /var/lib/tether/agent-registration.sock \
 *     --socket /var/lib/tether/file-list.sock
 * or over TCP: --host 0.0.0.0 --port 10000 --advertise $POD_IP
 * The socket defaults to <directory of the agent socket>/<name>.sock, Akri's layout.
 */
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { serveDiscoveryHandler, type HandlerListen } from '../../sdk/index.ts';
import { fileListHandler } from './file-list.ts';

const { values } = parseArgs({
  options: {
    'agent-socket': { type: 'string', default: '/var/lib/tether/agent-registration.sock' },
    socket: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string', default: '10000' },
    advertise: { type: 'string' },
    name: { type: 'string', default: 'file-list' },
    shared: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'info' },
  },
});

const log = pino({ level: values['log-level'] });
const listen: HandlerListen =
  values.host !== undefined
    ? { host: values.host, port: Number(values.port), ...(values.advertise === undefined ? {} : { advertise: values.advertise }) }
    : { socket: values.socket ?? join(dirname(values['agent-socket']), `${values.name}.sock`) };

const served = await serveDiscoveryHandler({
  ...fileListHandler(values.name, values.shared),
  agentSocket: values['agent-socket'],
  listen,
  log,
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    served.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'Failed to stop cleanly');
        process.exit(1);
      },
    );
  });
}
