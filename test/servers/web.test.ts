import { once } from 'node:events';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect as http2Connect, createServer as createHttp2Server } from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import express from 'express';
import { serve, type ServerType } from '@hono/node-server';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProviderError, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { sse } from 'tokenrelay/express';
import { sendSSE } from 'tokenrelay/node';
import { closeAllStreams, toResponse, type ToResponseOptions } from 'tokenrelay/web';
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
  // Every exit path untracks its stream.
  await vi.waitFor(() => expect(liveStreamCount()).toBe(0));
});

describe('toResponse in process', () => {
  it('answers with the exact SSE headers, user headers, and token + done events', async () => {
    const response = await toResponse(source(['Hel', 'lo']), {
      headers: { 'Access-Control-Allow-Origin': '*', 'content-type': 'text/plain', 'Cache-Control': 'max-age=60' },
    });
    expect(response.status).toBe(200);
    expect(Object.fromEntries(response.headers)).toEqual({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      'access-control-allow-origin': '*',
    });
    const events = await readAll(response);
    expect(events.map((e) => e.event)).toEqual(['token', 'token', 'done']);
    expect(events.map((e) => e.id)).toEqual(['0', '1', '2']);
    expect(JSON.parse(events[0]!.data)).toMatchObject({ token: 'Hel', index: 0 });
    expect(JSON.parse(events[2]!.data)).toMatchObject({ finishReason: 'stop', index: 2 });
  });

  it('honours `status`', async () => {
    const response = await toResponse(source(['a']), { status: 201 });
    expect(response.status).toBe(201);
    await readAll(response);
  });

  it('answers an early 429 with its status, Retry-After and a JSON body', async () => {
    provider.setScript({ fault: { kind: 'http-error', status: 429, type: 'rate_limit_error', headers: { 'retry-after': '7' } } });
    const metrics = deferred<StreamMetrics>();
    const response = await toResponse((signal) => streamOpenAI(openai, params, { signal }), {
      headers: { 'Access-Control-Allow-Origin': '*' },
      monitor: { onFinish: metrics.resolve },
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(await response.json()).toEqual({
      error: { code: 'provider', message: 'The provider failed', status: 429, retryable: true, retryAfterMs: 7000 },
    });
    expect((await metrics.promise).outcome).toBe('error');
  });

  it('answers an early provider 5xx with 502', async () => {
    provider.setScript({ fault: { kind: 'http-error', status: 500 } });
    const response = await toResponse((signal) => streamOpenAI(openai, params, { signal }));
    expect(response.status).toBe(502);
    expect((await response.json()) as unknown).toMatchObject({ error: { code: 'provider', status: 500 } });
  });

  it('turns an error after the first token into the `error` event', async () => {
    provider.setScript({ tokens: ['a', 'b', 'c'], fault: { kind: 'error-event', afterTokens: 2 } });
    const response = await toResponse((signal) => streamOpenAI(openai, params, { signal }));
    expect(response.status).toBe(200);
    const events = await readAll(response);
    expect(events.map((e) => e.event)).toEqual(['token', 'token', 'error']);
    expect(JSON.parse(events[2]!.data)).toMatchObject({ code: 'provider' });
  });

  it('starts streaming after `statusWindowMs` when the first chunk is late, then sends errors as events', async () => {
    const gate = deferred<void>();
    async function* late(): AsyncGenerator<TokenChunk> {
      await gate.promise;
      throw new ProviderError('boom', { status: 500 });
    }
    const response = await toResponse(late(), { statusWindowMs: 20 });
    expect(response.status).toBe(200);
    gate.resolve();
    const events = await readAll(response);
    expect(events.map((e) => e.event)).toEqual(['error']);
  });

  it('is pull-based: a slow reader keeps the source at most highWaterMark + 1 chunks ahead', async () => {
    const highWaterMark = 4;
    let produced = 0;
    let received = 0;
    // Counts reads; frames combined into one body chunk count as received when that chunk is read.
    async function* starved(): AsyncGenerator<TokenChunk> {
      for (let index = 0; index < 10_000; index++) {
        produced++;
        yield { token: `t${index}`, index, timestamp: 0, type: 'text' };
      }
    }
    const response = await toResponse(starved(), { backpressure: { highWaterMark }, heartbeatMs: false });
    const client = readerOf(response);
    for (let round = 0; round < 20; round++) {
      await client.readOnce();
      received = client.events.filter((e) => e.event === 'token').length;
      await turns(20);
      expect(produced - received).toBeLessThanOrEqual(highWaterMark + 1);
    }
    expect(received).toBeGreaterThan(20);
    expect(produced).toBeLessThan(10_000);
    expect(client.events.some((e) => e.event === 'error')).toBe(false);
    await client.cancel();
  });

  it('joins the frames that are already there into one body chunk', async () => {
    // A provider delivers its chunks in bursts (several per network read), each burst at once.
    async function* bursts(): AsyncGenerator<TokenChunk> {
      for (let index = 0; index < 200; index++) {
        if (index % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
        yield { token: `t${index}`, index, timestamp: 0, type: 'text' };
      }
    }
    const response = await toResponse(bursts(), { backpressure: { highWaterMark: 32 }, heartbeatMs: false });
    const client = readerOf(response);
    let reads = 0;
    for (;;) {
      const done = await client.readOnce();
      if (done) break;
      reads++;
      // A client slower than the provider: the next burst is read ahead meanwhile.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(client.events.filter((event) => event.event === 'token').map((event) => JSON.parse(event.data).index)).toEqual(
      Array.from({ length: 200 }, (_, index) => index),
    );
    expect(reads).toBeLessThanOrEqual(25);
  });

  it('cancel() of the body aborts the provider request at once (real openai SDK)', async () => {
    provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
    const metrics = deferred<StreamMetrics>();
    let sourceSignal: AbortSignal | undefined;
    const response = await toResponse(
      (signal) => {
        sourceSignal = signal;
        return streamOpenAI(openai, params, { signal });
      },
      { monitor: { onFinish: metrics.resolve } },
    );
    const client = readerOf(response);
    await client.until((events) => tokenCount(events) >= 3);
    const cancelledAt = performance.now();
    await client.cancel();
    const record = await (await provider.request(1)).ended;
    expect(record.end).toBe('client-closed');
    expect(record.endedAt! - cancelledAt).toBeLessThan(100);
    expect(sourceSignal?.aborted).toBe(true);
    const report = await metrics.promise;
    expect(report.outcome).toBe('aborted');
    expect(report.outputTokens).toBeGreaterThanOrEqual(3);
  });

  it('request.signal aborting aborts the provider request, ends the body, and reports the usage so far', async () => {
    provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
    const request = trackedRequest();
    const metrics = deferred<StreamMetrics>();
    const response = await toResponse((signal) => streamOpenAI(openai, params, { signal }), {
      request: request.request,
      monitor: { onFinish: metrics.resolve },
    });
    expect(request.listeners()).toBe(1);
    const client = readerOf(response);
    await client.until((events) => tokenCount(events) >= 3);
    const abortedAt = performance.now();
    request.abort();
    const record = await (await provider.request(1)).ended;
    expect(record.end).toBe('client-closed');
    expect(record.endedAt! - abortedAt).toBeLessThan(100);
    expect((await metrics.promise).outcome).toBe('aborted');
    while (!(await client.readOnce()));
    expect(request.listeners()).toBe(0);
  });

  it('reports `aborted` with the usage seen so far, also with chunks still read ahead', async () => {
    const usage = { inputTokens: 12, outputTokens: 2 };
    const sourceFinally = deferred<void>();
    let produced = 0;
    async function* hanging(signal: AbortSignal): AsyncGenerator<TokenChunk> {
      try {
        for (let index = 0; index < 10; index++) {
          produced++;
          yield { token: `t${index}`, index, timestamp: 0, type: 'text', usage };
        }
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      } finally {
        sourceFinally.resolve();
      }
    }
    const metrics = deferred<StreamMetrics>();
    const request = trackedRequest();
    const response = await toResponse((signal) => hanging(signal), {
      request: request.request,
      backpressure: { highWaterMark: 8 },
      monitor: { onFinish: metrics.resolve },
    });
    // The body is not read: the read-ahead holds 8 chunks when the client leaves.
    await vi.waitFor(() => expect(produced).toBe(9));
    request.abort();
    const report = await metrics.promise;
    expect(report).toMatchObject({ outcome: 'aborted', usage });
    // The chunks still read ahead for a client that left are dropped, not reported as delivered.
    expect(report.chunks).toBeLessThan(9);
    await sourceFinally.promise;
    await response.body!.cancel();
  });

  it('still ends promptly, as `aborted`, when `rate` pacing holds the read-ahead', async () => {
    const metrics = deferred<StreamMetrics>();
    const request = trackedRequest();
    const response = await toResponse(source(manyTokens(50)), {
      request: request.request,
      backpressure: { highWaterMark: 16, rate: 1, burst: 1 },
      monitor: { onFinish: metrics.resolve },
    });
    const client = readerOf(response);
    await client.readOnce();
    request.abort();
    expect((await metrics.promise).outcome).toBe('aborted');
    await client.cancel();
  });

  it('removes its request.signal listener on every exit path', async () => {
    const completed = trackedRequest();
    await readAll(await toResponse(source(['a', 'b']), { request: completed.request }));
    expect(completed.listeners()).toBe(0);

    const cancelled = trackedRequest();
    const response = await toResponse(source(manyTokens(100)), { request: cancelled.request });
    const client = readerOf(response);
    await client.readOnce();
    await client.cancel();
    expect(cancelled.listeners()).toBe(0);

    provider.setScript({ fault: { kind: 'http-error', status: 429 } });
    const early = trackedRequest();
    expect((await toResponse((signal) => streamOpenAI(openai, params, { signal }), { request: early.request })).status).toBe(429);
    expect(early.listeners()).toBe(0);

    const failed = trackedRequest();
    async function* failing(): AsyncGenerator<TokenChunk> {
      yield { token: 'a', index: 0, timestamp: 0, type: 'text' };
      throw new Error('boom');
    }
    expect((await readAll(await toResponse(failing(), { request: failed.request }))).map((e) => e.event)).toEqual(['token', 'error']);
    expect(failed.listeners()).toBe(0);

    const shutDown = trackedRequest();
    const live = readerOf(await toResponse(source(manyTokens(10_000)), { request: shutDown.request, backpressure: { highWaterMark: 2 } }));
    await live.readOnce();
    await closeAllStreams();
    expect(shutDown.listeners()).toBe(0);
    await live.cancel();
  });

  it('does not start the source for a request that was already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const factory = vi.fn((signal: AbortSignal) => streamOpenAI(openai, params, { signal }));
    const response = await toResponse(factory, { request: { signal: controller.signal } });
    expect(await readAll(response)).toEqual([]);
    expect(factory).not.toHaveBeenCalled();
  });

  it('ends live in-process streams with the `shutdown` frame on closeAllStreams()', async () => {
    const metrics: StreamMetrics[] = [];
    const clients = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const response = await toResponse(endless(), { monitor: { onFinish: (m) => void metrics.push(m) } });
        const client = readerOf(response);
        await client.until((events) => tokenCount(events) >= 1);
        return client;
      }),
    );
    await closeAllStreams({ retryMs: 2500, reason: 'deploy' });
    for (const client of clients) {
      while (!(await client.readOnce()));
      const last = client.events.at(-1)!;
      expect(last).toMatchObject({ event: 'shutdown' });
      expect(JSON.parse(last.data)).toEqual({ retryMs: 2500, message: 'deploy' });
      expect(client.retry).toBe(2500);
    }
    expect(metrics.map((m) => m.outcome)).toEqual(Array(5).fill('aborted'));
  });

  it('answers with just the `shutdown` frame when closeAllStreams() comes before the first chunk', async () => {
    const factory = vi.fn((signal: AbortSignal) =>
      (async function* (): AsyncGenerator<TokenChunk> {
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      })(),
    );
    const pending = toResponse(factory, { statusWindowMs: 60_000 });
    await vi.waitFor(() => expect(factory).toHaveBeenCalled());
    await closeAllStreams({ retryMs: 1000, reason: 'deploy' });
    const response = await pending;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('retry: 1000\nevent: shutdown\ndata: {"retryMs":1000,"message":"deploy"}\n\n');
    expect(factory.mock.calls[0]![0].aborted).toBe(true);
  });

  it('rejects bad arguments with a TypeError', async () => {
    await expect(toResponse(42 as never)).rejects.toThrow(TypeError);
    await expect(toResponse(source(['a']), { status: 204 })).rejects.toThrow(/`status` to be an integer from 200 to 599/);
    await expect(toResponse(source(['a']), { request: {} as never })).rejects.toThrow(/`request.signal` to be an AbortSignal/);
    await expect(toResponse(source(['a']), { headers: { a: 1 } as never })).rejects.toThrow(/header `a` to be a string, got 1/);
    await expect(toResponse(source(['a']), null as never)).rejects.toThrow(/`options` to be an object, got null/);
  });
});

