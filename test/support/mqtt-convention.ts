/** Test support for the MQTT conventions: a recording context and message builders. */
import { pino } from 'pino';
import type { ConventionContext, MqttMessage } from '../../discovery-handlers/mqtt/convention.ts';

export interface RecordingContext extends ConventionContext {
  readonly counts: string[];
  readonly published: { topic: string; payload: Uint8Array }[];
  resyncRequests: number;
}

export function recordingContext(limits: Partial<ConventionContext['limits']> = {}): RecordingContext {
  const context: RecordingContext = {
    log: pino({ level: 'silent' }),
    limits: { maxPayloadBytes: 64 * 1024, maxJsonDepth: 16, maxDevices: 1000, maxPropertyLength: 4096, ...limits },
    counts: [],
    published: [],
    resyncRequests: 0,
    count: (event) => context.counts.push(event),
    publish: (topic, payload) => context.published.push({ topic, payload }),
    requestResync: () => context.resyncRequests++,
  };
  return context;
}

/** A message with a JSON (object) or text payload; `null` = empty payload. */
export function msg(topic: string, payload: unknown, retain = true): MqttMessage {
  const bytes =
    payload === null
      ? new Uint8Array()
      : payload instanceof Uint8Array
        ? payload
        : new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return { topic, payload: bytes, retain };
}
