import { describe, expect, it } from 'vitest';
import { DetailsError } from '../contract.ts';
import { parseMqttDetails } from './details.ts';
import { connectionOptions } from './mqtt.ts';

describe('parseMqttDetails', () => {
  it('fills defaults', () => {
    const details = parseMqttDetails({ broker: 'mqtt://broker.local:1883', homeAssistant: true });
    expect(details).toMatchObject({
      brokers: ['mqtt://broker.local:1883'],
      protocolVersion: 5,
      keepaliveSeconds: 30,
      connectTimeoutMs: 10_000,
      reconnect: { initialDelayMs: 500, maxDelayMs: 30_000 },
      brokerLossGraceMs: 30_000,
      resyncWindowMs: 10_000,
      syncMarker: true,
      shared: true,
      tls: { insecureSkipVerify: false },
      limits: { maxPayloadBytes: 131_072, maxJsonDepth: 32, maxProperties: 64, maxPropertyLength: 4096, maxDevices: 100_000 },
      homeAssistant: { prefix: 'homeassistant', statusTopic: 'homeassistant/status', groupBy: 'device' },
      credentials: { username: { name: 'MQTT_USERNAME', required: false } },
    });
    expect(details.homie).toBeUndefined();
  });

  it("true takes each convention's defaults", () => {
    const details = parseMqttDetails({ broker: 'mqtt://a', homie: true, sparkplug: true });
    expect(details.homie).toEqual({ domain: 'homie' });
    expect(details.sparkplug).toEqual({ nodes: true, rebirth: false });
  });

  it('accepts every convention and 3.1.1', () => {
    const details = parseMqttDetails({
      brokers: ['mqtts://a:8883', 'wss://b/mqtt'],
      protocolVersion: '3.1.1',
      homeAssistant: { prefix: 'ha', groupBy: 'entity' },
      homie: { domain: 'site' },
      sparkplug: { groups: ['plant'], rebirth: true, silenceSeconds: 60 },
      generic: [{ topic: 'tele/+/LWT', deviceId: '{topic[1]}', presence: { online: ['Online'] } }],
      credentials: { username: 'BROKER_USER', password: 'BROKER_PASS' },
    });
    expect(details.protocolVersion).toBe(4);
    expect(details.homeAssistant?.statusTopic).toBe('ha/status');
    expect(details.sparkplug).toEqual({ groups: ['plant'], nodes: true, rebirth: true, silenceMs: 60_000 });
    expect(details.generic?.[0]?.presence?.value.source).toBe('{payload}');
    expect(details.credentials.username).toEqual({ name: 'BROKER_USER', required: true });
  });

  it.each([
    [null, 'details'],
    [{ broker: 'mqtt://a' }, 'details'],
    [{ homeAssistant: true }, 'details.broker'],
    [{ broker: 'http://a', homeAssistant: true }, 'details.broker'],
    [{ broker: 'mqtt://user:secret@a', homeAssistant: true }, 'details.broker'],
    [{ brokers: [], homeAssistant: true }, 'details.brokers'],
    [{ brokers: ['mqtt://a', 'ftp://b'], homeAssistant: true }, 'details.brokers[1]'],
    [{ broker: 'mqtt://a', brokers: ['mqtt://b'], homeAssistant: true }, 'details.brokers'],
    [{ broker: 'mqtt://a', protocolVersion: 3, homeAssistant: true }, 'details.protocolVersion'],
    [{ broker: 'mqtt://a', homeAssistant: { prefix: 'a/#' } }, 'details.homeAssistant.prefix'],
    [{ broker: 'mqtt://a', homeAssistant: { groupBy: 'area' } }, 'details.homeAssistant.groupBy'],
    [{ broker: 'mqtt://a', homeAssistant: { statusTopic: 'a/+' } }, 'details.homeAssistant.statusTopic'],
    [{ broker: 'mqtt://a', homie: { domain: 'a/b' } }, 'details.homie.domain'],
    [{ broker: 'mqtt://a', sparkplug: { groups: ['a/b'] } }, 'details.sparkplug.groups[0]'],
    [{ broker: 'mqtt://a', sparkplug: { silenceSeconds: 0 } }, 'details.sparkplug.silenceSeconds'],
    [{ broker: 'mqtt://a', generic: [] }, 'details.generic'],
    [{ broker: 'mqtt://a', generic: [{ topic: 'a/#/b', deviceId: 'x' }] }, 'details.generic[0].topic'],
    [{ broker: 'mqtt://a', generic: [{ topic: 'a', deviceId: '{nope}' }] }, 'details.generic[0].deviceId'],
    [
      { broker: 'mqtt://a', generic: [{ topic: 'a', deviceId: 'x', properties: { 'bad name': '{payload}' } }] },
      'details.generic[0].properties.bad name',
    ],
    [{ broker: 'mqtt://a', generic: [{ topic: 'a', deviceId: 'x', presence: {} }] }, 'details.generic[0].presence'],
    [{ broker: 'mqtt://a', generic: [{ topic: 'a', deviceId: 'x', extra: 1 }] }, 'details.generic[0].extra'],
    [{ broker: 'mqtt://a', homeAssistant: true, limits: { maxPayloadBytes: 10 } }, 'details.limits.maxPayloadBytes'],
    [{ broker: 'mqtt://a', homeAssistant: true, limits: { maxProperties: 500 } }, 'details.limits.maxProperties'],
    [{ broker: 'mqtt://a', homeAssistant: true, reconnect: { initialDelayMs: 1000, maxDelayMs: 10 } }, 'details.reconnect.maxDelayMs'],
    [{ broker: 'mqtt://a', homeAssistant: true, credentials: { password: 'has space' } }, 'details.credentials.password'],
    [{ broker: 'mqtt://a', homeAssistant: true, clientIdPrefix: 'a b' }, 'details.clientIdPrefix'],
    [{ broker: 'mqtt://a', homeAssistant: true, keepaliveSeconds: 1 }, 'details.keepaliveSeconds'],
    [{ broker: 'mqtt://a', homeAssistant: true, shared: 'yes' }, 'details.shared'],
    [{ broker: 'mqtt://a', homeAssistant: true, tls: { verify: false } }, 'details.tls.verify'],
    [{ broker: 'mqtt://a', homeAssistant: true, password: 'x' }, 'details.password'],
  ])('rejects %j at %s', (raw, path) => {
    try {
      parseMqttDetails(raw);
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(DetailsError);
      expect((error as DetailsError).path).toBe(path);
    }
  });
});