describe('an async factory (a promise of the stream)', () => {
  it('is streamed by toResponse, its rejection answered like a throwing factory', async () => {
    const response = await toResponse(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return source(['Hel', 'lo']);
    });
    expect(response.status).toBe(200);
    expect((await readAll(response)).map((e) => e.event)).toEqual(['token', 'token', 'done']);

    const metrics = deferred<StreamMetrics>();
    const failed = await toResponse(() => Promise.reject(new ProviderError('boom', { status: 429 })), {
      monitor: { onFinish: metrics.resolve },
    });
    expect(failed.status).toBe(429);
    expect((await metrics.promise).outcome).toBe('error');
  });

  it('gets the signal, and its stream is closed when the client left while the promise was pending', async () => {
    const opened = deferred<void>();
    const ready = deferred<AsyncGenerator<TokenChunk>>();
    const request = trackedRequest();
    let sourceSignal: AbortSignal | undefined;
    const pending = toResponse(
      (signal) => {
        sourceSignal = signal;
        opened.resolve();
        return ready.promise;
      },
      { request: request.request, statusWindowMs: 60_000 },
    );
    await opened.promise;
    request.abort();
    expect(sourceSignal?.aborted).toBe(true);
    const next = vi.fn(async (): Promise<IteratorResult<TokenChunk>> => ({ done: true, value: undefined }));
    const returned = vi.fn(async (): Promise<IteratorResult<TokenChunk>> => ({ done: true, value: undefined }));
    ready.resolve({ [Symbol.asyncIterator]: () => ({ next, return: returned }) } as unknown as AsyncGenerator<TokenChunk>);
    expect(await readAll(await pending)).toEqual([]);
    // The stream came after the client left: it is closed, never read.
    await vi.waitFor(() => expect(returned).toHaveBeenCalledTimes(1));
    expect(next).not.toHaveBeenCalled();
  });

  it('is streamed by sendSSE (tokenrelay/node) and sse() (tokenrelay/express)', async () => {
    const factory = async (): Promise<AsyncIterable<TokenChunk>> => {
      await new Promise((resolve) => setImmediate(resolve));
      return source(['a', 'b']);
    };
    const nodeServer = createHttpServer((req, res) => void sendSSE(req, res, factory));
    const app = express();
    app.get('/chat', sse((_req, signal) => factory().then((stream) => (signal.aborted ? source([]) : stream))));
    const expressServer = createHttpServer(app);
    try {
      for (const server of [nodeServer, expressServer]) {
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        const client = openSSE((server.address() as AddressInfo).port, 'GET');
        await client.closed;
        expect(client.status).toBe(200);
        expect(client.events.map((e) => e.event)).toEqual(['token', 'token', 'done']);
      }
    } finally {
      for (const server of [nodeServer, expressServer]) {
        server.closeAllConnections();
        server.close();
      }
    }
  });
});

