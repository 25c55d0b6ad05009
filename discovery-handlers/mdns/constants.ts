/**
 * What the mdns details schema (schema.ts) and the run-time code share: a module of its own,
 * so the handler loads no TypeBox at run time (issue 15).
 */

/** `_ipp._tcp`, `_ipp._tcp.local`, `_universal._sub._ipp._tcp` (groups: subtype, type). */
export const SERVICE_TYPE_PATTERN =
  '^(?:(_?[^.]{1,63})\\._sub\\.)?(_[A-Za-z0-9](?:[A-Za-z0-9-]{0,13}[A-Za-z0-9])?\\._(?:tcp|udp))(?:\\.local)?\\.?$';
