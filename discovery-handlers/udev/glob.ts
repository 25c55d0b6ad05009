/**
 * udev's value patterns: `fnmatch(3)` globs (`*`, `?`, `[a-z0-9]`, `[!…]`/`[^…]`, `[[:digit:]]`,
 * `\x` escapes) with `|` separating alternatives, as udev splits them before matching. Pure.
 *
 * Matching is the classic single-backtrack glob algorithm: every token but `*` consumes exactly
 * one character, so remembering the last `*` is enough and a match costs at most
 * pattern length × value length steps — no regex engine, no catastrophic backtracking.
 */

/** Longest pattern accepted (the whole value between the quotes). */
export const MAX_GLOB_LENGTH = 256;
/** Most `|` alternatives in one value. */
export const MAX_ALTERNATIVES = 32;
/** Values are cut to this before matching (a sysfs attribute is at most a page). */
export const MAX_SUBJECT_LENGTH = 4096;

type Token =
  | { readonly kind: 'char'; readonly char: string }
  | { readonly kind: 'any' }
  | { readonly kind: 'star' }
  | { readonly kind: 'set'; readonly negate: boolean; readonly test: (char: string) => boolean };

/** A compiled udev value: matches when any alternative matches the whole value. */
export interface UdevGlob {
  /** As written between the quotes. */
  readonly source: string;
  /** Whether the pattern has no glob characters at all (a plain string, or plain alternatives). */
  readonly plain: boolean;
  test(value: string): boolean;
}

/** Thrown for a malformed pattern; the rule parser turns it into a DetailsError with the field path. */
export class GlobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GlobError';
  }
}

const CLASSES: Readonly<Record<string, (c: string) => boolean>> = {
  alnum: (c) => /^[A-Za-z0-9]$/.test(c),
  alpha: (c) => /^[A-Za-z]$/.test(c),
  blank: (c) => c === ' ' || c === '\t',
  // eslint-disable-next-line no-control-regex
  cntrl: (c) => /^[\u0000-\u001f\u007f]$/.test(c),
  digit: (c) => /^[0-9]$/.test(c),
  graph: (c) => /^[\u0021-\u007e]$/.test(c),
  lower: (c) => /^[a-z]$/.test(c),
  print: (c) => /^[\u0020-\u007e]$/.test(c),
  punct: (c) => /^[!-/:-@[-`{-~]$/.test(c),
  space: (c) => /^[ \t\n\v\f\r]$/.test(c),
  upper: (c) => /^[A-Z]$/.test(c),
  xdigit: (c) => /^[0-9A-Fa-f]$/.test(c),
};

/** One item of a bracket expression at `i`: a `[:class:]`, a range `a-z` or a character. */
function bracketItem(pattern: string, i: number): { test: (c: string) => boolean; next: number } {
  if (pattern.startsWith('[:', i)) {
    const end = pattern.indexOf(':]', i + 2);
    const name = end < 0 ? '' : pattern.slice(i + 2, end);
    const test = CLASSES[name];
    if (test === undefined) throw new GlobError(`unknown character class "[:${name}:]" (known: ${Object.keys(CLASSES).join(', ')})`);
    return { test, next: end + 2 };
  }
  let low = pattern[i]!;
  if (low === '\\' && i + 1 < pattern.length) low = pattern[++i]!;
  i++;
  if (pattern[i] !== '-' || i + 1 >= pattern.length || pattern[i + 1] === ']') return { test: (c) => c === low, next: i };
  let high = pattern[i + 1]!;
  i += 2;
  if (high === '\\' && i < pattern.length) high = pattern[i++]!;
  if (high < low) throw new GlobError(`range "${low}-${high}" is reversed`);
  return { test: (c) => c >= low && c <= high, next: i };
}

/** Parses a bracket expression starting after `[`; returns the token and the index after `]`. */
function bracket(pattern: string, start: number): { token: Token; next: number } {
  let i = start;
  const negate = pattern[i] === '!' || pattern[i] === '^';
  if (negate) i++;
  const tests: ((c: string) => boolean)[] = [];
  // A `]` right after `[` (or `[!`) is a member, not the end.
  for (let first = true; i < pattern.length && (pattern[i] !== ']' || first); first = false) {
    const item = bracketItem(pattern, i);
    tests.push(item.test);
    i = item.next;
  }
  if (i >= pattern.length) throw new GlobError('"[" is not closed by "]"');
  return { token: { kind: 'set', negate, test: (c) => tests.some((t) => t(c)) }, next: i + 1 };
}

function tokenize(pattern: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length;) {
    const c = pattern[i]!;
    if (c === '*') {
      // Consecutive stars are one star: keeps the matcher's work linear in the pattern.
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
      i++;
    } else if (c === '?') {
      tokens.push({ kind: 'any' });
      i++;
    } else if (c === '[') {
      const { token, next } = bracket(pattern, i + 1);
      tokens.push(token);
      i = next;
    } else if (c === '\\' && i + 1 < pattern.length) {
      tokens.push({ kind: 'char', char: pattern[i + 1]! });
      i += 2;
    } else {
      tokens.push({ kind: 'char', char: c });
      i++;
    }
  }
  return tokens;
}

function one(token: Token, c: string): boolean {
  switch (token.kind) {
    case 'char':
      return token.char === c;
    case 'any':
      return true;
    case 'set':
      return token.test(c) !== token.negate;
    case 'star':
      return false;
  }
}

function matchTokens(tokens: readonly Token[], value: string): boolean {
  let t = 0;
  let v = 0;
  let starToken = -1;
  let starValue = 0;
  while (v < value.length) {
    const token = tokens[t];
    if (token?.kind === 'star') {
      starToken = t++;
      starValue = v;
    } else if (token !== undefined && one(token, value[v]!)) {
      t++;
      v++;
    } else if (starToken >= 0) {
      t = starToken + 1;
      v = ++starValue;
    } else {
      return false;
    }
  }
  while (tokens[t]?.kind === 'star') t++;
  return t === tokens.length;
}

/** Compiles a udev value (`video[0-9]*|vbi*`). Throws GlobError for a malformed one. */
export function compileGlob(source: string): UdevGlob {
  if (source.length > MAX_GLOB_LENGTH) throw new GlobError(`is longer than ${MAX_GLOB_LENGTH} characters`);
  const alternatives = source.split('|');
  if (alternatives.length > MAX_ALTERNATIVES) throw new GlobError(`has more than ${MAX_ALTERNATIVES} "|" alternatives`);
  const compiled = alternatives.map(tokenize);
  const plain = compiled.every((tokens) => tokens.every((t) => t.kind === 'char'));
  return {
    source,
    plain,
    test: (value) => {
      const subject = value.length > MAX_SUBJECT_LENGTH ? value.slice(0, MAX_SUBJECT_LENGTH) : value;
      return compiled.some((tokens) => matchTokens(tokens, subject));
    },
  };
}

/** The plain strings a pattern stands for, when it has no glob characters (`tty|video4linux`). */
export function plainAlternatives(glob: UdevGlob): readonly string[] | undefined {
  return glob.plain ? glob.source.split('|').map((a) => a.replace(/\\(.)/g, '$1')) : undefined;
}