describe('connectionOptions', () => {
  it('reads credentials and TLS material from the discovery properties', () => {
    const details = parseMqttDetails({
      broker: 'mqtts://a',
      homeAssistant: true,
      credentials: { username: 'U', password: 'P', ca: 'CA' },
      tls: { servername: 'broker' },
    });
    const options = connectionOptions(
      details,
      new Map([
        ['U', 'agent'],
        ['P', 's3cret'],
        ['CA', '-----BEGIN CERTIFICATE-----'],
        ['MQTT_CERT', 'c'],
      ]),
    );
    expect(options).toEqual({
      username: 'agent',
      password: 's3cret',
      ca: '-----BEGIN CERTIFICATE-----',
      cert: 'c',
      rejectUnauthorized: true,
      servername: 'broker',
    });
  });

  it('uses the conventional property names when present and insists on named ones', () => {
    const details = parseMqttDetails({ broker: 'mqtt://a', homeAssistant: true });
    expect(connectionOptions(details, new Map([['MQTT_USERNAME', 'u']]))).toEqual({ username: 'u', rejectUnauthorized: true });
    const named = parseMqttDetails({ broker: 'mqtt://a', homeAssistant: true, credentials: { password: 'MISSING' } });
    expect(() => connectionOptions(named, new Map())).toThrow('details.credentials.password: the discovery has no property "MISSING"');
  });
});
