/**
 * Each built-in handler's details schema, serialised to JSON Schema (`<handler>/details.schema.json`,
 * written by `npm run docs:handlers` from `<handler>/schema.ts`; details-docs.test.ts fails when
 * one is stale). The CLI reads these for `tether discover <handler> --help`, one handler at a
 * time: loading TypeBox (~700 modules) or a handler would cost the help more than its budget.
 */
import { renderDetailsHelp, wrap, type JsonSchema } from './details-reference.ts';
import { BUILTIN_HANDLER_NAMES, builtinNameFor, type BuiltinHandlerName } from './names.ts';

/** Loads one handler's serialised details schema. */
export const DETAILS_JSON_SCHEMAS: Readonly<Record<BuiltinHandlerName, () => Promise<JsonSchema>>> = {
  'debug-echo': async () => (await import('./debug-echo/details.schema.json', { with: { type: 'json' } })).default,
  mqtt: async () => (await import('./mqtt/details.schema.json', { with: { type: 'json' } })).default,
  mdns: async () => (await import('./mdns/details.schema.json', { with: { type: 'json' } })).default,
  onvif: async () => (await import('./onvif/details.schema.json', { with: { type: 'json' } })).default,
  usb: async () => (await import('./usb/details.schema.json', { with: { type: 'json' } })).default,
  udev: async () => (await import('./udev/details.schema.json', { with: { type: 'json' } })).default,
  opcua: async () => (await import('./opcua/details.schema.json', { with: { type: 'json' } })).default,
};

/**
 * The text `tether discover --help` adds after its usage: with a handler, that handler's
 * details fields (path, type, default, limits, description) and an example `--details`;
 * without one, the handlers and what each finds. Throws for an unknown handler.
 */
export async function discoverHelpText(handler: string | undefined): Promise<string> {
  if (handler === undefined) {
    const lines = ['', 'Handlers (tether discover <handler> --help shows its details fields):'];
    const width = Math.max(...BUILTIN_HANDLER_NAMES.map((name) => name.length));
    for (const name of BUILTIN_HANDLER_NAMES) {
      const description = (await DETAILS_JSON_SCHEMAS[name]())['description'];
      const [first = '', ...rest] = wrap(typeof description === 'string' ? description : '', ' '.repeat(width + 4), 100);
      lines.push(`  ${name.padEnd(width)}  ${first.trimStart()}`, ...rest);
    }
    return `${lines.join('\n')}\n`;
  }
  const builtin = builtinNameFor(handler);
  if (builtin === undefined)
    throw new Error(`unknown discovery handler "${handler}"; known: ${[...BUILTIN_HANDLER_NAMES].sort().join(', ')}`);
  return renderDetailsHelp(builtin, await DETAILS_JSON_SCHEMAS[builtin]());
}
