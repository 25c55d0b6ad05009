/**
 * The node runtime with fake adapters: what the source wants runs, what the sessions report
 * is served to the plugins and handed to the publication, slots are claimed durably, and
 * what the publication says about slots and staleness flows back. Real plugin sockets in a
 * temp dir (no kubelet needed: the plugins serve, registration just waits).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceName, deviceResourceName, discoveryResourceName } from '../../api/names.ts';
import type { AnyDiscoveryHandler, DeviceSink, DiscoveredDevice } from '../../discovery-handlers/contract.ts';
import type { ServedDevice } from '../device.ts';
import { PluginError } from '../device-plugin/server.ts';
import type { SessionSpec } from '../discovery/session.ts';
import { ApplyConflictError } from '../publish/devices-api.ts';
import type { DevicePublication, DiscoverySource, PublicationEvents } from './adapters.ts';
import type { DesiredSession } from './desired-sessions.ts';
import { NodeRuntime } from './node-runtime.ts';
import { WakeSignal } from '../../test/support/wake-signal.ts';

const log = pino({ level: 'silent' });
const NODE = 'n1';
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** One handler per discovery name: records its runs and hands the sink to the test. */
class Handlers {
  readonly runs = new Map<string, number>();
  readonly sinks = new Map<string, DeviceSink>();
  readonly changed = new WakeSignal();
  fail = false;

  handler(shared = false): AnyDiscoveryHandler {
    return {
      name: 'driven',
      parseDetails: (raw) => raw,
      isShared: () => shared,
      run: async (details, { sink, signal }) => {
        const name = (details as { name: string }).name;
        this.runs.set(name, (this.runs.get(name) ?? 0) + 1);
        this.sinks.set(name, sink);
        this.changed.poke();
        if (this.fail) throw new Error(`${name} failed`);
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      },
    };
  }
}

class FakeSource implements DiscoverySource {
  sessions: DesiredSession[] = [];
  readonly failed: { session: string; message: string }[] = [];
  stopped = false;
  #changed: () => void = () => undefined;
  start(changed: () => void): Promise<void> {
    this.#changed = changed;
    return Promise.resolve();
  }
  set(sessions: DesiredSession[]): void {
    this.sessions = sessions;
    this.#changed();
  }
  desired(): Promise<readonly DesiredSession[]> {
    return Promise.resolve(this.sessions);
  }
  handlerFailed(session: SessionSpec, error: Error): void {
    this.failed.push({ session: session.name, message: error.message });
  }
  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}

