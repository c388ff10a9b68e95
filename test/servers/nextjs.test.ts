// A Next.js App Router route handler (examples/nextjs-route.ts, `app/api/chat/route.ts` as it would
// be) through `tokenrelay/web`: called with a real `Request` whose `signal` aborts, as Next.js
// calls it, and served by a node:http server that adapts requests and responses the way Next.js's
// Node server does (a signal that aborts when the response closes unfinished; the body piped to
// the response through a WritableStream that waits for `drain`). The route's model is the OpenAI
// SDK (OPENAI_API_KEY and OPENAI_BASE_URL set here) against the mock provider.
import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StreamLogRecord } from 'tokenrelay/web';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { manyTokens, openSSE, tokenEvents, tokenText } from '../helpers/sse-client.ts';

type RouteHandler = (request: Request) => Promise<Response>;

let provider: MockProvider;
let POST: RouteHandler;
const records: StreamLogRecord[] = [];
const waiters = new Set<() => void>();

beforeAll(async () => {
  provider = await startMockProvider();
  vi.stubEnv('OPENAI_API_KEY', 'sk-test');
  vi.stubEnv('OPENAI_BASE_URL', provider.openaiBaseURL);
  vi.stubEnv('OPENAI_MODEL', 'gpt-4o-mini');
  // The route logs one record per stream with `logger: console`.
  vi.spyOn(console, 'info').mockImplementation((record: unknown) => {
    if (record !== null && typeof record === 'object' && 'outcome' in record) {
      records.push(record as StreamLogRecord);
      for (const wake of waiters) wake();
    }
  });
  const route = (await import('../../examples/nextjs-route.ts')) as { POST: RouteHandler; runtime: string; dynamic: string };
  expect(route.runtime).toBe('nodejs');
  expect(route.dynamic).toBe('force-dynamic');
  POST = route.POST;
});

afterAll(async () => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  await provider.close();
});

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The log record of the `n`th stream (1-based), once it ended. */
function record(n: number): Promise<StreamLogRecord> {
  return new Promise((resolve) => {
    const check = () => {
      const found = records[n - 1];
      if (found === undefined) return;
      waiters.delete(check);
      resolve(found);
    };
    waiters.add(check);
    check();
  });
}

const chat = { messages: [{ role: 'user', content: 'Hi from Next.js' }] };

function chatRequest(signal?: AbortSignal): Request {
  return new Request('http://localhost:3000/api/chat', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(chat),
    ...(signal === undefined ? {} : { signal }),
  });
}

/** Reads a Response body as SSE events until `stop(events)` holds or the body ends. */
async function readEvents(response: Response, stop: (events: EventSourceMessage[]) => boolean = () => false): Promise<EventSourceMessage[]> {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    parser.feed(read.value);
    if (stop(events)) break;
  }
  reader.releaseLock();
  return events;
}

describe('Next.js App Router: POST(request) of examples/nextjs-route.ts', () => {
  it('answers a real Request with an SSE Response that carries the whole answer', async () => {
    provider.setScript({ tokens: manyTokens(20), delayMs: 1 });
    const before = provider.requests.length;
    const logged = records.length;
    const response = await POST(chatRequest());
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(response.headers.has('connection')).toBe(false);
    const events = await readEvents(response);
    expect(tokenText(events)).toBe(manyTokens(20).join(''));
    expect(events.at(-1)?.event).toBe('done');
    expect((await provider.request(before + 1)).body.messages).toEqual(chat.messages);
    expect(await record(logged + 1)).toMatchObject({ outcome: 'completed', provider: 'openai', model: 'gpt-4o-mini', outputTokens: 20 });
  });

  it('stops the source when request.signal aborts mid-stream: provider request closed, outcome aborted', async () => {
    provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
    const before = provider.requests.length;
    const logged = records.length;
    const controller = new AbortController();
    const response = await POST(chatRequest(controller.signal));
    // Only the signal says the client left: the body is no longer read, and not cancelled.
    const events = await readEvents(response, (seen) => tokenEvents(seen).length >= 3);
    expect(tokenEvents(events).length).toBeGreaterThanOrEqual(3);
    const abortedAt = performance.now();
    controller.abort();
    const ended = await (await provider.request(before + 1)).ended;
    expect(ended.end).toBe('client-closed');
    expect(ended.endedAt! - abortedAt).toBeLessThan(1000);
    const log = await record(logged + 1);
    expect(log.outcome).toBe('aborted');
    expect(log.outputTokens).toBeGreaterThanOrEqual(3);
    expect(log.outputTokens).toBeLessThan(300);
  });
});

/** `signalFromNodeResponse` of Next.js: aborts when the response closes before it finished. */
function signalFromNodeResponse(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  if (res.destroyed) controller.abort();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new DOMException('The response was closed', 'AbortError'));
  });
  return controller.signal;
}

/** The writer of Next.js's `pipeToNodeResponse`: writes, flushes, waits for `drain`, ends. */
function writerFor(res: ServerResponse): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      if (!res.headersSent) res.flushHeaders();
      const ok = res.write(chunk);
      (res as ServerResponse & { flush?: () => void }).flush?.();
      if (!ok && !res.destroyed) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    },
    close() {
      res.end();
    },
    abort() {
      if (!res.writableFinished) res.destroy();
    },
  });
}

function headersOf(headers: IncomingHttpHeaders): Headers {
  const result = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) result.append(name, item);
  }
  return result;
}

/** A node:http server that runs the route handler the way Next.js's Node server does. */
async function serveLikeNext(handler: RouteHandler): Promise<string> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const signal = signalFromNodeResponse(res);
      const request = new Request(new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`), {
        method: req.method ?? 'GET',
        headers: headersOf(req.headers),
        body: req.method === 'GET' || req.method === 'HEAD' ? null : (Readable.toWeb(req) as ReadableStream<Uint8Array>),
        duplex: 'half',
        signal,
      } as RequestInit);
      const response = await handler(request);
      res.statusCode = response.status;
      for (const [name, value] of response.headers) res.setHeader(name, value);
      if (response.body === null) return void res.end();
      // Next.js aborts the pipe with the same response-bound signal: the body is cancelled too.
      await response.body.pipeTo(writerFor(res), { signal }).catch(() => undefined);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('Next.js App Router: the route behind a node:http server adapted the way Next.js does', () => {
  it('streams the answer to the end', async () => {
    provider.setScript({ tokens: manyTokens(30), delayMs: 1 });
    const logged = records.length;
    const url = await serveLikeNext(POST);
    const client = await openSSE(`${url}/api/chat`, { method: 'POST', body: chat });
    await client.ended;
    expect(client.response.statusCode).toBe(200);
    expect(client.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(tokenText(client.events)).toBe(manyTokens(30).join(''));
    expect(client.events.at(-1)?.event).toBe('done');
    expect((await record(logged + 1)).outcome).toBe('completed');
  });

  it('aborts the provider request when the client disconnects mid-stream', async () => {
    provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
    const before = provider.requests.length;
    const logged = records.length;
    const url = await serveLikeNext(POST);
    const client = await openSSE(`${url}/api/chat`, { method: 'POST', body: chat });
    await client.until((events) => tokenEvents(events).length >= 3);
    const disconnectedAt = client.disconnect();
    const ended = await (await provider.request(before + 1)).ended;
    expect(ended.end).toBe('client-closed');
    console.log(`next-like node:http: disconnect → provider request closed: ${(ended.endedAt! - disconnectedAt).toFixed(1)} ms`);
    expect(ended.endedAt! - disconnectedAt).toBeLessThan(1000);
    expect((await record(logged + 1)).outcome).toBe('aborted');
  });
});
