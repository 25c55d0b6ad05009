#!/usr/bin/env node
/**
 * The `tether` command. The only place that reads argv and the process environment
 * and decides the exit code. Each command loads its own code when it runs (dynamic
 * imports), so `--help` and the light commands never load the Kubernetes client, the
 * agent or the controller.
 */
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import type { OutputFormat } from '../agent/cli/discover.ts';
import { FLAG_DEFAULTS, controllerConfig, type ControllerFlags } from '../controller/runtime/flags.ts';
import { DetailsError } from '../discovery-handlers/contract.ts';
import { BUILTIN_HANDLER_NAMES } from '../discovery-handlers/names.ts';
import { HANDLER_SOURCE_CHOICES, IMPORT_AKRI_HELP } from '../agent/cli/import-akri-help.ts';

/** Commander helper for repeatable options. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

/** Where logs go: JSON lines, or readable lines on a terminal (--log-format auto). */
async function logStream(): Promise<{ write(line: string): void }> {
  const format = program.opts<{ logFormat: string }>().logFormat;
  const text = format === 'text' || (format === 'auto' && process.stderr.isTTY);
  if (text) {
    const { formatLogLine } = await import('../agent/cli/log-format.ts');
    return { write: (line: string) => void process.stderr.write(formatLogLine(line)) };
  }
  const { pino } = await import('pino');
  return pino.destination(2);
}

async function logger(level: string): Promise<Logger> {
  const { pino } = await import('pino');
  return pino({ level, base: undefined }, await logStream());
}

/** A logger that also keeps warnings and errors as one-line summaries (for `discover`'s timeout message). */
async function capturingLogger(level: string): Promise<{ log: Logger; warnings: () => string[] }> {
  const { pino } = await import('pino');
  const captured: string[] = [];
  const keep = {
    write(line: string): void {
      const record = JSON.parse(line) as { msg?: string; err?: { message?: string }; broker?: string };
      const detail = [record.broker, record.err?.message].filter((part) => part !== undefined).join(': ');
      captured.push(detail === '' ? (record.msg ?? line) : `${record.msg ?? ''} (${detail})`);
    },
  };
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'silent'];
  const lowest = levels.indexOf(level) < levels.indexOf('warn') ? level : 'warn';
  const streams = [
    { level: 'warn' as const, stream: keep },
    ...(level === 'silent' ? [] : [{ level: level as 'warn', stream: await logStream() }]),
  ];
  return { log: pino({ level: lowest, base: undefined }, pino.multistream(streams)), warnings: () => [...new Set(captured)].slice(-5) };
}

/** Aborts on SIGINT/SIGTERM so commands can clean up before exit. */
function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());
  return controller.signal;
}

const write = (text: string): void => void process.stdout.write(text);

const program = new Command('tether')
  .description('Tether: edge devices for Kubernetes')
  .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('warn'))
  .addOption(
    new Option('--log-format <format>', 'logs as JSON lines, or as text for people (auto: text on a terminal)')
      .choices(['auto', 'json', 'text'])
      .default('auto'),
  )
  .showHelpAfterError();

interface DiscoverFlags {
  help?: boolean;
  details?: string;
  detailsFile?: string;
  output: OutputFormat;
  watch: boolean;
  timeout: number;
  property: string[];
  propertyFile?: string;
}

