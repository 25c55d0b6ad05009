/**
 * node:http for handlers, loaded without Node's bundled undici: an ESM import of node:http
 * reads its lazy WebSocket getters and loads undici (~13 MiB of RSS in Node 24) into every
 * agent that registers the handler. Same reason as kube/node-http.ts, which handlers may not
 * import (lint/boundaries.mjs).
 */
import { createRequire } from 'node:module';
import type * as NodeHttp from 'node:http';

export const { request } = createRequire(import.meta.url)('node:http') as typeof NodeHttp;
