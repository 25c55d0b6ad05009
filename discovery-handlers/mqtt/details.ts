/**
 * `details` of an `mqtt` DeviceDiscovery, validated once into MqttDetails; every error names
 * the offending field. Types, bounds and defaults are in schema.ts; this file adds what a
 * schema cannot say (broker or brokers, at least one convention, topic filters, templates)
 * and resolves the result for the handler (seconds → ms, `true` → a convention's defaults).
 * Credentials are never in details: details name the discovery properties (from Secrets)
 * that hold them.
 */
import type { Static } from 'typebox';
import { DetailsError } from '../contract.ts';
import { parseWithSchema } from '../details-parse.ts';
import { compileTemplate, type GenericRule, type Template } from './generic.ts';
import type { HomeAssistantOptions } from './home-assistant.ts';
import type { HomieOptions } from './homie.ts';
import { CONVENTIONAL_CREDENTIAL_PROPERTIES } from './constants.ts';
import DETAILS_SCHEMA from './details.schema.json' with { type: 'json' };
import type {
  GenericRuleSchema,
  HomeAssistantOptionsSchema,
  HomieOptionsSchema,
  MqttDetailsInput,
  MqttDetailsSchema,
  SparkplugOptionsSchema,
} from './schema.ts';
import type { SparkplugOptions } from './sparkplug.ts';
import { filterProblem, topicProblem } from './topic.ts';

export type MqttLimits = MqttDetailsInput['limits'];

/** Names of discovery properties holding credentials; `required` ones must exist. */
export type CredentialProperties = {
  readonly [K in keyof typeof CONVENTIONAL_CREDENTIAL_PROPERTIES]: { readonly name: string; readonly required: boolean };
};

/** Details as the handler uses them: the schema's fields, with times in ms and conventions resolved. */
export interface MqttDetails extends Readonly<
  Pick<MqttDetailsInput, 'clientIdPrefix' | 'keepaliveSeconds' | 'reconnect' | 'syncMarker' | 'tls' | 'shared' | 'limits'>
> {
  /** Tried in order, round robin on reconnect. */
  readonly brokers: readonly string[];
  readonly protocolVersion: 4 | 5;
  readonly connectTimeoutMs: number;
  /** While the broker is unreachable for less than this, devices stay as they are. */
  readonly brokerLossGraceMs: number;
  /** After a re-sync, how long devices with non-retained configs get to re-announce. */
  readonly resyncWindowMs: number;
  readonly credentials: CredentialProperties;
  readonly homeAssistant?: HomeAssistantOptions;
  readonly homie?: HomieOptions;
  readonly sparkplug?: SparkplugOptions;
  readonly generic?: readonly GenericRule[];
}

function checkBrokers(input: MqttDetailsInput): string[] {
  if (input.broker !== undefined && input.brokers !== undefined)
    throw new DetailsError('details.brokers', 'give broker or brokers, not both');
  if (input.broker !== undefined) return [checkBroker(input.broker, 'details.broker')];
  if (input.brokers !== undefined) return input.brokers.map((url, i) => checkBroker(url, `details.brokers[${i}]`));
  throw new DetailsError('details.broker', 'is required: one URL like mqtt://host:1883 (or brokers: a list of them)');
}

function checkBroker(url: string, path: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new DetailsError(path, 'is not a valid URL', { cause: error });
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new DetailsError(path, 'must not contain credentials; name Secret-backed properties in details.credentials');
  }
  return url;
}

/** A convention's options schema: the object branch of its field (`true`, `false` or options) in details.schema.json. */
function conventionSchema(field: 'homeAssistant' | 'homie' | 'sparkplug'): object {
  const options = DETAILS_SCHEMA.properties[field].anyOf.find((branch) => branch.type === 'object');
  if (options === undefined) throw new Error(`details.schema.json: ${field} has no options object`);
  return options;
}

/** `true` stands for the convention with its defaults; `false` and absent for off. */
function enabled<T>(value: boolean | T | undefined, defaults: () => T): T | undefined {
  if (value === undefined || value === false) return undefined;
  return value === true ? defaults() : value;
}

