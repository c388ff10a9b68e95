import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import OpenAI from 'openai';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tokens, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { closeAllStreams, sendSSE, type SendSSEOptions, type SendSSEResult } from 'tokenrelay/node';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';

// ---------------------------------------------------------------- helpers

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => closeServer(server));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function startProvider(script: MockScript): Promise<{ provider: MockProvider; openai: OpenAI }> {
  const provider = await startMockProvider({ script });
  cleanups.push(() => provider.close());
  return { provider, openai: new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 }) };
}

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Hi' }] };
const manyTokens = (n: number): string[] => Array.from({ length: n }, (_, i) => ` t${i}`);

interface SSEClient {
  response: IncomingMessage;
  events: EventSourceMessage[];
  retries: number[];
  /** Resolves once `predicate` holds for the events so far; rejects if the response ends first. */
  until(predicate: (events: EventSourceMessage[]) => boolean): Promise<void>;
  /** Resolves when the response ended or its connection closed. */
  ended: Promise<void>;
  /** Drops the connection; returns when (`performance.now()`). */
  disconnect(): number;
}

function openSSE(
  url: string,
  init: { method?: string; body?: string; agent?: http.Agent; headers?: Record<string, string> } = {},
): Promise<SSEClient> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'text/event-stream', ...init.headers };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const request = http.request(url, { method: init.method ?? 'GET', headers, agent: init.agent ?? false });
    request.on('error', reject);
    request.on('response', (response) => {
      request.off('error', reject);
      request.on('error', () => undefined);
      const events: EventSourceMessage[] = [];
      const retries: number[] = [];
      const waiters = new Set<{ predicate: (events: EventSourceMessage[]) => boolean; resolve(): void; reject(e: Error): void }>();
      const check = () => {
        for (const waiter of waiters) {
          if (waiter.predicate(events)) {
            waiters.delete(waiter);
            waiter.resolve();
          }
        }
      };
      const parser = createParser({
        onEvent: (event) => {
          events.push(event);
          check();
        },
        onRetry: (retry) => retries.push(retry),
      });
      response.setEncoding('utf8');
      response.on('data', (text: string) => parser.feed(text));
      response.on('error', () => undefined);
      const ended = new Promise<void>((done) => {
        const finish = () => {
          for (const waiter of waiters) waiter.reject(new Error(`The stream ended with ${events.length} events`));
          waiters.clear();
          done();
        };
        response.once('end', finish);
        response.once('close', finish);
      });
      resolve({
        response,
        events,
        retries,
        ended,
        until: (predicate) =>
          new Promise<void>((resolveWait, rejectWait) => {
            if (predicate(events)) resolveWait();
            else if (response.complete || response.destroyed) rejectWait(new Error('The stream already ended'));
            else waiters.add({ predicate, resolve: resolveWait, reject: rejectWait });
          }),
        disconnect: () => {
          const at = performance.now();
          request.destroy();
          return at;
        },
      });
    });
    request.end(init.body);
  });
}

const tokenEvents = (events: EventSourceMessage[]) => events.filter((event) => event.event === 'token');
const tokenText = (events: EventSourceMessage[]) =>
  tokenEvents(events)
    .map((event) => (JSON.parse(event.data) as TokenChunk).token)
    .join('');

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (part: string) => (body += part));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

const activeTimers = () =>
  process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout' || resource === 'Immediate').length;

// ---------------------------------------------------------------- tests

