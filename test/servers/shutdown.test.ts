// The graceful shutdown of docs/servers.md, run as written there: `server.close()` first (the
// streams keep their connections busy), then `closeAllStreams({ server, … })`. 50 `fetch` clients
// (undici, keep-alive) hold a stream each; the server must close at once, not after the
// clients' keep-alive timeout (4 s in undici).
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import express from 'express';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { closeAllStreams as closeExpressStreams, sse } from 'tokenrelay/express';
import { sendSSE as sendHonoSSE } from 'tokenrelay/hono';
import { closeAllStreams as closeNodeStreams, sendSSE } from 'tokenrelay/node';
import { closeAllStreams as closeWebStreams } from 'tokenrelay/web';

const CLIENTS = 50;
const docs = readFileSync(new URL('../../docs/servers.md', import.meta.url), 'utf8');

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type ShutdownHandler = () => Promise<void>;

/** The `SIGTERM` handler of the code block under `heading`, compiled from the docs' own text. */
function documentedHandler(heading: string, server: Server, closeAllStreams: typeof closeNodeStreams): ShutdownHandler {
  const section = docs.slice(docs.indexOf(heading));
  const block = /```ts\n(?<code>[\s\S]*?)```/.exec(section)?.groups?.code ?? '';
  // The block's imports and declarations (there so it compiles as pasted) come before the handler.
  const handler = /^process\.once\('SIGTERM', (?<fn>async \(\) => \{\n[\s\S]*?\n\})\);\n$/m.exec(block)?.groups?.fn;
  if (handler === undefined) throw new Error(`No SIGTERM handler under ${heading} in docs/servers.md:\n${block}`);
  expect(handler).toContain('closeAllStreams({ server,');
  return new Function('server', 'closeAllStreams', `return ${handler};`)(server, closeAllStreams) as ShutdownHandler;
}

/** Tokens every 20 ms until the signal aborts (bounded: 10,000 tokens). */
async function* ticking(signal: AbortSignal): AsyncGenerator<TokenChunk> {
  for (let index = 0; index < 10_000 && !signal.aborted; index++) {
    yield { token: ` t${index}`, index, timestamp: 0, type: 'text' };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until `server` (already told to listen on a free loopback port) listens; its URL. */
async function listening(server: Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    if (server.listening) server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** 50 fetch clients, each with one stream that has delivered a token; resolves the bodies' text. */
async function openStreams(url: string): Promise<Array<Promise<string>>> {
  const controller = new AbortController();
  cleanups.push(() => controller.abort());
  const started = Array.from({ length: CLIENTS }, async () => {
    const response = await fetch(url, { signal: controller.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const text = new TextDecoder();
    let body = '';
    while (!body.includes('event: token')) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`stream ended before a token: ${body}`);
      body += text.decode(value, { stream: true });
    }
    // Wrapped: an async function returning the promise itself would wait for the end.
    return {
      rest: (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return body;
          body += text.decode(value, { stream: true });
        }
      })(),
    };
  });
  return (await Promise.all(started)).map((client) => client.rest);
}

/** Runs the documented handler; returns how long the handler and `server.close()` took. */
async function shutDown(server: Server, handler: ShutdownHandler, bodies: Array<Promise<string>>): Promise<{ handlerMs: number; closeMs: number }> {
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  const startedAt = performance.now();
  await handler();
  const handlerMs = performance.now() - startedAt;
  const timeout = new Promise<'timeout'>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 8000);
    cleanups.push(() => clearTimeout(timer));
  });
  const outcome = await Promise.race([closed, timeout]);
  const closeMs = performance.now() - startedAt;
  for (const body of await Promise.all(bodies)) {
    expect(body).toContain('retry: 2000\nevent: shutdown\ndata: {"retryMs":2000,"message":"deploy"}\n\n');
  }
  expect(outcome).not.toBe('timeout');
  return { handlerMs, closeMs };
}

describe('the documented graceful shutdown (docs/servers.md) with 50 fetch clients', () => {
  it('Express: server.close() completes at once after closeAllStreams({ server })', async () => {
    const app = express();
    app.get('/chat', sse((_req, signal) => ticking(signal)));
    const server = app.listen(0, '127.0.0.1');
    const bodies = await openStreams(`${await listening(server)}/chat`);
    const handler = documentedHandler('### Graceful shutdown', server, closeExpressStreams);
    const { handlerMs, closeMs } = await shutDown(server, handler, bodies);
    console.info(`Express, ${CLIENTS} fetch clients: handler ${handlerMs.toFixed(1)} ms, server closed after ${closeMs.toFixed(1)} ms`);
    expect(closeMs).toBeLessThan(2000);
  });

  it('node:http: server.close() completes at once after closeAllStreams({ server })', async () => {
    const server = http.createServer((req, res) => void sendSSE(req, res, (signal) => ticking(signal))).listen(0, '127.0.0.1');
    const bodies = await openStreams(await listening(server));
    const handler = documentedHandler('### Graceful shutdown', server, closeNodeStreams);
    const { handlerMs, closeMs } = await shutDown(server, handler, bodies);
    console.info(`node:http, ${CLIENTS} fetch clients: handler ${handlerMs.toFixed(1)} ms, server closed after ${closeMs.toFixed(1)} ms`);
    expect(closeMs).toBeLessThan(2000);
  });

  it('Hono on @hono/node-server (the web adapter): server.close() completes at once after closeAllStreams({ server })', async () => {
    const app = new Hono();
    app.get('/chat', (c) => sendHonoSSE(c, (signal) => ticking(signal)));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    const bodies = await openStreams(`${await listening(server)}/chat`);
    const handler = documentedHandler('### Graceful shutdown\n\n`closeAllStreams({ retryMs, reason })` (re-exported here)', server, closeWebStreams);
    const { handlerMs, closeMs } = await shutDown(server, handler, bodies);
    console.info(`Hono (@hono/node-server), ${CLIENTS} fetch clients: handler ${handlerMs.toFixed(1)} ms, server closed after ${closeMs.toFixed(1)} ms`);
    expect(closeMs).toBeLessThan(2000);
  });

  it('rejects a `server` that is not a node:http server (the Express app, say) before ending any stream', async () => {
    const app = express();
    await expect(closeExpressStreams({ server: app as never })).rejects.toThrow(
      new TypeError('Expected `server` to be a node:http server (what `app.listen()` returns), got function'),
    );
    await expect(closeExpressStreams({ sever: http.createServer() } as never)).rejects.toThrow(
      new TypeError('Unknown option `sever` in `options`; did you mean `server`?'),
    );
  });

  it('leaves callers that pass no server as before: the streams end, the server keeps its connections', async () => {
    const server = http.createServer((req, res) => void sendSSE(req, res, (signal) => ticking(signal))).listen(0, '127.0.0.1');
    const bodies = await openStreams(await listening(server));
    await closeNodeStreams({ retryMs: 2000, reason: 'deploy' });
    for (const body of await Promise.all(bodies)) expect(body).toContain('event: shutdown');
    const connections = await new Promise<number>((resolve, reject) =>
      server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    );
    expect(connections).toBeGreaterThan(0);
  });
});
