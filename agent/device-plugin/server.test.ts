/**
 * One device-plugin server, spoken to over its socket the way the kubelet does: options,
 * ListAndWatch snapshots on every change, Allocate (checked IDs, all containers or none,
 * errors as gRPC statuses), GetPreferredAllocation, registration, and its socket's lifecycle.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadDevicePluginProtos } from '../../proto/load.ts';
import type {
  AllocateResponse,
  ContainerAllocateResponse,
  ContainerPreferredAllocationRequest,
  DevicePluginOptions,
  ListAndWatchResponse,
  PluginDevice,
  PreferredAllocationResponse,
} from '../../proto/types.ts';
import { MockKubelet } from '../kubelet/mock-kubelet.ts';
import { waitUntil } from '../../test/support/external-handler.ts';
import { DevicePluginServer, PluginError, socketNameFor, type PluginBackend } from './server.ts';

const RESOURCE = 'tether.dev/cams-0123456789abcdef';
const protos = loadDevicePluginProtos();
const log = pino({ level: 'silent' });

/** A backend that records what it was asked and answers with the slot IDs in the env. */
class RecordingBackend implements PluginBackend {
  readonly allocated: string[][] = [];
  readonly released: string[][] = [];
  readonly preferred: ContainerPreferredAllocationRequest[] = [];
  /** Makes the n-th allocate call (0-based) throw this. */
  failOn: { call: number; error: Error } | undefined;

  allocate(resourceName: string, deviceIds: readonly string[]): Promise<ContainerAllocateResponse> {
    const call = this.allocated.length;
    this.allocated.push([...deviceIds]);
    if (this.failOn?.call === call) return Promise.reject(this.failOn.error);
    return Promise.resolve({
      envs: { RESOURCE: resourceName, SLOTS: deviceIds.join(',') },
      mounts: [{ container_path: '/etc/cam', host_path: '/var/lib/cam', read_only: true }],
      devices: deviceIds.map((id, i) => ({ container_path: `/dev/cam${i}`, host_path: `/dev/${id}`, permissions: 'rw' })),
      annotations: { 'tether.dev/slots': deviceIds.join(',') },
      cdi_devices: [{ name: `tether.dev/cam=${deviceIds[0] ?? ''}` }],
    });
  }

  preferredAllocation(_resourceName: string, request: ContainerPreferredAllocationRequest): readonly string[] {
    this.preferred.push(request);
    return [...request.available_deviceIDs].reverse().slice(0, request.allocation_size);
  }

  release(_resourceName: string, deviceIds: readonly string[]): void {
    this.released.push([...deviceIds]);
  }
}

const healthy = (...ids: string[]): PluginDevice[] => ids.map((ID) => ({ ID, health: 'Healthy' }));

let dir: string;
let backend: RecordingBackend;
let server: DevicePluginServer;
let client: Client;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tdp-'));
  backend = new RecordingBackend();
  server = new DevicePluginServer({ resourceName: RESOURCE, pluginDir: dir, backend, log });
  server.setDevices(healthy('slot-1', 'slot-0'));
  await server.serve();
  client = new protos.DevicePlugin(`unix://${server.socketPath}`, credentials.createInsecure());
});

