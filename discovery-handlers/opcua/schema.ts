/**
 * The `details` of an `opcua` DeviceDiscovery. This schema is the one description: details.ts
 * validates with it, and the docs table (docs/handlers/opcua.md) and `tether discover opcua
 * --help` are generated from it (`npm run docs:handlers`).
 *
 * Akri's discoveryDetails are accepted as they are: `opcuaDiscoveryMethod.standard.discoveryUrls`
 * and `applicationNames: {action: Include|Exclude, items}` (top level as Akri has it, or inside
 * `standard`). Tether's own fields sit beside them.
 */
import { Type, type Static } from 'typebox';
import { closedObject, includeExcludeFilter, stringEnum } from '../details-schema.ts';
import { DEFAULT_DISCOVERY_URL } from './constants.ts';

const url = (description: string): ReturnType<typeof Type.Array<ReturnType<typeof Type.String>>> =>
  Type.Array(Type.String({ maxLength: 1024, pattern: '^opc\\.tcp://[^/?#\\s]+', errorMessage: 'must be an opc.tcp://host:port URL' }), {
    description,
    maxItems: 256,
  });

const items = (description: string): ReturnType<typeof Type.Array<ReturnType<typeof Type.String>>> =>
  Type.Array(Type.String({ maxLength: 1024, pattern: '\\S', errorMessage: 'must be a non-empty string' }), {
    description,
    maxItems: 1024,
    default: [],
  });

const filter = includeExcludeFilter('Keep only servers whose value is one of these.', 'Drop servers whose value is one of these.');

const StandardSchema = closedObject({
  discoveryUrls: Type.Optional(
    url(
      `Local Discovery Servers (or servers) asked with FindServers, then GetEndpoints per server (Akri's field). Default: [${DEFAULT_DISCOVERY_URL}] unless endpointUrls or dnsSd is set.`,
    ),
  ),
  applicationNames: filter('Application names (also accepted here, where some Akri configurations put it).'),
});

export const APPLICATION_TYPES = ['Server', 'Client', 'ClientAndServer', 'DiscoveryServer'] as const;
export const SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;

export const VERIFY_MODES = ['Off', 'Report', 'Require'] as const;
export const SESSION_MODES = ['Off', 'WhenRequired', 'Always'] as const;

const SecuritySchema = closedObject(
  {
    verify: stringEnum(VERIFY_MODES, {
      description:
        'What an untrusted server certificate (not signed by a certificate in OPCUA_TRUSTED_CERTIFICATES, not pinned there or in trustedCertificateThumbprints, expired, or naming another application URI) does: Report = the device is kept with OPCUA_SERVER_CERT_TRUST saying why, a warning and the untrusted_certificate event, and no session is opened to it (credentials never go to an untrusted server); Require = the device is withheld too; Off = no check (sessions open to any server).',
      default: 'Report',
    }),
    sessions: stringEnum(SESSION_MODES, {
      description:
        'When a secure channel and a session are opened to a server to prove Tether can use it (result in OPCUA_SESSION): WhenRequired = servers that offer no None endpoint; Always = every server (None with Anonymous when it offers nothing else); Off = never. Needs OPCUA_CLIENT_CERTIFICATE and OPCUA_CLIENT_PRIVATE_KEY unless Off.',
      default: 'WhenRequired',
    }),
    sessionTimeoutSeconds: Type.Number({
      description: 'Secure channel plus session activation, per server.',
      minimum: 0.1,
      maximum: 120,
      default: 10,
    }),
    sessionIntervalSeconds: Type.Number({
      description:
        "A server's session is tried again after this long, or at once when its certificate or endpoints change (a wrong password is not retried every round: servers lock accounts).",
      minimum: 1,
      maximum: 86_400,
      default: 300,
    }),
    maxConcurrentSessions: Type.Integer({ description: 'Sessions being opened at once.', minimum: 1, maximum: 64, default: 4 }),
  },
  {
    description:
      "Server certificate checks and secure sessions. Credentials come from the DeviceDiscovery's properties (Secrets), never from details: OPCUA_CLIENT_CERTIFICATE + OPCUA_CLIENT_PRIVATE_KEY (PEM; the application certificate Tether presents), OPCUA_USERNAME + OPCUA_PASSWORD (optional; Anonymous without), OPCUA_TRUSTED_CERTIFICATES (PEM bundle of CA and pinned server certificates). None of them, nor the server certificate, ever becomes a device property. Absent: no checks, no sessions.",
  },
);

