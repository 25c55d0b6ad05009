/**
 * opcua: OPC UA servers (PLCs, machines, gateways), found through Local Discovery Servers
 * (FindServers, and FindServersOnNetwork where the LDS has multicast, LDS-ME), DNS-SD
 * `_opcua-tcp._tcp` announcements, and endpoint URLs listed in the details; each described by
 * GetEndpoints. Akri's `opcua` handler, details and broker property (OPCUA_DISCOVERY_URL).
 *
 * Rounds: every `queryIntervalSeconds` each discovery URL is asked, then every listed server
 * (at most `maxConcurrentRequests` at once); a failing URL or server is asked again after a
 * doubling, capped delay (presence.ts). The first round ends in a full report (replaceAll),
 * later ones report changes. A DNS-SD change (announcement, goodbye) starts a round at once.
 *
 * DNS-SD is the mdns handler's browser, reused as a handler: registry.ts passes it in (a handler
 * never imports another), and this one runs it with `_opcua-tcp._tcp` into a sink of its own.
 *
 * Pure parts: urls.ts (where Tether may connect), servers.ts (filters, properties),
 * presence.ts (present/gone, backoff). I/O: client.ts (node-opcua, loaded only here, in `run`).
 */
import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import {
  abortableDelay,
  type AnyDiscoveryHandler,
  type DeviceSink,
  type DiscoveredDevice,
  type DiscoveryHandler,
  type HandlerContext,
} from '../contract.ts';
import { createNodeOpcuaClient, type LdsAnswer, type OpcuaClientFactory, type OpcuaDiscoveryClient } from './client.ts';
import { parseOpcuaDetails, type OpcuaDetails } from './details.ts';
import { Backoff, PresenceTable } from './presence.ts';
import { securityConfig } from './security.ts';
import { SecurityChecks } from './sessions.ts';
import { describeServer, passesListingFilters, type ServerCandidate, type Source } from './servers.ts';
import { checkEndpointUrl, hostPort, withHost } from './urls.ts';

/** What registry.ts (and tests) give the handler. */
export interface OpcuaHandlerOptions {
  /** Default: node-opcua, imported when a discovery runs. */
  readonly clientFactory?: OpcuaClientFactory;
  /** The mdns handler, for `dnsSd: true`; without it `dnsSd` is refused at run time. */
  readonly dnsSdBrowser?: AnyDiscoveryHandler;
  /** Host name → IPv4, for operator-given URLs only. Default: the system resolver. */
  readonly resolve?: (host: string) => Promise<string>;
}

const DNS_SD_TYPE = '_opcua-tcp._tcp';

async function systemResolve(host: string): Promise<string> {
  return (await lookup(host, { family: 4 })).address;
}

/** The discovery URL a DNS-SD instance announces (`path` TXT key per OPC UA Part 12), or undefined. */
export function dnsSdUrl(device: DiscoveredDevice): { url: string; address: string } | undefined {
  const address = device.properties['MDNS_ADDRESS'];
  const port = device.properties['MDNS_PORT'];
  if (address === undefined || !isIPv4(address) || port === undefined) return undefined;
  const path = device.properties['MDNS_TXT_PATH'] ?? '';
  const clean = /^[\w\-./~%]*$/.test(path) ? path.replace(/^\/?/, path === '' ? '' : '/') : '';
  return { url: `opc.tcp://${address}:${port}${clean}`, address };
}

/** Keeps what the DNS-SD browser currently sees and wakes the handler on every change. */
class DnsSdInstances implements DeviceSink {
  readonly devices = new Map<string, DiscoveredDevice>();
  readonly #changed: () => void;
  constructor(changed: () => void) {
    this.#changed = changed;
  }
  replaceAll(devices: readonly DiscoveredDevice[]): void {
    this.devices.clear();
    for (const d of devices) this.devices.set(d.id, d);
    this.#changed();
  }
  upsert(device: DiscoveredDevice): void {
    this.devices.set(device.id, device);
    this.#changed();
  }
  remove(id: string): void {
    this.devices.delete(id);
    this.#changed();
  }
}

class OpcuaDiscovery {
  readonly #details: OpcuaDetails;
  readonly #context: HandlerContext;
  readonly #options: OpcuaHandlerOptions;
  readonly #presence: PresenceTable;
  readonly #ldsBackoff: Backoff;
  readonly #serverBackoff: Backoff;
  /** Each LDS's last listing, kept while it fails (an LDS outage is not a server outage). */
  readonly #listings = new Map<string, ServerCandidate[]>();
  readonly #noNetworkSearch = new Set<string>();
  readonly #reported = new Map<string, string>();
  readonly #warned = new Set<string>();
  #dnsSd: DnsSdInstances | undefined;
  #security: SecurityChecks | undefined;
  #wake: (() => void) | undefined;
  /** A DNS-SD change arrived while a round ran: the next round starts at once. */
  #changed = false;
  #first = true;