describe('sendSSE on node:http', () => {
  it('sends exactly the SSE headers on HTTP/1.1, with extra headers that cannot override them', async () => {
    const { url } = await startServer((req, res) => {
      void sendSSE(req, res, tokens(['a']), {
        headers: { 'Access-Control-Allow-Origin': '*', 'content-type': 'text/plain', 'Content-Length': '3' },
      });
    });
    const response = await fetch(url);
    await response.text();
    expect(response.status).toBe(200);
    const headers = Object.fromEntries(response.headers);
    expect(Object.keys(headers).sort()).toEqual([
      'access-control-allow-origin',
      'cache-control',
      'connection',
      'content-type',
      'date',
      'transfer-encoding',
      'x-accel-buffering',
    ]);
    expect(headers).toMatchObject({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
      'access-control-allow-origin': '*',
      'transfer-encoding': 'chunked',
    });
  });

  it('flushes the headers after statusWindowMs, before the first token exists', async () => {
    const gate = deferred();
    let tokenProduced = false;
    const { url } = await startServer((req, res) => {
      void sendSSE(
        req,
        res,
        (async function* () {
          await gate.promise;
          tokenProduced = true;
          yield* tokens(['late']);
        })(),
        { statusWindowMs: 50 },
      );
    });
    const client = await openSSE(url);
    expect(client.response.statusCode).toBe(200);
    expect(tokenProduced).toBe(false);
    gate.resolve();
    await client.ended;
    expect(tokenText(client.events)).toBe('late');
    expect(client.events.at(-1)?.event).toBe('done');
  });

  it('relays the real OpenAI SDK token by token and ends with a done event carrying the usage', async () => {
    const words = ['Zürich', ' 東京', ' 🦀', '\nline'];
    const { provider, openai } = await startProvider({ tokens: words, delayMs: 1 });
    const result = deferred<SendSSEResult>();
    const { url } = await startServer((req, res) => {
      void sendSSE(req, res, (signal) => streamOpenAI(openai, chat, { signal })).then(result.resolve);
    });
    const client = await openSSE(url);
    await client.ended;
    expect(tokenText(client.events)).toBe(words.join(''));
    const ids = client.events.map((event) => Number(event.id));
    expect(ids).toEqual(ids.map((_, i) => i));
    const done = client.events.at(-1)!;
    expect(done.event).toBe('done');
    expect(JSON.parse(done.data)).toMatchObject({ finishReason: 'stop', usage: { inputTokens: 12, outputTokens: 4 } });
    const { outcome, status, metrics } = await result.promise;
    expect({ outcome, status, metricsOutcome: metrics.outcome }).toEqual({ outcome: 'completed', status: 200, metricsOutcome: 'completed' });
    expect((await (await provider.request(1)).ended).end).toBe('completed');
  });

  it('aborts the provider request within 100 ms of a GET client disconnecting after 3 tokens', async () => {
    const { provider, openai } = await startProvider({ tokens: manyTokens(200), delayMs: 10 });
    const finished = deferred<StreamMetrics>();
    const result = deferred<SendSSEResult>();
    const { url } = await startServer((req, res) => {
      void sendSSE(req, res, (signal) => streamOpenAI(openai, chat, { signal }), {
        monitor: { onFinish: finished.resolve },
      }).then(result.resolve);
    });
    const client = await openSSE(url);
    await client.until((events) => tokenEvents(events).length >= 3);
    const disconnectedAt = client.disconnect();

    const record = await (await provider.request(1)).ended;
    expect(record.end).toBe('client-closed');
    const latency = record.endedAt! - disconnectedAt;
    console.info(`GET disconnect → provider request closed: ${latency.toFixed(1)} ms`);
    expect(latency).toBeLessThan(100);

    const metrics = await finished.promise;
    expect(metrics.outcome).toBe('aborted');
    expect(metrics.outputTokens).toBeGreaterThanOrEqual(3);
    expect(metrics.chunks).toBeGreaterThanOrEqual(3);
    expect(metrics.usage).toBeUndefined(); // OpenAI reports usage in its last event only
    const { outcome, metrics: resolved } = await result.promise;
    expect(outcome).toBe('client-closed');
    expect(resolved).toBe(metrics);
  });

  it('aborts the provider request within 100 ms of a POST client disconnecting after 3 tokens', async () => {
    const { provider, openai } = await startProvider({ tokens: manyTokens(200), delayMs: 10 });
    const finished = deferred<StreamMetrics>();
    const { url } = await startServer(async (req, res) => {
      const { messages } = JSON.parse(await readBody(req)) as { messages: typeof chat.messages };
      void sendSSE(req, res, (signal) => streamOpenAI(openai, { ...chat, messages }, { signal }), {
        monitor: { onFinish: finished.resolve },
      });
    });
    const client = await openSSE(url, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'from POST' }] }) });
    await client.until((events) => tokenEvents(events).length >= 3);
    const disconnectedAt = client.disconnect();

    const request = await provider.request(1);
    expect(request.body.messages).toEqual([{ role: 'user', content: 'from POST' }]);
    const record = await request.ended;
    expect(record.end).toBe('client-closed');
    const latency = record.endedAt! - disconnectedAt;
    console.info(`POST disconnect → provider request closed: ${latency.toFixed(1)} ms`);
    expect(latency).toBeLessThan(100);
    const metrics = await finished.promise;
    expect(metrics.outcome).toBe('aborted');
    expect(metrics.outputTokens).toBeGreaterThanOrEqual(3);
  });

  it('keeps streaming a POST after its body was read (request "close" is not a disconnect)', async () => {
    const { provider, openai } = await startProvider({ tokens: manyTokens(10), delayMs: 5 });
    let requestClosedWhileStreaming = false;
    const result = deferred<SendSSEResult>();
    const { url } = await startServer(async (req, res) => {
      req.once('close', () => (requestClosedWhileStreaming = !res.writableEnded));
      await readBody(req);
      void sendSSE(req, res, (signal) => streamOpenAI(openai, chat, { signal })).then(result.resolve);
    });
    const client = await openSSE(url, { method: 'POST', body: '{}' });
    await client.ended;
    expect(requestClosedWhileStreaming).toBe(true);
    expect(tokenText(client.events)).toBe(manyTokens(10).join(''));
    expect(client.events.at(-1)?.event).toBe('done');
    expect((await result.promise).outcome).toBe('completed');
    expect((await (await provider.request(1)).ended).end).toBe('completed');
  });

  it('answers a provider 429 before the first token with 429, Retry-After and a JSON body', async () => {
    const { openai } = await startProvider({
      fault: { kind: 'http-error', status: 429, type: 'rate_limit_error', headers: { 'retry-after': '2' } },
    });
    const result = deferred<SendSSEResult>();
    const { url } = await startServer((req, res) => {
      void sendSSE(req, res, (signal) => streamOpenAI(openai, chat, { signal }), {
        headers: { 'Access-Control-Allow-Origin': '*' },
      }).then(result.resolve);
    });
    const response = await fetch(url);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('2');
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(await response.json()).toEqual({
      error: { code: 'provider', message: 'The provider failed', status: 429, retryable: true, retryAfterMs: 2000 },
    });
    const { outcome, status, metrics } = await result.promise;
    expect({ outcome, status, metricsOutcome: metrics.outcome }).toEqual({ outcome: 'http-error', status: 429, metricsOutcome: 'error' });
  });

  it('answers a provider 500 before the first token with 502 and a JSON body', async () => {
    const { openai } = await startProvider({ fault: { kind: 'http-error', status: 500, message: 'secret upstream detail' } });
    const { url } = await startServer((req, res) => {
      void sendSSE(req, res, (signal) => streamOpenAI(openai, chat, { signal }));
    });
    const response = await fetch(url);
    expect(response.status).toBe(502);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const body = (await response.json()) as { error: { code: string; message: string; status: number } };
    expect(body.error).toMatchObject({ code: 'provider', message: 'The provider failed', status: 500 });
  });

  it('turns a provider error after the first token into a final error event, then ends', async () => {
    const { openai } = await startProvider({ tokens: ['a', 'b', 'c'], fault: { kind: 'error-event', afterTokens: 2 } });
    const result = deferred<SendSSEResult>();
    const { url } = await startServer((req, res) => {
      void sendSSE(req, res, (signal) => streamOpenAI(openai, chat, { signal })).then(result.resolve);
    });
    const client = await openSSE(url);
    await client.ended;
    expect(client.response.statusCode).toBe(200);
    expect(client.events.map((event) => event.event)).toEqual(['token', 'token', 'error']);
    expect(JSON.parse(client.events[2]!.data)).toMatchObject({ code: 'provider', message: 'The provider failed' });
    const { outcome, metrics } = await result.promise;
    expect(outcome).toBe('completed');
    expect(metrics.outcome).toBe('error');
  });

  it('joins the frames of one tick into one write, and writes a slow source frame by frame', async () => {
    const writes: number[] = [];
    const { url } = await startServer((req, res) => {
      const write = res.write.bind(res) as (chunk: string) => boolean;
      const end = res.end.bind(res) as (chunk: string) => ServerResponse;
      const patched = res as unknown as { write(chunk: string): boolean; end(chunk: string): ServerResponse };
      patched.write = (chunk) => {
        writes.push(chunk.split('\n\n').length - 1);
        return write(chunk);
      };
      patched.end = (chunk) => {
        writes.push(chunk.split('\n\n').length - 1);
        return end(chunk);
      };
      const slow = req.url === '/slow';
      const source = slow
        ? (async function* () {
            for (const token of ['a', 'b', 'c']) {
              await new Promise((resolve) => setTimeout(resolve, 5));
              yield token;
            }
          })()
        : Array.from({ length: 1000 }, (_, i) => `token ${i}`);
      void sendSSE(req, res, tokens(source), { statusWindowMs: 0 });
    });
    const fast = await openSSE(url);
    await fast.ended;
    expect(tokenEvents(fast.events)).toHaveLength(1000);
    const frames = writes.reduce((sum, count) => sum + count, 0);
    expect(frames).toBe(1001);
    expect(writes.length).toBeLessThanOrEqual(10); // 1001 frames, ~100 KB: a few 16 KiB writes

    writes.length = 0;
    const slow = await openSSE(`${url}/slow`);
    await slow.ended;
    expect(tokenText(slow.events)).toBe('abc');
    expect(writes.slice(0, 2)).toEqual([1, 1]); // 5 ms apart: nothing to join
    expect(writes.reduce((sum, count) => sum + count, 0)).toBe(4);
  });

  it('does not start the provider for a client that left before the handler ran', async () => {
    const handled = deferred();
    const result = deferred<SendSSEResult>();
    const factory = vi.fn((_signal: AbortSignal) => tokens(['never']));
    const { url } = await startServer((req, res) => {
      handled.resolve();
      res.once('close', () => void sendSSE(req, res, factory).then(result.resolve));
    });
    const request = http.request(url, { agent: false });
    request.on('error', () => undefined);
    request.end();
    await handled.promise;
    request.destroy();
    const { outcome, metrics } = await result.promise;
    expect(outcome).toBe('client-closed');
    expect(metrics.outcome).toBe('aborted');
    expect(factory).not.toHaveBeenCalled();
  });

  it('ends 50 live streams with a shutdown frame, aborts their providers, and lets the server close at once', async () => {
    const { provider, openai } = await startProvider({ tokens: manyTokens(500), delayMs: 20 });
    const results: Array<Promise<SendSSEResult>> = [];
    const { server, url } = await startServer((req, res) => {
      results.push(sendSSE(req, res, (signal) => streamOpenAI(openai, chat, { signal })));
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    cleanups.push(() => agent.destroy());
    const clients = await Promise.all(Array.from({ length: 50 }, () => openSSE(url, { agent })));
    await Promise.all(clients.map((client) => client.until((events) => tokenEvents(events).length >= 1)));

    const startedAt = performance.now();
    await closeAllStreams({ retryMs: 2000, reason: 'deploy' });
    const closedAllIn = performance.now() - startedAt;
    await Promise.all(clients.map((client) => client.ended));
    for (const client of clients) {
      expect(client.events.at(-1)).toMatchObject({ event: 'shutdown', data: JSON.stringify({ retryMs: 2000, message: 'deploy' }) });
      expect(client.retries).toEqual([2000]);
    }
    expect((await Promise.all(results)).map((result) => result.outcome)).toEqual(Array(50).fill('shutdown'));
    const ends = await Promise.all(provider.requests.map((request) => request.ended));
    expect(ends.map((record) => record.end)).toEqual(Array(50).fill('client-closed'));

    const closeStartedAt = performance.now();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const serverClosedIn = performance.now() - closeStartedAt;
    console.info(`closeAllStreams(50 streams): ${closedAllIn.toFixed(1)} ms; server.close(): ${serverClosedIn.toFixed(1)} ms`);
    expect(closedAllIn).toBeLessThan(2000);
    expect(serverClosedIn).toBeLessThan(1000);
  });

  it('leaves no listeners on responses or sockets and no timers after 10 sequential and 50 concurrent streams', async () => {
    const timersBefore = activeTimers();
    const sockets = new Set<import('node:net').Socket>();
    const listenerLeaks: string[] = [];
    const results: Array<Promise<SendSSEResult>> = [];
    const { server, url } = await startServer((req, res) => {
      const before = { close: res.listenerCount('close'), drain: res.listenerCount('drain') };
      results.push(
        sendSSE(req, res, tokens(['a', 'b', 'c']), { timeout: { idleMs: 10_000 } }).then((result) => {
          if (res.listenerCount('close') !== before.close) listenerLeaks.push('close');
          if (res.listenerCount('drain') !== before.drain) listenerLeaks.push('drain');
          return result;
        }),
      );
    });
    server.on('connection', (socket) => sockets.add(socket));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    const listenerCounts = (socket: import('node:net').Socket) =>
      Object.fromEntries(socket.eventNames().map((name) => [String(name), socket.listenerCount(name)]));

    const first = await openSSE(url, { agent });
    await first.ended;
    const [socket] = sockets;
    const baseline = listenerCounts(socket!);
    for (let i = 0; i < 9; i++) await (await openSSE(url, { agent })).ended;
    expect(sockets.size).toBe(1); // all 10 went over the same keep-alive connection
    expect(listenerCounts(socket!)).toEqual(baseline);

    const clients = await Promise.all(Array.from({ length: 50 }, () => openSSE(url, { agent })));
    await Promise.all(clients.map((client) => client.ended));
    for (const each of sockets) expect(listenerCounts(each)).toEqual(baseline);
    const outcomes = (await Promise.all(results)).map((result) => result.outcome);
    expect(outcomes).toEqual(Array(60).fill('completed'));
    expect(listenerLeaks).toEqual([]);

    agent.destroy();
    await closeServer(server);
    await vi.waitFor(() => expect(activeTimers()).toBeLessThanOrEqual(timersBefore));
  });

  it('fails fast on bad arguments with a TypeError', async () => {
    const req = { httpVersion: '1.1', httpVersionMajor: 1 } as IncomingMessage;
    const res = { writeHead() {}, headersSent: false } as unknown as ServerResponse;
    await expect(sendSSE(req, res, 42 as never)).rejects.toThrow(
      new TypeError('Expected `source` to be an async iterable of chunks or a function (signal) => stream, got 42'),
    );
    await expect(sendSSE(req, res, tokens([]), { writeTimeoutMs: -1 })).rejects.toThrow(
      new TypeError('Expected `writeTimeoutMs` to be a number >= 1, got -1'),
    );
    await expect(sendSSE(req, res, tokens([]), { headers: { 'X-Bad': 'a\nb' } })).rejects.toThrow(TypeError);
    await expect(sendSSE(req, res, tokens([]), { headers: { 'X-Num': 1 as never } })).rejects.toThrow(
      new TypeError('Expected header `X-Num` to be a string, got 1'),
    );
    await expect(sendSSE({} as IncomingMessage, res, tokens([]))).rejects.toThrow(
      new TypeError('Expected `req` to be a node:http or node:http2 request, got an object'),
    );
    const started = { writeHead() {}, headersSent: true } as unknown as ServerResponse;
    await expect(sendSSE(req, started, tokens([]))).rejects.toThrow(/headers were not sent yet/);
  });
});

