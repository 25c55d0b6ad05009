/**
 * The `details` of an `onvif` DeviceDiscovery. This schema is the one description: details.ts
 * validates with it, and the docs table (docs/handlers/onvif.md) and `tether discover onvif
 * --help` are generated from it (`npm run docs:handlers`). Filter lists take Tether's
 * `{include: [], exclude: []}` or Akri's `{action: Include|Exclude, items: []}`;
 * `discoveryTimeoutSeconds` keeps its Akri meaning.
 */
import { Type, type Static } from 'typebox';
import { closedObject, includeExcludeFilter } from '../details-schema.ts';
import { DEFAULT_DISCOVERY_TIMEOUT_SECONDS, MAX_RESPONSE_BYTES_LIMIT } from './constants.ts';

const filter = includeExcludeFilter(
  'Keep only cameras matching one of these (a camera whose value is unknown fails).',
  'Drop cameras matching one of these.',
);

export const OnvifDetailsSchema = closedObject(
  {
    interfaces: Type.Optional(
      Type.Array(Type.String({ maxLength: 64, pattern: '\\S', errorMessage: 'must be a non-empty string' }), {
        description: 'Interface names or IPv4 addresses for multicast. Default: every non-internal IPv4 interface.',
        maxItems: 64,
      }),
    ),
    multicast: Type.Boolean({ description: 'Multicast Probe and the Hello/Bye listener; false needs unicastTargets.', default: true }),
    unicastTargets: Type.Array(Type.String({ minLength: 1, maxLength: 260 }), {
      description:
        'Probed by unicast: 10.1.0.5, 10.1.0.0/24 (at most /20), cam.example.com, each optionally :port; at most 4096 hosts in all.',
      maxItems: 256,
      default: [],
    }),
    probeIntervalSeconds: Type.Number({ description: 'Re-probe period.', minimum: 0.05, maximum: 3600, default: 5 }),
    discoveryTimeoutSeconds: Type.Optional(
      Type.Number({
        description: `First probe window before the first full report (Akri's name and meaning); at most probeIntervalSeconds. Default: ${DEFAULT_DISCOVERY_TIMEOUT_SECONDS}, or probeIntervalSeconds when shorter.`,
        minimum: 0.01,
        maximum: 60,
      }),
    ),
    offlineAfterMissedProbes: Type.Integer({
      description: 'Consecutive unanswered probe rounds before a silent camera is reported gone.',
      minimum: 1,
      maximum: 1000,
      default: 3,
    }),
    refreshIntervalSeconds: Type.Number({
      description: 'How often the SOAP answers of a known camera are re-read.',
      minimum: 1,
      maximum: 86_400,
      default: 300,
    }),
    soapTimeoutSeconds: Type.Number({ description: 'Per SOAP call.', minimum: 0.05, maximum: 120, default: 5 }),
    // Real answers are 1–20 KiB (16 profiles ≈ 16 KiB); 64 KiB parses in ~10 ms.
    maxResponseBytes: Type.Integer({
      description: 'Per SOAP answer (parsed synchronously, so kept small).',
      minimum: 4096,
      maximum: MAX_RESPONSE_BYTES_LIMIT,
      default: 64 * 1024,
    }),
    maxCameras: Type.Integer({ description: 'Cameras tracked.', minimum: 1, maximum: 100_000, default: 1024 }),
    maxConcurrentRequests: Type.Integer({ description: 'Cameras interrogated at once.', minimum: 1, maximum: 256, default: 32 }),
    streamUris: Type.Boolean({ description: 'Read profiles and RTSP stream URIs (GetServices/GetProfiles/GetStreamUri).', default: true }),
    tlsInsecureSkipVerify: Type.Boolean({ description: 'Accept self-signed certificates on https:// device services.', default: false }),
    shared: Type.Boolean({ description: 'A camera is the same device from every node that sees it.', default: true }),
    allowedServiceCidrs: Type.Array(
      Type.String({ maxLength: 64, pattern: '\\S', errorMessage: 'must be an IPv4 address or CIDR block (a.b.c.d/n)' }),
      {
        description:
          'Where service URLs (device service, media service, stream URIs) may point besides the address the camera answered from: for cameras behind NAT or with a separate media host. Loopback, link-local, multicast, unspecified and broadcast addresses stay refused.',
        maxItems: 256,
        default: [],
      },
    ),
    ipAddresses: filter('IPv4 addresses and CIDR blocks.'),
    macAddresses: filter('MAC addresses, any common spelling.'),
    scopes: filter('Scope URIs; an item matches a scope equal to it or below it.'),
    uuids: filter('Endpoint uuids, urn:uuid: prefix optional.'),
    manufacturers: filter('Case-insensitive globs (Axis*) or /regex/flags.'),
    models: filter('Case-insensitive globs or /regex/flags.'),
  },
  {
    description: 'ONVIF IP cameras found with WS-Discovery (multicast and unicast), read over SOAP: stream URIs, identity, scopes.',
    default: {},
    examples: [{ ipAddresses: { include: ['10.0.0.0/24'] }, manufacturers: { include: ['Axis*'] } }],
  },
);

export type OnvifDetailsInput = Static<typeof OnvifDetailsSchema>;
