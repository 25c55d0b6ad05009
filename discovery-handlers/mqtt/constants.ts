/**
 * What the mqtt details schema (schema.ts) and the run-time code share: a module of its own,
 * so the handler loads no TypeBox at run time (issue 15).
 */

/** Names of the discovery properties read for credentials when details name none. */
export const CONVENTIONAL_CREDENTIAL_PROPERTIES = {
  username: 'MQTT_USERNAME',
  password: 'MQTT_PASSWORD',
  ca: 'MQTT_CA',
  cert: 'MQTT_CERT',
  key: 'MQTT_KEY',
} as const;
