// Which answers the client retries and which it throws at once (issue 12, item 7), the
// `onRetry` hook, and the options check. Every network here is a `fetch` double: no sockets.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  isBackpressureError,
  isInvalidJSONError,
  isProviderError,
  isStreamAbortedError,
  type TokenChunk,
} from 'tokenrelay';
import { isInvalidCursorError, isProducerLostError, isStreamLimitError, isStreamNotFoundError } from 'tokenrelay/relay';
import {
  isStreamConnectionError,
  isStreamServerError,
  streamEvents,
  streamTokens,
  type FetchLike,
  type RetryInfo,
  type StreamTokensOptions,
} from 'tokenrelay/client';
import { fakeFetch, type FakeAnswer } from './fake-fetch.ts';
import { doneFrame, errorFrame, textOf, tokenFrames } from './server.ts';

const jsonError = (status: number, error: Record<string, unknown>, headers: Record<string, string> = {}): FakeAnswer => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  body: JSON.stringify({ error }),
});

/** Reads a stream to its end with zero back-off delays; resolves with what came and how it ended. */
async function run(fetch: FetchLike, options: StreamTokensOptions = {}) {
  const retries: RetryInfo[] = [];
  const chunks: TokenChunk[] = [];
  const stream = streamTokens('http://127.0.0.1/chat', {
    fetch,
    ...options,
    reconnect: { random: () => 0, ...(options.reconnect || {}), onRetry: (info) => retries.push(info) },
  });
  let error: unknown;
  try {
    for await (const chunk of stream) chunks.push(chunk);
  } catch (caught) {
    error = caught;
  }
  return { chunks, retries, error, text: chunks.map((chunk) => chunk.token).join('') };
}

describe('terminal answers are thrown at once, never retried', () => {
  it.each([
    [500, { code: 'producer-lost', message: 'The stream stopped: its producer is gone' }, isProducerLostError],
    [404, { code: 'not-found', message: 'The stream does not exist or has expired' }, isStreamNotFoundError],
    [400, { code: 'invalid-cursor', message: 'Bad cursor' }, isInvalidCursorError],
    [502, { code: 'provider', message: 'The provider failed', status: 401, retryable: false }, isProviderError],
    [429, { code: 'limit', message: 'The stream reached maxChunks (10)', limit: 'chunks' }, isStreamLimitError],
    [500, { code: 'backpressure', message: 'full' }, isBackpressureError],
    [500, { code: 'invalid-json', message: 'not JSON' }, isInvalidJSONError],
    [500, { code: 'aborted', message: 'The stream was cancelled' }, isStreamAbortedError],
  ] as const)('HTTP %i with code %j', async (status, body, guard) => {
    const { fetch, requests } = fakeFetch(() => jsonError(status, body, { 'retry-after': '1' }));
    const { error, retries } = await run(fetch);
    expect(guard(error)).toBe(true);
    expect(error).toMatchObject({ message: body.message });
    expect(retries).toEqual([]);
    expect(requests).toHaveLength(1);
  });

  it.each([401, 403])('HTTP %i, with or without a tokenrelay body', async (status) => {
    const plain = fakeFetch(() => ({ status, headers: { 'content-type': 'text/plain' }, body: 'no' }));
    const bare = await run(plain.fetch);
    expect(isStreamConnectionError(bare.error)).toBe(true);
    expect(bare.error).toMatchObject({ status, attempts: 1 });
    expect(plain.requests).toHaveLength(1);

    const typed = fakeFetch(() => jsonError(status, { code: 'unauthorized', message: 'Sign in' }));
    const withBody = await run(typed.fetch);
    expect(isStreamServerError(withBody.error)).toBe(true);
    expect(withBody.error).toMatchObject({ code: 'unauthorized', message: 'Sign in' });
    expect(typed.requests).toHaveLength(1);
  });

  it.each([
    { code: 'producer-lost', message: 'gone' },
    { code: 'not-found', message: 'expired' },
    { code: 'invalid-cursor', message: 'Bad cursor' },
    { code: 'provider', message: 'The provider failed', status: 503, retryable: true },
    { code: 'internal', message: 'Internal error' },
  ])('an error event inside the stream: %j', async (payload) => {
    const { fetch, requests } = fakeFetch(() => ({ body: tokenFrames(0, 1) + errorFrame(payload) }));
    const { error, retries, text } = await run(fetch);
    expect(text).toBe(textOf(0, 1));
    expect(error).toMatchObject({ code: payload.code, message: payload.message });
    expect(retries).toEqual([]);
    expect(requests).toHaveLength(1);
  });

  it("a provider error from the resume URL is the stream's stored end: thrown, even when it says retryable", async () => {
    const { fetch, requests } = fakeFetch((request, n) => {
      if (n === 1) return { headers: { 'x-stream-id': 's1' }, body: tokenFrames(0, 2) }; // ends without done: resume
      return jsonError(502, { code: 'provider', message: 'The provider failed', status: 503, retryable: true });
    });
    const { error, retries, text } = await run(fetch, { body: { prompt: 'hi' }, resume: 'http://127.0.0.1/chat/{id}' });
    expect(text).toBe(textOf(0, 2));
    expect(isProviderError(error)).toBe(true);
    expect(retries.map((retry) => retry.reason)).toEqual(['ended']);
    expect(requests.map((request) => [request.method, request.url, request.headers.get('last-event-id')])).toEqual([
      ['POST', 'http://127.0.0.1/chat', null],
      ['GET', 'http://127.0.0.1/chat/s1', '2'],
    ]);
  });
});

