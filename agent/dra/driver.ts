/**
 * The DRA driver's node side, without gRPC: prepares and unprepares claims for the kubelet,
 * keeps the devices this node serves through DRA, and tells health watchers when they change.
 *
 * Prepare reads the ResourceClaim (through `ClaimReader`), maps its results to served devices
 * (claim-devices.ts), writes the claim's CDI spec (cdi-spec.ts) and records the answer in the
 * checkpoint (checkpoint.ts). Calls are serialised: the kubelet calls per pod and may call
 * concurrently, and every call ends with one checkpoint write.
 *
 * Idempotent: a claim in the checkpoint whose spec file still exists is answered from the
 * checkpoint — no claim read, no write. Unprepare removes the spec file whether or not the
 * claim is in the checkpoint (a crash between writing the spec and the checkpoint leaves a
 * spec only), and a claim not prepared is not an error.
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ServedDevice } from '../device.ts';
import type {
  DraClaim,
  DraDevice,
  NodePrepareResourceResponse,
  NodePrepareResourcesResponse,
  NodeUnprepareResourcesResponse,
} from '../../proto/types.ts';
import { buildCdiSpec, cdiDeviceId, cdiSpecFileName, isSafeClaimUid } from './cdi-spec.ts';
import {
  CHECKPOINT_FILE,
  loadCheckpoint,
  saveCheckpoint,
  withClaim,
  withoutClaim,
  type Checkpoint,
  type PreparedClaim,
} from './checkpoint.ts';
import { writeFileAtomically } from '../state-file.ts';
import { resolveClaimDevices, type ResolvedDevice, type ResourceClaim } from './claim-devices.ts';

/**
 * Reads ResourceClaims. Called once per claim not yet prepared, concurrently for the claims of
 * one kubelet call. Rejects when the claim cannot be read (absent, forbidden, apiserver down):
 * that claim's preparation fails and the kubelet retries it.
 */
export interface ClaimReader {
  read(namespace: string, name: string, signal?: AbortSignal): Promise<ResourceClaim>;
}

export interface DraDriverOptions {
  /** Where claim CDI specs are written (the runtime's CDI spec dir, e.g. /var/run/cdi). */
  readonly cdiDir: string;
  /** The agent's state directory: the checkpoint lives here. */
  readonly stateDir: string;
  readonly claims: ClaimReader;
  readonly log: Logger;
}

/** Outcome of one claim within a call: an answer, and what the checkpoint should become. */
type ClaimOutcome = { readonly response: NodePrepareResourceResponse; readonly prepared?: PreparedClaim };

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
}

export class DraDriver {
  readonly #options: DraDriverOptions;
  readonly #log: Logger;
  #checkpoint: Checkpoint = new Map();
  #devices: ReadonlyMap<string, ServedDevice> = new Map();
  readonly #listeners = new Set<() => void>();
  #queue: Promise<unknown> = Promise.resolve();
  /** Spec files written (tests: idempotency means no second write). */
  specWrites = 0;

