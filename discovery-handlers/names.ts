/**
 * Names of the built-in handlers, without loading them: the CLI lists them in `--help`
 * and the agent's start-up path stays cheap. registry.test.ts keeps this in step with
 * the registry.
 */
export const BUILTIN_HANDLER_NAMES = ['debug-echo', 'mqtt', 'mdns', 'onvif', 'usb', 'udev', 'opcua'] as const;

export type BuiltinHandlerName = (typeof BUILTIN_HANDLER_NAMES)[number];

export function isBuiltinHandlerName(name: string): name is BuiltinHandlerName {
  return (BUILTIN_HANDLER_NAMES as readonly string[]).includes(name);
}

/**
 * Akri's names for its built-in handlers, and the Tether built-in that takes the same details
 * and gives brokers the same properties (docs/migrating-from-akri.md). (`spec.handlerSource: External`
 * still picks Akri's own handler images over these.)
 */
export const AKRI_HANDLER_ALIASES: Readonly<Record<string, string>> = {
  debugEcho: 'debug-echo',
  onvif: 'onvif',
  udev: 'udev',
  opcua: 'opcua',
};

/** The built-in a DeviceDiscovery's `handler` names, directly or by Akri's name; undefined if none. */
export function builtinNameFor(name: string): BuiltinHandlerName | undefined {
  if (isBuiltinHandlerName(name)) return name;
  const alias = Object.hasOwn(AKRI_HANDLER_ALIASES, name) ? AKRI_HANDLER_ALIASES[name] : undefined;
  return alias !== undefined && isBuiltinHandlerName(alias) ? alias : undefined;
}
