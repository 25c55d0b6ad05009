import { describe, expect, it } from 'vitest';
import { referencedObjects, resolveProperties, Unreadable, type ObjectRef } from './properties.ts';

const objects: Record<string, Record<string, string>> = {
  'Secret/ns/creds': { password: 's3cret' },
  'ConfigMap/ns/site': { url: 'mqtt://broker' },
};
const lookup = (ref: ObjectRef) => objects[`${ref.kind}/${ref.namespace}/${ref.name}`];

describe('resolveProperties', () => {
  it('resolves literals, Secret and ConfigMap keys', () => {
    const result = resolveProperties(
      'ns',
      [
        { name: 'USER', value: 'admin' },
        { name: 'PASS', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
        { name: 'URL', valueFrom: { configMapKeyRef: { name: 'site', key: 'url' } } },
      ],
      lookup,
    );
    expect(result).toEqual({
      ok: true,
      values: new Map([
        ['USER', 'admin'],
        ['PASS', 's3cret'],
        ['URL', 'mqtt://broker'],
      ]),
    });
  });

  it.each([
    [[{ name: 'X', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } }], 'spec.properties[0] (X): Secret ns/nope not found'],
    [[{ name: 'X', valueFrom: { secretKeyRef: { name: 'creds', key: 'k' } } }], 'key k missing in Secret ns/creds'],
  ])('reports what is missing, with the field path', (properties, message) => {
    const result = resolveProperties('ns', properties, lookup);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toContain(message);
  });

  it('an object the agent may not read is reported as such, never as "not found", even when optional', () => {
    const forbidden = () => new Unreadable('forbidden to the agent');
    for (const optional of [false, true]) {
      const result = resolveProperties(
        'ns',
        [{ name: 'X', valueFrom: { secretKeyRef: { name: 'creds', key: 'password', optional } } }],
        forbidden,
      );
      expect(result).toEqual({ ok: false, error: 'spec.properties[0] (X): Secret ns/creds cannot be read: forbidden to the agent' });
    }
  });

  it('a Secret whose only key is "reason" is data, not a refusal', () => {
    const result = resolveProperties('ns', [{ name: 'X', valueFrom: { secretKeyRef: { name: 'odd', key: 'reason' } } }], () => ({
      reason: 'r',
    }));
    expect(result).toEqual({ ok: true, values: new Map([['X', 'r']]) });
  });

  it('optional references may be missing', () => {
    const result = resolveProperties(
      'ns',
      [{ name: 'X', valueFrom: { secretKeyRef: { name: 'nope', key: 'k', optional: true } } }],
      lookup,
    );
    expect(result).toEqual({ ok: true, values: new Map() });
  });

  it('lists each referenced object once', () => {
    expect(
      referencedObjects('ns', [
        { name: 'A', valueFrom: { secretKeyRef: { name: 'creds', key: 'a' } } },
        { name: 'B', valueFrom: { secretKeyRef: { name: 'creds', key: 'b' } } },
        { name: 'C', value: 'c' },
      ]),
    ).toEqual([{ kind: 'Secret', namespace: 'ns', name: 'creds' }]);
  });
});
