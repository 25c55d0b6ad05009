import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { EventRecorder, type EventInput } from './events.ts';
import type { Api } from '../../kube/resources.ts';

/** An Api double that records Event creates and lets the test decide when they complete. */
function fakeApi(): { api: Api; bodies: Record<string, unknown>[]; release: () => void } {
  const bodies: Record<string, unknown>[] = [];
  const pending: (() => void)[] = [];
  const api = {
    create: (_type: unknown, _ns: unknown, body: Record<string, unknown>) => {
      bodies.push(body);
      return new Promise((resolve) => pending.push(() => resolve(body)));
    },
  } as unknown as Api;
  return { api, bodies, release: () => pending.splice(0).forEach((r) => r()) };
}

const event = (note: string, uid = 'u1'): EventInput => ({
  regarding: { apiVersion: 'v1', kind: 'Pod', name: 'broker-1', namespace: 'ns', uid },
  type: 'Warning',
  reason: 'BrokerFailed',
  action: 'Observe',
  note,
});

describe('EventRecorder', () => {
  it('records an events.k8s.io/v1 Event with the reporting controller and instance', async () => {
    const { api, bodies, release } = fakeApi();
    const recorder = new EventRecorder({ api, log: pino({ level: 'silent' }), instance: 'replica-a_1234', enabled: () => true });
    recorder.record(event('failed: Error'));
    release();
    await recorder.flush();
    expect(bodies).toHaveLength(1);
    expect(bodies[0]).toMatchObject({
      metadata: { namespace: 'ns' },
      reportingController: 'tether.dev/controller',
      reportingInstance: 'replica-a_1234',
      reason: 'BrokerFailed',
      type: 'Warning',
      action: 'Observe',
      note: 'failed: Error',
      regarding: { kind: 'Pod', name: 'broker-1', uid: 'u1' },
    });
    expect(String((bodies[0]!.metadata as { name: string }).name)).toMatch(/^broker-1\.[0-9a-f]{16}$/);
    expect(String(bodies[0]!.eventTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(recorder.stats.recorded).toBe(1);
  });

  it('records the same object, reason and note once per window; other notes or objects pass', async () => {
    const { api, bodies, release } = fakeApi();
    const recorder = new EventRecorder({ api, log: pino({ level: 'silent' }), instance: 'x', enabled: () => true });
    recorder.record(event('a'));
    recorder.record(event('a'));
    recorder.record(event('b'));
    recorder.record(event('a', 'u2'));
    release();
    await recorder.flush();
    expect(bodies.map((b) => b.note)).toEqual(['a', 'b', 'a']);
    expect(recorder.stats.deduplicated).toBe(1);
  });

  it('records nothing unless enabled (standby replicas)', () => {
    const { api, bodies } = fakeApi();
    const recorder = new EventRecorder({ api, log: pino({ level: 'silent' }), instance: 'x', enabled: () => false });
    recorder.record(event('a'));
    expect(bodies).toHaveLength(0);
  });

  it('bounds concurrent creates and the backlog, dropping beyond it', async () => {
    const { api, bodies, release } = fakeApi();
    const recorder = new EventRecorder({
      api,
      log: pino({ level: 'silent' }),
      instance: 'x',
      enabled: () => true,
      maxInFlight: 2,
      maxBacklog: 3,
    });
    for (let i = 0; i < 10; i++) recorder.record(event(`n${i}`));
    expect(bodies).toHaveLength(2);
    expect(recorder.stats.dropped).toBe(5);
    for (let i = 0; i < 4; i++) {
      release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await recorder.flush();
    expect(bodies.map((b) => b.note)).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
  });
});
