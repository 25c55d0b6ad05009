/**
 * Where an external handler can be reached, from its v0 registration. Pure: no I/O.
 *
 * Compatibility with Akri's handlers (discovery-utils, Akri 0.13.26):
 *   - UDS: `endpoint` is the handler's socket path, `<DISCOVERY_HANDLERS_DIRECTORY>/<name>.sock`.
 *   - NETWORK: `endpoint` is `http://<POD_IP>:10000` — Akri's helper prefixes `http://`
 *     because tonic wants a URI. A bare `host:port` is accepted too. TLS is not part of
 *     the protocol, so `https://` is refused rather than silently downgraded.
 */
import type { EndpointType, RegisterDiscoveryHandlerRequest } from '../../proto/types.ts';

/** One registered endpoint, validated. */
export interface HandlerAddress {
  /** Handler name (the protocol name, e.g. `debugEcho`, `onvif`). */
  readonly name: string;
  /** The endpoint as normalised: a socket path, or `host:port`. */
  readonly endpoint: string;
  readonly type: EndpointType;
  /** gRPC target to dial. */
  readonly target: string;
  /** Identity: one name+endpoint pair is one endpoint, however often it registers. */
  readonly key: string;
  readonly shared: boolean;
}

/** Longest Unix socket path (sun_path is 108 bytes including the terminating NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?):([0-9]{1,5})$/;

function parseNetworkEndpoint(raw: string): { endpoint: string } | string {
  let rest = raw;
  if (/^https:\/\//i.test(rest)) return 'https endpoints are not supported (the v0 protocol is plaintext)';
  rest = rest.replace(/^http:\/\//i, '').replace(/\/$/, '');
  const match = HOST_PORT.exec(rest);
  const port = Number(match?.[3]);
  if (match === null || !(port >= 1 && port <= 65_535)) return `NETWORK endpoint "${raw.slice(0, 80)}" is not host:port`;
  return { endpoint: rest };
}

function parseUdsEndpoint(raw: string): { endpoint: string } | string {
  if (!raw.startsWith('/')) return `UDS endpoint "${raw.slice(0, 80)}" must be an absolute socket path`;
  if (Buffer.byteLength(raw) > MAX_SOCKET_PATH_BYTES) return `UDS endpoint longer than ${MAX_SOCKET_PATH_BYTES} bytes`;
  if (raw.includes('\0')) return 'UDS endpoint contains NUL';
  return { endpoint: raw };
}

/** Validates a registration; returns the reason when it is refused. */
export function parseRegistration(request: RegisterDiscoveryHandlerRequest): HandlerAddress | string {
  const { name, endpoint_type: type } = request;
  if (typeof name !== 'string' || !NAME.test(name)) {
    return `handler name "${String(name).slice(0, 80)}" must be 1-253 characters of [A-Za-z0-9._-], starting alphanumeric`;
  }
  if (typeof request.endpoint !== 'string' || request.endpoint.length === 0) return 'endpoint is empty';
  if (type !== 'UDS' && type !== 'NETWORK') return `unknown endpoint_type ${String(type)}`;
  const parsed = type === 'UDS' ? parseUdsEndpoint(request.endpoint) : parseNetworkEndpoint(request.endpoint);
  if (typeof parsed === 'string') return parsed;
  return {
    name,
    endpoint: parsed.endpoint,
    type,
    target: type === 'UDS' ? `unix://${parsed.endpoint}` : parsed.endpoint,
    key: `${name}@${parsed.endpoint}`,
    shared: request.shared === true,
  };
}
