// NestJS apps on real loopback servers, on the Express platform and (when
// `@nestjs/platform-fastify` is installed) the Fastify platform. The repo compiles without
// `experimentalDecorators`, so the controllers are decorated the way tsc's output does it:
// `Reflect.decorate` for classes and methods, and parameter decorators called with their index.
import 'reflect-metadata';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Body, Controller, Module, Post, Req, Res, Sse, type INestApplication, type MessageEvent } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { EventSourceMessage } from 'eventsource-parser';
import Fastify from 'fastify';
import OpenAI from 'openai';
import { lastValueFrom, take, toArray, type Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { tokens, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { closeAllStreams as closeAllNodeStreams } from 'tokenrelay/node';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';
import { liveStreamCount } from '../../src/servers/internal/registry.ts';
import { closeAllStreams, sendSSE, sseObservable } from 'tokenrelay/nestjs';
import { deferred, manyTokens, openSSE, tokenEvents, tokenText } from '../helpers/sse-client.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const require = createRequire(import.meta.url);
const versionOf = (name: string): string => (require(`${name}/package.json`) as { version: string }).version;

// Nest's Fastify platform is a separate package; the Fastify cases run once it is installed.
const FASTIFY_PLATFORM = '@nestjs/platform-fastify';
let fastifyPlatform: { FastifyAdapter: new () => object } | undefined;
try {
  fastifyPlatform = (await import(/* @vite-ignore */ FASTIFY_PLATFORM)) as typeof fastifyPlatform;
} catch {
  console.warn(`${FASTIFY_PLATFORM} is not installed: the Nest Fastify platform cases are skipped`);
}

async function startProvider(script: MockScript): Promise<{ provider: MockProvider; openai: OpenAI }> {
  const provider = await startMockProvider({ script });
  cleanups.push(() => provider.close());
  return { provider, openai: new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 }) };
}

const model = 'gpt-4o-mini';
const chat = { model, messages: [{ role: 'user' as const, content: 'Hi' }] };

type Handler = (this: void, ...args: never[]) => unknown;

/** One route of a test controller: the method decorator, the parameter decorators, the handler. */
interface Route {
  method: MethodDecorator;
  params?: ParameterDecorator[];
  handler: Handler;
}

