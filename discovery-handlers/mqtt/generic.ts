/**
 * Generic MQTT devices: rules of topic filter + device-id template + property templates +
 * optional presence mapping + optional silence timeout. For devices that follow no discovery
 * convention (custom firmware, Tasmota without HA discovery, sensors publishing JSON).
 *
 * Templates are text with placeholders: `{topic[N]}` (topic level N, from 0), `{payload}`
 * (the payload as text), `{json.a.b[0]}` (a field of a JSON payload). `{{` and `}}` are
 * literal braces. A device is present after any message of a rule, unless a presence value
 * maps to offline; a live (not retained) message brings an offline device back. Several
 * rules may describe one device (same id): their properties are merged in rule order.
 * An empty payload removes what that rule knew about the device.
 */
import type { ConventionContext, Convention, ConventionDevice, MqttMessage } from './convention.ts';
import { isRecord, parseBoundedJson, PayloadError, payloadText, scalarText } from './bounded.ts';
import { topicMatches } from './topic.ts';

export type TemplatePart =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'topic'; readonly level: number }
  | { readonly kind: 'payload' }
  | { readonly kind: 'json'; readonly path: readonly (string | number)[] };

export interface Template {
  readonly source: string;
  readonly parts: readonly TemplatePart[];
}

export interface GenericRule {
  /** Topic filter (wildcards allowed). */
  readonly topic: string;
  readonly deviceId: Template;
  readonly properties: readonly (readonly [string, Template])[];
  readonly presence?: { readonly value: Template; readonly online: readonly string[]; readonly offline: readonly string[] };
  readonly silenceMs?: number;
}

const PLACEHOLDER = /\{\{|\}\}|\{([^{}]*)\}/g;

function parsePath(path: string): (string | number)[] | string {
  const steps: (string | number)[] = [];
  const re = /\.?([^.[\]]+)|\[(\d+)\]/gy;
  let match: RegExpExecArray | null;
  while (re.lastIndex < path.length && (match = re.exec(path)) !== null) {
    steps.push(match[2] !== undefined ? Number(match[2]) : match[1]!);
  }
  if (re.lastIndex !== path.length || steps.length === 0) return `bad JSON path "${path}"`;
  return steps;
}

/** Compiles a template; returns an error message instead when it is malformed. */
export function compileTemplate(source: string): Template | string {
  const parts: TemplatePart[] = [];
  let last = 0;
  let text = '';
  for (const match of source.matchAll(PLACEHOLDER)) {
    text += source.slice(last, match.index);
    last = match.index + match[0].length;
    if (match[0] === '{{') text += '{';
    else if (match[0] === '}}') text += '}';
    else {
      if (text.length > 0) parts.push({ kind: 'text', text });
      text = '';
      const body = match[1]!.trim();
      const topic = /^topic\[(\d{1,3})\]$/.exec(body);
      if (topic !== null) parts.push({ kind: 'topic', level: Number(topic[1]) });
      else if (body === 'payload') parts.push({ kind: 'payload' });
      else if (body.startsWith('json.') || body.startsWith('json[')) {
        const path = parsePath(body.slice(4));
        if (typeof path === 'string') return path;
        parts.push({ kind: 'json', path });
      } else return `unknown placeholder {${body}}; use {topic[N]}, {payload} or {json.field}`;
    }
  }
  text += source.slice(last);
  if (/[{}]/.test(text)) return 'unbalanced { or }';
  if (text.length > 0) parts.push({ kind: 'text', text });
  return { source, parts };
}

export function usesJson(template: Template): boolean {
  return template.parts.some((p) => p.kind === 'json');
}

interface RenderInput {
  readonly levels: readonly string[];
  readonly payload: () => string;
  readonly json: () => unknown;
}

/** Renders a template; undefined when a placeholder has no value (missing level or field). */
export function renderTemplate(template: Template, input: RenderInput): string | undefined {
  let out = '';
  for (const part of template.parts) {
    if (part.kind === 'text') out += part.text;
    else if (part.kind === 'payload') out += input.payload();
    else if (part.kind === 'topic') {
      const level = input.levels[part.level];
      if (level === undefined) return undefined;
      out += level;
    } else {
      let value = input.json();
      for (const step of part.path) {
        if (typeof step === 'number' && Array.isArray(value)) value = value[step];
        else if (typeof step === 'string' && isRecord(value) && Object.hasOwn(value, step)) value = value[step];
        else return undefined;
      }
      const text = scalarText(value);
      if (text === undefined) return undefined;
      out += text;
    }
  }
  return out;
}

