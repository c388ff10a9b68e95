import http, { type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import compression from 'compression';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import express5, { type ErrorRequestHandler, type Express } from 'express';
import express4Module from 'express4';
import OpenAI from 'openai';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tokens, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { closeAllStreams, sendSSE, sse, type SendSSEResult } from 'tokenrelay/express';
import { closeAllStreams as closeAllNodeStreams } from 'tokenrelay/node';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

async function listen(app: Express): Promise<string> {
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startProvider(script: MockScript): Promise<{ provider: MockProvider; openai: OpenAI }> {
  const provider = await startMockProvider({ script });
  cleanups.push(() => provider.close());
  return { provider, openai: new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 }) };
}

const model = 'gpt-4o-mini';
const chat = { model, messages: [{ role: 'user' as const, content: 'Hi' }] };
const manyTokens = (n: number): string[] => Array.from({ length: n }, (_, i) => ` t${i}`);

interface SSEClient {
  response: IncomingMessage;
  events: EventSourceMessage[];
  until(predicate: (events: EventSourceMessage[]) => boolean): Promise<void>;
  ended: Promise<void>;
  disconnect(): number;
}

function openSSE(url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<SSEClient> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'text/event-stream', ...init.headers };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const request = http.request(url, { method: init.method ?? 'GET', headers, agent: false });
    request.on('error', reject);
    request.on('response', (response) => {
      request.on('error', () => undefined);
      response.on('error', () => undefined);
      const events: EventSourceMessage[] = [];
      const waiters = new Set<() => void>();
      const parser = createParser({
        onEvent: (event) => {
          events.push(event);
          for (const check of waiters) check();
        },
      });
      response.setEncoding('utf8');
      response.on('data', (text: string) => parser.feed(text));
      const ended = new Promise<void>((done) => {
        response.once('end', done);
        response.once('close', done);
      });
      resolve({
        response,
        events,
        ended,
        until: (predicate) =>
          new Promise<void>((resolveWait, rejectWait) => {
            const check = () => {
              if (!predicate(events)) return;
              waiters.delete(check);
              resolveWait();
            };
            waiters.add(check);
            check();
            void ended.then(() => {
              if (waiters.delete(check)) rejectWait(new Error(`The stream ended with ${events.length} events`));
            });
          }),
        disconnect: () => {
          const at = performance.now();
          request.destroy();
          return at;
        },
      });
    });
    request.end(init.body === undefined ? undefined : JSON.stringify(init.body));
  });
}

const tokenEvents = (events: EventSourceMessage[]) => events.filter((event) => event.event === 'token');
const tokenText = (events: EventSourceMessage[]) =>
  tokenEvents(events)
    .map((event) => (JSON.parse(event.data) as TokenChunk).token)
    .join('');

// Express 4 is still widely deployed, and `sse()` takes it too: the same tests run on both.
const express4 = express4Module as unknown as typeof express5;

