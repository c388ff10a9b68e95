import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Hono, type Context } from 'hono';
import { cors } from 'hono/cors';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StreamMetrics, TokenChunk } from 'tokenrelay';
import { closeAllStreams, sendSSE, sse, type HonoSourceFactory, type SendSSEOptions } from 'tokenrelay/hono';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { liveStreamCount } from '../../src/servers/internal/registry.js';

const params = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Hi' }] };
const manyTokens = (n: number) => Array.from({ length: n }, (_, i) => ` t${i}`);

let provider: MockProvider;
let openai: OpenAI;
const servers: ServerType[] = [];

beforeAll(async () => {
  provider = await startMockProvider();
  openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
});
afterAll(() => provider.close());
beforeEach(() => provider.clear());
afterEach(async () => {
  await Promise.all(servers.splice(0).map(closeServer));
  await vi.waitFor(() => expect(liveStreamCount()).toBe(0));
});

type Entry = 'sendSSE' | 'sse()';

/**
 * The app under test, served by `sendSSE` inside a handler or by an `sse()` handler: POST /chat
 * reads a JSON body, GET /chat does not; both set headers with `c.header()` before streaming.
 */
function chatApp(options: SendSSEOptions = {}, entry: Entry = 'sendSSE'): Hono {
  const app = new Hono();
  app.use('/cors/*', cors({ origin: '*' }));
  const before = async (c: Context): Promise<void> => {
    if (c.req.method === 'POST') expect(await c.req.json()).toEqual({ content: 'Hi' });
    c.header('X-Request-Id', 'r-1');
    c.header('Content-Type', 'text/plain');
  };
  const factory: HonoSourceFactory = async (c, signal) => {
    await before(c);
    return streamOpenAI(openai, params, { signal });
  };
  const handler = entry === 'sse()' ? sse(factory, options) : (c: Context) => sendSSE(c, (signal) => factory(c, signal) as AsyncIterable<never>, options);
  app.get('/chat', handler);
  app.post('/chat', handler);
  app.get('/cors/chat', handler);
  return app;
}

