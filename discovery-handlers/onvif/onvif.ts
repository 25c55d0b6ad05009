/**
 * onvif: IP cameras found by WS-Discovery, described over ONVIF SOAP.
 *
 * - Multicast Probe on the chosen interfaces (one socket per interface, so each Probe leaves
 *   where it should) and unicast Probe to configured hosts / CIDR blocks for routed networks;
 *   repeated every `probeIntervalSeconds`.
 * - A listener on the WS-Discovery group hears Hello (camera joined: reported as soon as its
 *   SOAP answers are in) and Bye (camera left: `sink.remove` at once, so its slots turn
 *   Unhealthy without waiting for probes).
 * - A camera that stops answering is reported gone only after `offlineAfterMissedProbes`
 *   consecutive probe rounds without an answer; one lost datagram changes nothing.
 * - New cameras are interrogated over SOAP (bounded concurrency, per-call deadline, size
 *   limit); their answers are re-read every `refreshIntervalSeconds` or when the camera's
 *   MetadataVersion or service address changes. A camera whose SOAP calls fail is still
 *   reported with what WS-Discovery told (unless MAC/manufacturer/model filters need SOAP)
 *   and retried with backoff.
 *
 * The first `replaceAll` comes after the first probe window (`discoveryTimeoutSeconds`) and
 * the interrogations it started (bounded by `soapTimeoutSeconds`); later changes are
 * `upsert`/`remove`, and every probe round re-states the full set with `replaceAll`.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { networkInterfaces as osNetworkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { abortableDelay, type DeviceSink, type DiscoveredDevice, type DiscoveryHandler, type HandlerContext } from '../contract.ts';
import { lookupArp } from './arp.ts';
import { cameraDevice, interrogate, withoutSecrets, type CameraErrorKind, type CameraInfo } from './camera.ts';
import { credentialStore, type CredentialStore } from './credentials.ts';
import type { onvifCalls } from './device-client.ts';
import { parseOnvifDetails, type OnvifDetails } from './details.ts';
import { limiter } from './limiter.ts';
import { hasDeviceFilters, passesDeviceFilters, passesDiscoveryFilters } from './filters.ts';
import { hostCount, hosts, intToIpv4, ipv4ToInt } from '../ipv4.ts';
import { allowedServiceUrl, chooseServiceUrl, isLoopbackAddress, isReservedAddress, type ServiceUrlPolicy } from './service-url.ts';
import {
  buildProbe,
  isVideoTransmitter,
  MAX_DATAGRAM_BYTES,
  parseWsDiscovery,
  WS_DISCOVERY_GROUP,
  WS_DISCOVERY_PORT,
  type Endpoint,
} from './ws-discovery.ts';

export type { OnvifDetails } from './details.ts';

/** Injection points for tests and the benchmark; production uses the defaults. */
export interface OnvifHandlerOptions {
  /** WS-Discovery port for multicast Probe and the Hello/Bye listener (default 3702). */
  readonly port?: number;
  readonly group?: string;
  readonly networkInterfaces?: typeof osNetworkInterfaces;
  /** MAC of an on-link IP when the camera does not say (default: /proc/net/arp). */
  readonly lookupMac?: (ip: string) => Promise<string | undefined>;
  readonly calls?: typeof onvifCalls;
  readonly resolveHost?: (host: string) => Promise<string[]>;
}

/** Bounded event names passed to `count`. */
export const ONVIF_EVENTS = [
  'malformed_probe_match',
  'malformed_message',
  'hello',
  'bye',
  'camera_limit',
  'soap_error',
  'soap_auth_failed',
  'soap_timeout',
  'soap_response_too_large',
  'credential_in_property',
  'send_error',
  'unsafe_service_url',
] as const;
export type OnvifEvent = (typeof ONVIF_EVENTS)[number];

const UNICAST_SOCKETS_MAX = 16;
const UNICAST_HOSTS_PER_SOCKET = 32;

interface Camera {
  readonly id: string;
  endpoint: Endpoint;
  serviceUrl: string;
  ip: string;
  /** The address the camera answered from (UDP source): where its URLs must point. */
  source: string;
  lastSeen: number;
  info: CameraInfo | undefined;
  fetchedAt: number;
  failures: number;
  retryAt: number;
  inFlight: Promise<void> | undefined;
  /** The device as last reported (undefined = not reported: not yet interrogated or filtered out). */
  device: DiscoveredDevice | undefined;
}

