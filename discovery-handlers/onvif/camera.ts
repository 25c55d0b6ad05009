/**
 * One camera: reading what it is over SOAP (interrogate) and turning what is known into the
 * DiscoveredDevice Tether reports (cameraDevice, pure). Credentials go into SOAP headers
 * only; they never reach properties, logs or error messages.
 */
import type { DiscoveredDevice } from '../contract.ts';
import { MAX_VALUE_LENGTH, onvifCalls, type DeviceInformation, type Profile } from './device-client.ts';
import { SoapError, type Credentials, type SoapErrorKind, type SoapOptions } from './soap.ts';

/** Property names, Akri-compatible where Akri has one. */
export const ONVIF_PROPERTIES = {
  serviceUrl: 'ONVIF_DEVICE_SERVICE_URL',
  uuid: 'ONVIF_DEVICE_UUID',
  ip: 'ONVIF_DEVICE_IP_ADDRESS',
  mac: 'ONVIF_DEVICE_MAC_ADDRESS',
  manufacturer: 'ONVIF_DEVICE_MANUFACTURER',
  model: 'ONVIF_DEVICE_MODEL',
  firmware: 'ONVIF_DEVICE_FIRMWARE_VERSION',
  serial: 'ONVIF_DEVICE_SERIAL_NUMBER',
  hardwareId: 'ONVIF_DEVICE_HARDWARE_ID',
  name: 'ONVIF_DEVICE_NAME',
  location: 'ONVIF_DEVICE_LOCATION',
  scopes: 'ONVIF_DEVICE_SCOPES',
  mediaUrl: 'ONVIF_MEDIA_SERVICE_URL',
  streamUri: 'ONVIF_STREAM_URI',
  profileToken: 'ONVIF_PROFILE_TOKEN',
} as const;

export interface ProfileStream {
  readonly profile: Profile;
  readonly streamUri: string | undefined;
}

/**
 * Why a step failed: a SOAP error, or `unsafe-url` — the camera named a media service or
 * stream URI that does not point at it (see service-url.ts), which Tether neither calls nor
 * publishes.
 */
export type CameraErrorKind = SoapErrorKind | 'unsafe-url';

/** What SOAP told us; any step may have failed (listed in `errors`). */
export interface CameraInfo {
  readonly clockOffsetMs: number;
  readonly device: DeviceInformation | undefined;
  readonly mac: string | undefined;
  readonly mediaUrl: string | undefined;
  readonly streams: readonly ProfileStream[];
  readonly errors: readonly CameraErrorKind[];
}

export interface InterrogateOptions {
  readonly credentials: Credentials | undefined;
  readonly soap: Omit<SoapOptions, 'credentials' | 'clockOffsetMs'>;
  readonly streamUris: boolean;
  readonly lookupMac: (ip: string) => Promise<string | undefined>;
  /**
   * The URL (normalised) when the camera may be called at / published with it, else
   * undefined. Applied to the media service URL before it is called and to every stream URI.
   */
  readonly allowUrl: (url: string) => string | undefined;
  readonly calls?: typeof onvifCalls;
}

function kindOf(error: unknown): SoapErrorKind {
  return error instanceof SoapError ? error.kind : 'network';
}

/**
 * Reads a camera's identity, MAC, media service, profiles and stream URIs. Never throws for
 * camera errors (they are listed in `errors`); rethrows only when `signal` aborted.
 */
export async function interrogate(serviceUrl: string, ip: string | undefined, options: InterrogateOptions): Promise<CameraInfo> {
  const calls = options.calls ?? onvifCalls;
  const errors: CameraErrorKind[] = [];
  const attempt = async <T>(call: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await call();
    } catch (error) {
      if (options.soap.signal.aborted) throw error;
      errors.push(kindOf(error));
      return undefined;
    }
  };
  const before = Date.now();
  const cameraNow = await attempt(() => calls.systemDateAndTime(serviceUrl, options.soap));
  // Half the round trip is the best estimate of when the camera read its clock.
  const clockOffsetMs = cameraNow === undefined ? 0 : cameraNow - (before + Date.now()) / 2;
  const soap: SoapOptions = { ...options.soap, credentials: options.credentials, clockOffsetMs };
  const device = await attempt(() => calls.deviceInformation(serviceUrl, soap));
  if (device === undefined && errors.includes('auth')) {
    // Wrong or missing credentials: every further call would fail the same way. The ARP
    // table needs no login.
    const mac = ip === undefined ? undefined : await options.lookupMac(ip);
    return { clockOffsetMs, device, mac, mediaUrl: undefined, streams: [], errors };
  }
  const interfaces = await attempt(() => calls.networkInterfaces(serviceUrl, soap));
  const own = interfaces?.find((ni) => ip !== undefined && ni.ipv4.includes(ip)) ?? (interfaces?.length === 1 ? interfaces[0] : undefined);
  const mac = own?.mac ?? (ip === undefined ? undefined : await options.lookupMac(ip));
  if (!options.streamUris) return { clockOffsetMs, device, mac, mediaUrl: undefined, streams: [], errors };
  const { mediaUrl, streams } = await readMedia(calls, serviceUrl, soap, options.allowUrl, attempt, errors);
  return { clockOffsetMs, device, mac, mediaUrl, streams, errors };
}

