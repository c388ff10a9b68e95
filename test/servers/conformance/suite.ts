// The conformance suite every server adapter runs (issue 16): each `<adapter>.test.ts` here is a
// descriptor (adapter.ts) and one call of `runConformance`. A new adapter is done when it passes.
import { getEventListeners } from 'node:events';
import http from 'node:http';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ProviderError, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import type { StreamLogRecord } from 'tokenrelay/node';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { liveStreamCount } from '../../../src/servers/internal/registry.js';
import type { AdapterDescriptor, AdapterResult, Route, Served } from './adapter.js';
import { connect, type Client, type StreamEvent } from './client.js';

/** Generous: a disconnect must reach the provider well within it (it takes a few ms). */
const DISCONNECT_BOUND_MS = 1000;
const STREAMS = 1000;
const model = 'gpt-4o-mini';
const chat = { model, messages: [{ role: 'user' as const, content: 'Hi' }] };

/** Measured disconnect → provider-request-closed latencies, printed once per adapter. */
const measured: string[] = [];

export function runConformance(adapter: AdapterDescriptor): void {
  describe(`conformance: ${adapter.name}`, () => {
    let served: Served;
    let provider: MockProvider;
    let openai: OpenAI;
    let route: Route | undefined;
    const clients: Client[] = [];

    beforeAll(async () => {
      served = await adapter.serve(() => {
        if (route === undefined) throw new Error('No route set for this request');
        return route;
      }, { http2: false });
      provider = await startMockProvider();
      openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
    });
    afterEach(async () => {
      for (const client of clients.splice(0)) client.disconnect();
      route = undefined;
      provider.clear();
      await vi.waitFor(() => expect(liveStreamCount()).toBe(0), { timeout: 5000, interval: 5 });
    });
    afterAll(async () => {
      await served.close();
      await provider.close();
      if (measured.length > 0) console.info(measured.splice(0).join('\n'));
    });

    const open = (options: { paused?: boolean } = {}): Client => {
      const client = connect(served.url, { transport: adapter.transport, ...options });
      clients.push(client);
      return client;
    };

    /** The outcome the adapter's result must report, where it reports one. */
    const expectResult = async (results: AdapterResult[], outcome: keyof NonNullable<AdapterDescriptor['outcomes']>): Promise<void> => {
      if (!adapter.results) return;
      await vi.waitFor(() => expect(results).toHaveLength(1), { timeout: 5000, interval: 5 });
      expect(results[0]?.outcome).toBe(adapter.outcomes?.[outcome] ?? outcome);
    };

    const sse = adapter.transport === 'sse';

    it.runIf(sse)('sends the SSE headers on HTTP/1.1, with `headers` added', async () => {
      route = { factory: () => answer(['Hel', 'lo']), options: { headers: { 'X-Extra': 'yes' } } };
      const agent = new http.Agent({ keepAlive: true });
      try {
        const client = connect(served.url, { transport: 'sse', agent });
        const { status, headers } = await client.head;
        expect(status).toBe(200);
        expect(headers).toMatchObject({
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          'x-accel-buffering': 'no',
          connection: 'keep-alive',
          'x-extra': 'yes',
        });
        expect(headers).not.toHaveProperty('content-length');
        expect(headers).not.toHaveProperty('content-encoding');
        await client.until((events) => events.at(-1)?.type === 'done');
      } finally {
        agent.destroy();
      }
    });

    it.runIf(adapter.http2)('sends the SSE headers on HTTP/2, without connection-specific ones, and streams', async () => {
      const h2 = await adapter.serve(() => route as Route, { http2: true });
      try {
        route = { factory: () => answer(['Hel', 'lo']), options: { headers: { 'X-Extra': 'yes', Connection: 'keep-alive' } } };
        const client = connect(h2.url, { transport: 'sse-http2' });
        const { status, headers } = await client.head;
        expect(status).toBe(200);
        expect(headers).toMatchObject({
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          'x-accel-buffering': 'no',
          'x-extra': 'yes',
        });
        for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'content-length']) expect(headers).not.toHaveProperty(name);
        await client.ended;
        expect(text(client.events)).toBe('Hello');
        expect(client.events.at(-1)?.type).toBe('done');
      } finally {
        await h2.close();
      }
    });

    it('delivers each token as it comes, not when the stream ends', async () => {
      const firstSeen = deferred();
      let lastProduced = false;
      route = {
        factory: () =>
          (async function* () {
            yield chunk('first', 0);
            await firstSeen.promise;
            yield chunk(' second', 1);
            lastProduced = true;
            yield chunk(' last', 2, 'stop');
          })(),
        options: {},
      };
      const client = open();
      await client.until((events) => tokens(events).length === 1);
      expect(lastProduced).toBe(false);
      firstSeen.resolve();
      await client.until((events) => events.at(-1)?.type === 'done');
      expect(text(client.events)).toBe('first second last');
    });

    it('completes: a typed `done` event, and the outcome reported once to monitor, logger and result', async () => {
      const finished: StreamMetrics[] = [];
      const logged: StreamLogRecord[] = [];
      const results: AdapterResult[] = [];
      route = {
        factory: () => answer(['Hel', 'lo'], { inputTokens: 3, outputTokens: 2 }),
        options: { monitor: { onFinish: (metrics) => void finished.push(metrics) }, logger: (record) => void logged.push(record) },
        onResult: (result) => results.push(result),
      };
      const client = open();
      await client.until((events) => events.at(-1)?.type === 'done');
      expect(text(client.events)).toBe('Hello');
      expect(client.events.at(-1)?.data).toMatchObject({ finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 2 } });
      await vi.waitFor(() => expect(logged).toHaveLength(1), { timeout: 5000, interval: 5 });
      expect(finished.map((metrics) => metrics.outcome)).toEqual(['completed']);
      expect(logged[0]).toMatchObject({ outcome: 'completed', inputTokens: 3, outputTokens: 2 });
      await expectResult(results, 'completed');
      if (adapter.results) expect(results[0]?.metrics.outcome).toBe('completed');
      await turns(5);
      expect(finished).toHaveLength(1);
      expect(logged).toHaveLength(1);
    });

    it.each([
      ['before the first chunk', { tokens: ['never'], firstTokenDelayMs: 10_000 }, 0],
      ['mid-stream', { tokens: Array.from({ length: 500 }, (_, i) => ` t${i}`), delayMs: 10 }, 3],
    ] as const)('a client disconnect %s closes the provider request (openai SDK) and reports `aborted`', async (phase, script, seen) => {
      provider.setScript({ ...script, tokens: [...script.tokens] });
      const finished = deferred<StreamMetrics>();
      const results: AdapterResult[] = [];
      route = {
        factory: (_native, signal) => streamOpenAI(openai, chat, { signal }),
        options: { monitor: { onFinish: finished.resolve } },
        onResult: (result) => results.push(result),
      };
      const client = open();
      const request = await provider.request(1);
      if (seen > 0) await client.until((events) => tokens(events).length >= seen);
      else expect(client.events).toEqual([]);
      const disconnectedAt = client.disconnect();
      const record = await request.ended;
      expect(record.end).toBe('client-closed');
      const latency = record.endedAt! - disconnectedAt;
      measured.push(`conformance ${adapter.name}: disconnect ${phase} → provider request closed in ${latency.toFixed(1)} ms`);
      expect(latency).toBeLessThan(DISCONNECT_BOUND_MS);
      expect((await finished.promise).outcome).toBe('aborted');
      await expectResult(results, 'client-closed');
    });

    it.runIf(adapter.writeTimeout)('ends the response of a client that never reads after `writeTimeoutMs`, and closes the source', async () => {
      const state = { opened: 0, closed: 0 };
      const finished = deferred<StreamMetrics>();
      const results: AdapterResult[] = [];
      route = {
        factory: (_native, signal) => endless(state, signal, 64 * 1024),
        options: { writeTimeoutMs: 200, monitor: { onFinish: finished.resolve } },
        onResult: (result) => results.push(result),
      };
      const client = open({ paused: true });
      const started = performance.now();
      const metrics = await finished.promise;
      expect(metrics.outcome).toBe('aborted');
      expect(performance.now() - started).toBeLessThan(10_000);
      await vi.waitFor(() => expect(state).toEqual({ opened: 1, closed: 1 }), { timeout: 5000, interval: 5 });
      await expectResult(results, 'write-timeout');
      // The client reads nothing, not even the end: the server's side shows the connection dropped.
      await vi.waitFor(async () => expect(await connectionCount(served)).toBe(0), { timeout: 5000, interval: 10 });
      client.disconnect();
    });

    it('answers an error before the first chunk with its HTTP status (a provider 429: Retry-After)', async () => {
      provider.setScript({ fault: { kind: 'http-error', status: 429, type: 'rate_limit_error', headers: { 'retry-after': '3' } } });
      const finished = deferred<StreamMetrics>();
      const results: AdapterResult[] = [];
      route = {
        factory: (_native, signal) => streamOpenAI(openai, chat, { signal }),
        options: { monitor: { onFinish: finished.resolve } },
        onResult: (result) => results.push(result),
      };
      const client = open();
      if (sse) {
        const { status, headers } = await client.head;
        expect(status).toBe(429);
        expect(headers['retry-after']).toBe('3');
        expect(headers['content-type']).toMatch(/^application\/json/);
        await client.ended;
        expect(JSON.parse(client.text())).toMatchObject({ error: { code: 'provider', status: 429, retryAfterMs: 3000 } });
      } else {
        await client.until((events) => events.length > 0);
        expect(client.events).toEqual([{ type: 'error', data: expect.objectContaining({ code: 'provider', status: 429, retryAfterMs: 3000 }) }]);
      }
      expect((await finished.promise).outcome).toBe('error');
      await expectResult(results, 'http-error');
      if (adapter.results && sse) expect(results[0]?.status).toBe(429);
    });

    it('ends with a typed `error` event when the provider fails after the first chunk', async () => {
      const finished = deferred<StreamMetrics>();
      route = {
        factory: () =>
          (async function* () {
            yield chunk('Hel', 0);
            await new Promise((resolve) => setTimeout(resolve, 5));
            throw new ProviderError('The provider failed mid-stream', { status: 500, retryable: true });
          })(),
        options: { monitor: { onFinish: finished.resolve } },
      };
      const client = open();
      await client.until((events) => events.at(-1)?.type === 'error');
      if (sse) expect((await client.head).status).toBe(200);
      expect(text(client.events)).toBe('Hel');
      expect(client.events.at(-1)?.data).toMatchObject({ code: 'provider', status: 500, retryable: true });
      expect(JSON.stringify(client.events.at(-1)?.data)).not.toContain('mid-stream');
      expect((await finished.promise).outcome).toBe('error');
    });

    it('a factory that throws: a generic 500 (or error message), the error to monitor.onError, nothing streamed', async () => {
      const onError = vi.fn();
      const finished = deferred<StreamMetrics>();
      route = {
        factory: () => {
          throw new RangeError('bad conversation id');
        },
        options: { monitor: { onError, onFinish: finished.resolve } },
      };
      const client = open();
      await expectGenericFailure(client, /bad conversation id/);
      expect((await finished.promise).outcome).toBe('error');
      expect(onError).toHaveBeenCalledTimes(1);
      expect(onError.mock.calls[0]?.[0]).toBeInstanceOf(RangeError);
    });

    it.runIf(adapter.asyncFactory)('an async factory: given the native request and the signal, its stream is sent', async () => {
      let native: unknown;
      let given: AbortSignal | undefined;
      route = {
        factory: async (value, signal) => {
          native = value;
          given = signal;
          await new Promise((resolve) => setTimeout(resolve, 5));
          return answer(['as', 'ync']);
        },
        options: {},
      };
      const client = open();
      await client.until((events) => events.at(-1)?.type === 'done');
      expect(text(client.events)).toBe('async');
      expect(adapter.isNative(native)).toBe(true);
      expect(given).toBeInstanceOf(AbortSignal);
    });

    it.runIf(adapter.asyncFactory)('an async factory that rejects: answered like a factory that throws', async () => {
      const onError = vi.fn();
      route = {
        factory: async () => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          throw new RangeError('no such conversation');
        },
        options: { monitor: { onError } },
      };
      await expectGenericFailure(open(), /no such conversation/);
      await vi.waitFor(() => expect(onError).toHaveBeenCalledTimes(1), { timeout: 5000, interval: 5 });
    });

    it('closeAllStreams() ends a live stream with a `shutdown` event, aborts the provider, and resolves', async () => {
      provider.setScript({ tokens: Array.from({ length: 500 }, (_, i) => ` t${i}`), delayMs: 10 });
      const finished = deferred<StreamMetrics>();
      const results: AdapterResult[] = [];
      route = {
        factory: (_native, signal) => streamOpenAI(openai, chat, { signal }),
        options: { monitor: { onFinish: finished.resolve } },
        onResult: (result) => results.push(result),
      };
      const client = open();
      await client.until((events) => tokens(events).length >= 2);
      await adapter.closeAllStreams({ retryMs: 100, reason: 'deploy' });
      await client.until((events) => events.some((event) => event.type === 'shutdown'));
      const notice = client.events.find((event) => event.type === 'shutdown');
      expect(notice?.data).toMatchObject({ retryMs: 100, message: 'deploy' });
      if (sse) expect(client.events.some((event) => event.type === 'retry' && event.retry === 100)).toBe(true);
      expect((await (await provider.request(1)).ended).end).toBe('client-closed');
      expect((await finished.promise).outcome).toBe('aborted');
      await expectResult(results, 'shutdown');
      await client.ended;
    });

    it(`leaves no timers, signal listeners or live streams behind after ${STREAMS.toLocaleString('en')} streams`, async () => {
      const signals: AbortSignal[] = [];
      const outcomes = new Map<string, number>();
      route = {
        factory: (_native, signal) => {
          signals.push(signal);
          return answer(['a', 'b', 'c']);
        },
        options: { monitor: { onFinish: (metrics) => void outcomes.set(metrics.outcome, (outcomes.get(metrics.outcome) ?? 0) + 1) } },
      };
      const warnings: Error[] = [];
      const onWarning = (warning: Error) => void warnings.push(warning);
      process.on('warning', onWarning);
      try {
        await runStreams(served, adapter, 10);
        await settled(served);
        const timersBefore = timerCount();
        await runStreams(served, adapter, STREAMS);
        await settled(served);
        expect(outcomes.get('completed')).toBe(STREAMS + 10);
        await vi.waitFor(() => expect(timerCount()).toBeLessThanOrEqual(timersBefore), { timeout: 5000, interval: 10 });
        expect(liveStreamCount()).toBe(0);
        const listening = signals.filter((signal) => getEventListeners(signal, 'abort').length > 0);
        expect(listening).toHaveLength(0);
        expect(warnings.map(String)).toEqual([]);
      } finally {
        process.off('warning', onWarning);
      }
    });

    async function expectGenericFailure(client: Client, secret: RegExp): Promise<void> {
      if (sse) {
        const { status } = await client.head;
        expect(status).toBe(500);
        await client.ended;
        expect(JSON.parse(client.text())).toMatchObject({ error: { code: 'internal' } });
      } else {
        await client.until((events) => events.length > 0);
        expect(client.events).toEqual([{ type: 'error', data: expect.objectContaining({ code: 'internal' }) }]);
      }
      expect(client.text()).not.toMatch(secret);
    }
  });
}

