/**
 * The `details` of a `usb` DeviceDiscovery. This schema is the one description: details.ts
 * validates with it, and the docs table (docs/handlers/usb.md) and `tether discover usb
 * --help` are generated from it (`npm run docs:handlers`).
 */
import { Type, type Static } from 'typebox';
import { closedObject, stringEnum } from '../details-schema.ts';
import { NODE_KINDS } from './constants.ts';

const hexId = (description: string): ReturnType<typeof Type.Optional<ReturnType<typeof Type.String>>> =>
  Type.Optional(
    Type.String({ description, maxLength: 6, pattern: '^(0x)?[0-9a-fA-F]{4}$', errorMessage: 'must be 4 hex digits, e.g. "0403"' }),
  );

const textPattern = (description: string): ReturnType<typeof Type.Optional<ReturnType<typeof Type.String>>> =>
  Type.Optional(
    Type.String({ description: `${description} Case-insensitive glob (FT232*) or /regex/flags.`, minLength: 1, maxLength: 256 }),
  );

const byte = (
  description: string,
  names: boolean,
): ReturnType<typeof Type.Optional<ReturnType<typeof Type.Union<[ReturnType<typeof Type.Integer>, ReturnType<typeof Type.String>]>>>> =>
  Type.Optional(
    Type.Union([Type.Integer({ minimum: 0, maximum: 255 }), Type.String({ minLength: 1, maxLength: 32 })], {
      description,
      errorMessage: `must be a byte (0-255 or hex like "0e")${names ? ' or a class name' : ''}`,
    }),
  );

export const UsbMatcherSchema = closedObject(
  {
    vendorId: hexId('Vendor id, 4 hex digits ("0403", "0x0403").'),
    productId: hexId('Product id, 4 hex digits.'),
    serial: textPattern('Serial number; a device without one does not match.'),
    manufacturer: textPattern('Manufacturer string.'),
    product: textPattern('Product string.'),
    driver: textPattern('Bound driver of any interface (cdc_acm, ftdi_sio, uvcvideo).'),
    portPath: textPattern('sysfs name, the physical port (1-1.*: everything behind the hub in port 1).'),
    class: byte(
      'USB class: byte (14, "0e") or name (audio, cdc, hid, printer, storage, hub, cdc-data, video, wireless, misc, vendor, …), matched against the device descriptor or any one interface.',
      true,
    ),
    subclass: byte('Subclass (needs class), on the same descriptor.', false),
    protocol: byte('Protocol (needs class), on the same descriptor.', false),
  },
  {
    description: 'Holds when every field it sets holds.',
    minProperties: 1,
    errorMessage: {
      minProperties:
        'must set at least one of vendorId, productId, serial, manufacturer, product, driver, portPath, class, subclass, protocol',
    },
  },
);

export const UsbDetailsSchema = closedObject(
  {
    match: Type.Array(UsbMatcherSchema, {
      description: 'A device matching any of these is reported; empty: every device except hubs.',
      maxItems: 256,
      default: [],
    }),
    exclude: Type.Array(UsbMatcherSchema, { description: 'A device matching any of these is not reported.', maxItems: 256, default: [] }),
    identity: stringEnum(['auto', 'serial', 'port'] as const, {
      description: 'Device id: auto = the serial when the device has a unique one, else the physical port path.',
      default: 'auto',
    }),
    nodes: Type.Array(stringEnum(NODE_KINDS), {
      description: 'Which device nodes containers get.',
      maxItems: 16,
      default: ['usb', 'tty', 'video4linux', 'hidraw'],
    }),
    permissions: Type.String({
      description: 'Device node permissions: any of r, w, m, in that order.',
      minLength: 1,
      maxLength: 3,
      pattern: '^r?w?m?$',
      default: 'rw',
      errorMessage: 'must be a combination of r, w, m in that order (e.g. "rw")',
    }),
    pollIntervalSeconds: Type.Number({
      description: 'How often sysfs is rescanned regardless of udev events (a missed event costs at most this).',
      minimum: 0.05,
      maximum: 60,
      default: 1,
    }),
  },
  {
    description: 'USB devices on the node (sysfs), with their device nodes (tty, video, hidraw…); never shared between nodes.',
    default: {},
    examples: [{ match: [{ vendorId: '0403', productId: '6001' }] }],
  },
);

export type UsbDetailsInput = Static<typeof UsbDetailsSchema>;