describe.each(['sendSSE', 'sse()'] as const)('hono %s in process (app.request)', (entry) => {
  const entryApp = (options: SendSSEOptions = {}) => chatApp(options, entry);
  it('streams token and done events with the SSE headers, keeping headers set with c.header()', async () => {
    provider.setScript({ tokens: ['Hel', 'lo'] });
    const response = await entryApp().request('/chat', {
      method: 'POST',
      body: JSON.stringify({ content: 'Hi' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(200);
    expect(Object.fromEntries(response.headers)).toEqual({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      'x-request-id': 'r-1',
    });
    const events = await readAll(response);
    expect(events.map((e) => e.event)).toEqual(['token', 'token', 'done']);
    expect(JSON.parse(events[2]!.data)).toMatchObject({ finishReason: 'stop', provider: 'openai' });
  });

  it('works behind middleware (cors)', async () => {
    provider.setScript({ tokens: ['a'] });
    const response = await entryApp().request('/cors/chat', { headers: { origin: 'https://example.com' } });
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect((await readAll(response)).map((e) => e.event)).toEqual(['token', 'done']);
  });

  it('answers an early 429 with its status, Retry-After and a JSON body', async () => {
    provider.setScript({ fault: { kind: 'http-error', status: 429, headers: { 'retry-after': '5' } } });
    const response = await entryApp().request('/chat');
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response.json()).toMatchObject({ error: { code: 'provider', status: 429 } });
  });

  it('turns an error after the first token into the `error` event', async () => {
    provider.setScript({ tokens: ['a', 'b'], fault: { kind: 'error-event', afterTokens: 1 } });
    const events = await readAll(await entryApp().request('/chat'));
    expect(events.map((e) => e.event)).toEqual(['token', 'error']);
  });

  it('aborts the provider request when c.req.raw.signal aborts', async () => {
    provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
    const metrics = deferred<StreamMetrics>();
    const controller = new AbortController();
    const app = entryApp({ monitor: { onFinish: metrics.resolve } });
    const response = await app.request(new Request('http://localhost/chat', { signal: controller.signal }));
    const reader = response.body!.getReader();
    const events = await readUntil(reader, 3);
    expect(events.every((e) => e.event === 'token')).toBe(true);
    const abortedAt = performance.now();
    controller.abort();
    const record = await (await provider.request(1)).ended;
    expect(record.end).toBe('client-closed');
    expect(record.endedAt! - abortedAt).toBeLessThan(100);
    expect((await metrics.promise).outcome).toBe('aborted');
    await reader.cancel();
  });

});

describe('hono sse() and sendSSE: arguments and factory errors', () => {
  it('sse() checks its options when the handler is made, not per request', () => {
    const factory: HonoSourceFactory = () => (async function* () {})();
    expect(() => sse(42 as never)).toThrow(new TypeError('Expected `factory` to be a function, got 42'));
    expect(() => sse(factory, { writeTimeoutMs: 0 })).toThrow(new TypeError('Expected `writeTimeoutMs` to be a number >= 1, got 0'));
    expect(() => sse(factory, { timeout: { idleMS: 5 } } as never)).toThrow(/did you mean `idleMs`\?/);
    expect(() => sse(factory, { status: 204 })).toThrow(TypeError);
    expect(() => sse(factory, { protocol: 'nope' } as never)).toThrow(TypeError);
    // `c.req.raw` is the request: passing one as well is a mistake.
    expect(() => sse(factory, { request: new Request('http://localhost/') } as never)).toThrow(/`request`/);
  });

  it('sendSSE rejects a value that is not a Context, and a `request` option, with a TypeError', async () => {
    await expect(sendSSE({} as never, () => (async function* () {})())).rejects.toThrow(
      /Expected `c` to be a Hono Context, got an object/,
    );
    const app = new Hono();
    app.get('/chat', (c) => sendSSE(c, () => (async function* () {})(), { request: c.req.raw } as never));
    app.onError((error, c) => c.text(String(error), 500));
    expect(await (await app.request('/chat')).text()).toMatch(/TypeError: .*`request`/);
  });

  it('sse() gives the factory the typed context and the signal, and takes `protocol`', async () => {
    provider.setScript({ tokens: ['Hel', 'lo'] });
    const seen: unknown[] = [];
    const app = new Hono();
    app.post(
      '/chat/:id',
      sse(
        async (c, signal) => {
          seen.push(c.req.param('id'), signal instanceof AbortSignal);
          const { content } = await c.req.json<{ content: string }>();
          return streamOpenAI(openai, { ...params, messages: [{ role: 'user', content }] }, { signal });
        },
        { protocol: 'ndjson' },
      ),
    );
    const response = await app.request('/chat/c-7', { method: 'POST', body: JSON.stringify({ content: 'Hi' }) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(await response.text()).toMatch(/"Hel"[\s\S]*"lo"/);
    expect(seen).toEqual(['c-7', true]);
  });

  it('answers a factory that throws or rejects with a JSON 500, reported to monitor', async () => {
    const outcomes: string[] = [];
    const monitor = { onFinish: (metrics: StreamMetrics) => void outcomes.push(metrics.outcome), onError: () => undefined };
    const app = new Hono();
    app.get('/throws', sse(() => { throw new Error('database is down: secret detail'); }, { monitor }));
    app.get('/rejects', sse(async () => { throw new Error('later'); }, { monitor }));
    for (const path of ['/throws', '/rejects']) {
      const response = await app.request(path);
      expect(response.status).toBe(500);
      expect(await response.json()).toEqual({ error: { code: 'internal', message: 'Internal error' } });
    }
    expect(outcomes).toEqual(['error', 'error']);
  });
});

describe('hono sendSSE with an async factory and writeTimeoutMs', () => {
  it('streams what an async factory resolves with', async () => {
    const app = new Hono();
    app.get('/chat', (c) =>
      sendSSE(c, async (signal) => {
        await new Promise((resolve) => setImmediate(resolve));
        return streamOpenAI(openai, params, { signal });
      }),
    );
    provider.setScript({ tokens: ['Hel', 'lo'] });
    const response = await app.request('/chat');
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/"token":"Hel"[\s\S]*"token":"lo"[\s\S]*event: done/);
  });

  it('a raw TCP client that sends the request and never reads: write-timeout on @hono/node-server', async () => {
    const sourceFinally = deferred<void>();
    const metrics = deferred<StreamMetrics>();
    const big = 'x'.repeat(64 * 1024);
    let produced = 0;
    const app = new Hono();
    app.get('/chat', (c) =>
      sendSSE(
        c,
        async function* (): AsyncGenerator<TokenChunk> {
          try {
            for (let index = 0; index < 1000; index++) {
              produced++;
              yield { token: big, index, timestamp: 0, type: 'text' };
            }
          } finally {
            sourceFinally.resolve();
          }
        },
        { writeTimeoutMs: 300, heartbeatMs: false, monitor: { onFinish: metrics.resolve } },
      ),
    );
    const port = await listen(app);
    const socket = connect(port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      socket.write(`GET /chat HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      socket.pause();
      const report = await metrics.promise;
      expect(report.outcome).toBe('aborted');
      expect(String(report.error)).toMatch(/The client read nothing for 300 ms/);
      await sourceFinally.promise;
      expect(produced).toBeLessThan(1000);
    } finally {
      socket.destroy();
    }
  });
});

describe('hono on @hono/node-server', () => {
  for (const [method, entry] of [['GET', 'sendSSE'], ['POST', 'sendSSE'], ['GET', 'sse()'], ['POST', 'sse()']] as const) {
    it(`a client disconnect after 3 tokens closes the provider request within 100 ms (${entry}, ${method})`, async () => {
      provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
      const metrics = deferred<StreamMetrics>();
      const port = await listen(chatApp({ monitor: { onFinish: metrics.resolve } }, entry));
      const client = openSSE(port, method, method === 'POST' ? JSON.stringify({ content: 'Hi' }) : undefined);
      await client.until((events) => events.length >= 3);
      expect(client.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      const disconnectedAt = performance.now();
      client.destroy();
      const record = await (await provider.request(1)).ended;
      expect(record.end).toBe('client-closed');
      expect(record.endedAt! - disconnectedAt).toBeLessThan(100);
      const report = await metrics.promise;
      expect(report.outcome).toBe('aborted');
      expect(report.outputTokens).toBeGreaterThanOrEqual(3);
    });
  }

  it('closeAllStreams() ends in-flight streams with `shutdown` and the server closes promptly', async () => {
    provider.setScript({ tokens: manyTokens(2000), delayMs: 20 });
    const port = await listen(chatApp());
    const clients = Array.from({ length: 10 }, () => openSSE(port, 'GET'));
    await Promise.all(clients.map((client) => client.until((events) => events.length >= 1)));
    const startedAt = performance.now();
    await closeAllStreams({ retryMs: 1500, reason: 'deploy' });
    await Promise.all(clients.map((client) => client.closed));
    // No closeAllConnections(): the server closes because every response has ended.
    await closeGracefully(servers.pop()!);
    expect(performance.now() - startedAt).toBeLessThan(2000);
    for (const client of clients) {
      expect(client.events.at(-1)).toMatchObject({ event: 'shutdown', data: '{"retryMs":1500,"message":"deploy"}' });
    }
    const records = await Promise.all(provider.requests.map((record) => record.ended));
    expect(records.map((record) => record.end)).toEqual(Array(10).fill('client-closed'));
  });
});

// --- helpers -------------------------------------------------------------------------------

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, count: number): Promise<EventSourceMessage[]> {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const decoder = new TextDecoder();
  for (let reads = 0; reads < 100_000 && events.length < count; reads++) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
  return events;
}

async function readAll(response: Response): Promise<EventSourceMessage[]> {
  return readUntil(response.body!.getReader(), Infinity);
}

async function listen(app: Hono): Promise<number> {
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  servers.push(server);
  if (!server.listening) await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function closeGracefully(server: ServerType): Promise<void> {
  return new Promise((resolve, reject) => server.close((error) => (error === undefined ? resolve() : reject(error))));
}

function closeServer(server: ServerType): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    if ('closeAllConnections' in server) server.closeAllConnections();
  });
}

interface SSEClient {
  headers: Record<string, string | string[] | undefined>;
  events: EventSourceMessage[];
  closed: Promise<void>;
  until(predicate: (events: EventSourceMessage[]) => boolean): Promise<void>;
  destroy(): void;
}

/** A real HTTP/1.1 client on its own connection, so destroying it is a real disconnect. */
function openSSE(port: number, method: 'GET' | 'POST', body?: string): SSEClient {
  const closed = deferred<void>();
  let checks: Array<() => void> = [];
  let ended = false;
  const client: SSEClient = {
    headers: {},
    events: [],
    closed: closed.promise,
    until: (predicate) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (predicate(client.events)) resolve();
          else if (ended) reject(new Error('the response ended first'));
          else checks.push(check);
        };
        check();
      }),
    destroy: () => req.destroy(),
  };
  const wake = () => {
    const pending = checks;
    checks = [];
    pending.forEach((check) => check());
  };
  const parser = createParser({
    onEvent(event) {
      client.events.push(event);
      wake();
    },
  });
  const finish = () => {
    ended = true;
    wake();
    closed.resolve();
  };
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    method,
    path: '/chat',
    agent: false,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
  });
  req.on('response', (res) => {
    client.headers = res.headers;
    res.setEncoding('utf8');
    res.on('data', (text: string) => parser.feed(text));
    res.on('close', finish);
  });
  req.on('error', finish);
  req.end(body);
  return client;
}
