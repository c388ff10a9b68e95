import { once } from 'node:events';
import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GoogleGenAI } from '@google/genai';
import { serve, type ServerType } from '@hono/node-server';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { collectText, isStreamAbortedError, isStreamTimeoutError, pipe, withTimeout, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { streamGoogle } from 'tokenrelay/google';
import { sendSSE } from 'tokenrelay/node';
import { googleHandlers, googleScenarios, MockRecorder, startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { toResponse } from 'tokenrelay/web';

const MODEL = 'gemini-2.5-flash';
const PARAMS = { model: MODEL, contents: 'Hi' };
const words = ['Zürich ', '東京 ', '🦀🚀 ', 'done'];
const manyTokens = (n: number) => Array.from({ length: n }, (_, i) => ` t${i}`);

let provider: MockProvider;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  provider = await startMockProvider({ script: { tokens: words, delayMs: 1 }, split: { seed: 11 } });
});
afterAll(() => provider.close());
beforeEach(() => {
  provider.clear();
  provider.setScript({ tokens: words, delayMs: 1 });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const gemini = (options: { vertexai?: boolean } = {}) =>
  new GoogleGenAI({ apiKey: 'AIza-test', ...options, httpOptions: { baseUrl: provider.googleBaseURL } });

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  return { promise: new Promise<T>((settle) => (resolve = settle)), resolve };
}

interface SSEClient {
  events: EventSourceMessage[];
  until(predicate: (events: EventSourceMessage[]) => boolean): Promise<void>;
  ended: Promise<void>;
  disconnect(): void;
}

/** A plain HTTP client that parses SSE and can drop its connection. */
function openSSE(url: string, method: 'GET' | 'POST' = 'GET'): SSEClient {
  const events: EventSourceMessage[] = [];
  const waiters = new Set<() => void>();
  const ended = deferred<void>();
  const request = http.request(url, { method, headers: { accept: 'text/event-stream', 'content-type': 'application/json' }, agent: false });
  request.on('error', () => ended.resolve());
  request.on('response', (response: IncomingMessage) => {
    const parser = createParser({
      onEvent(event) {
        events.push(event);
        for (const waiter of [...waiters]) waiter();
      },
    });
    response.setEncoding('utf8');
    response.on('data', (text: string) => parser.feed(text));
    response.on('close', () => {
      ended.resolve();
      for (const waiter of [...waiters]) waiter();
    });
  });
  request.end(method === 'POST' ? JSON.stringify({ prompt: 'Hi' }) : undefined);
  let done = false;
  void ended.promise.then(() => (done = true));
  return {
    events,
    ended: ended.promise,
    until: (predicate) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (predicate(events)) {
            waiters.delete(check);
            resolve();
          } else if (done) {
            waiters.delete(check);
            reject(new Error('the response ended first'));
          }
        };
        waiters.add(check);
        check();
      }),
    disconnect: () => request.destroy(),
  };
}

const tokenCount = (events: EventSourceMessage[]) => events.filter((event) => event.event === 'token').length;
const tokenText = (events: EventSourceMessage[]) =>
  events
    .filter((event) => event.event === 'token')
    .map((event) => (JSON.parse(event.data) as TokenChunk).token)
    .join('');

