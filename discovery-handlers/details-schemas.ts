/**
 * Each built-in handler's details schema, serialised to JSON Schema (`<handler>/details.schema.json`,
 * written by `npm run docs:handlers` from `<handler>/schema.ts`; details-docs.test.ts fails when
 * one is stale). The CLI reads these for `tether discover <handler> --help`, one handler at a
 * time: loading TypeBox (~700 modules) or a handler would cost the help more than its budget.
 */
import type { JsonSchema } from './details-reference.ts';
import type { BuiltinHandlerName } from './names.ts';

/** Loads one handler's serialised details schema. */
export const DETAILS_JSON_SCHEMAS: Readonly<Record<BuiltinHandlerName, () => Promise<JsonSchema>>> = {
  'debug-echo': async () => (await import('./debug-echo/details.schema.json', { with: { type: 'json' } })).default,
  mqtt: async () => (await import('./mqtt/details.schema.json', { with: { type: 'json' } })).default,
  mdns: async () => (await import('./mdns/details.schema.json', { with: { type: 'json' } })).default,
  onvif: async () => (await import('./onvif/details.schema.json', { with: { type: 'json' } })).default,
  usb: async () => (await import('./usb/details.schema.json', { with: { type: 'json' } })).default,
};