class FakePublication implements DevicePublication {
  readonly published: ServedDevice[][] = [];
  readonly persisted: { device: string; held: readonly number[] }[] = [];
  readonly previous = new Map<string, DiscoveredDevice[]>();
  readonly slots = new Map<string, Record<string, string>>();
  readonly changed = new WakeSignal();
  events: PublicationEvents | undefined;
  conflict = false;
  failNextPublish = 0;
  stopped = false;
  get seeded(): number {
    return [...this.previous.values()].flat().length;
  }
  start(events: PublicationEvents): Promise<void> {
    this.events = events;
    return Promise.resolve();
  }
  previouslyServed(namespace: string, discovery: string): DiscoveredDevice[] {
    return this.previous.get(`${namespace}/${discovery}`) ?? [];
  }
  serverSlots(device: ServedDevice): Readonly<Record<string, string>> | undefined {
    return this.slots.get(device.name);
  }
  publish(devices: readonly ServedDevice[]): Promise<number> {
    this.published.push([...devices]);
    this.changed.poke();
    if (this.failNextPublish > 0) {
      this.failNextPublish--;
      return Promise.resolve(1);
    }
    return Promise.resolve(0);
  }
  persistSlots(device: ServedDevice, held: readonly number[]): Promise<void> {
    if (this.conflict) return Promise.reject(new ApplyConflictError('another node holds it'));
    this.persisted.push({ device: device.name, held });
    return Promise.resolve();
  }
  idle(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
  last(): ServedDevice[] {
    return this.published.at(-1) ?? [];
  }
}

interface Rig {
  runtime: NodeRuntime;
  source: FakeSource;
  publication: FakePublication;
  handlers: Handlers;
  want: (name: string, options?: { capacity?: number; fingerprint?: string; shared?: boolean }) => DesiredSession;
  /** Health of every slot a resource advertises, as the plugin server holds it. */
  health: (resource: string) => string[] | undefined;
}

async function rig(
  setup: (rig: Omit<Rig, 'runtime' | 'health'>) => void = () => undefined,
  options: { startupTimeoutMs?: number } = {},
): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'trt-'));
  const source = new FakeSource();
  const publication = new FakePublication();
  const handlers = new Handlers();
  const want = (name: string, o: { capacity?: number; fingerprint?: string; shared?: boolean } = {}): DesiredSession => ({
    key: `ns/${name}`,
    fingerprint: o.fingerprint ?? name,
    spec: {
      namespace: 'ns',
      name,
      handler: handlers.handler(o.shared),
      details: { name },
      capacity: o.capacity ?? 1,
      offlineGraceMs: 60_000,
      properties: new Map(),
    },
  });
  setup({ source, publication, handlers, want });
  const runtime = new NodeRuntime({ node: NODE, log, pluginDir: dir, source, publication, reconcileIntervalMs: 0, ...options });
  await runtime.start();
  cleanups.push(async () => {
    await runtime.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const health = (resource: string): string[] | undefined =>
    runtime.plugins
      .servers()
      .get(resource)
      ?.devices.map((d) => d.health);
  return { runtime, source, publication, handlers, want, health };
}

const nameOf = (discovery: string, id: string): string => deviceName({ namespace: 'ns', discovery, deviceId: id, node: NODE });

describe('NodeRuntime', () => {
  it('runs what the source wants; reports reach the plugins and the publication; an unwanted session stops and its devices go', async () => {
    const r = await rig(({ source, want }) => (source.sessions = [want('cams')]));
    await r.handlers.changed.until(() => r.handlers.sinks.has('cams'), 'cams handler running');
    r.handlers.sinks.get('cams')!.replaceAll([{ id: 'a', properties: {} }]);
    await r.runtime.settled();
    expect(r.health(deviceResourceName(nameOf('cams', 'a')))).toEqual(['Healthy']);
    expect(r.health(discoveryResourceName('cams'))).toEqual(['Healthy']);
    expect(r.publication.last().map((d) => [d.name, d.online])).toEqual([[nameOf('cams', 'a'), true]]);
    expect(r.publication.events?.hasSession('ns', 'cams')).toBe(true);

    r.source.set([]);
    await r.runtime.settled();
    expect(r.publication.events?.hasSession('ns', 'cams')).toBe(false);
    expect(r.runtime.plugins.servers().size).toBe(0);
    expect(r.publication.last()).toEqual([]);
  });

  it('a capacity change resizes in place; a fingerprint change restarts the handler without dropping its devices', async () => {
    const r = await rig(({ source, want }) => (source.sessions = [want('cams')]));
    await r.handlers.changed.until(() => r.handlers.sinks.has('cams'), 'cams handler running');
    r.handlers.sinks.get('cams')!.replaceAll([{ id: 'a', properties: {} }]);
    await r.runtime.settled();

    r.source.set([r.want('cams', { capacity: 3 })]);
    await r.runtime.settled();
    expect(r.health(discoveryResourceName('cams'))).toEqual(['Healthy', 'Healthy', 'Healthy']);
    expect(r.handlers.runs.get('cams')).toBe(1);

    const before = r.publication.published.length;
    r.source.set([r.want('cams', { capacity: 3, fingerprint: 'changed' })]);
    await r.handlers.changed.until(() => r.handlers.runs.get('cams') === 2, 'restarted handler');
    await r.runtime.settled();
    // Seeded from the old session: the device never went offline or away in between.
    for (const published of r.publication.published.slice(before)) expect(published.map((d) => d.online)).toEqual([true]);
  });

  it('seeds a session with what this node published before a restart, until the handler says otherwise', async () => {
    const r = await rig(({ source, publication, want }) => {
      source.sessions = [want('cams')];
      publication.previous.set('ns/cams', [{ id: 'old', properties: { V: '1' } }]);
    });
    await r.runtime.settled();
    expect(r.publication.last().map((d) => [d.deviceId, d.online])).toEqual([['old', true]]);
    await r.handlers.changed.until(() => r.handlers.sinks.has('cams'), 'cams handler running');
    r.handlers.sinks.get('cams')!.replaceAll([]);
    await r.runtime.settled();
    expect(r.publication.last().map((d) => [d.deviceId, d.online])).toEqual([['old', false]]);
  });

  it('the start-up timeout takes unconfirmed seeded devices offline', async () => {
    const r = await rig(
      ({ source, publication, want }) => {
        source.sessions = [want('cams')];
        publication.previous.set('ns/cams', [{ id: 'old', properties: {} }]);
      },
      { startupTimeoutMs: 20 },
    );
    await r.publication.changed.until(() => r.publication.last().some((d) => d.deviceId === 'old' && !d.online), 'seeded device offline');
  });

  it('Allocate claims the slot durably with every index this node holds; a conflict refuses it and frees the slot', async () => {
    const r = await rig(({ source, want }) => (source.sessions = [want('cams', { capacity: 2 })]));
    await r.handlers.changed.until(() => r.handlers.sinks.has('cams'), 'cams handler running');
    r.handlers.sinks.get('cams')!.replaceAll([{ id: 'a', properties: { URL: 'rtsp://a' } }]);
    await r.runtime.settled();
    const device = nameOf('cams', 'a');
    const response = await r.runtime.devices.allocate(discoveryResourceName('cams'), [`${device}-1`]);
    expect(response.envs['URL']).toBe('rtsp://a');
    expect(r.publication.persisted).toEqual([{ device, held: [1] }]);
    await r.runtime.settled();
    expect(r.health(deviceResourceName(device))).toEqual(['Healthy', 'Unhealthy']);

    r.publication.conflict = true;
    const refused = await r.runtime.devices.allocate(deviceResourceName(device), [`${device}-0`]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PluginError);
    expect((refused as PluginError).code).toBe(status.ABORTED);
    expect(r.runtime.ledger.holderOf(`${device}-0`)).toBeUndefined();
  });

  it('slots the cluster says another node holds turn Unhealthy here, and Healthy again when released', async () => {
    const r = await rig(({ source, want }) => (source.sessions = [want('cams', { capacity: 2, shared: true })]));
    await r.handlers.changed.until(() => r.handlers.sinks.has('cams'), 'cams handler running');
    r.handlers.sinks.get('cams')!.replaceAll([{ id: 'a', properties: {} }]);
    await r.runtime.settled();
    const device = deviceName({ namespace: 'ns', discovery: 'cams', deviceId: 'a' });
    r.publication.events!.slots(device, { '0': 'n2' });
    await r.runtime.settled();
    expect(r.health(deviceResourceName(device))).toEqual(['Unhealthy', 'Healthy']);
    expect(r.runtime.ledger.holderOf(`${device}-0`)?.node).toBe('n2');
    r.publication.events!.slots(device, {});
    await r.runtime.settled();
    expect(r.health(deviceResourceName(device))).toEqual(['Healthy', 'Healthy']);
  });

  it('republishes when the publication says its state went stale, and retries failed writes', async () => {
    const r = await rig(({ source, want }) => (source.sessions = [want('cams')]));
    await r.runtime.settled();
    const before = r.publication.published.length;
    r.publication.events!.republish();
    await r.runtime.settled();
    expect(r.publication.published.length).toBe(before + 1);

    r.publication.failNextPublish = 1;
    r.publication.events!.republish();
    await r.publication.changed.until(() => r.publication.published.length >= before + 3, 'a retry after the failed write', 5_000);
  });

  it('tells the source about handler failures', async () => {
    const r = await rig(({ source, handlers, want }) => {
      handlers.fail = true;
      source.sessions = [want('cams')];
    });
    await r.handlers.changed.until(() => (r.handlers.runs.get('cams') ?? 0) >= 1, 'a failed run');
    await r.handlers.changed.until(() => r.source.failed.length >= 1, 'the failure reported');
    expect(r.source.failed[0]).toEqual({ session: 'cams', message: 'cams failed' });
  });

  it('stop() stops the adapters and removes the plugin sockets, publishing nothing more', async () => {
    const r = await rig(({ source, want }) => (source.sessions = [want('cams')]));
    await r.handlers.changed.until(() => r.handlers.sinks.has('cams'), 'cams handler running');
    r.handlers.sinks.get('cams')!.replaceAll([{ id: 'a', properties: {} }]);
    await r.runtime.settled();
    const published = r.publication.published.length;
    const server = r.runtime.plugins.servers().get(discoveryResourceName('cams'))!;
    await r.runtime.stop();
    expect(r.source.stopped && r.publication.stopped).toBe(true);
    expect(r.publication.published).toHaveLength(published);
    expect(r.runtime.ready).toBe(false);
    await expect(import('node:fs/promises').then((fs) => fs.stat(server.socketPath))).rejects.toThrow();
  });
});
