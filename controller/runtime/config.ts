/**
 * The controller's configuration, validated once by bin/tether.ts (the only reader of flags
 * and env) and passed down. Defaults follow client-go / kube-controller-manager where they
 * have an equivalent.
 */
import type { LeaderElectionConfig } from './leader.ts';
import type { BackoffPolicy } from '../devices/brokers/plan.ts';
import type { RateLimit } from './queue.ts';

export interface ControllerConfig {
  /** Watch and act in this namespace only; all namespaces when undefined. */
  readonly namespace?: string;
  /** Concurrent Device reconciles. */
  readonly deviceWorkers: number;
  /** Concurrent DeviceDiscovery reconciles. */
  readonly discoveryWorkers: number;
  /** Host and port of /healthz, /readyz, /metrics (port 0: any free port; -1: no server). */
  readonly httpHost: string;
  readonly httpPort: number;
  /** undefined: no leader election (a single replica acts at once). */
  readonly leaderElection?: LeaderElectionConfig;
  /** Recreating failed broker Pods. */
  readonly brokerBackoff: BackoffPolicy;
  /** Requeue of reconciles that failed (API errors). */
  readonly requeue: RateLimit;
  /** A node NotReady this long is lost: its Device entries and slots are released. */
  readonly nodeLossGraceMs: number;
  /** Every key is reconciled again this often (safety net; 0 disables). */
  readonly resyncMs: number;
  /** Delay that batches DeviceDiscovery status updates after device/broker changes. */
  readonly statusBatchMs: number;
}

export const DEFAULT_CONFIG: ControllerConfig = {
  deviceWorkers: 8,
  discoveryWorkers: 2,
  httpHost: '0.0.0.0',
  httpPort: 8081,
  brokerBackoff: { baseMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 },
  requeue: { baseMs: 100, maxMs: 60_000 },
  nodeLossGraceMs: 300_000,
  resyncMs: 600_000,
  statusBatchMs: 1_000,
};

/**
 * Renewals every 30 s. A renewal is most of an otherwise idle controller's CPU: one HTTPS
 * request over cold code (the request path never gets hot at a few calls a minute), several ms
 * here and tens when the machine is busy; 10 s gave 0.127 CPU-s/min, 20 s 0.071 (bench idle;
 * issue 15 asks 0.05; client-go's 2 s would be ~0.6). Standbys read the lease as often.
 * Failover: a stopped (SIGTERM) leader releases the lease, so a standby leads within one retry
 * period (≤ 30 s); a crashed one is replaced once the lease expires (≤ 90 s + 30 s), while the
 * agents go on serving every device. Two renewal attempts fit in the renew deadline. Shorter
 * periods are flags away (chart: controller.extraArgs).
 */
export const DEFAULT_LEADER_ELECTION: Omit<LeaderElectionConfig, 'namespace' | 'identity'> = {
  name: 'tether-controller',
  leaseDurationSeconds: 90,
  renewDeadlineMs: 60_000,
  retryPeriodMs: 30_000,
};
