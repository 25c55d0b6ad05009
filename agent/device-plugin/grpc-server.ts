/**
 * A gRPC server on one Unix socket, on node:http2 directly: unary methods and server streams,
 * which is all the device-plugin API (v1beta1) has — no client streams, no compression, no TLS.
 * Wire format: gRPC over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md, v1.68): length-prefixed
 * messages, the status in trailers, a Trailers-Only response for an early error.
 *
 * Why not @grpc/grpc-js's Server, which every other Tether gRPC server uses: a device plugin
 * runs one server per device in per-device mode, and each grpc-js Server with its kubelet
 * session costs ~48 KiB (JavaScript objects, timers, call tracking) where an http2 server and
 * its session cost ~28 KiB (mostly nghttp2's own buffers): at 1 000 devices that is ~20 MiB of
 * a 150 MiB budget (issue 15; bench `dp-per-device-1k`, docs/device-plugin-modes.md).
 */
import { once } from 'node:events';
import { createServer, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { ServiceDefinition } from '@grpc/grpc-js';

/** gRPC status codes used here (grpc/grpc doc/statuscodes.md). */
export const GrpcStatus = { OK: 0, UNKNOWN: 2, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13 } as const;

/** Largest request accepted, as grpc-go's and grpc-js's default receive limit. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** How long close() lets open calls end before cutting their connections. */
const CLOSE_GRACE_MS = 1_000;

/** A server stream's writing end. */
export interface ServerStream<Response> {
  write(message: Response): void;
  /** Ends the call with status OK. */
  end(): void;
  /** Called once when the call ends, from either side (the client cancelling, or end()). */
  onClose(listener: () => void): void;
}

/** A method's implementation: unary returns the response; a server stream writes to `stream`. */
export type MethodHandler =
  { readonly unary: (request: never) => unknown } | { readonly serverStream: (request: never, stream: ServerStream<never>) => void };

/** An error with a gRPC status `code` (thrown by a handler) is answered with that status; others are UNKNOWN, as grpc-js does. */
interface CodedError {
  readonly code?: unknown;
  readonly message?: unknown;
}

export interface GrpcServerOptions {
  readonly socketPath: string;
  readonly service: ServiceDefinition;
  /** By method name, as in the service definition. */
  readonly handlers: Readonly<Record<string, MethodHandler>>;
  /** Told about connection-level errors (a call's own errors go to its caller). */
  readonly onError?: (error: Error) => void;
}

interface Route {
  readonly definition: ServiceDefinition[string];
  readonly handler: MethodHandler;
}

/** A listening gRPC server; `close()` ends its calls and stops listening. */
export class GrpcSocketServer {
  readonly #server: Http2Server;
  readonly #sessions = new Set<Http2Session>();
  readonly #routes = new Map<string, Route>();

  private constructor(options: GrpcServerOptions) {
    for (const [name, definition] of Object.entries(options.service)) {
      const handler = options.handlers[name];
      if (handler === undefined) throw new Error(`no handler for ${definition.path}`);
      if (definition.requestStream || 'unary' in handler === definition.responseStream) {
        throw new Error(`${definition.path}: handler shape does not match the method (client streams are not supported)`);
      }
      this.#routes.set(definition.path, { definition, handler });
    }
    this.#server = createServer();
    this.#server.on('session', (session) => {
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
      session.on('error', (error: Error) => options.onError?.(error));
    });
    this.#server.on('stream', (stream, headers) => this.#call(stream, headers));
    this.#server.on('error', (error: Error) => options.onError?.(error));
  }

  /** Listens on `options.socketPath` (which must not exist). */
  static async listen(options: GrpcServerOptions): Promise<GrpcSocketServer> {
    const server = new GrpcSocketServer(options);
    server.#server.listen(options.socketPath);
    await Promise.race([
      once(server.#server, 'listening'),
      once(server.#server, 'error').then(([error]) => Promise.reject(error as Error)),
    ]);
    return server;
  }

  /** Stops listening; open calls are asked to end (GOAWAY) and cut after a short grace. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const cut = setTimeout(() => {
      for (const session of this.#sessions) session.destroy();
    }, CLOSE_GRACE_MS);
    for (const session of this.#sessions) session.close();
    await closed;
    clearTimeout(cut);
  }

  #call(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined); // a reset by the client; 'close' does the clean-up
    const contentType = headers['content-type'] ?? '';
    if (headers[':method'] !== 'POST' || !/^application\/grpc(\+proto)?(;|$)/.test(contentType)) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const route = this.#routes.get(headers[':path'] ?? '');
    if (route === undefined) {
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${headers[':path'] ?? ''}`);
      return;
    }
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `grpc-encoding ${String(encoding)} is not supported`);
      return;
    }
    readRequest(stream).then(
      (bytes) => {
        if (bytes === undefined) return; // answered already (too large, malformed) or cancelled
        let request: unknown;
        try {
          request = route.definition.requestDeserialize(bytes);
        } catch (error) {
          trailersOnly(stream, GrpcStatus.INTERNAL, `malformed request: ${(error as Error).message}`);
          return;
        }
        if ('unary' in route.handler) void this.#unary(stream, route, route.handler.unary, request);
        else this.#serverStream(stream, route, route.handler.serverStream, request);
      },
      () => undefined,
    );
  }

  async #unary(stream: ServerHttp2Stream, route: Route, handler: (request: never) => unknown, request: unknown): Promise<void> {
    let response: unknown;
    try {
      response = await handler(request as never);
    } catch (error) {
      const { code, message } = statusOf(error);
      trailersOnly(stream, code, message);
      return;
    }
    if (stream.closed) return;
    const frame = lengthPrefixed(route.definition.responseSerialize(response));
    respond(stream, () => ({ 'grpc-status': String(GrpcStatus.OK) }));
    stream.end(frame);
  }

  #serverStream(
    stream: ServerHttp2Stream,
    route: Route,
    handler: (request: never, out: ServerStream<never>) => void,
    request: unknown,
  ): void {
    respond(stream, () => ({ 'grpc-status': String(GrpcStatus.OK) }));
    const out: ServerStream<unknown> = {
      write: (message) => {
        if (!stream.closed && !stream.writableEnded) stream.write(lengthPrefixed(route.definition.responseSerialize(message)));
      },
      end: () => {
        if (!stream.closed && !stream.writableEnded) stream.end();
      },
      onClose: (listener) => void stream.once('close', listener),
    };
    try {
      handler(request as never, out);
    } catch (error) {
      // Headers are out: the status goes in the trailers.
      const { code, message } = statusOf(error);
      stream.removeAllListeners('wantTrailers');
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(code), 'grpc-message': encodeMessage(message) }));
      out.end();
    }
  }
}

/** The request's one length-prefixed message, or undefined after answering a bad one. */
async function readRequest(stream: ServerHttp2Stream): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REQUEST_BYTES + 5) {
      trailersOnly(stream, GrpcStatus.RESOURCE_EXHAUSTED, `request larger than ${MAX_REQUEST_BYTES} bytes`);
      return undefined;
    }
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks, size);
  if (body.length < 5 || body.readUInt32BE(1) !== body.length - 5) {
    trailersOnly(stream, GrpcStatus.INTERNAL, 'expected exactly one length-prefixed request message');
    return undefined;
  }
  if (body[0] !== 0) {
    trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, 'compressed messages are not supported');
    return undefined;
  }
  return body.subarray(5);
}

function lengthPrefixed(message: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

function respond(stream: ServerHttp2Stream, trailers: () => Record<string, string>): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers(trailers()));
}

/** An error answered before any message: status in the only HEADERS frame. */
function trailersOnly(stream: ServerHttp2Stream, code: number, message: string): void {
  if (stream.closed || stream.headersSent) return;
  stream.respond(
    { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeMessage(message) },
    { endStream: true },
  );
}

function statusOf(error: unknown): { code: number; message: string } {
  const { code, message } = (error ?? {}) as CodedError;
  const known = typeof code === 'number' && Number.isInteger(code) && code > 0 && code <= 16;
  return { code: known ? code : GrpcStatus.UNKNOWN, message: typeof message === 'string' ? message : String(error) };
}

/** grpc-message is percent-encoded (PROTOCOL-HTTP2.md: "Percent-Encoded"). */
function encodeMessage(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}