describe.each([
  ['Express 5', express5, 'express', '5.'],
  ['Express 4', express4, 'express4', '4.'],
])('sse() for %s', (_name, express, packageName, major) => {
  it('runs on that major of Express', () => {
    const { version } = createRequire(import.meta.url)(`${packageName}/package.json`) as { version: string };
    expect(version.startsWith(major)).toBe(true);
  });

  it('streams a GET route with the SSE headers and a final done event', async () => {
    const { openai } = await startProvider({ tokens: ['Hel', 'lo'], delayMs: 1 });
    const app = express();
    app.get('/chat', sse((_req, signal) => streamOpenAI(openai, chat, { signal })));
    const client = await openSSE(`${await listen(app)}/chat`);
    await client.ended;
    expect(client.response.statusCode).toBe(200);
    expect(client.response.headers).toMatchObject({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    expect(tokenText(client.events)).toBe('Hello');
    expect(client.events.at(-1)?.event).toBe('done');
  });

  it.each([
    ['GET', undefined],
    ['POST', { messages: [{ role: 'user', content: 'from the body' }] }],
  ] as const)('aborts the provider request within 100 ms when a %s client leaves after 3 tokens', async (method, body) => {
    const { provider, openai } = await startProvider({ tokens: manyTokens(200), delayMs: 10 });
    const finished = deferred<StreamMetrics>();
    const app = express();
    const handler = sse(
      (req, signal) => streamOpenAI(openai, { model, messages: (req.body as Partial<typeof chat> | undefined)?.messages ?? chat.messages }, { signal }),
      { monitor: { onFinish: finished.resolve } },
    );
    app.get('/chat', handler);
    app.post('/chat', express.json(), handler);
    const client = await openSSE(`${await listen(app)}/chat`, { method, body });
    await client.until((events) => tokenEvents(events).length >= 3);
    const disconnectedAt = client.disconnect();

    const request = await provider.request(1);
    expect(request.body.messages).toEqual(body?.messages ?? chat.messages);
    const record = await request.ended;
    expect(record.end).toBe('client-closed');
    const latency = record.endedAt! - disconnectedAt;
    console.info(`express ${method} disconnect → provider request closed: ${latency.toFixed(1)} ms`);
    expect(latency).toBeLessThan(100);
    const metrics = await finished.promise;
    expect(metrics.outcome).toBe('aborted');
    expect(metrics.outputTokens).toBeGreaterThanOrEqual(3);
    expect(metrics.usage).toBeUndefined(); // OpenAI reports usage in its last event only
  });

  it('streams a POST with express.json() to the end: the body being read is not a disconnect', async () => {
    const { provider, openai } = await startProvider({ tokens: manyTokens(10), delayMs: 5 });
    const finished = deferred<StreamMetrics>();
    const app = express();
    app.post(
      '/chat',
      express.json(),
      sse((req, signal) => streamOpenAI(openai, { model, messages: (req.body as typeof chat).messages }, { signal }), {
        monitor: { onFinish: finished.resolve },
      }),
    );
    const client = await openSSE(`${await listen(app)}/chat`, { method: 'POST', body: chat });
    await client.ended;
    expect(tokenText(client.events)).toBe(manyTokens(10).join(''));
    expect(client.events.at(-1)?.event).toBe('done');
    expect((await finished.promise).outcome).toBe('completed');
    expect((await (await provider.request(1)).ended).end).toBe('completed');
  });

  it('answers a provider 429 before the first token with 429 and Retry-After', async () => {
    const { openai } = await startProvider({
      fault: { kind: 'http-error', status: 429, type: 'rate_limit_error', headers: { 'retry-after': '3' } },
    });
    const app = express();
    app.get('/chat', sse((_req, signal) => streamOpenAI(openai, chat, { signal })));
    const response = await fetch(`${await listen(app)}/chat`);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(await response.json()).toMatchObject({ error: { code: 'provider', status: 429, retryAfterMs: 3000 } });
  });

  it('keeps tokens flowing one by one behind compression(): no-transform is sent and res.flush() is called', async () => {
    const firstTokenSeen = deferred();
    let lastProduced = false;
    const calls: string[] = [];
    const app = express();
    app.use(compression({ threshold: 0 }));
    app.use((_req, res, next) => {
      const patched = res as unknown as { flush(): void; write(chunk: string): boolean };
      const { flush, write } = patched;
      patched.flush = function (this: unknown) {
        calls.push('flush');
        flush.call(this);
      };
      patched.write = function (this: unknown, chunk: string) {
        calls.push('write');
        return write.call(this, chunk);
      };
      next();
    });
    app.get(
      '/chat',
      sse(() =>
        tokens(
          (async function* () {
            yield 'first';
            await firstTokenSeen.promise;
            yield ' second';
            lastProduced = true;
            yield ' last';
          })(),
        ),
      ),
    );
    const client = await openSSE(`${await listen(app)}/chat`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    await client.until((events) => tokenEvents(events).length === 1);
    expect(lastProduced).toBe(false);
    firstTokenSeen.resolve();
    await client.ended;
    expect(client.response.headers['content-encoding']).toBeUndefined();
    expect(client.response.headers['cache-control']).toBe('no-cache, no-transform');
    expect(tokenText(client.events)).toBe('first second last');
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls).toEqual(calls.map((_, i) => (i % 2 === 0 ? 'write' : 'flush')));
  });

  it('maps a factory that throws to a JSON 500 (not next(err)), and accepts a factory that returns a promise', async () => {
    const errorHandler = vi.fn<ErrorRequestHandler>((_error, _req, res) => res.status(418).end());
    const finished = deferred<StreamMetrics>();
    const app = express();
    app.get(
      '/throws',
      sse(
        () => {
          throw new Error('database is down: secret detail');
        },
        { monitor: { onFinish: finished.resolve } },
      ),
    );
    app.get('/not-a-stream', sse(() => 'text' as never));
    app.get(
      '/async',
      sse(async () => {
        await Promise.resolve();
        return tokens(['after ', 'await']);
      }),
    );
    app.use(errorHandler);
    const url = await listen(app);

    const thrown = await fetch(`${url}/throws`);
    expect(thrown.status).toBe(500);
    expect(await thrown.json()).toEqual({ error: { code: 'internal', message: 'Internal error' } });
    const metrics = await finished.promise;
    expect(metrics.outcome).toBe('error');
    expect((metrics.error as Error).message).toBe('database is down: secret detail');

    const notStream = await fetch(`${url}/not-a-stream`);
    expect(notStream.status).toBe(500);
    expect(errorHandler).not.toHaveBeenCalled();

    const client = await openSSE(`${url}/async`);
    await client.ended;
    expect(tokenText(client.events)).toBe('after await');
  });

  it('ends live streams on closeAllStreams (the same registry as tokenrelay/node)', async () => {
    expect(closeAllStreams).toBe(closeAllNodeStreams);
    const { provider, openai } = await startProvider({ tokens: manyTokens(500), delayMs: 20 });
    const app = express();
    app.get('/chat', sse((_req, signal) => streamOpenAI(openai, chat, { signal })));
    const url = await listen(app);
    const clients = await Promise.all(Array.from({ length: 5 }, () => openSSE(`${url}/chat`)));
    await Promise.all(clients.map((client) => client.until((events) => tokenEvents(events).length >= 1)));
    await closeAllStreams({ retryMs: 500, reason: 'maintenance' });
    await Promise.all(clients.map((client) => client.ended));
    for (const client of clients) expect(client.events.at(-1)?.event).toBe('shutdown');
    const ends = await Promise.all(provider.requests.map((request) => request.ended));
    expect(ends.map((record) => record.end)).toEqual(Array(5).fill('client-closed'));
  });

  it('checks its arguments when the route is defined', () => {
    expect(() => sse(42 as never)).toThrow(new TypeError('Expected `factory` to be a function, got 42'));
    const factory = () => tokens([]);
    expect(() => sse(factory, { writeTimeoutMs: 0 })).toThrow(new TypeError('Expected `writeTimeoutMs` to be a number >= 1, got 0'));
    expect(() => sse(factory, { heartbeatMs: -1 })).toThrow(TypeError);
    expect(() => sse(factory, { backpressure: { highWaterMark: 0 } })).toThrow(TypeError);
    expect(() => sse(factory, { statusWindowMs: Number.NaN })).toThrow(TypeError);
    expect(() => sse(factory, { headers: { 'Bad Name': 'x' } })).toThrow(TypeError);
  });
});

describe('sendSSE from tokenrelay/express', () => {
  it('is the node sendSSE, typed for Express: streams from a handler you already have and resolves with the outcome', async () => {
    const { openai } = await startProvider({ tokens: ['Hel', 'lo'], delayMs: 1 });
    const results = deferred<SendSSEResult>();
    const app = express5();
    app.post('/chat', express5.json(), async (req, res) => {
      const messages = (req.body as typeof chat).messages;
      results.resolve(await sendSSE(req, res, (signal) => streamOpenAI(openai, { model, messages }, { signal }), { headers: { 'X-Extra': 'yes' } }));
    });
    const client = await openSSE(`${await listen(app)}/chat`, { method: 'POST', body: chat });
    await client.ended;
    expect(client.response.headers).toMatchObject({ 'content-type': 'text/event-stream; charset=utf-8', 'x-extra': 'yes' });
    expect(tokenText(client.events)).toBe('Hello');
    const result = await results.promise;
    expect(result).toMatchObject({ outcome: 'completed', status: 200, metrics: { outcome: 'completed' } });
  });

  it('rejects bad arguments with a TypeError before touching the response', async () => {
    const app = express5();
    const errors: unknown[] = [];
    app.get('/chat', (req, res, next) => {
      sendSSE(req, res, () => tokens([]), { writeTimeout: 5 } as never).catch((error: unknown) => {
        errors.push(error);
        next(error);
      });
    });
    const response = await fetch(`${await listen(app)}/chat`);
    expect(response.status).toBe(500);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TypeError);
    expect(String(errors[0])).toMatch(/writeTimeout/);
  });
});
