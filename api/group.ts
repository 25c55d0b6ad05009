/**
 * Tether's API group and version and the few limits the agent and controller use at run time,
 * as plain constants: importing them must not load the TypeBox schema (api/schema.ts, which
 * re-exports them), ~20 MiB of RSS (issue 15).
 */
export const API_GROUP = 'tether.dev';
export const API_VERSION_NAME = 'v1alpha1';
export const API_VERSION = `${API_GROUP}/${API_VERSION_NAME}` as const;

/** Longest problem message a node reports in `status.nodeReports[].message` (longer ones are cut). */
export const MAX_NODE_REPORT_MESSAGE_LENGTH = 512;