// ---------------------------------------------------------------- sources

function chunk(token: string, index: number, finishReason?: 'stop'): TokenChunk {
  return { token, index, timestamp: 0, type: 'text', ...(finishReason === undefined ? {} : { finishReason }) };
}

/** A tiny in-memory answer: the tokens, then a last chunk with `finishReason` (and `usage`). */
async function* answer(parts: string[], usage?: { inputTokens: number; outputTokens: number }): AsyncGenerator<TokenChunk> {
  let index = 0;
  for (const part of parts) yield chunk(part, index++);
  yield { ...chunk('', index), finishReason: 'stop', ...(usage === undefined ? {} : { usage }) };
}

/** Large tokens for as long as someone reads (bounded), honouring the signal; counts its opening and its end. */
async function* endless(state: { opened: number; closed: number }, signal: AbortSignal, size: number): AsyncGenerator<TokenChunk> {
  state.opened++;
  try {
    for (let index = 0; index < 10_000 && !signal.aborted; index++) {
      await new Promise((resolve) => setImmediate(resolve));
      yield chunk(`${index % 10}`.repeat(size), index);
    }
  } finally {
    state.closed++;
  }
}

// ---------------------------------------------------------------- helpers

const tokens = (events: StreamEvent[]) => events.filter((event) => event.type === 'token');
const text = (events: StreamEvent[]) => tokens(events).map((event) => (event.data as TokenChunk).token).join('');

function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

function timerCount(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

/** `count` streams read to their end, 8 at a time, on keep-alive connections (a fresh socket each over WebSocket). */
async function runStreams(served: Served, adapter: AdapterDescriptor, count: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const client = connect(served.url, { transport: adapter.transport, agent });
      await client.until((events) => events.at(-1)?.type === 'done');
      if (adapter.transport === 'websocket') {
        client.disconnect();
        await client.ended;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    agent.destroy();
  }
}

function connectionCount(served: Served): Promise<number> {
  return new Promise((resolve, reject) => served.server.getConnections((error, n) => (error ? reject(error) : resolve(n ?? 0))));
}

/** Waits until the server has no connection left and every stream has ended. */
async function settled(served: Served): Promise<void> {
  await vi.waitFor(async () => expect(await connectionCount(served)).toBe(0), { timeout: 5000, interval: 10 });
  await vi.waitFor(() => expect(liveStreamCount()).toBe(0), { timeout: 5000, interval: 5 });
}
