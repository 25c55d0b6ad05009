/**
 * The udev rule subset Akri's udev handler speaks, parsed by hand. Pure.
 *
 * A rule is comma-separated match expressions, `KEY=="value"` or `KEY!="value"`, e.g.
 * `SUBSYSTEM=="video4linux", ATTRS{idVendor}=="046d", KERNEL=="video[0-9]*"`. Keys:
 * - on the device itself: `KERNEL`, `SUBSYSTEM`, `DRIVER`, `DEVPATH`, `ATTR{name}`, `ENV{name}`, `TAG`;
 * - on the device or any ancestor: `KERNELS`, `SUBSYSTEMS`, `DRIVERS`, `ATTRS{name}`, `TAGS`.
 * Values are udev globs (glob.ts). Everything that makes udev *do* something — assignments
 * (`=`, `+=`, `-=`, `:=`) and action keys (`RUN`, `NAME`, `SYMLINK`, …) — is refused with a reason,
 * never silently ignored: a rule that was meant to act would otherwise match more than intended.
 */
import { DetailsError } from '../contract.ts';
import { compileGlob, GlobError, type UdevGlob } from './glob.ts';

/** Longest rule accepted. */
export const MAX_RULE_LENGTH = 1024;
/** Most match expressions in one rule. */
export const MAX_EXPRESSIONS = 32;
/** Longest `{name}` of ATTR/ATTRS/ENV. */
export const MAX_NAME_LENGTH = 128;

/** Keys matched against the device itself. */
export const DEVICE_KEYS = ['KERNEL', 'SUBSYSTEM', 'DRIVER', 'DEVPATH', 'ATTR', 'ENV', 'TAG'] as const;
/** Keys matched against the device or one of its ancestors (all on the same one, as udev does). */
export const PARENT_KEYS = ['KERNELS', 'SUBSYSTEMS', 'DRIVERS', 'ATTRS', 'TAGS'] as const;

export type DeviceKey = (typeof DEVICE_KEYS)[number];
export type ParentKey = (typeof PARENT_KEYS)[number];
export type MatchKey = DeviceKey | ParentKey;

/** One `KEY{name}=="value"` / `KEY{name}!="value"`. */
export interface MatchExpression {
  readonly key: MatchKey;
  /** The `{name}` of ATTR, ATTRS and ENV; undefined for the other keys. */
  readonly name: string | undefined;
  /** `!=`: holds when the value does not match. */
  readonly negate: boolean;
  readonly value: UdevGlob;
}

/** A parsed rule: a device matches it when every expression holds. */
export interface UdevRule {
  readonly source: string;
  readonly expressions: readonly MatchExpression[];
}

const NAMED_KEYS: ReadonlySet<MatchKey> = new Set(['ATTR', 'ATTRS', 'ENV']);
const SUPPORTED: ReadonlySet<string> = new Set([...DEVICE_KEYS, ...PARENT_KEYS]);

const ACTION = 'it makes udev act on the device; discovery rules only match';
/** udev keys this subset refuses, and why. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  ACTION: 'discovery looks at the devices present, not at events',
  NAME: ACTION,
  SYMLINK: `${ACTION} (match the links with ENV{DEVLINKS})`,
  OWNER: ACTION,
  GROUP: ACTION,
  MODE: ACTION,
  SECLABEL: ACTION,
  OPTIONS: ACTION,
  RUN: ACTION,
  LABEL: ACTION,
  GOTO: ACTION,
  IMPORT: ACTION,
  WAIT_FOR: ACTION,
  SYSCTL: ACTION,
  PROGRAM: 'it runs a program',
  RESULT: 'it matches the output of PROGRAM',
  TEST: 'it tests for a file (match an attribute with ATTR{name}=="?*" instead)',
  CONST: 'it matches system constants',
};
const HINTS: Readonly<Record<string, string>> = {
  DEVTYPE: ' (match ENV{DEVTYPE})',
  DEVNAME: ' (match ENV{DEVNAME})',
  ATTRIBUTE: ' (ATTR{name})',
  PROPERTY: ' (ENV{name})',
};

const ATTR_NAME = /^[A-Za-z0-9_.:+@-]+(\/[A-Za-z0-9_.:+@-]+)*$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const quote = (s: string): string => JSON.stringify(s);

/** Validates a `{name}`: sysfs attribute paths stay inside the device directory. */
function checkName(key: MatchKey, name: string, fail: (message: string) => never): void {
  if (name.length === 0) fail(`${key}{} needs a name`);
  if (name.length > MAX_NAME_LENGTH) fail(`${key}{…} name is longer than ${MAX_NAME_LENGTH} characters`);
  if (CONTROL.test(name)) fail(`${key}{…} name has a control character`);
  if (key === 'ENV') return;
  if (!ATTR_NAME.test(name) || name.split('/').some((s) => s === '.' || s === '..'))
    fail(`${key}{${name}}: an attribute name is a file below the device directory (letters, digits, _ . : + @ - and /, no ..)`);
}

