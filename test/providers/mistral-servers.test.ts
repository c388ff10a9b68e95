import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Mistral } from '@mistralai/mistralai';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { setupServer } from 'msw/node';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { collectText, isStreamAbortedError, isStreamTimeoutError, pipe, withTimeout, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { streamMistral } from 'tokenrelay/mistral';
import { sendSSE } from 'tokenrelay/node';
import { streamOpenAI } from 'tokenrelay/openai';
import { MockRecorder, mistralHandlers, mistralScenarios, startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { toResponse } from 'tokenrelay/web';

const MODEL = 'mistral-small-latest';
const params = { model: MODEL, messages: [{ role: 'user' as const, content: 'Salut' }] };
const text = ['Zürich ', '東京 ', '🦀🚀 ', 'fin'];
const manyTokens = (n: number) => Array.from({ length: n }, (_, i) => ` t${i}`);

let provider: MockProvider;
let mistral: Mistral;

beforeAll(async () => {
  provider = await startMockProvider({ script: { tokens: text, delayMs: 1 }, split: { seed: 11 } });
  mistral = new Mistral({ apiKey: 'mistral-test', serverURL: provider.mistralServerURL });
});
afterEach(() => {
  provider.clear();
  provider.setScript({ tokens: text, delayMs: 1 });
});
afterAll(() => provider.close());

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('the loopback mock provider speaks Mistral', () => {
  it('serves the real Mistral SDK over HTTP, split into small writes', async () => {
    const chunks: TokenChunk[] = [];
    for await (const chunk of streamMistral(mistral, params)) chunks.push(chunk);
    expect(chunks.map((chunk) => chunk.token).join('')).toBe(text.join(''));
    expect(chunks.at(-1)).toMatchObject({ finishReason: 'stop', usage: { inputTokens: 12, outputTokens: 4, cachedInputTokens: 0 }, provider: 'mistral' });
    const request = await provider.request(1);
    expect({ api: request.api, path: request.path, model: request.body.model }).toEqual({ api: 'mistral-chat', path: '/mistral/v1/chat/completions', model: MODEL });
  });

  it('serves the openai SDK at mistralBaseURL with the Mistral wire, and OpenAI at openaiBaseURL as before', async () => {
    provider.setScript(mistralScenarios['thinking-parts']);
    const viaOpenAI = new OpenAI({ apiKey: 'mistral-test', baseURL: provider.mistralBaseURL, maxRetries: 0 });
    const chunks: TokenChunk[] = [];
    for await (const chunk of streamOpenAI(viaOpenAI, params, { provider: 'mistral' })) chunks.push(chunk);
    expect(chunks.filter((chunk) => chunk.type === 'reasoning').map((chunk) => chunk.token).join('')).toBe("L'utilisateur dit bonjour 👋.");
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
    provider.setScript({ tokens: text });
    expect(await collectText(streamOpenAI(openai, { model: 'gpt-4o-mini', messages: params.messages }))).toBe(text.join(''));
    expect(provider.requests.map((request) => [request.api, request.path])).toEqual([
      ['mistral-chat', '/mistral/v1/chat/completions'],
      ['openai-chat', '/v1/chat/completions'],
    ]);
  });

  it('records that an abort through the signal closed the provider request', async () => {
    provider.setScript({ tokens: manyTokens(50), delayMs: 20 });
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await (async () => {
      for await (const chunk of streamMistral(mistral, params, { signal: controller.signal })) {
        seen.push(chunk.token);
        if (seen.length === 2) controller.abort(new Error('user left'));
      }
    })().catch((caught: unknown) => caught);
    expect(isStreamAbortedError(error)).toBe(true);
    expect(seen).toHaveLength(2);
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
  });

  it('times out a stall after token 2 with withTimeout, which closes the provider request', async () => {
    provider.setScript({ tokens: ['a', 'b', 'c'], fault: { kind: 'stall', afterTokens: 2 } });
    const controller = new AbortController();
    const stream = pipe(streamMistral(mistral, params, { signal: controller.signal }), withTimeout({ idleMs: 50, controller }));
    const seen: string[] = [];
    const error = await (async () => {
      for await (const chunk of stream) seen.push(chunk.token);
    })().catch((caught: unknown) => caught);
    expect(seen).toEqual(['a', 'b']);
    expect(isStreamTimeoutError(error)).toBe(true);
    expect(controller.signal.aborted).toBe(true);
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
  });
});

describe('a client disconnect reaches Mistral', () => {
  it('node sendSSE: the provider request is closed when the client leaves after 3 tokens', async () => {
    provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
    const finished = deferred<StreamMetrics>();
    const port = await listenNode((req, res) => {
      void sendSSE(req, res, (signal) => streamMistral(mistral, params, { signal }), { monitor: { onFinish: finished.resolve } });
    });
    const client = openSSE(port);
    await client.until((events) => events.filter((event) => event.event === 'token').length >= 3);
    client.destroy();
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    const metrics = await finished.promise;
    expect(metrics.outcome).toBe('aborted');
    expect(metrics.outputTokens).toBeGreaterThanOrEqual(3);
  });

  it('web toResponse on a real server: the provider request is closed when the client leaves after 3 tokens', async () => {
    provider.setScript({ tokens: manyTokens(300), delayMs: 10 });
    const finished = deferred<StreamMetrics>();
    const server: ServerType = serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: (request) => toResponse((signal) => streamMistral(mistral, params, { signal }), { request, monitor: { onFinish: finished.resolve } }),
    });
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      if ('closeAllConnections' in server) server.closeAllConnections();
    }));
    if (!server.listening) await once(server, 'listening');
    const client = openSSE((server.address() as AddressInfo).port);
    await client.until((events) => events.filter((event) => event.event === 'token').length >= 3);
    client.destroy();
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    expect((await finished.promise).outcome).toBe('aborted');
  });

  it('sends the whole answer with a done event carrying the usage when nobody leaves', async () => {
    const port = await listenNode((req, res) => void sendSSE(req, res, (signal) => streamMistral(mistral, params, { signal })));
    const client = openSSE(port);
    await client.closed;
    const tokens = client.events.filter((event) => event.event === 'token').map((event) => (JSON.parse(event.data) as TokenChunk).token);
    expect(tokens.join('')).toBe(text.join(''));
    expect(JSON.parse(client.events.at(-1)?.data ?? '{}')).toMatchObject({ finishReason: 'stop', usage: { inputTokens: 12, outputTokens: 4 } });
    expect((await (await provider.request(1)).ended).end).toBe('completed');
  });
});