async function startNodeServer(handler: http.RequestListener): Promise<string> {
  const server: Server = http.createServer(handler);
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

async function startWebServer(fetch: (request: Request) => Response | Promise<Response>): Promise<string> {
  const server: ServerType = serve({ fetch, port: 0, hostname: '127.0.0.1' });
  if (!server.listening) await once(server, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the loopback mock provider speaks Gemini', () => {
  it.each([
    ['Gemini API', {}, `/v1/models/${MODEL}:streamGenerateContent`],
    ['Vertex AI', { vertexai: true }, `/v1beta1/publishers/google/models/${MODEL}:streamGenerateContent`],
  ])('serves the real SDK over HTTP, split into small writes (%s)', async (_name, options, path) => {
    const chunks: TokenChunk[] = [];
    for await (const chunk of streamGoogle(gemini(options), PARAMS)) chunks.push(chunk);
    expect(chunks.map((chunk) => chunk.token).join('')).toBe(words.join(''));
    expect(chunks.at(-1)).toMatchObject({ finishReason: 'stop', usage: { inputTokens: 12, outputTokens: 4 }, model: MODEL });
    const request = await provider.request(1);
    expect({ api: request.api, path: request.path }).toStrictEqual({ api: 'google-generate-content', path });
    expect(request.body).toMatchObject({ contents: [{ role: 'user', parts: [{ text: 'Hi' }] }] });
    expect((await request.ended).end).toBe('completed');
  });

  it('serves a named scenario', async () => {
    provider.setScript(googleScenarios['google-search']);
    const chunks: TokenChunk[] = [];
    for await (const chunk of streamGoogle(gemini(), PARAMS)) chunks.push(chunk);
    expect(chunks.filter((chunk) => chunk.type === 'source')).toHaveLength(2);
  });

  it('records that an abort through the signal closed the provider request', async () => {
    provider.setScript({ tokens: ['a', 'b', 'c', 'd', 'e', 'f'], delayMs: 30 });
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await (async () => {
      for await (const chunk of streamGoogle(gemini(), PARAMS, { signal: controller.signal })) {
        seen.push(chunk.token);
        if (seen.length === 2) controller.abort(new Error('user left'));
      }
    })().catch((caught: unknown) => caught);
    expect(isStreamAbortedError(error)).toBe(true);
    expect(seen).toStrictEqual(['a', 'b']);
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
  });

  it('records that breaking out of the loop closed the provider request', async () => {
    provider.setScript({ tokens: manyTokens(50), delayMs: 5 });
    for await (const chunk of streamGoogle(gemini(), PARAMS)) {
      expect(chunk.token).toBe(' t0');
      break;
    }
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
  });

  it('times out a stall after token n with withTimeout, which closes the provider request', async () => {
    provider.setScript({ tokens: ['a', 'b', 'c'], fault: { kind: 'stall', afterTokens: 2 } });
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await (async () => {
      const source = pipe(streamGoogle(gemini(), PARAMS, { signal: controller.signal }), withTimeout({ idleMs: 150, controller }));
      for await (const chunk of source) seen.push(chunk.token);
    })().catch((caught: unknown) => caught);
    expect(seen).toStrictEqual(['a', 'b']);
    expect(isStreamTimeoutError(error)).toBe(true);
    expect(error).toMatchObject({ phase: 'idle', timeoutMs: 150 });
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
  });
});

describe('a client disconnect reaches Google', () => {
  it('node sendSSE: relays the answer, then a disconnect after 3 tokens aborts the provider request', async () => {
    const url = await startNodeServer((req, res) => {
      void sendSSE(req, res, (signal) => streamGoogle(gemini(), PARAMS, { signal }));
    });
    const whole = openSSE(url);
    await whole.ended;
    expect(tokenText(whole.events)).toBe(words.join(''));
    expect(JSON.parse(whole.events.at(-1)?.data ?? '{}')).toMatchObject({ finishReason: 'stop' });
    provider.clear();

    provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
    const finished = deferred<StreamMetrics>();
    const aborting = await startNodeServer((req, res) => {
      void sendSSE(req, res, (signal) => streamGoogle(gemini(), PARAMS, { signal }), { monitor: { onFinish: finished.resolve } });
    });
    const client = openSSE(aborting, 'POST');
    await client.until((events) => tokenCount(events) >= 3);
    client.disconnect();
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    const metrics = await finished.promise;
    expect(metrics.outcome).toBe('aborted');
    expect(metrics.outputTokens).toBeGreaterThanOrEqual(3);
  });

  for (const method of ['GET', 'POST'] as const) {
    it(`web toResponse on a listening server: a disconnect after 3 tokens aborts the provider request (${method})`, async () => {
      provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
      const finished = deferred<StreamMetrics>();
      const url = await startWebServer((request) =>
        toResponse((signal) => streamGoogle(gemini({ vertexai: true }), PARAMS, { signal }), { request, monitor: { onFinish: finished.resolve } }),
      );
      const client = openSSE(url, method);
      await client.until((events) => tokenCount(events) >= 3);
      client.disconnect();
      const request = await provider.request(1);
      expect(request.path).toContain('/publishers/google/models/');
      expect((await request.ended).end).toBe('client-closed');
      expect((await finished.promise).outcome).toBe('aborted');
    });
  }
});

describe('googleHandlers (msw)', () => {
  const recorder = new MockRecorder();
  const server = setupServer(...googleHandlers((request) => ({ tokens: words, model: `${request.path.includes('publishers') ? 'vertex' : 'gemini'}-2026` }), { split: { seed: 5 }, recorder }));
  beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
  afterEach(() => {
    server.resetHandlers();
    recorder.clear();
  });
  afterAll(() => server.close());

  it('answers the SDK at its default hosts: Gemini API (v1, v1beta) and Vertex AI (global and regional)', async () => {
    const clients = [
      new GoogleGenAI({ apiKey: 'AIza-test' }),
      new GoogleGenAI({ apiKey: 'AIza-test', apiVersion: 'v1beta' }),
      new GoogleGenAI({ apiKey: 'AIza-test', vertexai: true }),
      new GoogleGenAI({
        vertexai: true,
        project: 'demo',
        location: 'europe-west4',
        googleAuthOptions: { authClient: { getRequestHeaders: async () => new Headers({ authorization: 'Bearer mock' }) } } as never,
      }),
    ];
    const models: Array<string | undefined> = [];
    for (const client of clients) {
      const chunks: TokenChunk[] = [];
      for await (const chunk of streamGoogle(client, PARAMS)) chunks.push(chunk);
      expect(chunks.map((chunk) => chunk.token).join('')).toBe(words.join(''));
      models.push(chunks[0]?.model);
    }
    expect(models).toStrictEqual(['gemini-2026', 'gemini-2026', 'vertex-2026', 'vertex-2026']);
    expect(recorder.requests.map((request) => request.path)).toStrictEqual([
      `/v1/models/${MODEL}:streamGenerateContent`,
      `/v1beta/models/${MODEL}:streamGenerateContent`,
      `/v1beta1/publishers/google/models/${MODEL}:streamGenerateContent`,
      `/v1beta1/projects/demo/locations/europe-west4/publishers/google/models/${MODEL}:streamGenerateContent`,
    ]);
    expect((await recorder.request(1)).end).toBe('completed');
  });

  it('narrows to one host with baseURL', async () => {
    server.use(...googleHandlers({ tokens: ['proxy'] }, { baseURL: 'https://llm-proxy.example/google' }));
    const client = new GoogleGenAI({ apiKey: 'AIza-test', httpOptions: { baseUrl: 'https://llm-proxy.example/google' } });
    expect(await collectText(streamGoogle(client, PARAMS))).toBe('proxy');
  });
});
