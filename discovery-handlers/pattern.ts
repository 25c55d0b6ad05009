/**
 * Text patterns for handler filters: `/regex/flags` or a case-insensitive glob (`*`, `?`).
 * Shared by the ONVIF and USB handlers (a candidate for a discovery-handlers/sdk/ module).
 */
import { DetailsError } from './contract.ts';

export interface TextPattern {
  /** As the user wrote it (for messages). */
  readonly source: string;
  test(value: string): boolean;
}

const MAX_PATTERN_LENGTH = 256;
/** Values longer than this are cut before matching, so a regex cannot be fed megabytes. */
const MAX_SUBJECT_LENGTH = 1024;

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
  return new RegExp(`^${body}$`, 'is');
}

/** Parses one pattern, or throws DetailsError at `path`. */
export function parsePattern(raw: unknown, path: string): TextPattern {
  if (typeof raw !== 'string' || raw === '') throw new DetailsError(path, 'must be a non-empty string (glob or /regex/)');
  if (raw.length > MAX_PATTERN_LENGTH) throw new DetailsError(path, `longer than ${MAX_PATTERN_LENGTH} characters`);
  const regex = /^\/(.+)\/([imsu]*)$/s.exec(raw);
  let re: RegExp;
  if (regex !== null) {
    try {
      re = new RegExp(regex[1]!, regex[2]);
    } catch (error) {
      throw new DetailsError(path, `invalid regular expression: ${(error as Error).message}`, { cause: error });
    }
  } else {
    re = globToRegExp(raw);
  }
  return { source: raw, test: (value) => re.test(value.slice(0, MAX_SUBJECT_LENGTH)) };
}
