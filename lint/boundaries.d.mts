import type { ESLint } from 'eslint';

/** Why importing `target` from `source` (both repo-relative) breaks a boundary, or undefined. */
export function boundaryViolation(source: string, target: string): string | undefined;
declare const plugin: ESLint.Plugin;
export default plugin;