afterEach(async () => {
  client.close();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

function call<T>(method: string, request: unknown): Promise<T> {
  const rpc = (client as unknown as Record<string, (...args: unknown[]) => void>)[method]!;
  return new Promise((resolve, reject) =>
    rpc.call(client, request, (error: ServiceError | null, response: T) => (error ? reject(error) : resolve(response))),
  );
}

/** Opens ListAndWatch and keeps every message. */
function watch(): {
  stream: ClientReadableStream<ListAndWatchResponse>;
  messages: ListAndWatchResponse[];
  next: (n: number) => Promise<void>;
} {
  const stream = (client as unknown as Record<string, (request: unknown) => ClientReadableStream<ListAndWatchResponse>>)[
    'ListAndWatch'
  ]!.call(client, {});
  const messages: ListAndWatchResponse[] = [];
  stream.on('data', (m: ListAndWatchResponse) => messages.push(m));
  stream.on('error', () => undefined); // cancelled by the test or ended by stop()
  return { stream, messages, next: (n) => waitUntil(stream, 'data', () => messages.length >= n, 3_000, `${n} ListAndWatch messages`) };
}

const ids = (m: ListAndWatchResponse | undefined): string[] => (m?.devices ?? []).map((d) => `${d.ID}:${d.health}`);

async function statusOf(promise: Promise<unknown>): Promise<{ code: number | undefined; details: string | undefined }> {
  try {
    await promise;
  } catch (error) {
    const e = error as ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('expected the call to fail');
}

describe('GetDevicePluginOptions', () => {
  it('offers preferred allocation and needs no PreStartContainer', async () => {
    await expect(call<DevicePluginOptions>('GetDevicePluginOptions', {})).resolves.toEqual({
      pre_start_required: false,
      get_preferred_allocation_available: true,
    });
  });
});

describe('ListAndWatch', () => {
  it('sends the current devices sorted by ID at once, then the whole list on every change', async () => {
    const w = watch();
    await w.next(1);
    expect(ids(w.messages[0])).toEqual(['slot-0:Healthy', 'slot-1:Healthy']);
    expect(server.watchers).toBe(1);

    expect(
      server.setDevices([
        { ID: 'slot-0', health: 'Healthy' },
        { ID: 'slot-1', health: 'Unhealthy' },
      ]),
    ).toBe(true);
    await w.next(2);
    expect(ids(w.messages[1])).toEqual(['slot-0:Healthy', 'slot-1:Unhealthy']);

    expect(server.setDevices(healthy('slot-2'))).toBe(true);
    await w.next(3);
    expect(ids(w.messages[2])).toEqual(['slot-2:Healthy']);
    expect(server.devices.map((d) => d.ID)).toEqual(['slot-2']);
  });

  it('sends nothing when the list did not change (order aside)', async () => {
    server.setDevices(healthy('a', 'b'));
    const w = watch();
    await w.next(1);
    expect(server.setDevices(healthy('b', 'a'))).toBe(false);
    expect(server.setDevices(healthy('a', 'b', 'c'))).toBe(true);
    await w.next(2);
    // The unchanged list would have been message 2: the next one is the real change.
    expect(w.messages.map(ids)).toEqual([
      ['a:Healthy', 'b:Healthy'],
      ['a:Healthy', 'b:Healthy', 'c:Healthy'],
    ]);
  });

  it('pushes to every open stream and forgets a stream the kubelet cancels', async () => {
    const [first, second] = [watch(), watch()];
    await Promise.all([first.next(1), second.next(1)]);
    expect(server.watchers).toBe(2);
    first.stream.cancel();
    await vi.waitFor(() => expect(server.watchers).toBe(1), { timeout: 3_000 });
    server.setDevices(healthy('slot-0'));
    await second.next(2);
    expect(ids(second.messages[1])).toEqual(['slot-0:Healthy']);
    expect(first.messages).toHaveLength(1);
  });

  it('ends the streams when the server stops, and the socket is gone', async () => {
    const w = watch();
    await w.next(1);
    const ended = new Promise<void>((resolve) => {
      w.stream.on('end', resolve);
      w.stream.on('error', () => resolve());
    });
    await server.stop();
    await ended;
    expect(server.watchers).toBe(0);
    expect(existsSync(server.socketPath)).toBe(false);
  });
});

describe('Allocate', () => {
  it('returns the backend’s env, mounts, device nodes and CDI devices for each container, in order', async () => {
    server.setDevices(healthy('slot-0', 'slot-1', 'slot-2'));
    const response = await call<AllocateResponse>('Allocate', {
      container_requests: [{ devices_ids: ['slot-0', 'slot-2'] }, { devices_ids: ['slot-1'] }],
    });
    expect(backend.allocated).toEqual([['slot-0', 'slot-2'], ['slot-1']]);
    expect(response.container_responses).toEqual([
      {
        envs: { RESOURCE, SLOTS: 'slot-0,slot-2' },
        mounts: [{ container_path: '/etc/cam', host_path: '/var/lib/cam', read_only: true }],
        devices: [
          { container_path: '/dev/cam0', host_path: '/dev/slot-0', permissions: 'rw' },
          { container_path: '/dev/cam1', host_path: '/dev/slot-2', permissions: 'rw' },
        ],
        annotations: { 'tether.dev/slots': 'slot-0,slot-2' },
        cdi_devices: [{ name: 'tether.dev/cam=slot-0' }],
      },
      expect.objectContaining({ envs: { RESOURCE, SLOTS: 'slot-1' } }),
    ]);
  });

  it('allocates an Unhealthy slot it advertises (the kubelet decides what to ask for)', async () => {
    server.setDevices([{ ID: 'slot-0', health: 'Unhealthy' }]);
    const response = await call<AllocateResponse>('Allocate', { container_requests: [{ devices_ids: ['slot-0'] }] });
    expect(response.container_responses[0]?.envs['SLOTS']).toBe('slot-0');
  });

  it('rejects IDs it does not advertise with NOT_FOUND, naming them, before asking the backend', async () => {
    const failure = await statusOf(
      call('Allocate', { container_requests: [{ devices_ids: ['slot-0'] }, { devices_ids: ['slot-0', 'slot-9', 'gone'] }] }),
    );
    expect(failure.code).toBe(status.NOT_FOUND);
    expect(failure.details).toContain('slot-9, gone');
    expect(failure.details).toContain(RESOURCE);
    expect(backend.allocated).toEqual([]);
  });

  it('rejects a slot that was removed since the kubelet last listed', async () => {
    server.setDevices(healthy('slot-1'));
    expect((await statusOf(call('Allocate', { container_requests: [{ devices_ids: ['slot-0'] }] }))).code).toBe(status.NOT_FOUND);
  });

  it.each([
    { what: 'no container requests', request: { container_requests: [] } },
    { what: 'a container without device IDs', request: { container_requests: [{ devices_ids: ['slot-0'] }, { devices_ids: [] }] } },
  ])('rejects $what with INVALID_ARGUMENT', async ({ request }) => {
    expect((await statusOf(call('Allocate', request))).code).toBe(status.INVALID_ARGUMENT);
    expect(backend.allocated).toEqual([]);
  });

  it.each([
    {
      what: 'a PluginError as its status',
      error: new PluginError(status.RESOURCE_EXHAUSTED, 'slot-1 is held by another pod'),
      code: status.RESOURCE_EXHAUSTED,
    },
    { what: 'any other error as INTERNAL', error: new Error('ledger unavailable'), code: status.INTERNAL },
  ])('maps a backend failure: $what', async ({ error, code }) => {
    backend.failOn = { call: 0, error };
    const failure = await statusOf(call('Allocate', { container_requests: [{ devices_ids: ['slot-1'] }] }));
    expect(failure).toEqual({ code, details: error.message });
  });

  it('all containers or none: a later container’s failure releases the earlier ones', async () => {
    backend.failOn = { call: 1, error: new PluginError(status.RESOURCE_EXHAUSTED, 'taken') };
    const failure = await statusOf(call('Allocate', { container_requests: [{ devices_ids: ['slot-0'] }, { devices_ids: ['slot-1'] }] }));
    expect(failure.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(backend.released).toEqual([['slot-0']]);
  });
});

describe('GetPreferredAllocation', () => {
  it('answers each container request from the backend', async () => {
    const request = { available_deviceIDs: ['slot-0', 'slot-1', 'slot-2'], must_include_deviceIDs: ['slot-0'], allocation_size: 2 };
    const response = await call<PreferredAllocationResponse>('GetPreferredAllocation', {
      container_requests: [request, { ...request, allocation_size: 1 }],
    });
    expect(response.container_responses).toEqual([{ deviceIDs: ['slot-2', 'slot-1'] }, { deviceIDs: ['slot-2'] }]);
    expect(backend.preferred).toEqual([request, { ...request, allocation_size: 1 }]);
  });
});

describe('serving and registration', () => {
  it('names its socket after the resource: short, stable, distinct per resource', () => {
    expect(server.endpoint).toBe(socketNameFor(RESOURCE));
    expect(socketNameFor(RESOURCE)).toBe(socketNameFor(RESOURCE));
    expect(socketNameFor(RESOURCE)).not.toBe(socketNameFor('tether.dev/cams'));
    expect(socketNameFor(`tether.dev/${'x'.repeat(200)}`)).toMatch(/^tether-[0-9a-f]{16}\.sock$/);
    expect(server.socketPath).toBe(join(dir, server.endpoint));
  });

  it('replaces a stale file at its socket path and serves again after serve() is called twice', async () => {
    await server.stop();
    await writeFile(server.socketPath, 'left over');
    await server.serve();
    expect((await stat(server.socketPath)).isSocket()).toBe(true);
    await server.serve();
    client.close();
    client = new protos.DevicePlugin(`unix://${server.socketPath}`, credentials.createInsecure());
    await expect(call<DevicePluginOptions>('GetDevicePluginOptions', {})).resolves.toMatchObject({
      get_preferred_allocation_available: true,
    });
  });

  it('fails a registration the kubelet refuses, or when no kubelet listens', async () => {
    const kubelet = new MockKubelet({ pluginDir: dir });
    await kubelet.start();
    try {
      const bad = new DevicePluginServer({ resourceName: 'no-domain', pluginDir: dir, backend, log });
      const refused = await bad.register(kubelet.kubeletSocket).catch((error: unknown) => error as Error);
      expect(refused).toBeInstanceOf(Error);
      expect(refused?.message).toBe(`registering no-domain with ${kubelet.kubeletSocket}`);
      expect((refused?.cause as ServiceError).code).toBe(status.INVALID_ARGUMENT);
    } finally {
      await kubelet.stop();
    }
    await expect(server.register(join(dir, 'kubelet.sock'), 500)).rejects.toThrow(`registering ${RESOURCE}`);
  });
});

describe('through the kubelet', () => {
  it('a registered server is listed, allocated and updated by the kubelet', async () => {
    const kubelet = new MockKubelet({ pluginDir: dir });
    await kubelet.start();
    try {
      await server.register(kubelet.kubeletSocket);
      expect(kubelet.resource(RESOURCE)).toMatchObject({
        endpoint: server.endpoint,
        options: { pre_start_required: false, get_preferred_allocation_available: true },
      });
      await kubelet.waitFor(() => kubelet.freeDevices(RESOURCE).length === 2, 3_000, 'two free slots');
      const response = await kubelet.allocate({ namespace: 'default', name: 'viewer' }, RESOURCE, 1);
      // The kubelet took the server's preference (the backend prefers the last ID).
      expect(response.envs['SLOTS']).toBe('slot-1');
      server.setDevices([
        { ID: 'slot-0', health: 'Unhealthy' },
        { ID: 'slot-1', health: 'Healthy' },
      ]);
      await kubelet.waitFor(() => kubelet.freeDevices(RESOURCE).length === 0, 3_000, 'no free slot');
    } finally {
      await kubelet.stop();
    }
  });
});
