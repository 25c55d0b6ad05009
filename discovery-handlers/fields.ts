/**
 * Small helpers for validating handler details with field paths in every error
 * (`details.brokers[0].url: must be …`). Pure; shared by the mqtt and mdns handlers.
 */
import { DetailsError } from './contract.ts';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One object of the details, with its path; unknown keys are refused. */
export class Fields {
  readonly raw: Record<string, unknown>;
  readonly path: string;

  constructor(raw: unknown, path: string, known: readonly string[]) {
    if (!isPlainObject(raw)) throw new DetailsError(path, 'must be an object');
    for (const key of Object.keys(raw)) {
      if (!known.includes(key)) throw new DetailsError(`${path}.${key}`, `unknown field; expected one of ${known.join(', ')}`);
    }
    this.raw = raw;
    this.path = path;
  }

  at(key: string): string {
    return `${this.path}.${key}`;
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  string(key: string, options: { default?: string; min?: number; max?: number; pattern?: RegExp; hint?: string } = {}): string {
    const value = this.raw[key] ?? options.default;
    if (typeof value !== 'string') throw new DetailsError(this.at(key), 'must be a string');
    if (value.includes('\0')) throw new DetailsError(this.at(key), 'must not contain NUL');
    if (value.length < (options.min ?? 1)) throw new DetailsError(this.at(key), 'must not be empty');
    if (value.length > (options.max ?? 1024)) throw new DetailsError(this.at(key), `longer than ${options.max ?? 1024} characters`);
    if (options.pattern !== undefined && !options.pattern.test(value)) throw new DetailsError(this.at(key), options.hint ?? `must match ${options.pattern}`);
    return value;
  }

  optionalString(key: string, options: { max?: number; pattern?: RegExp; hint?: string } = {}): string | undefined {
    return this.has(key) ? this.string(key, options) : undefined;
  }

  number(key: string, options: { default: number; min: number; max: number; integer?: boolean }): number {
    const value = this.raw[key] ?? options.default;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new DetailsError(this.at(key), 'must be a number');
    if (options.integer !== false && !Number.isInteger(value)) throw new DetailsError(this.at(key), 'must be an integer');
    if (value < options.min || value > options.max) throw new DetailsError(this.at(key), `must be between ${options.min} and ${options.max}`);
    return value;
  }

  optionalNumber(key: string, options: { min: number; max: number; integer?: boolean }): number | undefined {
    return this.has(key) ? this.number(key, { ...options, default: 0 }) : undefined;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.raw[key] ?? fallback;
    if (typeof value !== 'boolean') throw new DetailsError(this.at(key), 'must be true or false');
    return value;
  }

  oneOf<T extends string>(key: string, values: readonly T[], fallback: T): T {
    const value = this.raw[key] ?? fallback;
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
      throw new DetailsError(this.at(key), `must be one of ${values.join(', ')}`);
    }
    return value as T;
  }

  list(key: string, options: { min?: number; max: number }): unknown[] {
    const value = this.raw[key];
    if (!Array.isArray(value)) throw new DetailsError(this.at(key), 'must be a list');
    if (value.length < (options.min ?? 0)) throw new DetailsError(this.at(key), `needs at least ${options.min} entr${options.min === 1 ? 'y' : 'ies'}`);
    if (value.length > options.max) throw new DetailsError(this.at(key), `at most ${options.max} entries`);
    return value;
  }

  stringList(key: string, options: { min?: number; max: number; maxLength?: number }): string[] {
    return this.list(key, options).map((item, i) => {
      if (typeof item !== 'string' || item.length === 0) throw new DetailsError(`${this.at(key)}[${i}]`, 'must be a non-empty string');
      if (item.length > (options.maxLength ?? 1024)) throw new DetailsError(`${this.at(key)}[${i}]`, 'too long');
      return item;
    });
  }
}

/** Compiles a user regular expression (bounded length; `u` flag), with the field path on error. */
export function compileRegex(source: unknown, path: string): RegExp {
  if (typeof source !== 'string' || source.length === 0) throw new DetailsError(path, 'must be a non-empty regular expression');
  if (source.length > 256) throw new DetailsError(path, 'regular expression longer than 256 characters');
  try {
    return new RegExp(source, 'u');
  } catch (error) {
    throw new DetailsError(path, `invalid regular expression: ${(error as Error).message}`, { cause: error });
  }
}