export const OpcuaDetailsSchema = closedObject(
  {
    opcuaDiscoveryMethod: Type.Optional(
      closedObject(
        { standard: Type.Optional(StandardSchema) },
        { description: "Akri's discovery method: `standard` (Local Discovery Servers) is the only one Akri has." },
      ),
    ),
    applicationNames: filter('Application names (exact).'),
    applicationUris: filter('Application URIs (exact).'),
    endpointUrls: Type.Array(
      Type.String({ maxLength: 1024, pattern: '^opc\\.tcp://[^/?#\\s]+', errorMessage: 'must be an opc.tcp://host:port URL' }),
      { description: 'Servers asked directly with GetEndpoints (no discovery server in between).', maxItems: 256, default: [] },
    ),
    findServersOnNetwork: Type.Boolean({
      description:
        "Also call FindServersOnNetwork on each discovery URL (LDS-ME: servers announced by multicast on the LDS's network). A server without it answers BadServiceUnsupported: counted once, then skipped.",
      default: true,
    }),
    dnsSd: Type.Boolean({
      description: 'Browse DNS-SD `_opcua-tcp._tcp` (mDNS) for servers; a goodbye takes the server offline at once.',
      default: false,
    }),
    dnsSdInterfaces: Type.Optional(
      Type.Array(Type.String({ maxLength: 64, pattern: '\\S', errorMessage: 'must be a non-empty string' }), {
        description: 'Interface names or IPv4 addresses to browse on. Default: every non-internal IPv4 interface.',
        maxItems: 64,
      }),
    ),
    applicationTypes: Type.Array(stringEnum(APPLICATION_TYPES), {
      description:
        'Application types kept, as the LDS lists them (else as GetEndpoints tells). Akri keeps Server only; a ClientAndServer is a server too.',
      minItems: 1,
      maxItems: 4,
      default: ['Server', 'ClientAndServer'],
    }),
    securityModes: Type.Optional(
      Type.Array(stringEnum(SECURITY_MODES), {
        description: 'Keep only servers that offer an endpoint with one of these message security modes.',
        minItems: 1,
        maxItems: 3,
      }),
    ),
    securityPolicies: Type.Optional(
      Type.Array(Type.String({ maxLength: 256, pattern: '^[A-Za-z0-9_#:/.-]+$', errorMessage: 'must be a policy name or URI' }), {
        description: 'Keep only servers that offer one of these security policies: names (Basic256Sha256) or URIs.',
        minItems: 1,
        maxItems: 16,
      }),
    ),
    trustedCertificateThumbprints: items(
      'SHA-1 thumbprints (hex) of server certificates the operator trusts. A server whose certificate is not listed is still reported, with OPCUA_SERVER_CERT_TRUSTED=false, a warning and the untrusted_certificate event — never silently trusted.',
    ),
    allowedEndpointCidrs: Type.Array(
      Type.String({ maxLength: 64, pattern: '\\S', errorMessage: 'must be an IPv4 address or CIDR block (a.b.c.d/n)' }),
      {
        description:
          'Where discovery and endpoint URLs may point besides the address that answered (the LDS for its servers, the server for its endpoints): for an LDS that lists servers on other hosts. Loopback, link-local, multicast and broadcast addresses stay refused.',
        maxItems: 256,
        default: [],
      },
    ),
    queryIntervalSeconds: Type.Number({
      description: 'How often every discovery URL and server is asked again (Akri: 10 s).',
      minimum: 0.1,
      maximum: 3600,
      default: 10,
    }),
    maxBackoffSeconds: Type.Number({
      description: 'A failing discovery URL or server is retried after the interval, doubled per failure up to this.',
      minimum: 0.1,
      maximum: 3600,
      default: 60,
    }),
    offlineAfterFailedQueries: Type.Integer({
      description: 'Consecutive failed GetEndpoints (or rounds not listed by any source) before a server is reported gone.',
      minimum: 1,
      maximum: 100,
      default: 2,
    }),
    requestTimeoutSeconds: Type.Number({ description: 'Per connection and request.', minimum: 0.1, maximum: 120, default: 5 }),
    maxResponseBytes: Type.Integer({
      description: 'Largest OPC UA message accepted from a server (a bigger one fails the request).',
      minimum: 8192,
      maximum: 16 * 1024 * 1024,
      default: 1024 * 1024,
    }),
    maxServers: Type.Integer({ description: 'Servers tracked per discovery.', minimum: 1, maximum: 10_000, default: 1024 }),
    maxConcurrentRequests: Type.Integer({ description: 'Servers asked at once.', minimum: 1, maximum: 256, default: 16 }),
    shared: Type.Boolean({ description: 'A server is the same device from every node that sees it (Akri: true).', default: true }),
    security: Type.Optional(SecuritySchema),
  },
  {
    description:
      "OPC UA servers found through Local Discovery Servers (FindServers, FindServersOnNetwork), DNS-SD `_opcua-tcp._tcp` or listed endpoint URLs, described by GetEndpoints (Akri's opcua handler).",
    default: {},
    examples: [
      {
        opcuaDiscoveryMethod: { standard: { discoveryUrls: ['opc.tcp://10.0.0.5:4840/'] } },
        applicationNames: { action: 'Include', items: ['Press 1'] },
      },
    ],
  },
);

export type OpcuaDetailsInput = Static<typeof OpcuaDetailsSchema>;
