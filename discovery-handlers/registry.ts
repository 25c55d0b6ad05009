/**
 * The explicit map of built-in handler names to handlers. New handlers are added
 * here by hand (no registration by import side effect).
 */
import type { AnyDiscoveryHandler } from './contract.ts';
import { createDebugEchoHandler } from './debug-echo/debug-echo.ts';
import { createMdnsHandler } from './mdns/mdns.ts';
import { createMqttHandler } from './mqtt/mqtt.ts';
import { createOnvifHandler } from './onvif/onvif.ts';
import { builtinNameFor } from './names.ts';
import { createOpcuaHandler } from './opcua/opcua.ts';
import { createUdevHandler } from './udev/udev.ts';
import { createUsbHandler } from './usb/usb.ts';

/** Built-in in-process handlers, by name. */
export function builtinHandlers(): ReadonlyMap<string, AnyDiscoveryHandler> {
  const mdns = createMdnsHandler();
  const handlers: AnyDiscoveryHandler[] = [
    createDebugEchoHandler(),
    createMqttHandler(),
    mdns,
    createOnvifHandler(),
    createUsbHandler(),
    createUdevHandler(),
    // OPC UA servers announced over DNS-SD are browsed with the mdns handler (a handler never imports another).
    createOpcuaHandler({ dnsSdBrowser: mdns }),
  ];
  return new Map(handlers.map((h) => [h.name, h]));
}

/** Looks a handler up, by its name or Akri's (debugEcho), or throws an error listing the known names. */
export function findHandler(registry: ReadonlyMap<string, AnyDiscoveryHandler>, name: string): AnyDiscoveryHandler {
  const handler = registry.get(builtinNameFor(name) ?? name);
  if (handler === undefined) {
    throw new Error(`unknown discovery handler "${name}"; known: ${[...registry.keys()].sort().join(', ')}`);
  }
  return handler;
}