/** A cursor over one rule's text; `fail` throws the DetailsError for the rule's field. */
class Scanner {
  pos = 0;
  readonly text: string;
  readonly fail: (message: string) => never;
  constructor(text: string, fail: (message: string) => never) {
    this.text = text;
    this.fail = fail;
  }

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  skipSpace(): void {
    while (this.text[this.pos] === ' ' || this.text[this.pos] === '\t') this.pos++;
  }

  /** `at character N` for messages, 1-based as editors count. */
  where(): string {
    return `at character ${this.pos + 1}`;
  }

  found(): string {
    return this.done ? 'the end of the rule' : quote(this.text.slice(this.pos, this.pos + 12));
  }

  read(pattern: RegExp): string {
    pattern.lastIndex = this.pos;
    const m = pattern.exec(this.text);
    if (m === null) return '';
    this.pos += m[0].length;
    return m[0];
  }
}

function readKey(s: Scanner): { key: MatchKey; name: string | undefined } {
  const key = s.read(/[A-Za-z_][A-Za-z0-9_]*/y);
  if (key === '') s.fail(`expected a key (KERNEL, SUBSYSTEM, ATTRS{name}, …) ${s.where()}, found ${s.found()}`);
  const reason = UNSUPPORTED[key];
  if (reason !== undefined) s.fail(`unsupported key "${key}": ${reason}`);
  if (!SUPPORTED.has(key))
    s.fail(
      `unknown key "${key}"${HINTS[key] ?? ''}; supported: ${[...DEVICE_KEYS, ...PARENT_KEYS].map((k) => (NAMED_KEYS.has(k) ? `${k}{name}` : k)).join(', ')}`,
    );
  const matchKey = key as MatchKey;
  let name: string | undefined;
  if (s.text[s.pos] === '{') {
    const end = s.text.indexOf('}', s.pos + 1);
    if (end < 0) s.fail(`"{" after ${key} is not closed by "}"`);
    name = s.text.slice(s.pos + 1, end);
    s.pos = end + 1;
    if (!NAMED_KEYS.has(matchKey)) s.fail(`${key} takes no {name}`);
    checkName(matchKey, name, s.fail);
  } else if (NAMED_KEYS.has(matchKey)) {
    s.fail(`${key} needs a name: ${key}{name}`);
  }
  return { key: matchKey, name };
}

function readOperator(s: Scanner, key: string): boolean {
  s.skipSpace();
  const op = s.read(/==|!=|\+=|-=|:=|=/y);
  if (op === '==' || op === '!=') return op === '!=';
  if (op !== '') s.fail(`unsupported operator "${op}" after ${key}: it assigns; discovery rules only match (use == or !=)`);
  return s.fail(`expected == or != after ${key} ${s.where()}, found ${s.found()}`);
}

function readValue(s: Scanner, key: string): UdevGlob {
  s.skipSpace();
  if (s.text[s.pos] !== '"') s.fail(`the value of ${key} must be in double quotes ${s.where()}, found ${s.found()}`);
  const end = s.text.indexOf('"', s.pos + 1);
  if (end < 0) s.fail(`the value of ${key} has no closing double quote`);
  const raw = s.text.slice(s.pos + 1, end);
  s.pos = end + 1;
  if (CONTROL.test(raw)) s.fail(`the value of ${key} has a control character`);
  try {
    return compileGlob(raw);
  } catch (error) {
    if (error instanceof GlobError) s.fail(`the value of ${key}, ${quote(raw)}: ${error.message}`);
    throw error;
  }
}

/**
 * Parses one rule. Throws DetailsError at `path` (e.g. `details.udevRules[1]`) saying what is
 * wrong and where; never anything else, whatever the text.
 */
export function parseUdevRule(text: string, path: string): UdevRule {
  const fail = (message: string): never => {
    throw new DetailsError(path, message);
  };
  if (text.length > MAX_RULE_LENGTH) fail(`a rule is at most ${MAX_RULE_LENGTH} characters (this one has ${text.length})`);
  const s = new Scanner(text, fail);
  s.skipSpace();
  if (s.done) fail('empty rule (it would match every device); write at least one match expression, e.g. SUBSYSTEM=="tty"');
  const expressions: MatchExpression[] = [];
  for (;;) {
    if (expressions.length === MAX_EXPRESSIONS) fail(`a rule has at most ${MAX_EXPRESSIONS} match expressions`);
    const { key, name } = readKey(s);
    const label = name === undefined ? key : `${key}{${name}}`;
    const negate = readOperator(s, label);
    expressions.push({ key, name, negate, value: readValue(s, label) });
    s.skipSpace();
    if (s.done) break;
    if (s.text[s.pos] !== ',') fail(`expected "," between match expressions ${s.where()}, found ${s.found()}`);
    s.pos++;
    s.skipSpace();
    if (s.done) fail('the rule ends with ","; a match expression must follow it');
  }
  return { source: text, expressions };
}

/** Whether `key` walks up the device's ancestors. */
export function isParentKey(key: MatchKey): key is ParentKey {
  return (PARENT_KEYS as readonly string[]).includes(key);
}