function homeAssistant(input: MqttDetailsInput): HomeAssistantOptions | undefined {
  const options = enabled(input.homeAssistant, () =>
    parseWithSchema<typeof HomeAssistantOptionsSchema>(conventionSchema('homeAssistant'), {}, 'details.homeAssistant'),
  );
  if (options === undefined) return undefined;
  const statusTopic = options.statusTopic ?? `${options.prefix}/status`;
  const problem = topicProblem(statusTopic);
  if (problem !== undefined) throw new DetailsError('details.homeAssistant.statusTopic', problem);
  return { prefix: options.prefix, statusTopic, groupBy: options.groupBy };
}

function sparkplug(input: MqttDetailsInput): SparkplugOptions | undefined {
  const options = enabled(input.sparkplug, () =>
    parseWithSchema<typeof SparkplugOptionsSchema>(conventionSchema('sparkplug'), {}, 'details.sparkplug'),
  );
  if (options === undefined) return undefined;
  const { silenceSeconds, ...rest } = options;
  return { ...rest, ...(silenceSeconds === undefined ? {} : { silenceMs: silenceSeconds * 1000 }) };
}

function template(source: string, path: string): Template {
  const compiled = compileTemplate(source);
  if (typeof compiled === 'string') throw new DetailsError(path, compiled);
  return compiled;
}

function genericRule(rule: Static<typeof GenericRuleSchema>, path: string): GenericRule {
  const problem = filterProblem(rule.topic);
  if (problem !== undefined) throw new DetailsError(`${path}.topic`, problem);
  const presence = rule.presence;
  if (presence !== undefined && presence.online.length === 0 && presence.offline.length === 0) {
    throw new DetailsError(`${path}.presence`, 'needs online and/or offline values');
  }
  return {
    topic: rule.topic,
    deviceId: template(rule.deviceId, `${path}.deviceId`),
    properties: Object.entries(rule.properties ?? {}).map(
      ([name, source]) => [name, template(source, `${path}.properties.${name}`)] as const,
    ),
    ...(presence === undefined
      ? {}
      : { presence: { value: template(presence.value, `${path}.presence.value`), online: presence.online, offline: presence.offline } }),
    ...(rule.silenceSeconds === undefined ? {} : { silenceMs: rule.silenceSeconds * 1000 }),
  };
}

/** Validates raw details; every error names the field path. */
export function parseMqttDetails(raw: unknown): MqttDetails {
  const input = parseWithSchema<typeof MqttDetailsSchema>(DETAILS_SCHEMA, raw);
  const brokers = checkBrokers(input);
  if (input.reconnect.maxDelayMs < input.reconnect.initialDelayMs) {
    throw new DetailsError('details.reconnect.maxDelayMs', `must be between ${input.reconnect.initialDelayMs} (initialDelayMs) and 600000`);
  }
  const conventions = {
    homeAssistant: homeAssistant(input),
    homie: enabled(input.homie, () => parseWithSchema<typeof HomieOptionsSchema>(conventionSchema('homie'), {}, 'details.homie')),
    sparkplug: sparkplug(input),
    generic: input.generic?.map((rule, i) => genericRule(rule, `details.generic[${i}]`)),
  };
  if (Object.values(conventions).every((c) => c === undefined)) {
    throw new DetailsError('details', 'enable at least one convention: homeAssistant, homie, sparkplug or generic');
  }
  const credential = (key: keyof CredentialProperties): { name: string; required: boolean } => ({
    name: input.credentials[key] ?? CONVENTIONAL_CREDENTIAL_PROPERTIES[key],
    required: input.credentials[key] !== undefined,
  });
  return {
    brokers,
    protocolVersion: input.protocolVersion === 4 || input.protocolVersion === '4' || input.protocolVersion === '3.1.1' ? 4 : 5,
    clientIdPrefix: input.clientIdPrefix,
    keepaliveSeconds: input.keepaliveSeconds,
    connectTimeoutMs: input.connectTimeoutSeconds * 1000,
    reconnect: input.reconnect,
    brokerLossGraceMs: input.brokerLossGraceSeconds * 1000,
    resyncWindowMs: input.resyncWindowSeconds * 1000,
    syncMarker: input.syncMarker,
    credentials: {
      username: credential('username'),
      password: credential('password'),
      ca: credential('ca'),
      cert: credential('cert'),
      key: credential('key'),
    },
    tls: input.tls,
    shared: input.shared,
    limits: input.limits,
    ...Object.fromEntries(Object.entries(conventions).filter(([, c]) => c !== undefined)),
  };
}
