/**
 * Tether's SDK for external discovery handlers (Akri v0 wire protocol).
 * See docs/handlers/external.md.
 */
export { DetailsError, type DiscoveredDevice, type DeviceMount, type DeviceNode } from '../contract.ts';
export {
  serveDiscoveryHandler,
  ServedDiscoveryHandler,
  type DiscoveryHandlerDefinition,
  type EmitDevices,
  type HandlerListen,
  type ServeDiscoveryHandlerOptions,
} from './serve.ts';
export { Registrar, type RegistrarOptions } from './registrar.ts';