  constructor(options: DraDriverOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  get checkpointPath(): string {
    return join(this.#options.stateDir, CHECKPOINT_FILE);
  }

  /** Claims prepared now, by uid (read-only view). */
  get prepared(): Checkpoint {
    return this.#checkpoint;
  }

  /** Loads the checkpoint: claims prepared before a restart stay prepared. */
  async start(): Promise<void> {
    this.#checkpoint = await loadCheckpoint(this.checkpointPath);
    if (this.#checkpoint.size > 0) this.#log.info({ claims: this.#checkpoint.size }, 'Restored prepared DRA claims');
  }

  /** The devices of DRA discoveries this node serves now (replaces the previous set). */
  setDevices(devices: readonly ServedDevice[]): void {
    const next = new Map(devices.map((d) => [d.name as string, d]));
    const same = next.size === this.#devices.size && [...next].every(([name, d]) => this.#devices.get(name) === d);
    if (same) return;
    this.#devices = next;
    for (const listener of this.#listeners) listener();
  }

  devices(): readonly ServedDevice[] {
    return [...this.#devices.values()];
  }

  /** Calls `listener` after every change of the served devices; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** NodePrepareResources: one answer per claim uid; failures are per claim, never thrown. */
  prepare(claims: readonly DraClaim[]): Promise<NodePrepareResourcesResponse> {
    return this.#serially(async () => {
      const outcomes = await Promise.all(claims.map((claim) => this.#prepareOne(claim)));
      let next = this.#checkpoint;
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.prepared !== undefined) next = withClaim(next, claims[i]!.uid, outcome.prepared);
      }
      const responses = new Map(claims.map((claim, i) => [claim.uid, outcomes[i]!.response]));
      if (next !== this.#checkpoint) {
        try {
          await saveCheckpoint(this.checkpointPath, next);
          this.#checkpoint = next;
        } catch (error) {
          this.#log.error({ err: error }, 'Failed to save DRA checkpoint');
          for (const [i, outcome] of outcomes.entries()) {
            if (outcome.prepared === undefined) continue;
            responses.set(claims[i]!.uid, { devices: [], error: `saving the DRA checkpoint: ${messageOf(error)}` });
          }
        }
      }
      return { claims: Object.fromEntries(responses) };
    });
  }

  /** NodeUnprepareResources: removes each claim's CDI spec and checkpoint entry. */
  unprepare(claims: readonly DraClaim[]): Promise<NodeUnprepareResourcesResponse> {
    return this.#serially(async () => {
      const answers: NodeUnprepareResourcesResponse['claims'] = {};
      let next = this.#checkpoint;
      for (const claim of claims) {
        if (!isSafeClaimUid(claim.uid)) {
          answers[claim.uid] = { error: `invalid claim uid ${JSON.stringify(claim.uid)}` };
          continue;
        }
        const specPath = this.#checkpoint.get(claim.uid)?.specPath ?? this.#specPath(claim.uid);
        try {
          await rm(specPath, { force: true });
          next = withoutClaim(next, claim.uid);
          answers[claim.uid] = { error: '' };
        } catch (error) {
          answers[claim.uid] = { error: `removing ${specPath}: ${messageOf(error)}` };
        }
      }
      if (next.size !== this.#checkpoint.size) {
        try {
          await saveCheckpoint(this.checkpointPath, next);
          this.#checkpoint = next;
        } catch (error) {
          this.#log.error({ err: error }, 'Failed to save DRA checkpoint');
          for (const claim of claims) answers[claim.uid] = { error: `saving the DRA checkpoint: ${messageOf(error)}` };
        }
      }
      this.#log.debug({ claims: claims.map((c) => c.uid) }, 'Unprepared DRA claims');
      return { claims: answers };
    });
  }

  #serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #specPath(uid: string): string {
    return join(this.#options.cdiDir, cdiSpecFileName(uid));
  }

  async #prepareOne(claim: DraClaim): Promise<ClaimOutcome> {
    const fail = (error: string): ClaimOutcome => ({ response: { devices: [], error } });
    if (!isSafeClaimUid(claim.uid)) return fail(`invalid claim uid ${JSON.stringify(claim.uid)}`);
    const known = this.#checkpoint.get(claim.uid);
    if (known !== undefined && (await exists(known.specPath))) return { response: { devices: [...known.devices], error: '' } };
    let resource: ResourceClaim;
    try {
      resource = await this.#options.claims.read(claim.namespace, claim.name);
    } catch (error) {
      return fail(`reading ResourceClaim ${claim.namespace}/${claim.name}: ${messageOf(error)}`);
    }
    const resolved = resolveClaimDevices(resource, claim.uid, (name) => this.#devices.get(name));
    if ('error' in resolved) {
      this.#log.warn({ claim: `${claim.namespace}/${claim.name}`, uid: claim.uid, reason: resolved.error }, 'Refused to prepare DRA claim');
      return fail(resolved.error);
    }
    const specPath = this.#specPath(claim.uid);
    try {
      const spec = buildCdiSpec(
        claim.uid,
        resolved.devices.map((d) => d.device),
      );
      // Readable by the runtime, which may not run as this user.
      await writeFileAtomically(specPath, `${JSON.stringify(spec, null, 2)}\n`, 0o644);
      this.specWrites++;
    } catch (error) {
      return fail(`writing CDI spec ${specPath}: ${messageOf(error)}`);
    }
    const devices = resolved.devices.map((d) => answerDevice(claim.uid, d));
    this.#log.info(
      { claim: `${claim.namespace}/${claim.name}`, uid: claim.uid, devices: devices.map((d) => d.device_name) },
      'Prepared DRA claim',
    );
    return { response: { devices, error: '' }, prepared: { namespace: claim.namespace, name: claim.name, devices, specPath } };
  }
}

function answerDevice(claimUid: string, { result, device }: ResolvedDevice): DraDevice {
  return {
    request_names: [result.request],
    pool_name: result.pool,
    device_name: result.device,
    cdi_device_ids: [cdiDeviceId(claimUid, device.name)],
    ...(result.shareID === undefined ? {} : { share_id: result.shareID }),
  };
}
