/**
 * What the usb details schema (schema.ts) and the run-time code share: a module of its own,
 * so the handler loads no TypeBox at run time (issue 15).
 */

/** The device-node kinds a usb discovery can mount. */
export const NODE_KINDS = ['usb', 'tty', 'video4linux', 'hidraw', 'input', 'sound'] as const;
export type NodeKind = (typeof NODE_KINDS)[number];