describe('transient answers are retried', () => {
  it.each([
    [503, { code: 'store-unavailable', message: 'The relay store is unavailable' }],
    [500, { code: 'internal', message: 'Internal error' }],
    [502, { code: 'provider', message: 'The provider failed', status: 529, retryable: true }],
    [504, { code: 'timeout', message: 'No first token within 30000 ms' }],
    [429, { code: 'limit', message: 'Too many streams', limit: 'per-key', retryAfterMs: 0 }],
  ] as const)('HTTP %i with code %j', async (status, body) => {
    const { fetch, requests } = fakeFetch((request, n) => (n === 1 ? jsonError(status, body) : { body: tokenFrames(0, 1) + doneFrame(1) }));
    const { error, retries, text } = await run(fetch);
    expect(error).toBeUndefined();
    expect(text).toBe(textOf(0, 1));
    expect(retries).toMatchObject([{ attempt: 1, reason: 'status', error: { code: body.code, message: body.message } }]);
    expect(requests).toHaveLength(2);
  });

  it('a store-unavailable error event reconnects with Last-Event-ID and resumes: every token once', async () => {
    const unavailable = { code: 'store-unavailable', message: 'The relay store is unavailable' };
    const { fetch, requests } = fakeFetch((request, n) => {
      // The connection stays open after the error event: the client closes it.
      if (n === 1) return { headers: { 'x-stream-id': 's1' }, body: tokenFrames(0, 3) + errorFrame(unavailable), hang: true };
      return { body: tokenFrames(2, 6) + doneFrame(6) };
    });
    const { error, retries, chunks, text } = await run(fetch, { resume: 'http://127.0.0.1/chat/{id}' });
    expect(error).toBeUndefined();
    expect(text).toBe(textOf(0, 6));
    expect(chunks.map((chunk) => chunk.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 6]);
    expect(retries).toMatchObject([{ attempt: 1, reason: 'error', lastEventId: '3', error: unavailable }]);
    expect(requests.map((request) => [request.url, request.headers.get('last-event-id')])).toEqual([
      ['http://127.0.0.1/chat', null],
      ['http://127.0.0.1/chat/s1', '3'],
    ]);
    // The first connection was closed by the client, not left open behind the error event.
    await requests[0]?.cancelled;
  });

  it('a store that stays down: the store-unavailable error is thrown once the retries run out', async () => {
    const unavailable = { code: 'store-unavailable', message: 'The relay store is unavailable' };
    const { fetch, requests } = fakeFetch((request, n) => (n % 2 === 1 ? { body: errorFrame(unavailable) } : jsonError(503, unavailable)));
    const { error, retries } = await run(fetch, { reconnect: { retries: 3 } });
    expect(error).toMatchObject(unavailable);
    expect(retries.map((retry) => retry.reason)).toEqual(['error', 'status', 'error']);
    expect(requests).toHaveLength(4);
  });
});

