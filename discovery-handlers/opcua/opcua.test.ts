/**
 * The opcua handler's rounds with a fake OPC UA client (no network): sources, presence,
 * backoff, URL rules and bounds. The real wire is in opcua.peer.test.ts (asyncua).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runHandler, type RunningHandler } from '../../test/peers/handler-run.ts';
import type { AnyDiscoveryHandler, DiscoveredDevice } from '../contract.ts';
import type { ApplicationInfo, LdsAnswer, OpcuaClientFactory, SessionRequest } from './client.ts';
import { createOpcuaHandler } from './opcua.ts';
import type { EndpointInfo } from './servers.ts';

/** A fake network: LDS listings and server endpoint lists by URL; absent = unreachable. */
class FakeNetwork {
  readonly lds = new Map<string, ApplicationInfo[]>();
  readonly servers = new Map<string, EndpointInfo[]>();
  readonly asked: string[] = [];
  readonly sessions: SessionRequest[] = [];
  sessionResult: (request: SessionRequest) => Promise<void> = () => Promise.resolve();
  network: LdsAnswer['network'] = 'unsupported';
  closed = false;

  readonly factory: OpcuaClientFactory = () =>
    Promise.resolve({
      queryLds: (url: string, network: boolean) => {
        this.asked.push(`lds ${url}`);
        const servers = this.lds.get(url);
        if (servers === undefined) return Promise.reject(new Error('connection refused'));
        return Promise.resolve({ servers, dropped: 0, ...(network ? { network: this.network } : {}) });
      },
      getEndpoints: (url: string) => {
        this.asked.push(`endpoints ${url}`);
        const endpoints = this.servers.get(url);
        if (endpoints === undefined) return Promise.reject(new Error('connection refused'));
        return Promise.resolve({ endpoints, dropped: 0 });
      },
      openSession: (request) => {
        this.sessions.push(request);
        return this.sessionResult(request);
      },
      close: () => {
        this.closed = true;
        return Promise.resolve();
      },
    });

  /** A server on `address:port` registered with `lds`. */
  add(lds: string | undefined, address: string, port: number, uri: string, name = uri): void {
    const url = `opc.tcp://${address}:${port}`;
    if (lds !== undefined) {
      const list = this.lds.get(lds) ?? [];
      list.push({ applicationUri: uri, applicationName: name, applicationType: 'Server', productUri: 'urn:p', discoveryUrls: [url] });
      this.lds.set(lds, list);
    }
    this.servers.set(url, [endpoint(url, uri, name)]);
  }
}

function endpoint(url: string, uri: string, name: string, extra: Partial<EndpointInfo> = {}): EndpointInfo {
  return {
    endpointUrl: url,
    securityMode: 'None',
    securityPolicyUri: 'http://opcfoundation.org/UA/SecurityPolicy#None',
    userTokenTypes: ['Anonymous'],
    applicationUri: uri,
    applicationName: name,
    applicationType: 'ClientAndServer',
    productUri: 'urn:p',
    ...extra,
  };
}

const LDS = 'opc.tcp://10.0.0.7:4840/';
const FAST = { queryIntervalSeconds: 0.1, maxBackoffSeconds: 0.2, offlineAfterFailedQueries: 2 };
const running: RunningHandler[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
});

function start(net: FakeNetwork, details: Record<string, unknown>, dnsSdBrowser?: AnyDiscoveryHandler): RunningHandler {
  const handler = runHandler(createOpcuaHandler({ clientFactory: net.factory, ...(dnsSdBrowser ? { dnsSdBrowser } : {}) }), {
    ...FAST,
    ...details,
  });
  running.push(handler);
  return handler;
}

const viaLds = { opcuaDiscoveryMethod: { standard: { discoveryUrls: [LDS] } } };