/** The media service (only where allowed) and its profiles' stream URIs (only the allowed ones). */
async function readMedia(
  calls: typeof onvifCalls,
  serviceUrl: string,
  soap: SoapOptions,
  allowUrl: (url: string) => string | undefined,
  attempt: <T>(call: () => Promise<T>) => Promise<T | undefined>,
  errors: CameraErrorKind[],
): Promise<{ mediaUrl: string | undefined; streams: ProfileStream[] }> {
  const offered = await attempt(() => calls.mediaService(serviceUrl, soap));
  const mediaUrl = offered === undefined ? undefined : allowUrl(offered);
  if (offered !== undefined && mediaUrl === undefined) errors.push('unsafe-url');
  if (mediaUrl === undefined) return { mediaUrl, streams: [] };
  const streams = (await readStreams(calls, mediaUrl, soap, attempt)).map(({ profile, streamUri }) => {
    const allowed = streamUri === undefined ? undefined : allowUrl(streamUri);
    if (streamUri !== undefined && allowed === undefined) errors.push('unsafe-url');
    return { profile, streamUri: allowed };
  });
  return { mediaUrl, streams };
}

async function readStreams(
  calls: typeof onvifCalls,
  mediaUrl: string,
  soap: SoapOptions,
  attempt: <T>(call: () => Promise<T>) => Promise<T | undefined>,
): Promise<ProfileStream[]> {
  const streams: ProfileStream[] = [];
  for (const profile of (await attempt(() => calls.profiles(mediaUrl, soap))) ?? []) {
    streams.push({ profile, streamUri: await attempt(() => calls.streamUri(mediaUrl, profile.token, soap)) });
  }
  return streams;
}

/** Everything known about a camera when its device is built. */
export interface CameraState {
  readonly id: string;
  readonly serviceUrl: string;
  readonly ip: string | undefined;
  readonly scopes: readonly string[];
  readonly info: CameraInfo | undefined;
}

function scopeValue(scopes: readonly string[], kind: string): string | undefined {
  const prefix = `onvif://www.onvif.org/${kind}/`;
  const scope = scopes.find((s) => s.toLowerCase().startsWith(prefix));
  if (scope === undefined) return undefined;
  try {
    return decodeURIComponent(scope.slice(prefix.length)).slice(0, MAX_VALUE_LENGTH);
  } catch {
    return scope.slice(prefix.length).slice(0, MAX_VALUE_LENGTH);
  }
}

/** The device Tether reports for a camera. Pure. */
export function cameraDevice(camera: CameraState): DiscoveredDevice {
  const p = ONVIF_PROPERTIES;
  const properties: Record<string, string> = { [p.uuid]: camera.id, [p.serviceUrl]: camera.serviceUrl };
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') properties[key] = value;
  };
  set(p.ip, camera.ip);
  set(p.name, scopeValue(camera.scopes, 'name'));
  set(p.location, scopeValue(camera.scopes, 'location'));
  set(p.scopes, camera.scopes.join(' ').slice(0, 4096));
  const info = camera.info;
  if (info !== undefined) {
    set(p.mac, info.mac);
    set(p.manufacturer, info.device?.manufacturer);
    set(p.model, info.device?.model);
    set(p.firmware, info.device?.firmwareVersion);
    set(p.serial, info.device?.serialNumber);
    set(p.hardwareId, info.device?.hardwareId);
    set(p.mediaUrl, info.mediaUrl);
    const main = info.streams.find((s) => s.streamUri !== undefined);
    set(p.streamUri, main?.streamUri);
    set(p.profileToken, main?.profile.token);
    info.streams.forEach(({ profile, streamUri }, i) => {
      set(`ONVIF_PROFILE_${i}_TOKEN`, profile.token);
      set(`ONVIF_PROFILE_${i}_NAME`, profile.name);
      set(`ONVIF_PROFILE_${i}_ENCODING`, profile.encoding);
      set(
        `ONVIF_PROFILE_${i}_RESOLUTION`,
        profile.width === undefined || profile.height === undefined ? undefined : `${profile.width}x${profile.height}`,
      );
      set(`ONVIF_PROFILE_${i}_STREAM_URI`, streamUri);
    });
  }
  return { id: camera.id, properties };
}

/**
 * Drops every property whose value contains a password (a camera echoing credentials in a
 * URI or a name): they would become env values. Returns how many were dropped.
 */
export function withoutSecrets(device: DiscoveredDevice, secrets: readonly string[]): { device: DiscoveredDevice; dropped: number } {
  const live = secrets.filter((s) => s.length >= 3);
  if (live.length === 0) return { device, dropped: 0 };
  const entries = Object.entries(device.properties);
  const kept = entries.filter(([, value]) => !live.some((s) => value.includes(s) || value.includes(encodeURIComponent(s))));
  return { device: { ...device, properties: Object.fromEntries(kept) }, dropped: entries.length - kept.length };
}
