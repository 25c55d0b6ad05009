/**
 * The `details` of a `udev` DeviceDiscovery — Akri's udev discoveryDetails (`udevRules`,
 * `groupRecursive`, `permissions`, same names and meaning) plus Tether's schedule and bound.
 * This schema is the one description: details.ts validates with it, and the docs table
 * (docs/handlers/udev.md) and `tether discover udev --help` are generated from it
 * (`npm run docs:handlers`).
 */
import { Type, type Static } from 'typebox';
import { closedObject } from '../details-schema.ts';

export const UdevDetailsSchema = closedObject(
  {
    udevRules: Type.Array(
      Type.String({
        description: 'A udev rule: comma-separated match expressions.',
        minLength: 1,
        maxLength: 1024,
      }),
      {
        description:
          'udev rules (Akri\'s subset): a device is found when every expression of any one rule holds, e.g. KERNEL=="video[0-9]*", SUBSYSTEM=="tty", ATTRS{idVendor}=="0403". Keys KERNEL, SUBSYSTEM, DRIVER, DEVPATH, ATTR{name}, ENV{name}, TAG and the parent forms KERNELS, SUBSYSTEMS, DRIVERS, ATTRS{name}, TAGS; operators == and !=; values are udev globs (*, ?, [a-z], [!…], a|b).',
        maxItems: 64,
      },
    ),
    groupRecursive: Type.Boolean({
      description:
        'Group matched devices that lie below another matched device into that one (id = its devpath, nodes UDEV_DEVNODE_0, _1, …): e.g. a USB camera with its video nodes.',
      default: false,
    }),
    permissions: Type.String({
      description: "Device node permissions: any of r, w, m, in that order (Akri's default: rwm).",
      minLength: 1,
      maxLength: 3,
      pattern: '^r?w?m?$',
      default: 'rwm',
      errorMessage: 'must be a combination of r, w, m in that order (e.g. "rw")',
    }),
    pollIntervalSeconds: Type.Number({
      description: 'How often sysfs is rescanned regardless of udev database changes (a missed change costs at most this).',
      minimum: 0.05,
      maximum: 600,
      default: 5,
    }),
    maxDevices: Type.Integer({
      description: 'Most devices reported; beyond it the first by devpath are kept and a warning is logged.',
      minimum: 1,
      maximum: 4096,
      default: 256,
    }),
  },
  {
    description:
      "Devices of any subsystem matched by udev rules (Akri's udev handler): video, tty, hidraw, sound, block, …, with their device nodes; never shared between nodes.",
    examples: [{ udevRules: ['SUBSYSTEM=="video4linux", KERNEL=="video[0-9]*"'] }],
  },
);

export type UdevDetailsInput = Static<typeof UdevDetailsSchema>;