describe('opcua handler rounds', () => {
  it('first round → one replaceAll of every listed server; unregistered → removed; a dead server → removed after two failures', async () => {
    const net = new FakeNetwork();
    net.add(LDS, '10.0.0.7', 4841, 'urn:a');
    net.add(LDS, '10.0.0.7', 4842, 'urn:b');
    const { sink } = start(net, viaLds);
    await sink.waitFor(() => sink.calls.length > 0, 2_000, 'first report');
    expect(sink.calls[0]).toEqual({ kind: 'replaceAll', ids: ['urn:a', 'urn:b'] });
    net.lds.set(
      LDS,
      net.lds.get(LDS)!.filter((s) => s.applicationUri !== 'urn:a'),
    );
    await sink.waitFor(() => !sink.devices.has('urn:a'), 2_000, 'urn:a unregistered');
    const failuresBefore = sink.counted('server_unreachable');
    net.servers.delete('opc.tcp://10.0.0.7:4842');
    await sink.waitFor(() => !sink.devices.has('urn:b'), 3_000, 'urn:b gone');
    expect(sink.counted('server_unreachable') - failuresBefore).toBeGreaterThanOrEqual(2);
    net.add(undefined, '10.0.0.7', 4842, 'urn:b');
    await sink.waitFor(() => sink.devices.has('urn:b'), 3_000, 'urn:b back');
  });

  it('an LDS outage is not a server outage: its last listing is still asked, and the LDS is retried with backoff', async () => {
    const net = new FakeNetwork();
    net.add(LDS, '10.0.0.7', 4841, 'urn:a');
    const { sink } = start(net, viaLds);
    await sink.waitFor(() => sink.devices.has('urn:a'), 2_000, 'urn:a');
    net.lds.delete(LDS);
    await sink.waitFor(() => sink.counted('lds_unreachable') >= 3, 3_000, 'three failed LDS queries');
    expect(sink.devices.has('urn:a')).toBe(true);
    expect(sink.calls.filter((c) => c.kind === 'remove')).toEqual([]);
  });

  it('refuses discovery URLs pointing off the LDS, and endpoints pointing off the server', async () => {
    const net = new FakeNetwork();
    net.add(LDS, '10.0.0.66', 4841, 'urn:elsewhere');
    net.add(LDS, '10.0.0.7', 4842, 'urn:own');
    net.servers.set('opc.tcp://10.0.0.7:4842', [
      endpoint('opc.tcp://127.0.0.1:9/', 'urn:own', 'own'),
      endpoint('opc.tcp://10.9.9.9:4842/', 'urn:own', 'own'),
    ]);
    const { sink } = start(net, viaLds);
    await sink.waitFor(() => sink.calls.length > 0, 2_000, 'first report');
    expect(sink.ids()).toEqual(['urn:own']);
    expect(sink.devices.get('urn:own')!.properties['OPCUA_ENDPOINT_URLS']).toBe('opc.tcp://10.0.0.7:9/');
    expect(net.asked).not.toContain('endpoints opc.tcp://10.0.0.66:4841');
    expect(sink.counted('unsafe_endpoint_url')).toBeGreaterThanOrEqual(2);
  });

  it('drops an LDS entry whose server answers with another application URI', async () => {
    const net = new FakeNetwork();
    net.add(LDS, '10.0.0.7', 4841, 'urn:listed');
    net.servers.set('opc.tcp://10.0.0.7:4841', [endpoint('opc.tcp://10.0.0.7:4841', 'urn:impostor', 'x')]);
    const { sink } = start(net, viaLds);
    await sink.waitFor(() => sink.calls.length > 0, 2_000, 'first report');
    expect(sink.ids()).toEqual([]);
    expect(sink.counted('uri_mismatch')).toBeGreaterThan(0);
  });

  it('uses FindServersOnNetwork where the LDS has it, and stops asking where it does not', async () => {
    const net = new FakeNetwork();
    net.lds.set(LDS, []);
    net.network = [{ serverName: 'Me', discoveryUrl: 'opc.tcp://10.0.0.7:4850' }];
    net.servers.set('opc.tcp://10.0.0.7:4850', [endpoint('opc.tcp://10.0.0.7:4850', 'urn:me', 'Me')]);
    const { sink } = start(net, viaLds);
    await sink.waitFor(() => sink.devices.has('urn:me'), 2_000, 'the LDS-ME server');
    expect(sink.devices.get('urn:me')!.properties['OPCUA_DISCOVERED_VIA']).toBe('lds-me');
  });

  it('bounds: at most maxServers servers', async () => {
    const net = new FakeNetwork();
    for (let i = 0; i < 20; i++) net.add(LDS, '10.0.0.7', 5000 + i, `urn:s${String(i).padStart(2, '0')}`);
    const { sink } = start(net, { ...viaLds, maxServers: 5 });
    await sink.waitFor(() => sink.calls.length > 0, 2_000, 'first report');
    expect(sink.devices.size).toBe(5);
    expect(sink.counted('server_limit')).toBeGreaterThan(0);
  });

  it('DNS-SD: instances from the mdns browser become servers; a goodbye removes at once', async () => {
    const net = new FakeNetwork();
    net.add(undefined, '10.0.0.8', 4840, 'urn:announced');
    let browserSink: { upsert(d: DiscoveredDevice): void; remove(id: string): void; replaceAll(d: DiscoveredDevice[]): void } | undefined;
    const browser: AnyDiscoveryHandler = {
      name: 'mdns',
      parseDetails: (raw) => raw,
      isShared: () => true,
      run: (details, context) => {
        expect(details).toMatchObject({ serviceTypes: ['_opcua-tcp._tcp'] });
        browserSink = context.sink;
        context.sink.replaceAll([]);
        return new Promise((resolve) => context.signal.addEventListener('abort', () => resolve()));
      },
    };
    const { sink } = start(net, { dnsSd: true, queryIntervalSeconds: 60 }, browser);
    await sink.waitFor(() => sink.calls.length > 0 && browserSink !== undefined, 2_000, 'first report');
    const instance = {
      id: 'Press._opcua-tcp._tcp.local',
      properties: { MDNS_ADDRESS: '10.0.0.8', MDNS_PORT: '4840', MDNS_INSTANCE: 'Press' },
    };
    browserSink!.upsert(instance);
    await sink.waitFor(() => sink.devices.has('urn:announced'), 2_000, 'announced server');
    browserSink!.remove(instance.id);
    await sink.waitFor(() => !sink.devices.has('urn:announced'), 2_000, 'goodbye');
  });

  it('closes its client when stopped', async () => {
    const net = new FakeNetwork();
    const handler = start(net, viaLds);
    await handler.sink.waitFor(() => handler.sink.calls.length > 0, 2_000, 'first report');
    await running.pop()!.stop();
    expect(net.closed).toBe(true);
  });
});