program
  .command('discover')
  .description('run one discovery handler locally (no cluster) and print the devices it finds')
  .argument('[handler]', `handler name: ${BUILTIN_HANDLER_NAMES.join(', ')}`)
  // Our own --help: with a handler it adds that handler's details fields, read from its
  // serialised schema (no handler code, no TypeBox), so commander's synchronous help won't do.
  .helpOption(false)
  .option('-h, --help', "display help; after a handler name, also the handler's details fields and an example")
  .addHelpText(
    'after',
    "\nRun `tether discover --help` for the handlers, `tether discover <handler> --help` for a handler's details fields.",
  )
  .option('--details <json|yaml>', 'handler details, inline')
  .option('--details-file <path>', 'handler details, from a file')
  .addOption(
    new Option('-o, --output <format>', 'output format (wide: the table with whole values)')
      .choices(['table', 'wide', 'json'])
      .default('table'),
  )
  .option('-w, --watch', 'keep running and print the device set on every change', false)
  // As long as the agent waits for first reports after a restart (--startup-timeout): ONVIF's
  // first report can take several SOAP timeouts when a camera stalls.
  .option(
    '--timeout <ms>',
    'one-shot: longest wait for the first full report; none in time → exit 1 with what the handler reported',
    positiveInt,
    30_000,
  )
  .option(
    '-p, --property <NAME=VALUE>',
    'a property for the handler, as a DeviceDiscovery gives it (e.g. ONVIF_USERNAME=admin); repeatable',
    collect,
    [],
  )
  .option('--property-file <path>', 'properties from a file of NAME=VALUE lines (# comments); keeps secrets off the command line')
  .action(async (handlerName: string | undefined, opts: DiscoverFlags, command: Command) => {
    if (opts.help === true) {
      const { discoverHelpText } = await import('../discovery-handlers/details-schemas.ts');
      write(`${command.helpInformation()}${await discoverHelpText(handlerName)}`);
      return;
    }
    if (handlerName === undefined)
      throw new InvalidArgumentError(`name a handler: ${BUILTIN_HANDLER_NAMES.join(', ')} (tether discover --help)`);
    const { log, warnings } = await capturingLogger(program.opts<{ logLevel: string }>().logLevel);
    const { discover, readDetailsText, readProperties } = await import('../agent/cli/discover.ts');
    const { builtinHandlers, findHandler } = await import('../discovery-handlers/registry.ts');
    await discover({
      handler: findHandler(builtinHandlers(), handlerName),
      details: await readDetailsText(opts.details, opts.detailsFile),
      output: opts.output,
      watch: opts.watch,
      timeoutMs: opts.timeout,
      properties: await readProperties(opts.property, opts.propertyFile),
      log,
      warnings,
      write,
      signal: shutdownSignal(),
    });
  });

program
  .command('explain')
  .description('explain, in plain sentences, why a pod has (or lacks) its devices, or what a device or discovery is doing')
  .argument('<target>', 'pod/NAME, device/NAME or discovery/NAME')
  .option('-n, --namespace <ns>', 'namespace of the target', 'default')
  .option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, else ~/.kube/config)')
  .action(async (target: string, opts: { namespace: string; kubeconfig?: string }) => {
    const [{ KubeConfig }, { gatherAndExplain }] = await Promise.all([import('../kube/kubeconfig.ts'), import('../agent/cli/explain.ts')]);
    const kc = new KubeConfig();
    if (opts.kubeconfig !== undefined && opts.kubeconfig !== '') kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    write(`${(await gatherAndExplain(kc, target, opts.namespace)).join('\n')}\n`);
  });

program
  .command('import-akri')
  .description('convert Akri Configurations (akri.sh/v0) into DeviceDiscoveries, printed for `kubectl apply -f -`')
  .argument('<file>', 'YAML or JSON file of Akri Configurations, or - for stdin')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
  .addOption(
    new Option(
      '--handler-source <source>',
      "set spec.handlerSource on every DeviceDiscovery (External: keep running Akri's handlers)",
    ).choices(HANDLER_SOURCE_CHOICES),
  )
  .addHelpText('after', IMPORT_AKRI_HELP)
  .action(async (file: string, opts: { output: 'yaml' | 'json'; handlerSource?: (typeof HANDLER_SOURCE_CHOICES)[number] }) => {
    const { importAkri, readStream } = await import('../agent/cli/import-akri.ts');
    await importAkri({
      input: file,
      output: opts.output,
      ...(opts.handlerSource === undefined ? {} : { handlerSource: opts.handlerSource }),
      readStdin: () => readStream(process.stdin),
      write,
      warn: (line) => void process.stderr.write(`${line}\n`),
    });
  });

program
  .command('demo')
  .description('debug-echo devices served to a mock kubelet over real gRPC, shown as a live table')
  .option('--devices <n>', 'number of debug-echo devices', positiveInt, 3)
  .option('--capacity <n>', 'slots per device', positiveInt, 2)
  .option('--step-ms <ms>', 'time between scripted steps', positiveInt, 2_000)
  .option('--steps <n>', 'stop after n steps (0 = run until Ctrl-C)', positiveInt, 0)
  .action(async (opts: { devices: number; capacity: number; stepMs: number; steps: number }) => {
    const { demo } = await import('../agent/cli/demo.ts');
    await demo({
      ...opts,
      log: await logger(program.opts<{ logLevel: string }>().logLevel),
      write,
      clearScreen: process.stdout.isTTY,
      signal: shutdownSignal(),
    });
  });

