import { describe, expect, it } from 'vitest';
import { BUILTIN_HANDLER_NAMES } from './names.ts';
import { builtinHandlers, findHandler } from './registry.ts';

describe('registry', () => {
  it('names every built-in handler in names.ts (the CLI lists them without loading them)', () => {
    expect([...builtinHandlers().keys()].sort()).toEqual([...BUILTIN_HANDLER_NAMES].sort());
  });

  it('lists the known names for an unknown handler', () => {
    expect(() => findHandler(builtinHandlers(), 'nope')).toThrow(/known: debug-echo, mdns, mqtt, onvif, opcua, udev, usb/);
  });
});