describe('mistralHandlers (msw)', () => {
  const recorder = new MockRecorder();
  const server = setupServer(...mistralHandlers({ tokens: text }, { split: { seed: 5 }, recorder }));
  beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
  afterEach(() => recorder.clear());
  afterAll(() => server.close());

  it('answers the Mistral SDK and the openai SDK at Mistral\'s default URLs', async () => {
    const client = new Mistral({ apiKey: 'mistral-test' });
    expect(await collectText(streamMistral(client, params))).toBe(text.join(''));
    const viaOpenAI = new OpenAI({ apiKey: 'mistral-test', baseURL: 'https://api.mistral.ai/v1', maxRetries: 0 });
    expect(await collectText(streamOpenAI(viaOpenAI, params, { provider: 'mistral' }))).toBe(text.join(''));
    expect(recorder.requests.map((request) => [request.api, request.path])).toEqual([
      ['mistral-chat', '/v1/chat/completions'],
      ['mistral-chat', '/v1/chat/completions'],
    ]);
  });
});

// ---------------------------------------------------------------- helpers

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

async function listenNode(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** A real HTTP/1.1 client on its own connection, so destroying it is a real disconnect. */
function openSSE(port: number) {
  const events: EventSourceMessage[] = [];
  const waiters: Array<() => void> = [];
  let ended = false;
  const closed = deferred<void>();
  const finish = () => {
    ended = true;
    waiters.splice(0).forEach((check) => check());
    closed.resolve();
  };
  const parser = createParser({
    onEvent(event) {
      events.push(event);
      waiters.splice(0).forEach((check) => check());
    },
  });
  const req = http.request({ host: '127.0.0.1', port, method: 'GET', path: '/chat', agent: false });
  req.on('response', (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => parser.feed(chunk));
    res.on('close', finish);
  });
  req.on('error', finish);
  req.end();
  return {
    events,
    closed: closed.promise,
    destroy: () => req.destroy(),
    until: (predicate: (events: EventSourceMessage[]) => boolean) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (predicate(events)) resolve();
          else if (ended) reject(new Error('the response ended first'));
          else waiters.push(check);
        };
        check();
      }),
  };
}
