import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:http2';
import { connect as connectSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, makeGenericClientConstructor, status, type Client, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GrpcSocketServer, type MethodHandler, type ServerStream } from './grpc-server.ts';

// A string-message service, so the tests speak gRPC without protobuf: what is under test is the framing.
const text = {
  requestSerialize: (value: string) => Buffer.from(value),
  requestDeserialize: (bytes: Buffer) => bytes.toString(),
  responseSerialize: (value: string) => Buffer.from(value),
  responseDeserialize: (bytes: Buffer) => bytes.toString(),
};
const service = {
  Echo: { path: '/test.Text/Echo', requestStream: false, responseStream: false, ...text },
  Watch: { path: '/test.Text/Watch', requestStream: false, responseStream: true, ...text },
} as unknown as ServiceDefinition;
const TextClient = makeGenericClientConstructor(service, 'Text');
type TextStub = Client & {
  Echo(request: string, done: (error: ServiceError | null, response?: string) => void): void;
  Watch(request: string): NodeJS.ReadableStream & { cancel(): void };
};

let dir: string;
let socketPath: string;
let server: GrpcSocketServer | undefined;
let client: TextStub | undefined;
let watchers: ServerStream<string>[];
let closedWatchers: number;

function handlers(echo: (request: string) => unknown): Record<string, MethodHandler> {
  return {
    Echo: { unary: echo },
    Watch: {
      serverStream: (request: string, stream: ServerStream<string>) => {
        watchers.push(stream);
        stream.onClose(() => closedWatchers++);
        stream.write(`first ${request}`);
      },
    },
  };
}

async function start(echo: (request: string) => unknown = (request) => `echo ${request}`): Promise<TextStub> {
  server = await GrpcSocketServer.listen({ socketPath, service, handlers: handlers(echo) });
  client = new TextClient(`unix://${socketPath}`, credentials.createInsecure()) as unknown as TextStub;
  return client;
}

function echo(stub: TextStub, request: string): Promise<string> {
  return new Promise((resolve, reject) => stub.Echo(request, (error, response) => (error ? reject(error) : resolve(response!))));
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tgrpc-'));
  socketPath = join(dir, 'plugin.sock');
  watchers = [];
  closedWatchers = 0;
});

afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('GrpcSocketServer (device-plugin gRPC over node:http2), with grpc-js as the client', () => {
  it('answers unary calls, sync and async', async () => {
    const stub = await start((request) => Promise.resolve(`echo ${request}`));
    expect(await echo(stub, 'a')).toBe('echo a');
    expect(await echo(stub, 'ü'.repeat(70_000))).toBe(`echo ${'ü'.repeat(70_000)}`); // over one 16 KiB DATA frame
  });

  it("answers a handler's error with its gRPC status and message, anything else with UNKNOWN", async () => {
    const stub = await start((request) => {
      if (request === 'coded') throw Object.assign(new Error('no such slot: ä'), { code: status.NOT_FOUND });
      throw new Error('boom');
    });
    await expect(echo(stub, 'coded')).rejects.toMatchObject({ code: status.NOT_FOUND, details: 'no such slot: ä' });
    await expect(echo(stub, 'other')).rejects.toMatchObject({ code: status.UNKNOWN, details: 'boom' });
  });

  it('answers a method it does not serve with UNIMPLEMENTED', async () => {
    await start();
    const Other = makeGenericClientConstructor(
      { Nope: { ...(service['Echo'] as object), path: '/test.Text/Nope' } } as unknown as ServiceDefinition,
      'Other',
    );
    const other = new Other(`unix://${socketPath}`, credentials.createInsecure()) as unknown as Client & {
      Nope(request: string, done: (error: ServiceError | null) => void): void;
    };
    const error = await new Promise<ServiceError | null>((resolve) => other.Nope('x', resolve));
    other.close();
    expect(error).toMatchObject({ code: status.UNIMPLEMENTED });
  });

  it('refuses a request that is not gRPC (415) and one larger than 4 MiB (RESOURCE_EXHAUSTED)', async () => {
    const stub = await start();
    const session = connect('http://localhost', { createConnection: () => connectSocket(socketPath) });
    const answer = await new Promise<number>((resolve, reject) => {
      const request = session.request({ ':method': 'POST', ':path': '/test.Text/Echo', 'content-type': 'text/plain' });
      request.on('response', (headers) => resolve(Number(headers[':status'])));
      request.on('error', reject);
      request.end('hello');
    });
    session.close();
    expect(answer).toBe(415);
    await expect(echo(stub, 'x'.repeat(4 * 1024 * 1024 + 1))).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
  });

  it('streams: the first message at once, later writes in order; a cancelled call is closed on the server', async () => {
    const stub = await start();
    const call = stub.Watch('w');
    const received: string[] = [];
    call.on('data', (message: string) => received.push(message));
    call.on('error', () => undefined);
    await until(() => received.length === 1 && watchers.length === 1, 'the first message');
    watchers[0]!.write('second');
    watchers[0]!.write('third');
    await until(() => received.length === 3, 'two more messages');
    expect(received).toEqual(['first w', 'second', 'third']);
    call.cancel();
    await until(() => closedWatchers === 1, 'the server to see the cancel');
    watchers[0]!.write('after the cancel'); // a write to a closed call is dropped, not thrown
    expect(await echo(stub, 'still serving')).toBe('echo still serving');
  });

  it('end() finishes a stream with OK; close() ends open streams and stops listening', async () => {
    const stub = await start();
    const ended = stub.Watch('a');
    const endStatus = new Promise<number>((resolve) => ended.on('status', (s: { code: number }) => resolve(s.code)));
    ended.on('data', () => undefined);
    const open = stub.Watch('b');
    const openDone = new Promise<void>((resolve) => {
      open.on('error', () => resolve());
      open.on('end', () => resolve());
    });
    open.on('data', () => undefined);
    await until(() => watchers.length === 2, 'both streams');
    watchers[0]!.end();
    expect(await endStatus).toBe(status.OK);
    await server!.close();
    server = undefined;
    await openDone;
    await expect(stat(socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