describe('writeTimeoutMs: a client that stops reading', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('errors the body and aborts the source once nothing was pulled for writeTimeoutMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const sourceFinally = deferred<void>();
    let sourceSignal: AbortSignal | undefined;
    const metrics = deferred<StreamMetrics>();
    const response = await toResponse(
      (signal) => {
        sourceSignal = signal;
        return (async function* (): AsyncGenerator<TokenChunk> {
          try {
            for (let index = 0; index < 100_000; index++) yield { token: `t${index}`, index, timestamp: 0, type: 'text' };
          } finally {
            sourceFinally.resolve();
          }
        })();
      },
      { writeTimeoutMs: 1000, backpressure: { highWaterMark: 4 }, heartbeatMs: false, monitor: { onFinish: metrics.resolve } },
    );
    const client = readerOf(response);
    await client.readOnce();
    await client.readOnce();
    // The runtime stops pulling (its socket is full): frames wait, nothing is read.
    await vi.advanceTimersByTimeAsync(999);
    expect(sourceSignal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(sourceSignal?.aborted).toBe(true);
    const report = await metrics.promise;
    expect(report.outcome).toBe('aborted');
    expect(String(report.error)).toMatch(/The client read nothing for 1000 ms/);
    await sourceFinally.promise;
    await expect(client.readOnce()).rejects.toThrow(/read nothing for 1000 ms/);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never fires while the body is being pulled, however slow the provider, nor after the end', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    async function* slow(): AsyncGenerator<TokenChunk> {
      for (let index = 0; index < 3; index++) {
        await new Promise((resolve) => setTimeout(resolve, 5000));
        yield { token: `t${index}`, index, timestamp: 0, type: 'text' };
      }
    }
    const metrics = deferred<StreamMetrics>();
    const all = toResponse(slow(), { writeTimeoutMs: 1000, heartbeatMs: false, monitor: { onFinish: metrics.resolve } }).then(readAll);
    await vi.advanceTimersByTimeAsync(20_000);
    expect((await all).map((e) => e.event)).toEqual(['token', 'token', 'token', 'done']);
    expect((await metrics.promise).outcome).toBe('completed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a raw TCP client that sends the request and never reads: write-timeout on @hono/node-server', async () => {
    const sourceFinally = deferred<void>();
    const metrics = deferred<StreamMetrics>();
    let produced = 0;
    const big = 'x'.repeat(64 * 1024);
    const port = await listen(async (request) =>
      toResponse(
        async function* (): AsyncGenerator<TokenChunk> {
          try {
            // Bounded: ~64 MB, far beyond the loopback socket buffers.
            for (let index = 0; index < 1000; index++) {
              produced++;
              yield { token: big, index, timestamp: 0, type: 'text' };
            }
          } finally {
            sourceFinally.resolve();
          }
        },
        { request, writeTimeoutMs: 300, heartbeatMs: false, monitor: { onFinish: metrics.resolve } },
      ),
    );
    const socket = connect(port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      socket.write(`GET /chat HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
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

  it('rejects a writeTimeoutMs that is not a number >= 1', async () => {
    await expect(toResponse(source(['a']), { writeTimeoutMs: 0 })).rejects.toThrow(
      new TypeError('Expected `writeTimeoutMs` to be a number >= 1, got 0'),
    );
  });
});

describe('toResponse on a real Node server (@hono/node-server)', () => {
  const handler = (options: ToResponseOptions = {}) => async (request: Request) => {
    if (request.method === 'POST') {
      const body = (await request.json()) as { content: string };
      expect(body.content).toBe('Hi');
    }
    return toResponse((signal) => streamOpenAI(openai, params, { signal }), { ...options, request });
  };

  it('streams the SSE frames with the SSE headers', async () => {
    provider.setScript({ tokens: ['Hel', 'lo'] });
    const port = await listen(handler());
    const client = openSSE(port, 'GET');
    await client.closed;
    expect(client.headers).toMatchObject({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    expect(client.events.map((e) => e.event)).toEqual(['token', 'token', 'done']);
  });

  it('sends the headers before the first token once `statusWindowMs` has passed', async () => {
    const gate = deferred<void>();
    const port = await listen(async (request) =>
      toResponse(
        (async function* gated() {
          await gate.promise;
          yield* source(['late']);
        })(),
        { request, statusWindowMs: 20 },
      ),
    );
    const client = openSSE(port, 'GET');
    await client.response;
    expect(client.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(client.events).toEqual([]);
    gate.resolve();
    await client.closed;
    expect(client.events.map((e) => e.event)).toEqual(['token', 'done']);
  });

  it('sends no Connection or Transfer-Encoding header on HTTP/2', async () => {
    provider.setScript({ tokens: ['a'] });
    const port = await listen(handler(), true);
    const session = http2Connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request({ ':path': '/', ':method': 'GET' });
      const [headers] = (await once(stream, 'response')) as [Record<string, string>];
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (data: string) => (text += data));
      await once(stream, 'end');
      expect(headers[':status']).toBe(200);
      expect(headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(headers['connection']).toBeUndefined();
      expect(headers['transfer-encoding']).toBeUndefined();
      expect(text).toContain('event: done');
    } finally {
      session.close();
    }
  });

  for (const method of ['GET', 'POST'] as const) {
    it(`a client disconnect after 3 tokens closes the provider request within 100 ms (${method})`, async () => {
      provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
      const metrics = deferred<StreamMetrics>();
      const port = await listen(handler({ monitor: { onFinish: metrics.resolve } }));
      const client = openSSE(port, method, method === 'POST' ? JSON.stringify({ content: 'Hi' }) : undefined);
      await client.until((events) => tokenCount(events) >= 3);
      const disconnectedAt = performance.now();
      client.destroy();
      const record = await (await provider.request(1)).ended;
      expect(record.end).toBe('client-closed');
      expect(record.endedAt! - disconnectedAt).toBeLessThan(100);
      const report = await metrics.promise;
      expect(report.outcome).toBe('aborted');
      expect(report.outputTokens).toBeGreaterThanOrEqual(3);
      expect(report.usage).toBeUndefined(); // OpenAI reports usage only at the end
    });
  }

  it('answers an early 429 over the wire with Retry-After and JSON', async () => {
    provider.setScript({ fault: { kind: 'http-error', status: 429, headers: { 'retry-after': '3' } } });
    const port = await listen(handler());
    const client = openSSE(port, 'GET');
    await client.closed;
    expect(client.status).toBe(429);
    expect(client.headers['retry-after']).toBe('3');
    expect(JSON.parse(client.text)).toMatchObject({ error: { code: 'provider', status: 429 } });
  });

  it('closeAllStreams() ends 50 streams in flight with `shutdown`, aborts their providers, and the server closes promptly', async () => {
    provider.setScript({ tokens: manyTokens(2000), delayMs: 20 });
    const outcomes: string[] = [];
    const port = await listen(handler({ monitor: { onFinish: (m) => void outcomes.push(m.outcome) } }));
    const clients = Array.from({ length: 50 }, () => openSSE(port, 'GET'));
    await Promise.all(clients.map((client) => client.until((events) => tokenCount(events) >= 1)));
    expect(liveStreamCount()).toBe(50);
    const startedAt = performance.now();
    await closeAllStreams({ retryMs: 2000, reason: 'deploy' });
    await Promise.all(clients.map((client) => client.closed));
    // No closeAllConnections(): the server closes because every response has ended.
    await closeGracefully(servers.pop()!);
    const closeMs = performance.now() - startedAt;
    expect(closeMs).toBeLessThan(2000);
    for (const client of clients) {
      expect(client.events.at(-1)).toMatchObject({ event: 'shutdown', data: '{"retryMs":2000,"message":"deploy"}' });
      expect(client.retry).toBe(2000);
    }
    const records = await Promise.all(provider.requests.map((record) => record.ended));
    expect(records.map((record) => record.end)).toEqual(Array(50).fill('client-closed'));
    expect(outcomes).toEqual(Array(50).fill('aborted'));
  });
});

// --- helpers -------------------------------------------------------------------------------

function source(tokens: string[]): AsyncGenerator<TokenChunk> {
  return (async function* () {
    let index = 0;
    for (const token of tokens) yield { token, index: index++, timestamp: 0, type: 'text' };
    yield { token: '', index, timestamp: 0, type: 'text', finishReason: 'stop' };
  })();
}

async function* endless(): AsyncGenerator<TokenChunk> {
  for (let index = 0; index < 100_000; index++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    yield { token: `t${index}`, index, timestamp: 0, type: 'text' };
  }
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets the event loop turn `n` times, to show that nothing more happens. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

function tokenCount(events: EventSourceMessage[]): number {
  return events.filter((e) => e.event === 'token').length;
}

/** A request whose signal counts its `abort` listeners. */
function trackedRequest(): { request: { signal: AbortSignal }; abort(): void; listeners(): number } {
  const controller = new AbortController();
  const { signal } = controller;
  const listeners = new Map<unknown, boolean>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((type: string, listener: EventListener, options?: AddEventListenerOptions) => {
    if (type === 'abort') listeners.set(listener, options?.once === true);
    add(type, listener, options);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, listener: EventListener) => {
    if (type === 'abort') listeners.delete(listener);
    remove(type, listener);
  }) as typeof signal.removeEventListener;
  const abort = () => {
    controller.abort();
    for (const [listener, once] of listeners) if (once) listeners.delete(listener);
  };
  return { request: { signal }, abort, listeners: () => listeners.size };
}

interface SSEReader {
  events: EventSourceMessage[];
  retry: number | undefined;
  /** Reads one body chunk; true when the body has ended. */
  readOnce(): Promise<boolean>;
  until(predicate: (events: EventSourceMessage[]) => boolean): Promise<void>;
  cancel(): Promise<void>;
}

function readerOf(response: Response): SSEReader {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const state: SSEReader = {
    events: [],
    retry: undefined,
    async readOnce() {
      const { done, value } = await reader.read();
      if (value !== undefined) parser.feed(decoder.decode(value, { stream: true }));
      return done;
    },
    async until(predicate) {
      for (let reads = 0; reads < 10_000 && !predicate(state.events); reads++) {
        if (await state.readOnce()) throw new Error('the body ended first');
      }
    },
    cancel: () => reader.cancel(),
  };
  const parser = createParser({ onEvent: (event) => state.events.push(event), onRetry: (ms) => (state.retry = ms) });
  return state;
}

async function readAll(response: Response): Promise<EventSourceMessage[]> {
  const client = readerOf(response);
  for (let reads = 0; reads < 100_000; reads++) if (await client.readOnce()) break;
  return client.events;
}

async function listen(fetch: (request: Request) => Response | Promise<Response>, http2 = false): Promise<number> {
  const server = serve({
    fetch,
    port: 0,
    hostname: '127.0.0.1',
    ...(http2 ? { createServer: createHttp2Server } : {}),
  });
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
  status: number | undefined;
  headers: IncomingHttpHeaders;
  events: EventSourceMessage[];
  retry: number | undefined;
  text: string;
  response: Promise<void>;
  closed: Promise<void>;
  until(predicate: (events: EventSourceMessage[]) => boolean): Promise<void>;
  destroy(): void;
}

/** A real HTTP/1.1 client on its own connection, so destroying it is a real disconnect. */
function openSSE(port: number, method: 'GET' | 'POST', body?: string): SSEClient {
  const response = deferred<void>();
  const closed = deferred<void>();
  const waiters: Array<() => void> = [];
  const client: SSEClient = {
    status: undefined,
    headers: {},
    events: [],
    retry: undefined,
    text: '',
    response: response.promise,
    closed: closed.promise,
    until: (predicate) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (predicate(client.events)) resolve();
          else if (ended) reject(new Error('the response ended first'));
          else waiters.push(check);
        };
        check();
      }),
    destroy: () => req.destroy(),
  };
  let ended = false;
  const parser = createParser({
    onEvent(event) {
      client.events.push(event);
      waiters.splice(0).forEach((check) => check());
    },
    onRetry: (ms) => (client.retry = ms),
  });
  const finish = () => {
    ended = true;
    waiters.splice(0).forEach((check) => check());
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
    client.status = res.statusCode;
    client.headers = res.headers;
    response.resolve();
    res.setEncoding('utf8');
    res.on('data', (text: string) => {
      client.text += text;
      parser.feed(text);
    });
    res.on('close', finish);
  });
  req.on('error', finish);
  req.on('close', () => {
    if (client.status === undefined) finish();
  });
  req.end(body);
  return client;
}
