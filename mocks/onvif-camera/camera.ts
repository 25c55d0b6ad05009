/**
 * A simulated ONVIF camera speaking the real wire protocols:
 *
 * - WS-Discovery on UDP: answers Probes for NetworkVideoTransmitter with a ProbeMatch (only
 *   when the Probe declares the namespace of its Types prefix, as strict cameras do — Akri
 *   #486), multicasts Hello on start / online and Bye on stop / offline.
 * - SOAP 1.2 over HTTP: GetSystemDateAndTime, GetDeviceInformation, GetServices,
 *   GetCapabilities, GetNetworkInterfaces, GetProfiles, GetStreamUri; every call but
 *   GetSystemDateAndTime needs a valid WS-UsernameToken PasswordDigest (nonce not reused,
 *   Created within `clockToleranceMs` of the camera's own, possibly skewed, clock) or, with
 *   `auth: 'http-digest'`, an HTTP Digest Authorization.
 *
 * Sockets: one UDP socket bound to the group address (multicast Probes), one bound to the
 * camera's own address (unicast Probes; source of its answers, Hello and Bye), one HTTP
 * server on the camera's address. Give every camera its own address when unicast probing:
 * a unicast datagram reaches only one of several sockets bound to the same address and port.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { XMLParser } from 'fast-xml-parser';

export interface CameraIdentity {
  readonly manufacturer: string;
  readonly model: string;
  readonly firmwareVersion: string;
  readonly serialNumber: string;
  readonly hardwareId: string;
  readonly mac: string;
}

export interface SimulatedProfile {
  readonly token: string;
  readonly name: string;
  readonly encoding: string;
  readonly width: number;
  readonly height: number;
}

export interface SimulatedCameraOptions {
  /** IPv4 address the camera binds and announces (loopback or an address in a test netns). */
  readonly address: string;
  readonly uuid?: string;
  readonly httpPort?: number;
  /** WS-Discovery port (default 3702). */
  readonly wsDiscoveryPort?: number;
  readonly group?: string;
  /** Address of the interface to join the group on / send Hello from (default `address`). */
  readonly multicastInterface?: string;
  readonly identity?: Partial<CameraIdentity>;
  readonly scopes?: readonly string[];
  readonly profiles?: readonly SimulatedProfile[];
  /** Required credentials; omitted = no authentication. */
  readonly credentials?: { readonly username: string; readonly password: string };
  readonly auth?: 'ws-security' | 'http-digest';
  /** Camera clock minus real clock. */
  readonly clockOffsetMs?: number;
  readonly clockToleranceMs?: number;
  /** Pre-2.0 device: GetServices faults, GetCapabilities works. */
  readonly legacy?: boolean;
  /** Hostile/buggy camera: stream URIs carry the credentials (`rtsp://user:pass@…`). */
  readonly credentialsInStreamUri?: boolean;
  /** Multicast Hello when started (default true). */
  readonly helloOnStart?: boolean;
  readonly metadataVersion?: number;
  /**
   * Answer a multicast Probe after a random 0..n ms, as WS-Discovery asks (APP_MAX_DELAY,
   * 500 ms) so that a whole network does not answer at once. Default 0 (tests run fast).
   */
  readonly probeReplyMaxDelayMs?: number;
}

const NS = {
  s: 'http://www.w3.org/2003/05/soap-envelope',
  a: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  d: 'http://schemas.xmlsoap.org/ws/2005/04/discovery',
  dn: 'http://www.onvif.org/ver10/network/wsdl',
  tds: 'http://www.onvif.org/ver10/device/wsdl',
  trt: 'http://www.onvif.org/ver10/media/wsdl',
  tt: 'http://www.onvif.org/ver10/schema',
  ter: 'http://www.onvif.org/ver10/error',
};

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: false,
  parseTagValue: false,
  processEntities: false,
});

type Node = Record<string, unknown>;

