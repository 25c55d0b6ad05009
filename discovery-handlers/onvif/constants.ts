/**
 * What the onvif details schema (schema.ts) and the run-time code share: a module of its own,
 * so the handler loads no TypeBox at run time (issue 15).
 */

/** The largest `maxResponseBytes` accepted: a SOAP answer is parsed synchronously, ~50 ms per 256 KiB. */
export const MAX_RESPONSE_BYTES_LIMIT = 256 * 1024;

/** First probe window when not set (shortened to probeIntervalSeconds when that is shorter). */
export const DEFAULT_DISCOVERY_TIMEOUT_SECONDS = 1;