/** What a message says about presence: true/false, or undefined for nothing. */
function presenceOf(rule: GenericRule, message: MqttMessage, input: RenderInput): boolean | undefined {
  if (rule.presence === undefined) return message.retain ? undefined : true; // live traffic proves the device is up
  const value = renderTemplate(rule.presence.value, input);
  if (value === undefined) return undefined;
  if (rule.presence.online.includes(value)) return true;
  if (rule.presence.offline.includes(value)) return false;
  return undefined;
}

interface GenericDevice {
  readonly byRule: Map<number, Record<string, string>>;
  /** false: a presence value said offline; true/undefined: present. */
  online?: boolean;
  silent: boolean;
  lastSeen: number;
}

export class GenericConvention implements Convention {
  readonly name = 'generic';
  readonly filters: readonly string[];
  readonly #rules: readonly GenericRule[];
  readonly #context: ConventionContext;
  readonly #devices = new Map<string, GenericDevice>();

  constructor(rules: readonly GenericRule[], context: ConventionContext) {
    this.#rules = rules;
    this.#context = context;
    this.filters = [...new Set(rules.map((r) => r.topic))];
  }

  dynamicTopics(): ReadonlySet<string> {
    return new Set();
  }

  accepts(topic: string): boolean {
    return this.#rules.some((r) => topicMatches(r.topic, topic));
  }

  handle(message: MqttMessage, now: number): readonly string[] {
    const changed = new Set<string>();
    let text: string | undefined;
    let json: unknown;
    let parsed = false;
    const input: RenderInput = {
      levels: message.topic.split('/'),
      payload: () => (text ??= payloadText(message.payload, this.#context.limits)),
      json: () => {
        if (!parsed) {
          json = parseBoundedJson(message.payload, this.#context.limits);
          parsed = true;
        }
        return json;
      },
    };
    let firstError: Error | undefined;
    this.#rules.forEach((rule, index) => {
      if (!topicMatches(rule.topic, message.topic)) return;
      try {
        const id = this.#apply(rule, index, message, input, now);
        if (id !== undefined) changed.add(id);
      } catch (error) {
        firstError ??= error instanceof Error ? error : new Error(String(error));
      }
    });
    if (firstError !== undefined && changed.size === 0) throw firstError;
    return [...changed];
  }

  #apply(rule: GenericRule, index: number, message: MqttMessage, input: RenderInput, now: number): string | undefined {
    const empty = message.payload.byteLength === 0;
    if (empty && usesJson(rule.deviceId)) return undefined;
    const id = renderTemplate(rule.deviceId, input);
    if (id === undefined || id.length === 0) throw new PayloadError('bad_shape', `no device id from ${rule.deviceId.source}`);
    if (id.length > 1024) throw new PayloadError('bad_shape', 'device id longer than 1024 characters');
    let device = this.#devices.get(id);
    if (empty) {
      if (device === undefined) return undefined;
      device.byRule.delete(index);
      if (device.byRule.size === 0) this.#devices.delete(id);
      return id;
    }
    const props: Record<string, string> = {};
    for (const [name, template] of rule.properties) {
      const value = renderTemplate(template, input);
      if (value !== undefined) props[name] = value;
    }
    const online = presenceOf(rule, message, input);
    if (device === undefined) {
      if (this.#devices.size >= this.#context.limits.maxDevices) {
        this.#context.count('device_limit');
        return undefined;
      }
      device = { byRule: new Map(), silent: false, lastSeen: now };
      this.#devices.set(id, device);
    }
    device.byRule.set(index, props);
    if (online !== undefined) device.online = online;
    device.lastSeen = now;
    device.silent = false;
    return id;
  }

  view(id: string): ConventionDevice | undefined {
    const device = this.#devices.get(id);
    if (device === undefined || device.online === false || device.silent) return undefined;
    const properties: Record<string, string> = {};
    for (const index of [...device.byRule.keys()].sort((a, b) => a - b)) Object.assign(properties, device.byRule.get(index));
    return { id, properties };
  }

  views(): ConventionDevice[] {
    return [...this.#devices.keys()].map((id) => this.view(id)).filter((v): v is ConventionDevice => v !== undefined);
  }

  /** Silence of a device: the longest of its rules' timeouts, or none if any of its rules has none. */
  #silenceOf(device: GenericDevice): number | undefined {
    let longest = 0;
    for (const index of device.byRule.keys()) {
      const silence = this.#rules[index]?.silenceMs;
      if (silence === undefined) return undefined;
      longest = Math.max(longest, silence);
    }
    return longest;
  }

  expire(now: number): readonly string[] {
    const changed: string[] = [];
    for (const [id, device] of this.#devices) {
      if (device.silent) continue;
      const silence = this.#silenceOf(device);
      if (silence !== undefined && now - device.lastSeen > silence) {
        device.silent = true;
        if (device.online !== false) changed.push(id);
      }
    }
    return changed;
  }

  beginResync(): void {}

  settleResync(): readonly string[] {
    return [];
  }
}
