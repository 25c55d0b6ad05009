/**
 * Which claims this node has prepared, kept on disk so an agent restart keeps them: a prepare
 * for a claim already prepared answers from here (no claim read, no file written), and an
 * unprepare after a restart still finds the CDI spec to remove.
 *
 * The model is pure (immutable maps in, new maps out); `loadCheckpoint` / `saveCheckpoint` are
 * the only I/O. Saves are atomic (temp file, fsync, rename), so a crash leaves the old or the
 * new content, never a torn file.
 */
import { readFile } from 'node:fs/promises';
import type { DraDevice } from '../../proto/types.ts';
import { writeFileAtomically } from '../state-file.ts';

/** File name inside the agent's state directory. */
export const CHECKPOINT_FILE = 'dra-checkpoint.json';

const CHECKPOINT_VERSION = 1;

/** One prepared claim: what the kubelet was told, and the spec file that backs it. */
export interface PreparedClaim {
  readonly namespace: string;
  readonly name: string;
  /** The NodePrepareResources answer's devices, as first given. */
  readonly devices: readonly DraDevice[];
  /** Absolute path of the claim's CDI spec. */
  readonly specPath: string;
}

/** Prepared claims by claim uid. */
export type Checkpoint = ReadonlyMap<string, PreparedClaim>;

interface CheckpointFile {
  readonly version: number;
  readonly claims: Record<string, PreparedClaim>;
}

export function withClaim(checkpoint: Checkpoint, uid: string, claim: PreparedClaim): Checkpoint {
  return new Map([...checkpoint, [uid, claim]]);
}

export function withoutClaim(checkpoint: Checkpoint, uid: string): Checkpoint {
  const next = new Map(checkpoint);
  next.delete(uid);
  return next;
}

export function serializeCheckpoint(checkpoint: Checkpoint): string {
  const file: CheckpointFile = {
    version: CHECKPOINT_VERSION,
    claims: Object.fromEntries([...checkpoint].sort(([a], [b]) => (a < b ? -1 : 1))),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** @throws Error when the text is not a checkpoint this version wrote. */
export function parseCheckpoint(text: string): Checkpoint {
  const file = JSON.parse(text) as Partial<CheckpointFile> | null;
  if (file?.version !== CHECKPOINT_VERSION || typeof file.claims !== 'object' || file.claims === null) {
    throw new Error(`not a version ${CHECKPOINT_VERSION} DRA checkpoint`);
  }
  const claims = new Map<string, PreparedClaim>();
  for (const [uid, claim] of Object.entries(file.claims)) {
    if (typeof claim.specPath !== 'string' || !Array.isArray(claim.devices)) throw new Error(`claim ${uid} is malformed`);
    claims.set(uid, claim);
  }
  return claims;
}

/** Reads the checkpoint; a missing file is an empty checkpoint. @throws on unreadable content. */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new Error(`reading ${path}`, { cause: error });
  }
  try {
    return parseCheckpoint(text);
  } catch (error) {
    throw new Error(`parsing ${path}`, { cause: error });
  }
}

export function saveCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  return writeFileAtomically(path, serializeCheckpoint(checkpoint));
}