function esc(value: string): string {
  return value.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Finds a child element by local name, whatever its prefix. */
function local(node: unknown, name: string): unknown {
  if (typeof node !== 'object' || node === null) return undefined;
  for (const [key, value] of Object.entries(node as Node)) {
    if (key === name || key.endsWith(`:${name}`)) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

function textOf(node: unknown): string | undefined {
  if (typeof node === 'string') return node;
  if (typeof node === 'object' && node !== null) {
    const t = (node as Node)['#text'];
    return typeof t === 'string' ? t : undefined;
  }
  return undefined;
}

function bodyAction(doc: unknown): string | undefined {
  const body = local(local(doc, 'Envelope'), 'Body');
  if (typeof body !== 'object' || body === null) return undefined;
  const first = Object.keys(body).find((k) => !k.startsWith('@_') && k !== '#text');
  return first?.includes(':') === true ? first.slice(first.indexOf(':') + 1) : first;
}

const DEFAULT_PROFILES: SimulatedProfile[] = [
  { token: 'profile_main', name: 'Main', encoding: 'H264', width: 1920, height: 1080 },
  { token: 'profile_sub', name: 'Sub', encoding: 'H264', width: 640, height: 360 },
];

export class SimulatedCamera {
  readonly uuid: string;
  readonly address: string;
  readonly identity: CameraIdentity;
  readonly #options: SimulatedCameraOptions;
  readonly #usedNonces = new Set<string>();
  readonly #digestNonces = new Set<string>();
  #http: Server | undefined;
  #groupSocket: Socket | undefined;
  #unicastSocket: Socket | undefined;
  #online = true;
  #metadataVersion: number;
  /** Counters for tests. */
  readonly stats = { probes: 0, probeMatches: 0, ignoredProbes: 0, soap: new Map<string, number>(), authFailures: 0 };

  constructor(options: SimulatedCameraOptions) {
    this.#options = options;
    this.uuid = options.uuid ?? randomUUID();
    this.address = options.address;
    this.#metadataVersion = options.metadataVersion ?? 1;
    const short = this.uuid.slice(0, 8);
    this.identity = {
      manufacturer: 'Tether Simulated',
      model: 'SimCam 1000',
      firmwareVersion: '1.0.0',
      serialNumber: `SN-${short}`,
      hardwareId: 'HW-1',
      mac: `02:00:${short.slice(0, 2)}:${short.slice(2, 4)}:${short.slice(4, 6)}:${short.slice(6, 8)}`,
      ...options.identity,
    };
  }

  get port(): number {
    return (this.#http?.address() as AddressInfo | null)?.port ?? 0;
  }

  get serviceUrl(): string {
    return `http://${this.address}:${this.port}/onvif/device_service`;
  }

  get mediaUrl(): string {
    return `http://${this.address}:${this.port}/onvif/media_service`;
  }

  get online(): boolean {
    return this.#online;
  }

  get wsPort(): number {
    return this.#options.wsDiscoveryPort ?? 3702;
  }

  get scopes(): string[] {
    return [
      ...(this.#options.scopes ?? [
        `onvif://www.onvif.org/name/SimCam%20${this.uuid.slice(0, 8)}`,
        'onvif://www.onvif.org/location/lab',
        'onvif://www.onvif.org/hardware/SimCam1000',
        'onvif://www.onvif.org/Profile/Streaming',
      ]),
    ];
  }

  /** The RTSP URI the camera hands out for a profile (without credentials unless configured hostile). */
  streamUri(token: string): string {
    const creds = this.#options.credentials;
    const userinfo = this.#options.credentialsInStreamUri === true && creds !== undefined ? `${creds.username}:${creds.password}@` : '';
    return `rtsp://${userinfo}${this.address}:554/stream/${token}`;
  }

  async start(): Promise<void> {
    const http = createServer((req, res) => this.#onHttp(req, res));
    http.listen(this.#options.httpPort ?? 0, this.address);
    await once(http, 'listening');
    this.#http = http;
    const group = this.#options.group ?? '239.255.255.250';
    const iface = this.#options.multicastInterface ?? this.address;
    const groupSocket = createSocket({ type: 'udp4', reuseAddr: true });
    groupSocket.on('message', (m, r) => this.#onDatagram(m, r, true));
    groupSocket.on('error', () => undefined);
    await new Promise<void>((resolve) => groupSocket.bind(this.wsPort, group, resolve));
    groupSocket.addMembership(group, iface);
    this.#groupSocket = groupSocket;
    const unicast = createSocket({ type: 'udp4', reuseAddr: true });
    unicast.on('message', (m, r) => this.#onDatagram(m, r, false));
    unicast.on('error', () => undefined);
    await new Promise<void>((resolve) => unicast.bind(this.wsPort, this.address, resolve));
    unicast.setMulticastInterface(iface);
    this.#unicastSocket = unicast;
    if (this.#options.helloOnStart !== false) await this.sendHello();
  }

  /** Says Bye (unless `bye: false`) and closes everything. */
  async stop(options: { bye?: boolean } = {}): Promise<void> {
    if (options.bye !== false && this.#online && this.#unicastSocket !== undefined) await this.sendBye();
    this.#groupSocket?.close();
    this.#unicastSocket?.close();
    this.#groupSocket = undefined;
    this.#unicastSocket = undefined;
    const http = this.#http;
    this.#http = undefined;
    if (http !== undefined) {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  }

  /** Stops answering probes and SOAP; sends Bye first when `bye` (a clean shutdown) — else it just vanishes. */
  async goOffline(options: { bye?: boolean } = {}): Promise<void> {
    if (options.bye === true && this.#online) await this.sendBye();
    this.#online = false;
    this.#http?.closeAllConnections();
  }

  /** Answers again and multicasts Hello (with a new MetadataVersion when `changed`). */
  async goOnline(options: { hello?: boolean; changed?: boolean } = {}): Promise<void> {
    this.#online = true;
    if (options.changed === true) this.#metadataVersion++;
    if (options.hello !== false) await this.sendHello();
  }

  sendHello(): Promise<void> {
    return this.#multicast('Hello', `<d:Hello>${this.#endpointXml()}</d:Hello>`, `<d:AppSequence InstanceId="1" MessageNumber="1"/>`);
  }

  sendBye(): Promise<void> {
    return this.#multicast(
      'Bye',
      `<d:Bye><a:EndpointReference><a:Address>urn:uuid:${this.uuid}</a:Address></a:EndpointReference></d:Bye>`,
      '',
    );
  }

  #endpointXml(): string {
    return (
      `<a:EndpointReference><a:Address>urn:uuid:${this.uuid}</a:Address></a:EndpointReference>` +
      '<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>' +
      `<d:Scopes>${esc(this.scopes.join(' '))}</d:Scopes>` +
      `<d:XAddrs>${esc(this.serviceUrl)}</d:XAddrs>` +
      `<d:MetadataVersion>${this.#metadataVersion}</d:MetadataVersion>`
    );
  }

  #discoveryEnvelope(action: string, body: string, extraHeader: string, relatesTo?: string): string {
    return (
      '<?xml version="1.0" encoding="UTF-8"?>' +
      `<SOAP-ENV:Envelope xmlns:SOAP-ENV="${NS.s}" xmlns:a="${NS.a}" xmlns:d="${NS.d}" xmlns:dn="${NS.dn}" xmlns:tds="${NS.tds}">` +
      '<SOAP-ENV:Header>' +
      `<a:MessageID>urn:uuid:${randomUUID()}</a:MessageID>` +
      (relatesTo === undefined ? '' : `<a:RelatesTo>${esc(relatesTo)}</a:RelatesTo>`) +
      `<a:To>${relatesTo === undefined ? 'urn:schemas-xmlsoap-org:ws:2005:04:discovery' : 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous'}</a:To>` +
      `<a:Action>${NS.d}/${action}</a:Action>` +
      extraHeader +
      '</SOAP-ENV:Header>' +
      `<SOAP-ENV:Body>${body}</SOAP-ENV:Body></SOAP-ENV:Envelope>`
    );
  }

  #multicast(action: string, body: string, header: string): Promise<void> {
    const socket = this.#unicastSocket;
    if (socket === undefined) return Promise.resolve();
    const message = this.#discoveryEnvelope(action, body, header);
    return new Promise((resolve) => socket.send(message, this.wsPort, this.#options.group ?? '239.255.255.250', () => resolve()));
  }

  /** Whether a Probe asks for us: no Types, or a NetworkVideoTransmitter QName whose prefix is declared. */
  static probeWantsVideoTransmitter(text: string, types: string | undefined): boolean {
    if (types === undefined || types.trim() === '') return true;
    return types.split(/\s+/).some((qname) => {
      const [prefix, localName] = qname.includes(':') ? qname.split(':', 2) : ['', qname];
      if (localName !== 'NetworkVideoTransmitter' && localName !== 'Device') return false;
      if (prefix === '') return true;
      const declared = new RegExp(`xmlns:${prefix!.replace(/[^A-Za-z0-9_.-]/g, '')}\\s*=\\s*["']([^"']*)["']`).exec(text)?.[1];
      return declared === NS.dn || declared === NS.tds;
    });
  }

  #onDatagram(message: Buffer, remote: RemoteInfo, multicast: boolean): void {
    if (!this.#online) return;
    const text = message.toString('utf8');
    let doc: unknown;
    try {
      doc = parser.parse(text);
    } catch {
      return;
    }
    if (bodyAction(doc) !== 'Probe') return;
    this.stats.probes++;
    const envelope = local(doc, 'Envelope');
    const types = textOf(local(local(local(envelope, 'Body'), 'Probe'), 'Types'));
    if (!SimulatedCamera.probeWantsVideoTransmitter(text, types)) {
      this.stats.ignoredProbes++;
      return;
    }
    const messageId = textOf(local(local(envelope, 'Header'), 'MessageID')) ?? '';
    const reply = this.#discoveryEnvelope(
      'ProbeMatches',
      `<d:ProbeMatches><d:ProbeMatch>${this.#endpointXml()}</d:ProbeMatch></d:ProbeMatches>`,
      '<d:AppSequence InstanceId="1" MessageNumber="2"/>',
      messageId,
    );
    const answer = (): void => {
      if (!this.#online) return;
      this.stats.probeMatches++;
      this.#unicastSocket?.send(reply, remote.port, remote.address);
    };
    const maxDelay = multicast ? (this.#options.probeReplyMaxDelayMs ?? 0) : 0;
    if (maxDelay > 0) setTimeout(answer, Math.random() * maxDelay).unref();
    else answer();
  }

  // ---- SOAP ------------------------------------------------------------------------------------

  #onHttp(req: IncomingMessage, res: ServerResponse): void {
    if (!this.#online) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        this.#answer(req, res, text);
      } catch {
        this.#fault(res, 400, 'env:Sender', 'ter:WellFormed', 'malformed request');
      }
    });
  }

  #answer(req: IncomingMessage, res: ServerResponse, text: string): void {
    const doc = parser.parse(text) as unknown;
    const action = bodyAction(doc);
    if (action === undefined) return this.#fault(res, 400, 'env:Sender', 'ter:WellFormed', 'no body');
    this.stats.soap.set(action, (this.stats.soap.get(action) ?? 0) + 1);
    if (action !== 'GetSystemDateAndTime' && !this.#authorized(req, res, doc)) return;
    const body = this.#response(action, doc, req.url ?? '');
    if (body === undefined) return this.#fault(res, 500, 'env:Receiver', 'ter:ActionNotSupported', `${action} is not supported`);
    this.#send(res, 200, body);
  }

  #now(): number {
    return Date.now() + (this.#options.clockOffsetMs ?? 0);
  }

  #authorized(req: IncomingMessage, res: ServerResponse, doc: unknown): boolean {
    const creds = this.#options.credentials;
    if (creds === undefined) return true;
    if (this.#options.auth === 'http-digest') return this.#httpDigest(req, res, creds);
    const token = local(local(local(local(doc, 'Envelope'), 'Header'), 'Security'), 'UsernameToken');
    const username = textOf(local(token, 'Username'));
    const passwordNode = local(token, 'Password');
    const password = textOf(passwordNode);
    const typeAttr = typeof passwordNode === 'object' && passwordNode !== null ? (passwordNode as Node)['@_Type'] : undefined;
    const type = typeof typeAttr === 'string' ? typeAttr : '';
    const nonce = textOf(local(token, 'Nonce'));
    const created = textOf(local(token, 'Created'));
    const ok = (() => {
      if (username !== creds.username || password === undefined || nonce === undefined || created === undefined) return false;
      if (!type.endsWith('#PasswordDigest')) return false;
      const createdMs = Date.parse(created);
      if (!Number.isFinite(createdMs) || Math.abs(createdMs - this.#now()) > (this.#options.clockToleranceMs ?? 5_000)) return false;
      if (this.#usedNonces.has(nonce)) return false;
      const expected = createHash('sha1')
        .update(Buffer.concat([Buffer.from(nonce, 'base64'), Buffer.from(created), Buffer.from(creds.password)]))
        .digest('base64');
      if (expected !== password) return false;
      this.#usedNonces.add(nonce);
      return true;
    })();
    if (!ok) {
      this.stats.authFailures++;
      this.#fault(res, 400, 'env:Sender', 'ter:NotAuthorized', 'Sender not authorized');
    }
    return ok;
  }

  #httpDigest(req: IncomingMessage, res: ServerResponse, creds: { username: string; password: string }): boolean {
    const header = req.headers.authorization ?? '';
    const params = Object.fromEntries([...header.matchAll(/(\w+)=(?:"([^"]*)"|([^\s,]+))/g)].map((m) => [m[1]!, m[2] ?? m[3] ?? '']));
    const realm = 'SimCam';
    if (header.startsWith('Digest ') && params['nonce'] !== undefined && this.#digestNonces.has(params['nonce'])) {
      const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
      const ha1 = md5(`${creds.username}:${realm}:${creds.password}`);
      const ha2 = md5(`POST:${params['uri']}`);
      const expected = md5(`${ha1}:${params['nonce']}:${params['nc']}:${params['cnonce']}:${params['qop']}:${ha2}`);
      if (params['username'] === creds.username && params['response'] === expected) return true;
      this.stats.authFailures++;
    }
    const nonce = randomBytes(12).toString('hex');
    this.#digestNonces.add(nonce);
    res.writeHead(401, { 'www-authenticate': `Digest realm="${realm}", qop="auth", nonce="${nonce}", algorithm=MD5` }).end();
    return false;
  }

  #response(action: string, doc: unknown, _url: string): string | undefined {
    const id = this.identity;
    switch (action) {
      case 'GetSystemDateAndTime': {
        const d = new Date(this.#now());
        return (
          '<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>' +
          '<tt:TimeZone><tt:TZ>UTC</tt:TZ></tt:TimeZone><tt:UTCDateTime>' +
          `<tt:Time><tt:Hour>${d.getUTCHours()}</tt:Hour><tt:Minute>${d.getUTCMinutes()}</tt:Minute><tt:Second>${d.getUTCSeconds()}</tt:Second></tt:Time>` +
          `<tt:Date><tt:Year>${d.getUTCFullYear()}</tt:Year><tt:Month>${d.getUTCMonth() + 1}</tt:Month><tt:Day>${d.getUTCDate()}</tt:Day></tt:Date>` +
          '</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>'
        );
      }
      case 'GetDeviceInformation':
        return (
          `<tds:GetDeviceInformationResponse><tds:Manufacturer>${esc(id.manufacturer)}</tds:Manufacturer><tds:Model>${esc(id.model)}</tds:Model>` +
          `<tds:FirmwareVersion>${esc(id.firmwareVersion)}</tds:FirmwareVersion><tds:SerialNumber>${esc(id.serialNumber)}</tds:SerialNumber>` +
          `<tds:HardwareId>${esc(id.hardwareId)}</tds:HardwareId></tds:GetDeviceInformationResponse>`
        );
      case 'GetServices':
        if (this.#options.legacy === true) return undefined;
        return (
          '<tds:GetServicesResponse>' +
          `<tds:Service><tds:Namespace>${NS.tds}</tds:Namespace><tds:XAddr>${esc(this.serviceUrl)}</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>` +
          `<tds:Service><tds:Namespace>${NS.trt}</tds:Namespace><tds:XAddr>${esc(this.mediaUrl)}</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>` +
          '</tds:GetServicesResponse>'
        );
      case 'GetCapabilities':
        return (
          '<tds:GetCapabilitiesResponse><tds:Capabilities>' +
          `<tt:Device><tt:XAddr>${esc(this.serviceUrl)}</tt:XAddr></tt:Device>` +
          `<tt:Media><tt:XAddr>${esc(this.mediaUrl)}</tt:XAddr><tt:StreamingCapabilities><tt:RTP_TCP>true</tt:RTP_TCP></tt:StreamingCapabilities></tt:Media>` +
          '</tds:Capabilities></tds:GetCapabilitiesResponse>'
        );
      case 'GetNetworkInterfaces':
        return (
          '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled>' +
          `<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>${esc(id.mac)}</tt:HwAddress><tt:MTU>1500</tt:MTU></tt:Info>` +
          `<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual><tt:Address>${esc(this.address)}</tt:Address><tt:PrefixLength>24</tt:PrefixLength></tt:Manual><tt:DHCP>false</tt:DHCP></tt:Config></tt:IPv4>` +
          '</tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>'
        );
      case 'GetProfiles':
        return (
          '<trt:GetProfilesResponse>' +
          (this.#options.profiles ?? DEFAULT_PROFILES)
            .map(
              (p) =>
                `<trt:Profiles token="${esc(p.token)}" fixed="true"><tt:Name>${esc(p.name)}</tt:Name>` +
                `<tt:VideoEncoderConfiguration token="vec_${esc(p.token)}"><tt:Name>${esc(p.name)}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>${esc(p.encoding)}</tt:Encoding>` +
                `<tt:Resolution><tt:Width>${p.width}</tt:Width><tt:Height>${p.height}</tt:Height></tt:Resolution></tt:VideoEncoderConfiguration></trt:Profiles>`,
            )
            .join('') +
          '</trt:GetProfilesResponse>'
        );
      case 'GetStreamUri': {
        const token = textOf(local(local(local(local(doc, 'Envelope'), 'Body'), 'GetStreamUri'), 'ProfileToken'));
        const profile = (this.#options.profiles ?? DEFAULT_PROFILES).find((p) => p.token === token);
        if (profile === undefined) return undefined;
        return (
          `<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>${esc(this.streamUri(profile.token))}</tt:Uri>` +
          '<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>'
        );
      }
      default:
        return undefined;
    }
  }

  #envelope(body: string): string {
    return (
      '<?xml version="1.0" encoding="UTF-8"?>' +
      `<env:Envelope xmlns:env="${NS.s}" xmlns:tds="${NS.tds}" xmlns:trt="${NS.trt}" xmlns:tt="${NS.tt}" xmlns:ter="${NS.ter}">` +
      `<env:Body>${body}</env:Body></env:Envelope>`
    );
  }

  #send(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'application/soap+xml; charset=utf-8' }).end(this.#envelope(body));
  }

  #fault(res: ServerResponse, status: number, code: string, subcode: string, reason: string): void {
    this.#send(
      res,
      status,
      `<env:Fault><env:Code><env:Value>${code}</env:Value><env:Subcode><env:Value>${subcode}</env:Value></env:Subcode></env:Code>` +
        `<env:Reason><env:Text xml:lang="en">${esc(reason)}</env:Text></env:Reason></env:Fault>`,
    );
  }
}
