/**
 * The ONVIF calls Tether makes on one camera and what it reads from the answers:
 * GetSystemDateAndTime → GetDeviceInformation → GetServices (GetCapabilities fallback) →
 * GetNetworkInterfaces → GetProfiles → GetStreamUri. Response parsing is pure and
 * exported for table tests.
 */
import { attribute, child, children, escapeXml, path, textValue, type XmlNode } from './xml.ts';
import { soapCall, SoapError, type SoapOptions } from './soap.ts';
import { normalizeMac } from './details.ts';

export const ONVIF_NS = {
  tds: 'http://www.onvif.org/ver10/device/wsdl',
  trt: 'http://www.onvif.org/ver10/media/wsdl',
  tt: 'http://www.onvif.org/ver10/schema',
} as const;

const MEDIA_NAMESPACE = ONVIF_NS.trt;
/** Values copied from a camera into properties are cut to this length. */
export const MAX_VALUE_LENGTH = 256;
const MAX_URI_LENGTH = 2048;
/** Profiles read per camera; real cameras have 2–6. */
export const MAX_PROFILES = 16;

export interface DeviceInformation {
  readonly manufacturer: string | undefined;
  readonly model: string | undefined;
  readonly firmwareVersion: string | undefined;
  readonly serialNumber: string | undefined;
  readonly hardwareId: string | undefined;
}

export interface NetworkInterface {
  readonly mac: string | undefined;
  readonly ipv4: readonly string[];
}

export interface Profile {
  readonly token: string;
  readonly name: string | undefined;
  readonly encoding: string | undefined;
  readonly width: number | undefined;
  readonly height: number | undefined;
}

// eslint-disable-next-line no-control-regex -- exactly what is stripped
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

function clean(value: string | undefined, max = MAX_VALUE_LENGTH): string | undefined {
  if (value === undefined) return undefined;
  const cleaned = value.replace(CONTROL_CHARACTERS, ' ').trim().slice(0, max);
  return cleaned === '' ? undefined : cleaned;
}

/** The camera's UTC clock from a GetSystemDateAndTimeResponse body, or undefined. */
export function readSystemDateAndTime(body: XmlNode): number | undefined {
  const utc = path(body, 'GetSystemDateAndTimeResponse', 'SystemDateAndTime', 'UTCDateTime');
  const n = (node: unknown, name: string): number => Number(textValue(child(node, name)));
  const date = child(utc, 'Date');
  const time = child(utc, 'Time');
  const parts = [n(date, 'Year'), n(date, 'Month'), n(date, 'Day'), n(time, 'Hour'), n(time, 'Minute'), n(time, 'Second')];
  if (parts.some((p) => !Number.isInteger(p))) return undefined;
  const [y, mo, d, h, mi, s] = parts as [number, number, number, number, number, number];
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

export function readDeviceInformation(body: XmlNode): DeviceInformation {
  const r = child(body, 'GetDeviceInformationResponse');
  if (r === undefined) throw new SoapError('malformed', 'no GetDeviceInformationResponse');
  const v = (name: string): string | undefined => clean(textValue(child(r, name)));
  return {
    manufacturer: v('Manufacturer'),
    model: v('Model'),
    firmwareVersion: v('FirmwareVersion'),
    serialNumber: v('SerialNumber'),
    hardwareId: v('HardwareId'),
  };
}

function httpUrl(value: string | undefined): string | undefined {
  if (value === undefined || value.length > MAX_URI_LENGTH) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** The Media (ver10) service URL from a GetServicesResponse body. */
export function readMediaServiceFromServices(body: XmlNode): string | undefined {
  const services = children(child(body, 'GetServicesResponse'), 'Service');
  const media = services.find((s) => textValue(child(s, 'Namespace')) === MEDIA_NAMESPACE);
  return httpUrl(textValue(child(media, 'XAddr')));
}

/** The Media service URL from a GetCapabilitiesResponse body. */
export function readMediaServiceFromCapabilities(body: XmlNode): string | undefined {
  return httpUrl(textValue(path(body, 'GetCapabilitiesResponse', 'Capabilities', 'Media', 'XAddr')));
}

export function readNetworkInterfaces(body: XmlNode): NetworkInterface[] {
  return children(child(body, 'GetNetworkInterfacesResponse'), 'NetworkInterfaces')
    .slice(0, 32)
    .map((ni) => {
      const config = path(ni, 'IPv4', 'Config');
      const addresses = [
        ...children(config, 'Manual').map((m) => textValue(child(m, 'Address'))),
        ...children(config, 'FromDHCP').map((m) => textValue(child(m, 'Address'))),
        ...children(config, 'LinkLocal').map((m) => textValue(child(m, 'Address'))),
      ].filter((a): a is string => a !== undefined && a !== '');
      const mac = textValue(path(ni, 'Info', 'HwAddress'));
      return { mac: mac === undefined ? undefined : normalizeMac(mac), ipv4: addresses };
    });
}

export function readProfiles(body: XmlNode): Profile[] {
  return children(child(body, 'GetProfilesResponse'), 'Profiles')
    .map((p) => {
      const token = clean(attribute(p, 'token'));
      const encoder = child(p, 'VideoEncoderConfiguration');
      const resolution = child(encoder, 'Resolution');
      const dim = (name: string): number | undefined => {
        const value = Number(textValue(child(resolution, name)));
        return Number.isInteger(value) && value > 0 && value < 100_000 ? value : undefined;
      };
      return token === undefined
        ? undefined
        : {
            token,
            name: clean(textValue(child(p, 'Name'))),
            encoding: clean(textValue(child(encoder, 'Encoding'))),
            width: dim('Width'),
            height: dim('Height'),
          };
    })
    .filter((p): p is Profile => p !== undefined)
    .slice(0, MAX_PROFILES);
}

const SECRET_QUERY = /^(user|username|usr|password|pass|passwd|pwd|auth|authorization|token|key|credentials?)$/i;

/**
 * A stream URI without credentials: userinfo and credential-like query parameters removed.
 * Undefined when it is not a URI Tether will pass on.
 */
export function sanitizeStreamUri(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.length > MAX_URI_LENGTH) return undefined;
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return undefined;
  }
  if (!/^(rtsp|rtsps|rtspu|http|https):$/.test(url.protocol)) return undefined;
  url.username = '';
  url.password = '';
  for (const key of [...url.searchParams.keys()]) if (SECRET_QUERY.test(key)) url.searchParams.delete(key);
  return url.toString();
}