interface AgentFlags {
  nodeName?: string;
  kubeconfig?: string;
  namespace?: string;
  devicePluginDir: string;
  podResourcesSocket: string;
  registrationSocket: string;
  stateDir?: string;
  httpAddress: string;
  startupTimeout: number;
  reconcileInterval: number;
  slotGrace: number;
  cdiKind?: string;
  devicePluginMode: 'per-device' | 'lean';
  dra: boolean;
  kubeletDir: string;
  cdiDir: string;
}

program
  .command('agent')
  .description('run the node agent: discovery handlers → Device resources → kubelet device plugins')
  .option('--node-name <name>', 'this node (default: $NODE_NAME)')
  .option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, else in-cluster)')
  .option('--namespace <ns>', 'watch DeviceDiscoveries in this namespace only (default: all)')
  .option('--device-plugin-dir <dir>', 'kubelet device-plugins directory', '/var/lib/kubelet/device-plugins')
  .option(
    '--pod-resources-socket <path>',
    'kubelet PodResources socket ("" disables slot reconciliation)',
    '/var/lib/kubelet/pod-resources/kubelet.sock',
  )
  .option('--registration-socket <path>', 'socket for external (Akri v0) handlers ("" disables)', '/var/lib/tether/agent-registration.sock')
  .option(
    '--state-dir <dir>',
    'state kept across restarts: remembered external handler endpoints, external-handlers.json ("" disables; ' +
      "default: the registration socket's directory, /var/lib/tether)",
  )
  .option('--http-address <host:port>', 'address for /metrics, /healthz, /readyz ("" disables)', ':8080')
  .option('--startup-timeout <ms>', 'longest wait for first handler reports after a restart', positiveInt, 30_000)
  .option(
    '--reconcile-interval <ms>',
    'slot ledger vs PodResources interval while this node holds a slot (otherwise every 60 s; 0 = off)',
    positiveInt,
    5_000,
  )
  .option('--slot-grace <ms>', 'how long a held slot may be missing from PodResources before it is freed', positiveInt, 10_000)
  .option('--cdi-kind <vendor/class>', 'also return CDI device names <kind>=<device>')
  .addOption(
    new Option(
      '--device-plugin-mode <mode>',
      'lean: serve only tether.dev/<discovery> (plus tether.dev/<device> for brokered discoveries), one socket per discovery',
    )
      .choices(['per-device', 'lean'])
      .default('per-device'),
  )
  .option('--dra', 'serve DeviceDiscoveries with spec.backend DRA as a kubelet DRA plugin (driver tether.dev; docs/dra.md)', false)
  .option('--kubelet-dir <dir>', 'kubelet root directory (--dra: plugins_registry/ and plugins/ inside)', '/var/lib/kubelet')
  .option('--cdi-dir <dir>', 'CDI spec directory the runtime reads (--dra: one spec per prepared claim)', '/var/run/cdi')
  .action(async (opts: AgentFlags) => {
    const node = opts.nodeName ?? process.env['NODE_NAME'];
    if (node === undefined || node === '') throw new InvalidArgumentError('--node-name or $NODE_NAME is required');
    const kubeconfig = opts.kubeconfig ?? process.env['KUBECONFIG'];
    const log = await logger(
      program.opts<{ logLevel: string }>().logLevel === 'warn' ? 'info' : program.opts<{ logLevel: string }>().logLevel,
    );
    const stateDir = opts.stateDir ?? (opts.registrationSocket === '' ? '' : dirname(opts.registrationSocket));
    // Prepared DRA claims are checkpointed there: without it an agent restart would lose them.
    if (opts.dra && stateDir === '') throw new InvalidArgumentError('--dra needs a state directory (--state-dir)');
    const { runAgent } = await import('../agent/main.ts');
    await runAgent(
      {
        node,
        ...(kubeconfig === undefined || kubeconfig === '' ? {} : { kubeconfig }),
        ...(opts.namespace === undefined ? {} : { namespace: opts.namespace }),
        pluginDir: opts.devicePluginDir,
        podResourcesSocket: opts.podResourcesSocket,
        registrationSocket: opts.registrationSocket,
        // By default beside the registration socket: the directory handlers already share.
        stateDir,
        httpAddress: opts.httpAddress,
        startupTimeoutMs: opts.startupTimeout,
        reconcileIntervalMs: opts.reconcileInterval,
        slotGraceMs: opts.slotGrace,
        ...(opts.cdiKind === undefined ? {} : { cdiKind: opts.cdiKind }),
        devicePluginMode: opts.devicePluginMode,
        ...(opts.dra ? { dra: { kubeletDir: opts.kubeletDir, cdiDir: opts.cdiDir } } : {}),
      },
      log.child({ component: 'agent' }),
      shutdownSignal(),
    );
  });

