/**
 * What the opcua details schema (schema.ts) and the run-time code share: a module of its own,
 * so the handler loads no TypeBox at run time (issue 15).
 */

/** Akri's default: the Local Discovery Server of the node itself. */
export const DEFAULT_DISCOVERY_URL = 'opc.tcp://localhost:4840/';

/** Properties (from the DeviceDiscovery's `spec.properties`, usually Secrets) the security block reads. */
export const SECURITY_PROPERTIES = {
  certificate: 'OPCUA_CLIENT_CERTIFICATE',
  privateKey: 'OPCUA_CLIENT_PRIVATE_KEY',
  username: 'OPCUA_USERNAME',
  password: 'OPCUA_PASSWORD',
  trusted: 'OPCUA_TRUSTED_CERTIFICATES',
} as const;