export function readStreamUri(body: XmlNode): string | undefined {
  return sanitizeStreamUri(textValue(path(body, 'GetStreamUriResponse', 'MediaUri', 'Uri')));
}

/** Thin wrappers: one SOAP call each, parsed. */
export const onvifCalls = {
  async systemDateAndTime(url: string, options: SoapOptions): Promise<number | undefined> {
    const { credentials: _unauthenticated, ...rest } = options;
    const body = await soapCall(url, `${ONVIF_NS.tds}/GetSystemDateAndTime`, '<tds:GetSystemDateAndTime/>', { tds: ONVIF_NS.tds }, rest);
    return readSystemDateAndTime(body);
  },
  async deviceInformation(url: string, options: SoapOptions): Promise<DeviceInformation> {
    return readDeviceInformation(
      await soapCall(url, `${ONVIF_NS.tds}/GetDeviceInformation`, '<tds:GetDeviceInformation/>', { tds: ONVIF_NS.tds }, options),
    );
  },
  async mediaService(url: string, options: SoapOptions): Promise<string | undefined> {
    try {
      const body = await soapCall(
        url,
        `${ONVIF_NS.tds}/GetServices`,
        '<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>',
        { tds: ONVIF_NS.tds },
        options,
      );
      const media = readMediaServiceFromServices(body);
      if (media !== undefined) return media;
    } catch (error) {
      // Older (pre-2.0) devices have no GetServices: fall back to GetCapabilities.
      if (!(error instanceof SoapError) || error.kind !== 'fault') throw error;
    }
    const body = await soapCall(
      url,
      `${ONVIF_NS.tds}/GetCapabilities`,
      '<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>',
      { tds: ONVIF_NS.tds },
      options,
    );
    return readMediaServiceFromCapabilities(body);
  },
  async networkInterfaces(url: string, options: SoapOptions): Promise<NetworkInterface[]> {
    return readNetworkInterfaces(
      await soapCall(url, `${ONVIF_NS.tds}/GetNetworkInterfaces`, '<tds:GetNetworkInterfaces/>', { tds: ONVIF_NS.tds }, options),
    );
  },
  async profiles(mediaUrl: string, options: SoapOptions): Promise<Profile[]> {
    return readProfiles(await soapCall(mediaUrl, `${ONVIF_NS.trt}/GetProfiles`, '<trt:GetProfiles/>', { trt: ONVIF_NS.trt }, options));
  },
  async streamUri(mediaUrl: string, token: string, options: SoapOptions): Promise<string | undefined> {
    const body =
      '<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>' +
      `<trt:ProfileToken>${escapeXml(token)}</trt:ProfileToken></trt:GetStreamUri>`;
    return readStreamUri(await soapCall(mediaUrl, `${ONVIF_NS.trt}/GetStreamUri`, body, { trt: ONVIF_NS.trt, tt: ONVIF_NS.tt }, options));
  },
};
