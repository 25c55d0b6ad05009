import { describe, expect, it } from 'vitest';
import { parseDebugEchoDetails } from './debug-echo/debug-echo.ts';
import { parseOnvifDetails } from './onvif/details.ts';
import { detailsFromText } from './details-text.ts';

describe('details as YAML text', () => {
  it("parses Akri's debugEcho discoveryDetails as the built-in's details", () => {
    expect(parseDebugEchoDetails('descriptions:\n- "foo0"\n- "foo1"\n')).toMatchObject({ descriptions: ['foo0', 'foo1'], shared: false });
  });

  it("parses Akri's ONVIF discoveryDetails (filters as {action, items}, discoveryTimeoutSeconds)", () => {
    const text = [
      'ipAddresses:',
      '  action: Exclude',
      '  items: [10.0.0.1]',
      'macAddresses:',
      '  action: Exclude',
      '  items: []',
      'scopes:',
      '  action: Include',
      '  items: ["onvif://www.onvif.org/name/GreatONVIFCamera"]',
      'uuids:',
      '  action: Exclude',
      '  items: []',
      'discoveryTimeoutSeconds: 1',
    ].join('\n');
    const details = parseOnvifDetails(text);
    expect(details.discoveryTimeoutMs).toBe(1000);
    expect(details.filters.ipAddresses).toBeDefined();
    expect(details.filters.scopes).toBeDefined();
  });

  it('names the field path when text parses but does not validate', () => {
    expect(() => parseDebugEchoDetails('descriptions:\n- foo\n- 7\n')).toThrow(/details\.descriptions\[1\]: must be a string/);
  });

  it.each([
    ['broken YAML', 'descriptions: [foo\n', /details: is not valid YAML at line \d+, column \d+/],
    ['a key given twice', 'descriptions: [a]\ndescriptions: [b]\n', /details: is not valid YAML.*(unique|Map keys)/i],
    ['a list', '- a\n- b\n', /details: as YAML text must hold a mapping/],
    ['a scalar', 'hello', /details: as YAML text must hold a mapping/],
    ['text over 1 MiB', `descriptions: [${'x'.repeat(1 << 20)}]`, /details: longer than 1048576 characters/],
    [
      'an alias bomb',
      `a: &a [x, x]\n${Array.from({ length: 200 }, (_, i) => `k${i}: [*a, *a]`).join('\n')}\n`,
      /details: is not valid YAML/,
    ],
  ])('refuses %s with a clear error', (_what, text, message) => {
    expect(() => detailsFromText(text)).toThrow(message);
  });

  it('takes empty text as no details, and leaves objects alone', () => {
    expect(detailsFromText('')).toEqual({});
    const object = { a: 1 };
    expect(detailsFromText(object)).toBe(object);
  });
});
