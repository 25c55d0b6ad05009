import { describe, expect, it } from 'vitest';
import type { HandlerSource } from '../../api/schema.ts';
import type { AnyDiscoveryHandler } from '../../discovery-handlers/contract.ts';
import { chooseHandler, shadowedMessage, type HandlerCatalog } from './handler-choice.ts';

const handler = (name: string): AnyDiscoveryHandler => ({
  name,
  parseDetails: (raw) => raw,
  isShared: () => false,
  run: () => Promise.resolve(),
});

const builtinEcho = handler('debug-echo');
const builtinOnvif = handler('onvif');
const externalOnvif = handler('onvif');
const externalEcho = handler('debugEcho');
const externalOpcua = handler('opcua');

const catalog = (registered: AnyDiscoveryHandler[]): HandlerCatalog => ({
  builtins: new Map([
    ['debug-echo', builtinEcho],
    ['onvif', builtinOnvif],
  ]),
  external: (name) => registered.find((h) => h.name === name),
});

describe('chooseHandler', () => {
  it.each<[string, HandlerSource | undefined, AnyDiscoveryHandler[], AnyDiscoveryHandler | undefined, boolean]>([
    // name, source, registered externally, chosen, shadowed
    ['debug-echo', undefined, [], builtinEcho, false],
    ["debugEcho (Akri's name)", undefined, [], builtinEcho, false],
    ["debugEcho with Akri's handler registered", 'Auto', [externalEcho], builtinEcho, true],
    ['debugEcho, External', 'External', [externalEcho], externalEcho, false],
    ['onvif, External', 'External', [externalOnvif], externalOnvif, false],
    ['onvif, Auto, external registered too', 'Auto', [externalOnvif], builtinOnvif, true],
    ['onvif, BuiltIn, external registered too', 'BuiltIn', [externalOnvif], builtinOnvif, false],
    ['opcua (no built-in), Auto', undefined, [externalOpcua], externalOpcua, false],
    ['opcua, External', 'External', [externalOpcua], externalOpcua, false],
  ])('%s (%s)', (label, source, registered, chosen, shadowed) => {
    const name = label.split(/[ ,]/)[0]!;
    const choice = chooseHandler({ handler: name, handlerSource: source }, catalog(registered));
    expect(choice.handler).toBe(chosen);
    if (choice.handler !== undefined) expect(choice.shadowed).toBe(shadowed);
  });

  it('runs an in-process handler of any name the catalog holds (tests, benches)', () => {
    const custom = handler('property-echo');
    const choice = chooseHandler(
      { handler: 'property-echo' },
      { builtins: new Map([['property-echo', custom]]), external: () => undefined },
    );
    expect(choice.handler).toBe(custom);
  });

  it.each<[string, HandlerSource | undefined, RegExp]>([
    ['opcua', 'BuiltIn', /no built-in discovery handler opcua/],
    ['opcua', 'Auto', /no external discovery handler is registered as opcua/],
    ['onvif', 'External', /no external discovery handler is registered as onvif/],
  ])('says why %s (%s) has no handler', (name, source, reason) => {
    const choice = chooseHandler({ handler: name, handlerSource: source }, catalog([]));
    expect(choice.handler).toBeUndefined();
    if (choice.handler === undefined) expect(choice.reason).toMatch(reason);
  });

  it('tells the owner of a shadowed discovery which field to change', () => {
    expect(shadowedMessage('debugEcho')).toMatch(/built-in debug-echo .* spec\.handlerSource: External/);
  });
});
