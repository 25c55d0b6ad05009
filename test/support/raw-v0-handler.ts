/**
 * A v0 DiscoveryHandler written against the raw protos, as a Rust handler built on Akri's
 * discovery-utils behaves, and registration the way such a handler does it: no SDK, so a
 * test decides exactly when it registers. Used by the agent/external tests.
 */
import { EventEmitter } from 'node:events';
import { credentials, Server, ServerCredentials, type status, type ServerWritableStream, type ServiceError } from '@grpc/grpc-js';
import { loadDiscoveryProtos } from '../../proto/load.ts';
import type { AkriDevice, DiscoverRequest, DiscoverResponse, RegisterDiscoveryHandlerRequest } from '../../proto/types.ts';

const protos = loadDiscoveryProtos();

type DiscoverCall = ServerWritableStream<DiscoverRequest, DiscoverResponse>;

/** A v0 DiscoveryHandler written against the raw protos, like an Akri handler in Rust. */
export class RawHandler extends EventEmitter {
  readonly requests: DiscoverRequest[] = [];
  readonly calls = new Set<DiscoverCall>();
  devices: AkriDevice[];
  /** Answer Discover with this status instead of a stream. */
  refuse: { code: status; details: string } | undefined;
  /** Do not send the first list until release(). */
  hold = false;
  readonly #address: string;
  #server: Server | undefined;
  port = 0;

  constructor(address: string, devices: AkriDevice[] = []) {
    super();
    this.#address = address;
    this.devices = devices;
  }

  async start(): Promise<void> {
    const server = new Server();
    server.addService(protos.DiscoveryHandler.service, {
      Discover: (call: DiscoverCall) => {
        this.requests.push(call.request);
        this.emit('request');
        if (this.refuse !== undefined) {
          call.emit('error', this.refuse);
          return;
        }
        this.calls.add(call);
        call.on('cancelled', () => {
          this.calls.delete(call);
          this.emit('cancelled');
        });
        if (!this.hold) call.write({ devices: this.devices });
        this.emit('discover');
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.#address, ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))),
    );
    this.#server = server;
  }

  setDevices(devices: AkriDevice[]): void {
    this.devices = devices;
    for (const call of this.calls) call.write({ devices });
  }

  release(): void {
    this.hold = false;
    this.setDevices(this.devices);
  }

  /** The process dies: connections drop without a status. */
  kill(): void {
    this.#server?.forceShutdown();
    this.#server = undefined;
    this.calls.clear();
  }
}

export const device = (id: string, properties: Record<string, string> = {}): AkriDevice => ({
  id,
  properties,
  mounts: [],
  device_specs: [],
});

export function register(agentSocket: string, request: RegisterDiscoveryHandlerRequest): Promise<void> {
  const client = new protos.Registration(`unix://${agentSocket}`, credentials.createInsecure());
  return new Promise<void>((resolve, reject) => {
    (client as unknown as Record<string, (r: unknown, cb: (e: ServiceError | null) => void) => void>)['RegisterDiscoveryHandler']!(
      request,
      (error) => (error ? reject(error) : resolve()),
    );
  }).finally(() => client.close());
}

/** A UDS registration request. */
export const uds = (name: string, endpoint: string, shared = false): RegisterDiscoveryHandlerRequest => ({
  name,
  endpoint,
  endpoint_type: 'UDS',
  shared,
});