/** A Nest app with one controller made of `routes`, listening on 127.0.0.1; returns its URL. */
async function startNest(platform: 'express' | 'fastify', routes: Route[]): Promise<string> {
  class ChatController {}
  const prototype = ChatController.prototype as Record<string, unknown>;
  routes.forEach((route, i) => {
    const name = `route${i}`;
    prototype[name] = route.handler;
    Reflect.decorate([route.method], ChatController.prototype, name, Object.getOwnPropertyDescriptor(prototype, name));
    route.params?.forEach((param, index) => param(ChatController.prototype, name, index));
  });
  Reflect.decorate([Controller()], ChatController);
  class AppModule {}
  Reflect.decorate([Module({ controllers: [ChatController] })], AppModule);

  const app: INestApplication =
    platform === 'express'
      ? await NestFactory.create(AppModule, { logger: false })
      : await NestFactory.create(AppModule, new fastifyPlatform!.FastifyAdapter() as never, { logger: false });
  await app.listen(0, '127.0.0.1');
  cleanups.push(() => app.close());
  return `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
}

const data = <T>(event: EventSourceMessage | undefined): T => JSON.parse(event?.data ?? 'null') as T;

it('runs on NestJS 11 or later, with rxjs 7', () => {
  for (const name of ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express']) {
    expect(Number(versionOf(name).split('.')[0])).toBeGreaterThanOrEqual(11);
  }
  expect(versionOf('rxjs').startsWith('7.')).toBe(true);
});

describe.each([
  ['Express', 'express' as const],
  ['Fastify', 'fastify' as const],
])('NestJS on the %s platform', (_name, platform) => {
  const skip = platform === 'fastify' && fastifyPlatform === undefined;

  describe.skipIf(skip)('@Sse() with sseObservable()', () => {
    it('sends one token event per chunk (id: its index), then done, then ends the response', async () => {
      const { openai } = await startProvider({ tokens: ['Hel', 'lo', ' there'], delayMs: 1, usage: { inputTokens: 3, outputTokens: 3 } });
      const finished = deferred<StreamMetrics>();
      const url = await startNest(platform, [
        {
          method: Sse('chat'),
          handler: (): Observable<MessageEvent> =>
            sseObservable((signal) => streamOpenAI(openai, chat, { signal }), { monitor: { onFinish: finished.resolve } }),
        },
      ]);
      const client = await openSSE(`${url}/chat`);
      await client.ended;
      expect(client.response.statusCode).toBe(200);
      expect(client.response.headers['content-type']).toMatch(/^text\/event-stream/);
      expect(tokenText(client.events)).toBe('Hello there');
      const tokenIds = tokenEvents(client.events).map((event) => event.id);
      expect(tokenIds).toEqual(tokenEvents(client.events).map((event) => String(data<TokenChunk>(event).index)));
      expect(client.events.map((event) => event.event)).toEqual(['token', 'token', 'token', 'done']);
      const done = client.events.at(-1)!;
      // As on the raw path: the done event's id is the index of the chunk that finished the stream.
      expect(done.id).toBe(String(data<{ index: number }>(done).index));
      expect(Number(done.id)).toBeGreaterThanOrEqual(Number(tokenIds.at(-1)));
      expect(data(done)).toMatchObject({ finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 3 }, model, provider: 'openai' });
      expect((await finished.promise).outcome).toBe('completed');
    });

    it('aborts the provider request when the client leaves (Nest unsubscribes) and reports aborted', async () => {
      const { provider, openai } = await startProvider({ tokens: manyTokens(300), delayMs: 10 });
      const finished = deferred<StreamMetrics>();
      const url = await startNest(platform, [
        {
          method: Sse('chat'),
          handler: () => sseObservable((signal) => streamOpenAI(openai, chat, { signal }), { monitor: { onFinish: finished.resolve } }),
        },
      ]);
      const client = await openSSE(`${url}/chat`);
      await client.until((events) => tokenEvents(events).length >= 3);
      const disconnectedAt = client.disconnect();

      const record = await (await provider.request(1)).ended;
      expect(record.end).toBe('client-closed');
      const latency = record.endedAt! - disconnectedAt;
      console.info(`nest ${platform} @Sse() disconnect → provider request closed: ${latency.toFixed(1)} ms`);
      expect(latency).toBeLessThan(1000);
      const metrics = await finished.promise;
      expect(metrics.outcome).toBe('aborted');
      expect(metrics.outputTokens).toBeGreaterThanOrEqual(3);
      expect(metrics.outputTokens).toBeLessThan(300);
    });

    it('turns a provider failure after the first token into one error event { code, message }, then ends', async () => {
      const { openai } = await startProvider({ tokens: manyTokens(5), fault: { kind: 'error-event', afterTokens: 2, message: 'secret detail' } });
      const finished = deferred<StreamMetrics>();
      const url = await startNest(platform, [
        {
          method: Sse('chat'),
          handler: () => sseObservable((signal) => streamOpenAI(openai, chat, { signal }), { monitor: { onFinish: finished.resolve } }),
        },
      ]);
      const client = await openSSE(`${url}/chat`);
      await client.ended;
      expect(tokenText(client.events)).toBe(manyTokens(2).join(''));
      const last = client.events.at(-1)!;
      expect(last.event).toBe('error');
      expect(last.id).toBe('1');
      expect(data(last)).toMatchObject({ code: 'provider', message: 'The provider failed' });
      expect(last.data).not.toContain('secret detail');
      expect((await finished.promise).outcome).toBe('error');
    });

    it('ends live @Sse() streams on closeAllStreams with a shutdown event that carries retry', async () => {
      expect(closeAllStreams).toBe(closeAllNodeStreams);
      const { provider, openai } = await startProvider({ tokens: manyTokens(500), delayMs: 20 });
      const url = await startNest(platform, [{ method: Sse('chat'), handler: () => sseObservable((signal) => streamOpenAI(openai, chat, { signal })) }]);
      const client = await openSSE(`${url}/chat`);
      await client.until((events) => tokenEvents(events).length >= 1);
      await closeAllStreams({ retryMs: 1500, reason: 'maintenance' });
      await client.ended;
      const last = client.events.at(-1)!;
      expect(last.event).toBe('shutdown');
      expect(data(last)).toEqual({ retryMs: 1500, message: 'maintenance' });
      expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    });
  });

  describe.skipIf(skip)('@Post() with @Req()/@Res() and sendSSE()', () => {
    const postRoute = (openai: OpenAI, onFinish?: (metrics: StreamMetrics) => void): Route => ({
      method: Post('chat'),
      params: [Req(), Res(), Body()],
      handler: (async (req: never, res: never, body: { messages: typeof chat.messages }) => {
        await sendSSE(req, res, (signal) => streamOpenAI(openai, { model, messages: body.messages }, { signal }), {
          headers: { 'X-Route': 'nest' },
          ...(onFinish === undefined ? {} : { monitor: { onFinish } }),
        });
      }) as Handler,
    });

    it('streams the answer to the end with tokenrelay framing and headers (the body read is not a disconnect)', async () => {
      const { provider, openai } = await startProvider({ tokens: manyTokens(10), delayMs: 2 });
      const finished = deferred<StreamMetrics>();
      const url = await startNest(platform, [postRoute(openai, finished.resolve)]);
      const messages = [{ role: 'user', content: 'from the body' }];
      const client = await openSSE(`${url}/chat`, { method: 'POST', body: { messages } });
      await client.ended;
      expect(client.response.statusCode).toBe(200);
      expect(client.response.headers).toMatchObject({
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
        'x-route': 'nest',
      });
      expect(tokenText(client.events)).toBe(manyTokens(10).join(''));
      expect(client.events.at(-1)?.event).toBe('done');
      expect((await provider.request(1)).body.messages).toEqual(messages);
      expect((await finished.promise).outcome).toBe('completed');
    });

    it('aborts the provider request when the client leaves', async () => {
      const { provider, openai } = await startProvider({ tokens: manyTokens(300), delayMs: 10 });
      const finished = deferred<StreamMetrics>();
      const url = await startNest(platform, [postRoute(openai, finished.resolve)]);
      const client = await openSSE(`${url}/chat`, { method: 'POST', body: chat });
      await client.until((events) => tokenEvents(events).length >= 3);
      const disconnectedAt = client.disconnect();
      const record = await (await provider.request(1)).ended;
      expect(record.end).toBe('client-closed');
      console.info(`nest ${platform} @Post() disconnect → provider request closed: ${(record.endedAt! - disconnectedAt).toFixed(1)} ms`);
      expect(record.endedAt! - disconnectedAt).toBeLessThan(1000);
      expect((await finished.promise).outcome).toBe('aborted');
    });

    it('answers a provider 429 before the first token with 429 and Retry-After', async () => {
      const { openai } = await startProvider({
        fault: { kind: 'http-error', status: 429, type: 'rate_limit_error', headers: { 'retry-after': '3' } },
      });
      const url = await startNest(platform, [postRoute(openai)]);
      const response = await fetch(`${url}/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat) });
      expect(response.status).toBe(429);
      expect(response.headers.get('retry-after')).toBe('3');
      expect(await response.json()).toMatchObject({ error: { code: 'provider', status: 429, retryAfterMs: 3000 } });
    });
  });
});

