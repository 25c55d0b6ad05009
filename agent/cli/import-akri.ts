/**
 * `tether import-akri FILE|-`: reads Akri Configurations (a file or stdin, YAML or JSON),
 * converts them with akri-configuration.ts and prints DeviceDiscoveries for `kubectl apply -f -`.
 * The I/O edge of the conversion: reading, parsing text into documents, formatting, and
 * deciding what is a failure. All or nothing: when any document cannot be converted, nothing
 * goes to stdout, so a pipe into kubectl never applies half of a migration.
 */
import { readFile } from 'node:fs/promises';
import { parseAllDocuments, stringify } from 'yaml';
import type { HandlerSource } from '../../api/schema.ts';
import { importAkriDocuments, type AkriImport, type ImportedDiscovery } from './akri-configuration.ts';

/** yaml: documents separated by `---`, notes as comments; json: one `v1` List. */
export type ImportOutputFormat = 'yaml' | 'json';

export interface ImportAkriOptions {
  /** A file path, or `-` for stdin. */
  readonly input: string;
  readonly output: ImportOutputFormat;
  readonly handlerSource?: HandlerSource;
  /** Reads all of stdin (for `-`). */
  readonly readStdin: () => Promise<string>;
  /** stdout. */
  readonly write: (text: string) => void;
  /** stderr, one line (without its newline) per call. */
  readonly warn: (line: string) => void;
}

/** The conversion failed: the message says why and where; nothing was written to stdout. */
export class ImportAkriError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportAkriError';
  }
}

/** All of a stream as UTF-8 text. */
export async function readStream(stream: AsyncIterable<Buffer | string>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Text → documents, one per YAML document (JSON is YAML). A document that does not parse
 * is an error naming its number (from 1) and is left `undefined` so the numbering holds.
 */
export function parseDocuments(text: string): { documents: unknown[]; errors: string[] } {
  const documents: unknown[] = [];
  const errors: string[] = [];
  parseAllDocuments(text).forEach((document, i) => {
    const [error] = document.errors;
    if (error === undefined) {
      documents.push(document.toJS() as unknown);
      return;
    }
    errors.push(`document ${i + 1}: not valid YAML or JSON: ${(error.message.split('\n')[0] ?? '').replace(/:$/, '')}`);
    documents.push(undefined);
  });
  return { documents, errors };
}

function yamlDocument({ discovery, source, notes }: ImportedDiscovery): string {
  const comments = [`Converted by tether import-akri from the Akri ${source}.`, ...notes].map((line) => `# ${line}\n`).join('');
  return `${comments}${stringify(discovery, { lineWidth: 0 })}`;
}

/** The converted DeviceDiscoveries as text, ready for `kubectl apply -f -`. */
export function formatDiscoveries(discoveries: readonly ImportedDiscovery[], output: ImportOutputFormat): string {
  if (output === 'json')
    return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: discoveries.map((d) => d.discovery) }, null, 2)}\n`;
  return discoveries.map(yamlDocument).join('---\n');
}

/** Errors in document order (each starts with `document <n>`). */
function byDocument(errors: readonly string[]): string[] {
  const number = (error: string): number => Number(/^document (\d+)/.exec(error)?.[1] ?? 0);
  return [...errors].sort((a, b) => number(a) - number(b));
}

function failure(result: AkriImport, input: string, documents: number): ImportAkriError | undefined {
  const where = input === '-' ? 'stdin' : input;
  if (result.errors.length > 0) {
    const count = result.errors.length === 1 ? 'a document' : `${result.errors.length} documents`;
    return new ImportAkriError(`${count} of ${where} cannot be converted, so nothing was printed:\n  ${result.errors.join('\n  ')}`);
  }
  if (result.discoveries.length > 0) return undefined;
  if (documents === 0) return new ImportAkriError(`${where} holds no documents: nothing to convert`);
  return new ImportAkriError(
    `${where} holds no Akri Configuration (apiVersion akri.sh/v0, kind Configuration)${result.skipped > 0 ? `; ${result.skipped} other object(s) skipped` : ''}`,
  );
}

/**
 * Runs the command: warnings go to `warn` as they are, then either the DeviceDiscoveries to
 * `write`, or an ImportAkriError (exit 1) when anything cannot be converted or nothing could.
 * @throws Error (with cause) when the input cannot be read.
 */
export async function importAkri(options: ImportAkriOptions): Promise<void> {
  let text: string;
  try {
    text = options.input === '-' ? await options.readStdin() : await readFile(options.input, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${options.input === '-' ? 'stdin' : options.input}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = parseDocuments(text);
  const converted = importAkriDocuments(
    parsed.documents,
    options.handlerSource === undefined ? {} : { handlerSource: options.handlerSource },
  );
  const result: AkriImport = { ...converted, errors: byDocument([...parsed.errors, ...converted.errors]) };
  for (const warning of result.warnings) options.warn(`warning: ${warning}`);
  const documents = parsed.documents.filter((d) => d !== null && d !== undefined).length + parsed.errors.length;
  const error = failure(result, options.input, documents);
  if (error !== undefined) throw error;
  if (options.output === 'json')
    for (const { source, notes } of result.discoveries) for (const note of notes) options.warn(`note: ${source}: ${note}`);
  options.write(formatDiscoveries(result.discoveries, options.output));
}