function hostOf(url: string): string {
  return new URL(url).hostname;
}

/** Distinct warnings kept per session: keys can come from the network (camera ids). */
const MAX_WARNINGS = 1024;

/** Receive buffer asked for on every socket: 200 cameras answering one Probe at once overflow the default. */
const RECV_BUFFER_BYTES = 1 << 20;

function bindSocket(socket: Socket, port: number, address?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, ...(address === undefined ? {} : { address }), exclusive: false }, () => {
      socket.off('error', reject);
      try {
        socket.setRecvBufferSize(RECV_BUFFER_BYTES); // capped by net.core.rmem_max
      } catch {
        // keep the default
      }
      resolve();
    });
  });
}

const EVENT_OF_ERROR: Readonly<Record<CameraErrorKind, OnvifEvent>> = {
  auth: 'soap_auth_failed',
  timeout: 'soap_timeout',
  'too-large': 'soap_response_too_large',
  'unsafe-url': 'unsafe_service_url',
  fault: 'soap_error',
  http: 'soap_error',
  network: 'soap_error',
  malformed: 'soap_error',
};

class OnvifSession {
  readonly #details: OnvifDetails;
  readonly #sink: DeviceSink;
  readonly #signal: AbortSignal;
  readonly #log: Logger;
  readonly #count: (event: OnvifEvent) => void;
  readonly #credentials: CredentialStore;
  readonly #options: Required<Omit<OnvifHandlerOptions, 'calls'>> & Pick<OnvifHandlerOptions, 'calls'>;
  readonly #cameras = new Map<string, Camera>();
  /** Probe MessageID → when it was sent (to drop answers to Probes sent before a Bye). */
  readonly #probesSent = new Map<string, number>();
  readonly #byeAt = new Map<string, number>();
  readonly #cycleStarts: number[] = [];
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly #probeSockets = new Map<string, Socket>();
  readonly #joined = new Set<string>();
  readonly #warned = new Set<string>();
  #listener: Socket | undefined;
  /**
   * Unicast probe sockets. Several, because a datagram to an on-link address nobody answers
   * ARP for stays charged to the socket's send buffer until ARP gives up (~3 s): one socket
   * sweeping a /24 of mostly empty addresses stalls after ~90 Probes.
   */
  readonly #unicast: Socket[] = [];
  #initialDone = false;
  /** Set by #open, from the details and the interfaces. */
  #urlPolicy: ServiceUrlPolicy = { allowedCidrs: [], loopback: false };

