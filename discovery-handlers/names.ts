/**
 * Names of the built-in handlers, without loading them: the CLI lists them in `--help`
 * and the agent's start-up path stays cheap. registry.test.ts keeps this in step with
 * the registry.
 */
export const BUILTIN_HANDLER_NAMES = ['debug-echo', 'mqtt', 'mdns', 'onvif', 'usb'] as const;

export type BuiltinHandlerName = (typeof BUILTIN_HANDLER_NAMES)[number];

export function isBuiltinHandlerName(name: string): name is BuiltinHandlerName {
  return (BUILTIN_HANDLER_NAMES as readonly string[]).includes(name);
}