describe('onRetry', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A `fetch` that fails like an unreachable server `failures` times, then streams two tokens. */
  function flaky(failures: number) {
    const requests: number[] = [];
    const fetch: FetchLike = async () => {
      requests.push(performance.now());
      if (requests.length <= failures) throw new TypeError('fetch failed');
      return new Response(tokenFrames(0, 1) + doneFrame(1), { headers: { 'content-type': 'text/event-stream' } });
    };
    return { fetch, requests };
  }

  it('is told before each retry, while the first connection keeps failing: attempt, delay, reason, error', async () => {
    const { fetch, requests } = flaky(3);
    const calls: Array<RetryInfo & { at: number; requestsBefore: number }> = [];
    const stream = streamTokens('http://127.0.0.1/chat', {
      fetch,
      reconnect: { random: () => 0.5, onRetry: (info) => calls.push({ ...info, at: performance.now(), requestsBefore: requests.length }) },
    });
    const text = stream.text();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await text).toBe(textOf(0, 1));
    expect(calls.map(({ attempt, delayMs, reason, requestsBefore }) => ({ attempt, delayMs, reason, requestsBefore }))).toEqual([
      { attempt: 1, delayMs: 500, reason: 'network', requestsBefore: 1 },
      { attempt: 2, delayMs: 1000, reason: 'network', requestsBefore: 2 },
      { attempt: 3, delayMs: 2000, reason: 'network', requestsBefore: 3 },
    ]);
    for (const call of calls) expect(call.error).toMatchObject({ name: 'TypeError', message: 'fetch failed' });
    // Each request follows its announcement by exactly the announced delay.
    for (const [n, call] of calls.entries()) expect(requests[n + 1]).toBe(call.at + call.delayMs);
  });

  it('a hook that throws, or rejects, cannot end or stall the reconnection', async () => {
    for (const onRetry of [
      () => {
        throw new Error('bug in the page');
      },
      async () => {
        throw new Error('bug in an async page');
      },
    ]) {
      const { fetch, requests } = flaky(2);
      const text = streamTokens('http://127.0.0.1/chat', { fetch, reconnect: { random: () => 0.5, onRetry } }).text();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(await text).toBe(textOf(0, 1));
      expect(requests).toEqual([0, 500, 1500].map((at) => (requests[0] as number) + at));
    }
  });

  it('is not called for a terminal answer', async () => {
    const onRetry = vi.fn();
    const { fetch } = fakeFetch(() => jsonError(500, { code: 'producer-lost', message: 'gone' }));
    let error: unknown;
    const done = streamTokens('http://127.0.0.1/chat', { fetch, reconnect: { onRetry } })
      .text()
      .catch((caught: unknown) => (error = caught));
    await vi.advanceTimersByTimeAsync(1);
    expect(isProducerLostError(error)).toBe(true);
    await done;
    expect(onRetry).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('options', () => {
  const url = 'http://127.0.0.1/chat';

  it.each([
    [{ retry: { retries: 1 } }, 'Unknown option `retry` in `options`; known options: `method`, `headers`, `body`, `signal`, `resume`, `reconnect`, `idleTimeoutMs`, `fetch`, `onOpen`, `events`'],
    [{ idleTimeoutMS: 1 }, 'Unknown option `idleTimeoutMS` in `options`; did you mean `idleTimeoutMs`?'],
    [{ onRetry: () => {} }, 'Unknown option `onRetry` in `options`; known options:'],
    [{ reconnect: { retires: 3 } }, 'Unknown option `retires` in `reconnect`; did you mean `retries`?'],
    [{ reconnect: { onretry: () => {} } }, 'Unknown option `onretry` in `reconnect`; did you mean `onRetry`?'],
    [{ events: { tokens: 'tok' } }, 'Unknown option `tokens` in `events`; did you mean `token`?'],
    [{ events: [] }, 'Expected `events` to be an object, got an array'],
    [[], 'Expected `options` to be an object, got an array'],
    [null, 'Expected `options` to be an object, got null'],
  ])('streamTokens rejects %j', (options, message) => {
    expect(() => streamTokens(url, options as StreamTokensOptions)).toThrow(TypeError);
    expect(() => streamTokens(url, options as StreamTokensOptions)).toThrow(message);
  });

  it('streamEvents knows no `events` option', () => {
    expect(() => streamEvents(url, { events: {} } as never)).toThrow('Unknown option `events` in `options`; known options:');
  });

  it('every documented option is accepted', () => {
    const options: Required<StreamTokensOptions> = {
      method: 'POST',
      headers: {},
      body: { prompt: 'hi' },
      signal: new AbortController().signal,
      resume: '/chat/{id}',
      reconnect: { retries: 1, initialDelayMs: 1, maxDelayMs: 2, random: Math.random, onRetry: () => {} },
      idleTimeoutMs: 1_000,
      fetch: fakeFetch(() => ({})).fetch,
      onOpen: () => {},
      events: { token: 't', done: 'd', error: 'e', shutdown: 's' },
    };
    expect(() => streamTokens(url, options)).not.toThrow();
    const { events: _events, ...eventsOptions } = options;
    expect(() => streamEvents(url, eventsOptions)).not.toThrow();
  });
});