  constructor(details: OnvifDetails, context: HandlerContext, options: OnvifHandlerOptions) {
    this.#details = details;
    this.#sink = context.sink;
    this.#signal = context.signal;
    this.#log = context.log;
    this.#count = context.count;
    this.#credentials = credentialStore(context.properties);
    this.#limit = limiter(details.maxConcurrentRequests);
    this.#options = {
      port: options.port ?? WS_DISCOVERY_PORT,
      group: options.group ?? WS_DISCOVERY_GROUP,
      networkInterfaces: options.networkInterfaces ?? osNetworkInterfaces,
      lookupMac: options.lookupMac ?? ((ip) => lookupArp(ip)),
      resolveHost: options.resolveHost ?? (async (host) => (await lookup(host, { family: 4, all: true })).map((a) => a.address)),
      calls: options.calls,
    };
  }

  async run(): Promise<void> {
    try {
      await this.#open();
      while (!this.#signal.aborted) {
        const started = Date.now();
        this.#expire(started);
        this.#cycleStarts.push(started);
        if (this.#cycleStarts.length > this.#details.offlineAfterMissedProbes + 1) this.#cycleStarts.shift();
        // The first report does not wait for a long unicast sweep: late answers are upserted.
        const sending = this.#probe(started);
        if (!this.#initialDone) {
          await abortableDelay(this.#details.discoveryTimeoutMs, this.#signal);
          await this.#settle(this.#details.soapTimeoutMs);
          this.#initialDone = true;
        }
        if (this.#signal.aborted) break;
        this.#sink.replaceAll(this.#reported());
        await sending;
        await abortableDelay(Math.max(0, started + this.#details.probeIntervalMs - Date.now()), this.#signal);
      }
    } finally {
      this.#close();
      await this.#settle(Number.POSITIVE_INFINITY);
    }
  }

  #reported(): DiscoveredDevice[] {
    return [...this.#cameras.values()].flatMap((c) => (c.device === undefined ? [] : [c.device]));
  }

  /** Waits for running interrogations, at most `ms`. */
  async #settle(ms: number): Promise<void> {
    const pending = [...this.#cameras.values()].flatMap((c) => (c.inFlight === undefined ? [] : [c.inFlight]));
    if (pending.length === 0) return;
    const abort = new AbortController();
    await Promise.race([Promise.allSettled(pending), ...(Number.isFinite(ms) ? [abortableDelay(ms, abort.signal)] : [])]);
    abort.abort();
  }

  /** Drops cameras that have not answered the last `offlineAfterMissedProbes` probe rounds. */
  #expire(now: number): void {
    const n = this.#details.offlineAfterMissedProbes;
    const threshold = this.#cycleStarts.length >= n ? this.#cycleStarts[this.#cycleStarts.length - n]! : undefined;
    for (const [id, at] of this.#byeAt) if (at < now - 2 * this.#details.probeIntervalMs) this.#byeAt.delete(id);
    const keepProbes = now - (n + 2) * this.#details.probeIntervalMs;
    for (const [id, at] of this.#probesSent) if (at < keepProbes) this.#probesSent.delete(id);
    if (threshold === undefined) return;
    for (const camera of this.#cameras.values()) {
      if (camera.lastSeen >= threshold) continue;
      this.#log.info({ camera: camera.id, ip: camera.ip, missedProbes: n }, 'Lost camera after missed probes');
      this.#forget(camera.id);
    }
  }

  #forget(id: string): void {
    const camera = this.#cameras.get(id);
    this.#cameras.delete(id);
    if (camera?.device !== undefined && this.#initialDone) this.#sink.remove(id);
  }

  // ---- sockets -------------------------------------------------------------------------------

  async #open(): Promise<void> {
    this.#urlPolicy = { allowedCidrs: this.#details.allowedServiceCidrs, loopback: this.#probesLoopback() };
    if (this.#details.multicast) {
      const listener = createSocket({ type: 'udp4', reuseAddr: true });
      listener.on('message', (message, remote) => this.#onDatagram(message, remote, 'listener'));
      listener.on('error', (error) => this.#log.warn({ err: error }, 'WS-Discovery listener failed'));
      try {
        await bindSocket(listener, this.#options.port);
        this.#listener = listener;
      } catch (error) {
        listener.close();
        // Probing still works; only Hello/Bye are missed.
        this.#log.warn({ err: error, port: this.#options.port }, 'Could not listen for Hello/Bye');
      }
    }
    const targets = this.#details.unicastTargets.reduce((n, t) => n + (t.kind === 'block' ? hostCount(t.cidr) : 1), 0);
    const sockets = targets === 0 ? 0 : Math.min(UNICAST_SOCKETS_MAX, Math.ceil(targets / UNICAST_HOSTS_PER_SOCKET));
    for (let i = 0; i < sockets; i++) {
      const unicast = createSocket({ type: 'udp4' });
      unicast.on('message', (message, remote) => this.#onDatagram(message, remote, 'probe'));
      unicast.on('error', (error) => this.#log.warn({ err: error }, 'Unicast probe socket failed'));
      await bindSocket(unicast, 0);
      this.#unicast.push(unicast);
    }
  }

  /** Whether the operator asked for probing on loopback (`interfaces: [lo]`, a 127.x address or unicast block). */
  #probesLoopback(): boolean {
    const all = this.#options.networkInterfaces();
    const isLoopbackInterface = (entry: string): boolean =>
      isLoopbackAddress(entry) || (all[entry] ?? []).some((a) => a.family === 'IPv4' && a.internal && isLoopbackAddress(a.address));
    return (
      (this.#details.interfaces ?? []).some(isLoopbackInterface) ||
      this.#details.unicastTargets.some((t) => t.kind === 'block' && isLoopbackAddress(intToIpv4(t.cidr.network)))
    );
  }

  #close(): void {
    for (const socket of [this.#listener, ...this.#unicast, ...this.#probeSockets.values()]) {
      try {
        socket?.close();
      } catch {
        // already closed
      }
    }
    this.#probeSockets.clear();
  }

  /** The IPv4 addresses to multicast from: the named interfaces (or addresses), else all external ones. */
  #interfaceAddresses(): string[] {
    const all = this.#options.networkInterfaces();
    const v4 = (name: string): string[] => (all[name] ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address);
    if (this.#details.interfaces === undefined) {
      return Object.entries(all).flatMap(([name, addrs]) => ((addrs ?? []).some((a) => a.internal) ? [] : v4(name)));
    }
    return this.#details.interfaces.flatMap((entry) => {
      if (ipv4ToInt(entry) !== undefined) return [entry];
      const found = v4(entry);
      if (found.length === 0) this.#warnOnce(`iface:${entry}`, { interface: entry }, 'Interface has no IPv4 address; not probing on it');
      return found.slice(0, 1);
    });
  }

  #warnOnce(key: string, data: object, message: string): void {
    if (this.#warned.has(key) || this.#warned.size >= MAX_WARNINGS) return;
    this.#warned.add(key);
    this.#log.warn(data, message);
  }

  async #probeSocket(address: string): Promise<Socket | undefined> {
    const existing = this.#probeSockets.get(address);
    if (existing !== undefined) return existing;
    const socket = createSocket({ type: 'udp4' });
    socket.on('message', (message, remote) => this.#onDatagram(message, remote, 'probe'));
    socket.on('error', (error) => this.#log.warn({ err: error, address }, 'Probe socket failed'));
    try {
      await bindSocket(socket, 0, address);
      socket.setMulticastInterface(address);
      this.#probeSockets.set(address, socket);
      return socket;
    } catch (error) {
      socket.close();
      this.#warnOnce(`bind:${address}`, { err: error, address }, 'Could not open a probe socket');
      return undefined;
    }
  }

  #join(address: string): void {
    if (this.#listener === undefined || this.#joined.has(address)) return;
    try {
      this.#listener.addMembership(this.#options.group, address);
      this.#joined.add(address);
    } catch (error) {
      this.#warnOnce(`join:${address}`, { err: error, address }, 'Could not join the WS-Discovery group');
    }
  }

  #send(socket: Socket, port: number, address: string, now: number): Promise<void> {
    const messageId = `urn:uuid:${crypto.randomUUID()}`;
    this.#probesSent.set(messageId, now);
    const probe = buildProbe(messageId);
    return new Promise((resolve) => {
      socket.send(probe, port, address, (error) => {
        if (error !== null && !this.#signal.aborted) {
          this.#count('send_error');
          this.#warnOnce(`send:${address}`, { err: error, address }, 'Could not send a Probe');
        }
        resolve();
      });
    });
  }

  async #probe(now: number): Promise<void> {
    if (this.#details.multicast) {
      const addresses = this.#interfaceAddresses();
      // Interfaces that went away: their sockets are useless.
      for (const [address, socket] of this.#probeSockets) {
        if (!addresses.includes(address)) {
          socket.close();
          this.#probeSockets.delete(address);
        }
      }
      for (const address of addresses) {
        this.#join(address);
        const socket = await this.#probeSocket(address);
        if (socket !== undefined) await this.#send(socket, this.#options.port, this.#options.group, now);
      }
    }
    if (this.#unicast.length === 0) return;
    let sent = 0;
    for (const target of this.#details.unicastTargets) {
      if (this.#signal.aborted) return;
      let addresses: Iterable<string>;
      if (target.kind === 'block') addresses = hosts(target.cidr);
      else {
        try {
          addresses = await this.#options.resolveHost(target.host);
        } catch (error) {
          this.#warnOnce(`dns:${target.host}`, { err: error, host: target.host }, 'Could not resolve a unicast probe target');
          continue;
        }
      }
      // Round-robin over the sockets, a window of one Probe per socket in flight.
      let window: Promise<void>[] = [];
      for (const address of addresses) {
        window.push(this.#send(this.#unicast[sent++ % this.#unicast.length]!, target.port, address, now));
        if (window.length === this.#unicast.length) {
          await Promise.all(window);
          window = [];
        }
      }
      await Promise.all(window);
    }
  }

  // ---- messages ------------------------------------------------------------------------------

  #onDatagram(message: Buffer, remote: RemoteInfo, via: 'listener' | 'probe'): void {
    if (this.#signal.aborted) return;
    const malformed: OnvifEvent = via === 'probe' ? 'malformed_probe_match' : 'malformed_message';
    if (message.length > MAX_DATAGRAM_BYTES) {
      this.#count(malformed);
      return;
    }
    let parsed;
    try {
      parsed = parseWsDiscovery(message.toString('utf8'));
    } catch {
      this.#count(malformed);
      return;
    }
    switch (parsed.kind) {
      case 'probe-matches':
        for (let i = 0; i < parsed.malformed; i++) this.#count('malformed_probe_match');
        for (const endpoint of parsed.matches) this.#onEndpoint(endpoint, remote.address, parsed.relatesTo);
        return;
      case 'hello':
        this.#count('hello');
        this.#onHello(parsed.endpoint, remote);
        return;
      case 'bye':
        this.#count('bye');
        this.#onBye(parsed.id);
        return;
      case 'malformed':
        this.#count(malformed);
        return;
      case 'other':
        return;
    }
  }

  #onHello(endpoint: Endpoint, remote: RemoteInfo): void {
    if (!isVideoTransmitter(endpoint)) return; // printers, PCs and others share the group
    this.#byeAt.delete(endpoint.id);
    if (endpoint.xaddrs.length > 0) {
      this.#onEndpoint(endpoint, remote.address, undefined);
      return;
    }
    // A Hello without XAddrs: ask the camera directly (never a reserved address: no reflection).
    if (isReservedAddress(remote.address, this.#urlPolicy.loopback)) return;
    const socket = this.#unicast[0] ?? this.#probeSockets.values().next().value;
    if (socket !== undefined) void this.#send(socket, remote.port, remote.address, Date.now());
  }

  #onBye(id: string): void {
    this.#byeAt.set(id, Date.now());
    const camera = this.#cameras.get(id);
    if (camera === undefined) return;
    this.#log.info({ camera: id, ip: camera.ip }, 'Camera said Bye');
    this.#forget(id);
  }

  #onEndpoint(endpoint: Endpoint, source: string, relatesTo: string | undefined): void {
    const now = Date.now();
    if (relatesTo !== undefined) {
      const sentAt = this.#probesSent.get(relatesTo);
      const bye = this.#byeAt.get(endpoint.id);
      // An answer to a Probe sent before the camera said Bye is stale.
      if (bye !== undefined && (sentAt === undefined || sentAt <= bye)) return;
    }
    const serviceUrl = chooseServiceUrl(endpoint.xaddrs, source, this.#urlPolicy);
    if (serviceUrl === undefined) {
      // Pointing elsewhere than where it answered from: never contacted, never reported.
      this.#count('unsafe_service_url');
      this.#warnOnce(
        `unsafe:${endpoint.id}`,
        { camera: endpoint.id, source, xaddrs: endpoint.xaddrs.slice(0, 4) },
        'Ignored a camera whose service URLs do not point at the address it answered from',
      );
      return;
    }
    const ip = hostOf(serviceUrl);
    if (!passesDiscoveryFilters(this.#details.filters, { uuid: endpoint.id, ip, scopes: endpoint.scopes })) return;
    let camera = this.#cameras.get(endpoint.id);
    if (camera === undefined) {
      if (this.#cameras.size >= this.#details.maxCameras) {
        this.#count('camera_limit');
        this.#warnOnce('limit', { maxCameras: this.#details.maxCameras }, 'Camera limit reached; ignoring further cameras');
        return;
      }
      camera = {
        id: endpoint.id,
        endpoint,
        serviceUrl,
        ip,
        source,
        lastSeen: now,
        info: undefined,
        fetchedAt: 0,
        failures: 0,
        retryAt: 0,
        inFlight: undefined,
        device: undefined,
      };
      this.#cameras.set(camera.id, camera);
      this.#log.debug({ camera: camera.id, ip, serviceUrl }, 'Found camera');
    } else {
      const moved = camera.serviceUrl !== serviceUrl;
      const changed =
        endpoint.metadataVersion !== camera.endpoint.metadataVersion || endpoint.scopes.join(' ') !== camera.endpoint.scopes.join(' ');
      if (moved || changed) {
        camera.fetchedAt = 0;
        camera.retryAt = 0;
      }
      camera.endpoint = endpoint;
      camera.serviceUrl = serviceUrl;
      camera.ip = ip;
      camera.source = source;
      camera.lastSeen = now;
    }
    this.#maybeInterrogate(camera, now);
  }

  #maybeInterrogate(camera: Camera, now: number): void {
    if (camera.inFlight !== undefined || now < camera.retryAt) return;
    // A camera whose last interrogation failed is asked again after its backoff (retryAt), not after the refresh interval.
    if (camera.info !== undefined && camera.failures === 0 && now - camera.fetchedAt < this.#details.refreshIntervalMs) return;
    camera.inFlight = this.#limit(() => this.#interrogate(camera))
      .catch((error: unknown) => this.#log.error({ err: error, camera: camera.id }, 'Failed to interrogate camera'))
      .finally(() => (camera.inFlight = undefined));
  }

  async #interrogate(camera: Camera): Promise<void> {
    if (this.#signal.aborted || this.#cameras.get(camera.id) !== camera) return;
    const details = this.#details;
    let info: CameraInfo;
    const ip = camera.ip;
    try {
      info = await interrogate(camera.serviceUrl, ip, {
        credentials: this.#credentials.forCamera(camera.id),
        soap: {
          timeoutMs: details.soapTimeoutMs,
          maxResponseBytes: details.maxResponseBytes,
          signal: this.#signal,
          tlsInsecureSkipVerify: details.tlsInsecureSkipVerify,
        },
        streamUris: details.streamUris,
        lookupMac: this.#options.lookupMac,
        allowUrl: (url) => allowedServiceUrl(url, camera.source, this.#urlPolicy),
        ...(this.#options.calls === undefined ? {} : { calls: this.#options.calls }),
      });
    } catch {
      return; // aborted
    }
    const now = Date.now();
    for (const kind of new Set(info.errors)) {
      this.#count(EVENT_OF_ERROR[kind]);
    }
    if (info.errors.length > 0) {
      camera.failures++;
      camera.retryAt = now + Math.min(details.probeIntervalMs * 2 ** (camera.failures - 1), details.refreshIntervalMs);
      const hasCredentials = this.#credentials.forCamera(camera.id) !== undefined;
      const errors = [...new Set(info.errors)];
      if (errors.includes('too-large')) {
        this.#log.warn(
          { camera: camera.id, ip: camera.ip, errors, hasCredentials, maxResponseBytes: details.maxResponseBytes },
          'Camera SOAP calls failed: an answer was larger than maxResponseBytes and was refused unread',
        );
      } else this.#log.warn({ camera: camera.id, ip: camera.ip, errors, hasCredentials }, 'Camera SOAP calls failed');
    } else {
      camera.failures = 0;
      camera.retryAt = 0;
    }
    // Gone (Bye, expiry) while we were asking: nothing to report.
    if (this.#signal.aborted || this.#cameras.get(camera.id) !== camera) return;
    // A failed login does not make the MAC Tether already knew (same address) unknown.
    const knownMac = camera.info?.mac;
    camera.info = info.mac === undefined && knownMac !== undefined && camera.ip === ip ? { ...info, mac: knownMac } : info;
    camera.fetchedAt = now;
    this.#update(camera);
  }

  #update(camera: Camera): void {
    const info = camera.info;
    // Once interrogated, unknown values are decided by the filters themselves (they fail an
    // include list and pass an exclude list); before that, only a camera without such filters.
    const decidable = !hasDeviceFilters(this.#details.filters) || info !== undefined;
    const accepted =
      decidable &&
      passesDeviceFilters(this.#details.filters, { mac: info?.mac, manufacturer: info?.device?.manufacturer, model: info?.device?.model });
    const previous = camera.device;
    if (!accepted) {
      camera.device = undefined;
      if (previous !== undefined && this.#initialDone) this.#sink.remove(camera.id);
      return;
    }
    const state = { id: camera.id, serviceUrl: camera.serviceUrl, ip: camera.ip, scopes: camera.endpoint.scopes, info };
    const { device, dropped } = withoutSecrets(cameraDevice(state), this.#credentials.secrets);
    if (dropped > 0) this.#count('credential_in_property');
    camera.device = device;
    if (previous === undefined) this.#log.info({ camera: camera.id, ip: camera.ip }, 'Discovered camera');
    if (this.#initialDone) this.#sink.upsert(device);
  }
}

export function createOnvifHandler(options: OnvifHandlerOptions = {}): DiscoveryHandler<OnvifDetails> {
  return {
    name: 'onvif',
    parseDetails: parseOnvifDetails,
    isShared: (details) => details.shared,
    run: (details, context) => new OnvifSession(details, context, options).run(),
  };
}
