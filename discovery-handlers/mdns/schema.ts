/**
 * The `details` of an `mdns` DeviceDiscovery. This schema is the one description: details.ts
 * validates with it, and the docs table (docs/handlers/mdns.md) and `tether discover mdns
 * --help` are generated from it (`npm run docs:handlers`).
 */
import { Type, type Static } from 'typebox';
import { closedObject } from '../details-schema.ts';
import { SERVICE_TYPE_PATTERN } from './constants.ts';

const regex = (description: string): ReturnType<typeof Type.String> =>
  Type.String({ description, minLength: 1, maxLength: 256, errorMessage: 'must be a non-empty regular expression' });

export const MdnsDetailsSchema = closedObject(
  {
    serviceTypes: Type.Array(
      Type.String({
        maxLength: 128,
        pattern: SERVICE_TYPE_PATTERN,
        errorMessage: 'must be a DNS-SD service type like _ipp._tcp (or a subtype: _printer._sub._http._tcp)',
      }),
      {
        description: 'Service types to browse: _ipp._tcp, _ipp._tcp.local, or a subtype _universal._sub._ipp._tcp.',
        minItems: 1,
        maxItems: 32,
      },
    ),
    interfaces: Type.Optional(
      Type.Array(
        Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_.:@-]{1,15}$', errorMessage: 'must be an interface name or an IPv4 address' }),
        {
          description: 'Interface names or IPv4 addresses to browse on. Default: every non-internal IPv4 interface.',
          minItems: 1,
          maxItems: 16,
        },
      ),
    ),
    filters: closedObject(
      {
        instanceName: Type.Optional(regex('Regular expression the instance name must match (^Office).')),
        host: Type.Optional(regex('Regular expression the SRV host must match (^cam-.*\\.local$).')),
        txt: Type.Optional(
          Type.Record(
            Type.String(),
            Type.Union([Type.Literal(true), regex('Regular expression the value must match.')], {
              errorMessage: 'must be a regular expression or true (key present)',
            }),
            {
              description: 'TXT key → regular expression its value must match, or true (key present).',
              maxProperties: 32,
              propertyNames: {
                minLength: 1,
                maxLength: 255,
                pattern: '^[\\x20-\\x3c\\x3e-\\x7e]+$',
                errorMessage: 'TXT keys are printable ASCII without =',
              },
            },
          ),
        ),
      },
      {
        description: 'Which instances are reported. Regular expressions are JavaScript (u flag), unanchored unless anchored.',
        default: {},
      },
    ),
    discoveryTimeoutSeconds: Type.Number({
      description: 'First browse window before the first full report.',
      minimum: 0.1,
      maximum: 60,
      default: 1.5,
    }),
    maxQueryIntervalSeconds: Type.Integer({
      description:
        'Browse queries go out after 0 s, 1 s, 2 s, 4 s … up to this interval (RFC 6762 §5.2); less than 3600 is more traffic than the RFC asks for.',
      minimum: 1,
      maximum: 86_400,
      default: 3600,
    }),
    maxDevices: Type.Integer({ description: 'Instances tracked per discovery.', minimum: 1, maximum: 100_000, default: 1024 }),
    shared: Type.Boolean({
      description: 'Instance names are unique on a link: nodes on the same link see the same device.',
      default: true,
    }),
  },
  {
    description: 'Services announced with mDNS / DNS-SD (printers, cameras, your own devices) on the node’s links.',
    examples: [{ serviceTypes: ['_ipp._tcp'], filters: { txt: { pdl: 'pdf' } } }],
  },
);

export type MdnsDetailsInput = Static<typeof MdnsDetailsSchema>;