program
  .command('controller')
  .description('run the controller: DeviceDiscovery + Device → broker Pods/Jobs and Services (leader-elected)')
  .option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, else in-cluster)')
  .option('--namespace <ns>', 'act in this namespace only (default: all)')
  .option('--http-address <host:port>', 'address for /metrics, /healthz, /readyz ("" disables)', FLAG_DEFAULTS.httpAddress)
  .option('--no-leader-elect', 'run without leader election (only one replica may run)')
  .option('--leader-election-namespace <ns>', 'namespace of the Lease (default: $POD_NAMESPACE, else --namespace, else default)')
  .option('--leader-election-id <name>', 'name of the Lease', FLAG_DEFAULTS.leaderElectionId)
  .option('--lease-duration <s>', 'seconds a standby waits before taking an unrenewed lease', positiveInt, FLAG_DEFAULTS.leaseDuration)
  .option('--renew-deadline <ms>', 'the leader steps down if it cannot renew within this', positiveInt, FLAG_DEFAULTS.renewDeadline)
  .option('--retry-period <ms>', 'interval of lease renewals and acquisition attempts', positiveInt, FLAG_DEFAULTS.retryPeriod)
  .option('--device-workers <n>', 'concurrent Device reconciles', positiveInt, FLAG_DEFAULTS.deviceWorkers)
  .option('--discovery-workers <n>', 'concurrent DeviceDiscovery reconciles', positiveInt, FLAG_DEFAULTS.discoveryWorkers)
  .option(
    '--broker-backoff-base <ms>',
    'delay before recreating a failed broker the first time',
    positiveInt,
    FLAG_DEFAULTS.brokerBackoffBase,
  )
  .option('--broker-backoff-max <ms>', 'longest delay before recreating a failed broker', positiveInt, FLAG_DEFAULTS.brokerBackoffMax)
  .option(
    '--broker-backoff-reset <ms>',
    'a broker that ran this long before failing starts its backoff over',
    positiveInt,
    FLAG_DEFAULTS.brokerBackoffReset,
  )
  .option(
    '--node-loss-grace <s>',
    'a node NotReady this long is removed from Devices (slots freed)',
    positiveInt,
    FLAG_DEFAULTS.nodeLossGrace,
  )
  .option('--resync <s>', 'reconcile everything again this often (0 = never)', positiveInt, FLAG_DEFAULTS.resync)
  .action(async (opts: ControllerFlags & { kubeconfig?: string }) => {
    const env = process.env;
    const config = controllerConfig(opts, {
      hostname: hostname(),
      ...(env['POD_NAME'] ? { podName: env['POD_NAME'] } : {}),
      ...(env['POD_NAMESPACE'] ? { podNamespace: env['POD_NAMESPACE'] } : {}),
    });
    const [{ KubeConfig }, { runController }] = await Promise.all([import('../kube/kubeconfig.ts'), import('../controller/main.ts')]);
    const kubeConfig = new KubeConfig();
    if (opts.kubeconfig !== undefined && opts.kubeconfig !== '') kubeConfig.loadFromFile(opts.kubeconfig);
    else kubeConfig.loadFromDefault();
    const level = program.opts<{ logLevel: string }>().logLevel;
    const log = (await logger(level === 'warn' ? 'info' : level)).child({ component: 'controller' });
    await runController(config, { kubeConfig, log }, shutdownSignal());
  });

/** An error's message and its causes' (`binding …/agent.sock: EROFS: read-only file system`). */
function describeError(error: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = error; e instanceof Error && messages.length < 8; e = e.cause) {
    if (!messages.some((m) => m.includes(e instanceof Error ? e.message : ''))) messages.push(e.message);
  }
  return messages.join(': ') || String(error);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const message = error instanceof DetailsError ? `invalid details: ${error.message}` : describeError(error);
  process.stderr.write(`tether: ${message}\n`);
  // Fatal: exit now, whatever is still open (a half-started agent must not linger).
  process.exit(1);
}