describe('sendSSE() of tokenrelay/nestjs with the Fastify request and reply Nest passes on its Fastify platform', () => {
  it('hijacks the reply, keeps the headers set on it, streams, and aborts on disconnect', async () => {
    const { provider, openai } = await startProvider({ tokens: manyTokens(300), delayMs: 10 });
    const finished = deferred<StreamMetrics>();
    const app = Fastify();
    app.post('/chat', async (request, reply) => {
      reply.header('access-control-allow-origin', 'https://app.example');
      await sendSSE(request, reply, (signal) => streamOpenAI(openai, chat, { signal }), { monitor: { onFinish: finished.resolve } });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => app.close());
    const client = await openSSE(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/chat`, { method: 'POST', body: chat });
    await client.until((events) => tokenEvents(events).length >= 3);
    expect(client.response.headers).toMatchObject({
      'content-type': 'text/event-stream; charset=utf-8',
      'access-control-allow-origin': 'https://app.example',
    });
    client.disconnect();
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    expect((await finished.promise).outcome).toBe('aborted');
  });
});

describe('sseObservable()', () => {
  it('checks its options and source once, at the call, and rejects unknown keys', () => {
    const factory = () => tokens([]);
    expect(() => sseObservable(42 as never)).toThrow(
      new TypeError('Expected `source` to be an async iterable of chunks or a function (signal) => stream, got 42'),
    );
    expect(() => sseObservable(factory, { heartbeatMs: 1000 } as never)).toThrow(/Unknown option `heartbeatMs` in `options`/);
    expect(() => sseObservable(factory, { writeTimeoutMs: 1000 } as never)).toThrow(/Unknown option `writeTimeoutMs`/);
    expect(() => sseObservable(factory, { timeout: { idleMS: 5 } as never })).toThrow(/did you mean `idleMs`/);
    expect(() => sseObservable(factory, { backpressure: { highWaterMark: 0 } })).toThrow(TypeError);
    expect(() => sseObservable(factory, { exposeErrors: 'yes' as never })).toThrow(
      new TypeError('Expected `exposeErrors` to be a boolean, got "yes"'),
    );
    expect(() => sseObservable(factory, { logger: 42 as never })).toThrow(TypeError);
    expect(() => sseObservable(factory, { timeout: { idleMs: 5 }, backpressure: false, exposeErrors: true, logger: () => {} })).not.toThrow();
  });

  it('is cold: each subscription calls the factory with its own signal; a stream can be subscribed once', async () => {
    let calls = 0;
    const observable = sseObservable(() => {
      calls++;
      return tokens(['a', 'b']);
    });
    expect(calls).toBe(0);
    const first = await lastValueFrom(observable.pipe(toArray()));
    const second = await lastValueFrom(observable.pipe(toArray()));
    expect(calls).toBe(2);
    const withoutTime = (events: MessageEvent[]) => events.map((event) => ({ ...event, data: { ...(event.data as object), timestamp: 0 } }));
    expect(withoutTime(second)).toEqual(withoutTime(first));
    expect(first.map((event) => event.type)).toEqual(['token', 'token', 'done']);
    expect(first.map((event) => event.id)).toEqual(['0', '1', String((first[2]?.data as { index: number }).index)]);

    const once = sseObservable(tokens(['x']));
    expect((await lastValueFrom(once.pipe(toArray()))).map((event) => event.type)).toEqual(['token', 'done']);
    await expect(lastValueFrom(once)).rejects.toThrow(/pass a factory/);
  });

  it('aborts the source when the subscriber unsubscribes mid-stream, and its finally runs', async () => {
    let finallyRan = 0;
    let signalOfSource: AbortSignal | undefined;
    const finished = deferred<StreamMetrics>();
    const observable = sseObservable(
      (signal) => {
        signalOfSource = signal;
        return tokens(
          (async function* () {
            try {
              for (let i = 0; i < 1000; i++) {
                yield `t${i}`;
                await new Promise((resolve) => setTimeout(resolve, 1));
              }
            } finally {
              finallyRan++;
            }
          })(),
        );
      },
      { monitor: { onFinish: finished.resolve } },
    );
    const events = await lastValueFrom(observable.pipe(take(3), toArray()));
    expect(events.map((event) => event.type)).toEqual(['token', 'token', 'token']);
    const metrics = await finished.promise;
    expect(metrics.outcome).toBe('aborted');
    expect(signalOfSource?.aborted).toBe(true);
    for (let i = 0; i < 100 && finallyRan === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(finallyRan).toBe(1);
  });

  it('leaves no live streams behind after 1,000 subscriptions, completed or unsubscribed', async () => {
    const observable = sseObservable(() => tokens(['a', 'b', 'c']));
    for (let i = 0; i < 1000; i++) await lastValueFrom(observable.pipe(take(i % 2 === 0 ? 4 : 1), toArray()));
    for (let i = 0; i < 100 && liveStreamCount() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(liveStreamCount()).toBe(0);
  });

  it('sends the error event with an empty id when the stream fails before its first chunk, and never errors', async () => {
    const events = await lastValueFrom(
      sseObservable(() => {
        throw new Error('database is down: secret detail');
      }, { logger: () => {} }).pipe(toArray()),
    );
    expect(events).toEqual([{ type: 'error', id: '', data: { code: 'internal', message: 'Internal error' } }]);
    const exposed = await lastValueFrom(
      sseObservable(() => {
        throw new Error('visible');
      }, { logger: () => {}, exposeErrors: true }).pipe(toArray()),
    );
    expect(exposed.at(-1)?.data).toEqual({ code: 'internal', message: 'visible' });
  });
});
