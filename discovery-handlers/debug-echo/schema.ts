/**
 * The `details` of a `debug-echo` DeviceDiscovery. This schema is the one description:
 * debug-echo.ts validates with it, and the docs table (docs/handlers/debug-echo.md) and
 * `tether discover debug-echo --help` are generated from it (`npm run docs:handlers`).
 */
import { Type, type Static } from 'typebox';
import { closedObject } from '../details-schema.ts';

export const DebugEchoDetailsSchema = closedObject(
  {
    descriptions: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
      description: 'One device per entry: id = the description, property DEBUG_ECHO_DESCRIPTION = the description.',
      minItems: 1,
      maxItems: 10_000,
      uniqueItems: true,
      errorMessage: { uniqueItems: 'duplicate description' },
    }),
    shared: Type.Boolean({ description: 'Whether every node reports the same devices (one Device, many nodes).', default: false }),
    availabilityFile: Type.Optional(
      Type.String({
        description: 'While this file contains the word OFFLINE, no devices are reported (followed with fs.watch). Default: always online.',
        maxLength: 4096,
        pattern: '^/',
        errorMessage: 'must be an absolute path',
      }),
    ),
  },
  {
    description: 'Devices from a list of descriptions, no hardware: for demos and tests (Akri-compatible).',
    examples: [{ descriptions: ['foo0', 'foo1'] }],
  },
);

export type DebugEchoDetails = Static<typeof DebugEchoDetailsSchema>;