describe('sendSSE on node:http2 (h2c)', () => {
  it('sends no connection-specific headers, relays tokens, and aborts the provider when the stream closes', async () => {
    const { provider, openai } = await startProvider({ tokens: manyTokens(200), delayMs: 10 });
    const result = deferred<SendSSEResult>();
    const options: SendSSEOptions = { headers: { Connection: 'keep-alive', 'X-Extra': 'yes' } };
    const server = http2.createServer((req, res) => {
      void sendSSE(req, res, (signal) => streamOpenAI(openai, chat, { signal }), options).then(result.resolve);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    cleanups.push(() => session.close());

    const stream = session.request({ ':path': '/' });
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    expect(headers[':status']).toBe(200);
    expect(headers).not.toHaveProperty('connection');
    expect(headers).not.toHaveProperty('transfer-encoding');
    expect(headers).toMatchObject({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      'x-extra': 'yes',
    });

    const events: EventSourceMessage[] = [];
    const threeTokens = deferred();
    const parser = createParser({
      onEvent: (event) => {
        events.push(event);
        if (tokenEvents(events).length === 3) threeTokens.resolve();
      },
    });
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => parser.feed(text));
    await threeTokens.promise;
    expect(tokenText(events)).toBe(' t0 t1 t2');
    const closedAt = performance.now();
    stream.close(http2.constants.NGHTTP2_CANCEL);

    const record = await (await provider.request(1)).ended;
    expect(record.end).toBe('client-closed');
    const latency = record.endedAt! - closedAt;
    console.info(`HTTP/2 stream close → provider request closed: ${latency.toFixed(1)} ms`);
    expect(latency).toBeLessThan(100);
    const { outcome, metrics } = await result.promise;
    expect(outcome).toBe('client-closed');
    expect(metrics.outcome).toBe('aborted');
  });
});
