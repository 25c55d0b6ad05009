/**
 * Turns the `tether controller` flags (parsed by bin/tether.ts, which also hands over the few
 * environment values it read) into a validated `ControllerConfig`. Pure; throws `FlagError`.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_CONFIG, DEFAULT_LEADER_ELECTION, type ControllerConfig } from './config.ts';

export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

/** Flags as commander gives them (numbers already parsed). */
export interface ControllerFlags {
  readonly namespace?: string;
  readonly httpAddress: string;
  readonly leaderElect: boolean;
  readonly leaderElectionNamespace?: string;
  readonly leaderElectionId: string;
  readonly leaseDuration: number;
  readonly renewDeadline: number;
  readonly retryPeriod: number;
  readonly deviceWorkers: number;
  readonly discoveryWorkers: number;
  readonly brokerBackoffBase: number;
  readonly brokerBackoffMax: number;
  readonly brokerBackoffReset: number;
  readonly nodeLossGrace: number;
  readonly resync: number;
}

/** Environment values bin/tether.ts read (downward API). */
export interface ControllerEnv {
  readonly podName?: string;
  readonly podNamespace?: string;
  readonly hostname: string;
}

/** Defaults of the flags, for bin/tether.ts's help text. */
export const FLAG_DEFAULTS = {
  httpAddress: `:${DEFAULT_CONFIG.httpPort}`,
  leaderElectionId: DEFAULT_LEADER_ELECTION.name,
  leaseDuration: DEFAULT_LEADER_ELECTION.leaseDurationSeconds,
  renewDeadline: DEFAULT_LEADER_ELECTION.renewDeadlineMs,
  retryPeriod: DEFAULT_LEADER_ELECTION.retryPeriodMs,
  deviceWorkers: DEFAULT_CONFIG.deviceWorkers,
  discoveryWorkers: DEFAULT_CONFIG.discoveryWorkers,
  brokerBackoffBase: DEFAULT_CONFIG.brokerBackoff.baseMs,
  brokerBackoffMax: DEFAULT_CONFIG.brokerBackoff.maxMs,
  brokerBackoffReset: DEFAULT_CONFIG.brokerBackoff.resetAfterMs,
  nodeLossGrace: DEFAULT_CONFIG.nodeLossGraceMs / 1000,
  resync: DEFAULT_CONFIG.resyncMs / 1000,
} as const;

/** `host:port`, `:port` or "" (no server). */
export function parseHttpAddress(address: string): { host: string; port: number } {
  if (address === '') return { host: '', port: -1 };
  const colon = address.lastIndexOf(':');
  if (colon < 0) throw new FlagError(`--http-address must be host:port or :port, got ${JSON.stringify(address)}`);
  const host = address.slice(0, colon) || '0.0.0.0';
  const port = Number(address.slice(colon + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new FlagError(`--http-address has an invalid port: ${JSON.stringify(address)}`);
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
}

function validate(flags: ControllerFlags): void {
  if (flags.deviceWorkers < 1 || flags.discoveryWorkers < 1)
    throw new FlagError('--device-workers and --discovery-workers must be at least 1');
  if (flags.brokerBackoffBase < 1 || flags.brokerBackoffMax < flags.brokerBackoffBase) {
    throw new FlagError('--broker-backoff-base must be ≥ 1 ms and --broker-backoff-max ≥ --broker-backoff-base');
  }
  if (!flags.leaderElect) return;
  if (flags.leaseDuration < 1) throw new FlagError('--lease-duration must be at least 1 s');
  if (!(flags.retryPeriod > 0 && flags.retryPeriod < flags.renewDeadline && flags.renewDeadline < flags.leaseDuration * 1000)) {
    throw new FlagError('leader election needs 0 < --retry-period < --renew-deadline < --lease-duration');
  }
}

export function controllerConfig(flags: ControllerFlags, env: ControllerEnv): ControllerConfig {
  const { host, port } = parseHttpAddress(flags.httpAddress);
  validate(flags);
  const identity = `${env.podName ?? env.hostname}_${randomBytes(4).toString('hex')}`;
  return {
    ...DEFAULT_CONFIG,
    ...(flags.namespace === undefined || flags.namespace === '' ? {} : { namespace: flags.namespace }),
    httpHost: host,
    httpPort: port,
    deviceWorkers: flags.deviceWorkers,
    discoveryWorkers: flags.discoveryWorkers,
    brokerBackoff: { baseMs: flags.brokerBackoffBase, maxMs: flags.brokerBackoffMax, resetAfterMs: flags.brokerBackoffReset },
    nodeLossGraceMs: flags.nodeLossGrace * 1000,
    resyncMs: flags.resync * 1000,
    ...(flags.leaderElect
      ? {
          leaderElection: {
            namespace: flags.leaderElectionNamespace ?? env.podNamespace ?? flags.namespace ?? 'default',
            name: flags.leaderElectionId,
            identity,
            leaseDurationSeconds: flags.leaseDuration,
            renewDeadlineMs: flags.renewDeadline,
            retryPeriodMs: flags.retryPeriod,
          },
        }
      : {}),
  };
}
