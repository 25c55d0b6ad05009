/**
 * `npm run docs:handlers`: writes, from each built-in handler's details schema
 * (`<handler>/schema.ts`), its serialised JSON Schema (`<handler>/details.schema.json`, which
 * `tether discover <handler> --help` reads) and the details reference table of its docs page
 * (`docs/handlers/<handler>.md`, between the marker comments; a missing page is created).
 * details-docs.test.ts fails when a written file is stale.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { TSchema } from 'typebox';
import { fieldRows, renderMarkdownTable, type JsonSchema } from './details-reference.ts';
import { BUILTIN_HANDLER_NAMES, type BuiltinHandlerName } from './names.ts';

/** The TypeBox details schema of every built-in handler. */
export const DETAILS_SCHEMAS: Readonly<Record<BuiltinHandlerName, () => Promise<TSchema>>> = {
  'debug-echo': async () => (await import('./debug-echo/schema.ts')).DebugEchoDetailsSchema,
  mqtt: async () => (await import('./mqtt/schema.ts')).MqttDetailsSchema,
  mdns: async () => (await import('./mdns/schema.ts')).MdnsDetailsSchema,
  onvif: async () => (await import('./onvif/schema.ts')).OnvifDetailsSchema,
  usb: async () => (await import('./usb/schema.ts')).UsbDetailsSchema,
  udev: async () => (await import('./udev/schema.ts')).UdevDetailsSchema,
  opcua: async () => (await import('./opcua/schema.ts')).OpcuaDetailsSchema,
};

export const BEGIN_MARKER =
  '<!-- details-reference:begin — generated from the handler’s schema.ts by `npm run docs:handlers`; do not edit -->';
export const END_MARKER = '<!-- details-reference:end -->';

/** A file the generator writes, with its content. */
export interface GeneratedFile {
  readonly url: URL;
  readonly content: string;
}

/** The schema as JSON Schema (TypeBox's internal markers are not enumerable). */
export function serialiseSchema(schema: TSchema): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}

function newPage(handler: string, schema: JsonSchema): string {
  const about = typeof schema['description'] === 'string' ? schema['description'] : '';
  return `# \`${handler}\` discovery handler\n\n${about}\n\n## Details reference\n\n${BEGIN_MARKER}\n${END_MARKER}\n`;
}

/** `page` with `section` between the markers. */
export function withReference(page: string, section: string): string {
  const begin = page.indexOf(BEGIN_MARKER);
  const end = page.indexOf(END_MARKER);
  if (begin < 0 || end < begin) throw new Error(`the page has no ${BEGIN_MARKER} … ${END_MARKER} section`);
  return `${page.slice(0, begin + BEGIN_MARKER.length)}\n\n${section}\n${page.slice(end)}`;
}

function referenceSection(handler: string, schema: JsonSchema): string {
  const help = `\`tether discover ${handler} --help\` prints the same reference in a terminal, with an example \`--details\`.\n`;
  return `${renderMarkdownTable(fieldRows(schema))}\n${help}`;
}

/** What `npm run docs:handlers` writes for one handler. */
export async function generatedFiles(handler: BuiltinHandlerName): Promise<GeneratedFile[]> {
  const schema = await DETAILS_SCHEMAS[handler]();
  const json = serialiseSchema(schema);
  const plain = JSON.parse(json) as JsonSchema;
  const pageUrl = new URL(`../docs/handlers/${handler}.md`, import.meta.url);
  const page = existsSync(pageUrl) ? readFileSync(pageUrl, 'utf8') : newPage(handler, plain);
  return [
    { url: new URL(`./${handler}/details.schema.json`, import.meta.url), content: json },
    { url: pageUrl, content: withReference(page, referenceSection(handler, plain)) },
  ];
}

export async function generateAll(): Promise<URL[]> {
  const written: URL[] = [];
  for (const handler of BUILTIN_HANDLER_NAMES) {
    for (const file of await generatedFiles(handler)) {
      await writeFile(file.url, file.content);
      written.push(file.url);
    }
  }
  return written;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const url of await generateAll()) process.stdout.write(`wrote ${fileURLToPath(url)}\n`);
}
