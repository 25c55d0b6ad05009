/**
 * node:http, loaded without Node's bundled undici. An ESM import of node:http (even of one
 * name) builds the whole module namespace, which reads its lazy `WebSocket`, `CloseEvent` and
 * `MessageEvent` getters and so loads undici: ~13 MiB of RSS in Node 24 that nothing in
 * Tether uses (issue 15; `bin/import-footprint.test.ts` guards it). require() reads only the
 * names taken here.
 */
import { createRequire } from 'node:module';
import type * as NodeHttp from 'node:http';

const http = createRequire(import.meta.url)('node:http') as typeof NodeHttp;

export const { Agent, createServer, request } = http;