  constructor(details: OpcuaDetails, context: HandlerContext, options: OpcuaHandlerOptions) {
    this.#details = details;
    this.#context = context;
    this.#options = options;
    this.#presence = new PresenceTable(details.offlineAfterFailedQueries);
    this.#ldsBackoff = new Backoff(details.queryIntervalMs, details.maxBackoffMs);
    this.#serverBackoff = new Backoff(details.queryIntervalMs, details.maxBackoffMs);
  }

  async run(): Promise<void> {
    const { signal } = this.#context;
    const factory = this.#options.clientFactory ?? createNodeOpcuaClient;
    // Before node-opcua loads: bad credentials are a DetailsError naming the property.
    const security = securityConfig(this.#details, this.#context.properties);
    if (security !== undefined)
      this.#security = new SecurityChecks(security, (event, key, error) => this.#count(event, key, error), this.#context.count);
    const client = await factory({
      timeoutMs: this.#details.requestTimeoutMs,
      maxResponseBytes: this.#details.maxResponseBytes,
      maxEntries: this.#details.maxServers,
      log: (message) => this.#context.log.debug({ opcua: message }, 'node-opcua logged'),
      ...(security?.client === undefined ? {} : { identity: security.client }),
    });
    const browsing = this.#startDnsSd();
    try {
      while (!signal.aborted) {
        await this.#round(client);
        await this.#pause();
      }
    } finally {
      await client.close();
      await browsing;
    }
  }

  #startDnsSd(): Promise<void> {
    if (!this.#details.dnsSd) return Promise.resolve();
    const browser = this.#options.dnsSdBrowser;
    if (browser === undefined) throw new Error('dnsSd needs the mdns handler, which this build does not have');
    const instances = new DnsSdInstances(() => {
      this.#changed = true;
      this.#wake?.();
    });
    this.#dnsSd = instances;
    const details = browser.parseDetails({
      serviceTypes: [DNS_SD_TYPE],
      ...(this.#details.dnsSdInterfaces === undefined ? {} : { interfaces: this.#details.dnsSdInterfaces }),
      discoveryTimeoutSeconds: 1,
      maxDevices: this.#details.maxServers,
    });
    const { log, signal, count } = this.#context;
    return browser
      .run(details, {
        sink: instances,
        signal,
        properties: new Map(),
        log: log.child({ component: 'dns-sd' }),
        count: (e) => count(`dns_sd_${e}`),
      })
      .catch((error: unknown) => {
        count('dns_sd_failed');
        log.warn({ err: error }, 'DNS-SD browsing for OPC UA servers failed');
      });
  }

  /** Waits for the next round: the interval, or a DNS-SD change, or the end. */
  async #pause(): Promise<void> {
    if (!this.#changed) {
      const woken = new Promise<void>((resolve) => (this.#wake = resolve));
      await Promise.race([abortableDelay(this.#details.queryIntervalMs, this.#context.signal), woken]);
      this.#wake = undefined;
    }
    this.#changed = false;
  }

  /** An operator-given URL with its host resolved to IPv4 (names are the operator's own). */
  async #resolved(url: string): Promise<{ url: string; address: string } | undefined> {
    const target = hostPort(url);
    if (target === undefined) return undefined;
    if (isIPv4(target.host)) return { url, address: target.host };
    try {
      const address = await (this.#options.resolve ?? systemResolve)(target.host);
      return { url: withHost(url, address), address };
    } catch (error) {
      this.#count('resolve_failed', url, error);
      return undefined;
    }
  }

  #count(event: string, key: string, error?: unknown): void {
    this.#context.count(event);
    if (this.#warned.has(`${event}|${key}`)) return;
    this.#warned.add(`${event}|${key}`);
    this.#context.log.warn({ err: error, url: key, event }, 'OPC UA discovery problem (logged once per URL and kind)');
  }

  /** A discovery URL handed out by `from` (answering from `address`), checked; undefined when refused. */
  #accepted(url: string, address: string, from: string): string | undefined {
    const checked = checkEndpointUrl(url, address, { allowedCidrs: this.#details.allowedCidrs });
    if ('url' in checked) return checked.url;
    this.#count('unsafe_endpoint_url', `${from} ${url}`);
    return undefined;
  }

  #ldsCandidates(lds: string, address: string, answer: LdsAnswer): ServerCandidate[] {
    const out: ServerCandidate[] = [];
    if (answer.dropped > 0) this.#context.count('bad_response');
    for (const app of answer.servers) {
      const base = { source: 'lds' as Source, ldsUrl: lds, applicationUri: app.applicationUri, applicationName: app.applicationName };
      const candidate = { ...base, applicationType: app.applicationType, productUri: app.productUri, discoveryUrl: '' };
      if (!passesListingFilters(candidate, this.#details)) continue;
      const tcp = app.discoveryUrls.find((u) => u.toLowerCase().startsWith('opc.tcp://'));
      const url = tcp === undefined ? undefined : this.#accepted(tcp, address, lds);
      if (url !== undefined) out.push({ ...candidate, discoveryUrl: url });
    }
    if (answer.network === 'unsupported') {
      this.#noNetworkSearch.add(lds);
      this.#count('lds_me_unsupported', lds);
    } else {
      for (const server of answer.network ?? []) {
        const url = this.#accepted(server.discoveryUrl, address, lds);
        if (url !== undefined) out.push({ source: 'lds-me', ldsUrl: lds, discoveryUrl: url, applicationName: server.serverName });
      }
    }
    return out;
  }

  async #listLds(client: OpcuaDiscoveryClient, configured: string): Promise<void> {
    const now = Date.now();
    if (!this.#ldsBackoff.due(configured, now)) return;
    const target = await this.#resolved(configured);
    if (target === undefined) return;
    try {
      const network = this.#details.findServersOnNetwork && !this.#noNetworkSearch.has(configured);
      const answer = await client.queryLds(target.url, network);
      this.#ldsBackoff.succeeded(configured);
      this.#listings.set(configured, this.#ldsCandidates(configured, target.address, answer));
    } catch (error) {
      this.#ldsBackoff.failed(configured, now);
      this.#count('lds_unreachable', configured, error);
    }
  }

  /** Every server the sources list now, by discovery URL (at most maxServers). */
  async #candidates(client: OpcuaDiscoveryClient): Promise<Map<string, ServerCandidate>> {
    await Promise.all(this.#details.discoveryUrls.map((url) => this.#listLds(client, url)));
    const all: ServerCandidate[] = [...this.#listings.values()].flat();
    for (const configured of this.#details.endpointUrls) {
      const target = await this.#resolved(configured);
      if (target !== undefined) all.push({ source: 'endpoint', discoveryUrl: target.url });
    }
    for (const instance of this.#dnsSd?.devices.values() ?? []) {
      const announced = dnsSdUrl(instance);
      if (announced === undefined) this.#context.count('bad_dns_sd_record');
      else all.push({ source: 'dns-sd', discoveryUrl: announced.url, applicationName: instance.properties['MDNS_INSTANCE'] ?? '' });
    }
    const byUrl = new Map<string, ServerCandidate>();
    for (const candidate of all) {
      if (byUrl.has(candidate.discoveryUrl)) continue;
      if (byUrl.size >= this.#details.maxServers) {
        this.#context.count('server_limit');
        break;
      }
      byUrl.set(candidate.discoveryUrl, candidate);
    }
    return byUrl;
  }

  async #describe(client: OpcuaDiscoveryClient, candidate: ServerCandidate): Promise<void> {
    const key = candidate.discoveryUrl;
    const now = Date.now();
    if (!this.#serverBackoff.due(key, now)) return;
    try {
      const { endpoints, dropped } = await client.getEndpoints(key);
      this.#serverBackoff.succeeded(key);
      if (dropped > 0) this.#context.count('bad_response');
      const described = describeServer(candidate, endpoints, hostPort(key)!.host, this.#details);
      for (const refused of described.refusedUrls) this.#count('unsafe_endpoint_url', `${key} ${refused.url}`);
      if (described.rejection?.kind === 'uri-mismatch') this.#count('uri_mismatch', key);
      if (described.rejection?.kind === 'no-endpoints') this.#count('no_endpoints', key);
      if (described.untrusted && this.#security === undefined) this.#count('untrusted_certificate', key);
      const device = this.#security === undefined ? described.device : await this.#security.apply(client, key, described);
      this.#presence.answered(key, device);
    } catch (error) {
      this.#serverBackoff.failed(key, now);
      this.#presence.failed(key);
      this.#count('server_unreachable', key, error);
    }
  }

  async #round(client: OpcuaDiscoveryClient): Promise<void> {
    const candidates = await this.#candidates(client);
    const keys = new Set(candidates.keys());
    this.#presence.keepOnly(keys);
    this.#serverBackoff.keepOnly(keys);
    this.#security?.keepOnly(keys);
    const queue = [...candidates.values()];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined && !this.#context.signal.aborted; next = queue.shift())
        await this.#describe(client, next);
    };
    await Promise.all(Array.from({ length: Math.min(this.#details.maxConcurrentRequests, queue.length) }, worker));
    if (!this.#context.signal.aborted) this.#report();
  }

  #report(): void {
    const { devices, limited } = this.#presence.devices(this.#details.maxServers);
    if (limited) this.#context.count('server_limit');
    const { sink } = this.#context;
    if (this.#first) {
      this.#first = false;
      for (const d of devices) this.#reported.set(d.id, JSON.stringify(d));
      sink.replaceAll(devices);
      return;
    }
    const present = new Set(devices.map((d) => d.id));
    for (const id of [...this.#reported.keys()]) {
      if (present.has(id)) continue;
      this.#reported.delete(id);
      sink.remove(id);
    }
    for (const device of devices) {
      const serialised = JSON.stringify(device);
      if (this.#reported.get(device.id) === serialised) continue;
      this.#reported.set(device.id, serialised);
      sink.upsert(device);
    }
  }
}

/** The opcua handler; registry.ts passes the mdns handler as `dnsSdBrowser`. */
export function createOpcuaHandler(options: OpcuaHandlerOptions = {}): DiscoveryHandler<OpcuaDetails> {
  return {
    name: 'opcua',
    parseDetails: parseOpcuaDetails,
    isShared: (details) => details.shared,
    run: (details, context) => new OpcuaDiscovery(details, context, options).run(),
  };
}
