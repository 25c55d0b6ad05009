/**
 * Which handler runs a DeviceDiscovery: pure. `spec.handler` names a built-in (by Tether's name
 * or Akri's: debugEcho → debug-echo) or an external handler as it registered; `spec.handlerSource`
 * says which to use:
 *   - BuiltIn: the built-in only;
 *   - External: a handler registered over the Akri v0 protocol under exactly that name;
 *   - Auto (default): the built-in when there is one, else the external handler.
 * Auto never switches at run time because something registered: an external handler under a
 * built-in's name is `shadowed` (reported as a Warning) until the discovery asks for External.
 */
import type { HandlerSource } from '../../api/schema.ts';
import type { AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { builtinNameFor } from '../../discovery-handlers/names.ts';

/** What this node has: built-ins by Tether's name, external handlers by registered name. */
export interface HandlerCatalog {
  readonly builtins: ReadonlyMap<string, AnyDiscoveryHandler>;
  readonly external: (name: string) => AnyDiscoveryHandler | undefined;
}

export type HandlerChoice =
  | { readonly handler: AnyDiscoveryHandler; readonly source: 'BuiltIn' | 'External'; readonly shadowed: boolean }
  | { readonly handler: undefined; readonly reason: string };

export interface HandlerRequest {
  readonly handler: string;
  readonly handlerSource?: HandlerSource | undefined;
}

export function chooseHandler(request: HandlerRequest, catalog: HandlerCatalog): HandlerChoice {
  const { handler: name, handlerSource = 'Auto' } = request;
  // In-process handlers by Akri's name or their own (tests and benches add their own).
  const builtin = catalog.builtins.get(builtinNameFor(name) ?? name);
  if (handlerSource !== 'External' && builtin !== undefined) {
    const shadowed = handlerSource === 'Auto' && catalog.external(name) !== undefined;
    return { handler: builtin, source: 'BuiltIn', shadowed };
  }
  if (handlerSource === 'BuiltIn') {
    return { handler: undefined, reason: `there is no built-in discovery handler ${name} (handlerSource: BuiltIn)` };
  }
  const external = catalog.external(name);
  if (external !== undefined) return { handler: external, source: 'External', shadowed: false };
  return { handler: undefined, reason: `no external discovery handler is registered as ${name} on this node` };
}

/** The Warning for a shadowed external handler: what happened and the one field to change. */
export function shadowedMessage(name: string): string {
  return `An external discovery handler registered as ${name}, but the built-in ${builtinNameFor(name) ?? name} runs this discovery; set spec.handlerSource: External to use the external one`;
}
