/**
 * Camera credentials from the discovery's resolved properties (Secret values already read
 * by the agent): `ONVIF_USERNAME` / `ONVIF_PASSWORD` for every camera, and
 * `ONVIF_USERNAME_<uuid>` / `ONVIF_PASSWORD_<uuid>` for one camera (uuid in any case, with
 * or without `urn:uuid:`). A per-camera value wins over the default, field by field.
 */
import type { Credentials } from './soap.ts';

export interface CredentialStore {
  /** Credentials for the camera with this (bare, lower-case) uuid; undefined = none configured. */
  forCamera(uuid: string): Credentials | undefined;
  /** Every configured password, to keep them out of device properties. */
  readonly secrets: readonly string[];
}

const KEY = /^ONVIF_(USERNAME|PASSWORD)(?:_(?:urn[_:])?(?:uuid[_:])?([0-9a-fA-F-]{36}))?$/i;

export function credentialStore(properties: ReadonlyMap<string, string>): CredentialStore {
  const defaults: { username?: string; password?: string } = {};
  const perCamera = new Map<string, { username?: string; password?: string }>();
  for (const [key, value] of properties) {
    const match = KEY.exec(key);
    if (match === null) continue;
    const field = match[1]!.toLowerCase() as 'username' | 'password';
    const uuid = match[2]?.toLowerCase();
    if (uuid === undefined) defaults[field] = value;
    else {
      const entry = perCamera.get(uuid) ?? {};
      entry[field] = value;
      perCamera.set(uuid, entry);
    }
  }
  const secrets = [defaults.password, ...[...perCamera.values()].map((e) => e.password)].filter(
    (s): s is string => s !== undefined && s !== '',
  );
  return {
    secrets,
    forCamera(uuid) {
      const own = perCamera.get(uuid.toLowerCase());
      const username = own?.username ?? defaults.username;
      if (username === undefined || username === '') return undefined;
      return { username, password: own?.password ?? defaults.password ?? '' };
    },
  };
}
