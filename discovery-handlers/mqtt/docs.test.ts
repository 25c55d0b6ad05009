/** The DeviceDiscovery examples in docs/handlers/mqtt.md are valid for this handler. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Value } from 'typebox/value';
import { parse } from 'yaml';
import { DeviceDiscoverySchema } from '../../api/schema.ts';
import { createMqttHandler } from './mqtt.ts';

const doc = readFileSync(new URL('../../docs/handlers/mqtt.md', import.meta.url), 'utf8');
const examples = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map(
  (m) => parse(m[1]!) as { metadata: { name: string }; spec: { handler: string; details: unknown } },
);

describe('docs/handlers/mqtt.md', () => {
  it('has DeviceDiscovery examples', () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
  });

  it.each(examples.map((e) => [e.metadata.name, e] as const))('%s is a valid DeviceDiscovery with valid details', (_name, example) => {
    expect([...Value.Errors(DeviceDiscoverySchema, example)]).toEqual([]);
    expect(example.spec.handler).toBe('mqtt');
    expect(() => createMqttHandler().parseDetails(example.spec.details)).not.toThrow();
  });
});
