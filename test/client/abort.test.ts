import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { isStreamAbortedError, StreamTimeoutError } from 'tokenrelay';
import { streamEvents, streamTokens } from 'tokenrelay/client';
import { fakeFetch } from './fake-fetch.ts';
import { doneFrame, openStream, startServer, tokenFrames, type Handler } from './server.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(handler: Handler) {
  const server = await startServer(handler);
  cleanups.push(server.close);
  return server;
}

/** Sends two chunks, then keeps the connection open with nothing more. */
const stalls: Handler = (req, res) => {
  openStream(res);
  res.write(tokenFrames(0, 1));
};

// The test runner keeps a timer of its own per test: compare with the count at the start.
const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;

describe('abort and cleanup', () => {
  it('abort() rejects the pending read at once with a StreamAbortedError and closes the connection', async () => {
    const server = await serve(stalls);
    const controller = new AbortController();
    const stream = streamTokens(server.url, { signal: controller.signal });
    expect((await stream.next()).value?.index).toBe(0);
    expect((await stream.next()).value?.index).toBe(1);
    const pending = stream.next();
    const reason = new Error('user pressed stop');
    controller.abort(reason);
    const error = await pending.catch((caught: unknown) => caught);
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as Error).cause).toBe(reason);
    expect(await server.requests[0]?.closed).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it('a tokenrelay error as the abort reason is thrown as it is', async () => {
    const server = await serve(stalls);
    const controller = new AbortController();
    const stream = streamTokens(server.url, { signal: controller.signal });
    await stream.next();
    const reason = new StreamTimeoutError('total', 10);
    setTimeout(() => controller.abort(reason), 5);
    await expect(stream.text()).rejects.toBe(reason);
  });

  it('an already aborted signal fails the first read without a request', async () => {
    const { fetch, requests } = fakeFetch(() => ({ body: 'data: x\n\n' }));
    const stream = streamTokens('http://127.0.0.1/chat', { fetch, signal: AbortSignal.abort('gone') });
    await expect(stream.next()).rejects.toMatchObject({ name: 'StreamAbortedError', cause: 'gone' });
    expect(requests).toHaveLength(0);
  });

  it('an abort during the back-off wait ends it at once, with no further request', async () => {
    const baseline = timers();
    const server = await serve((req, res) => res.socket?.destroy());
    const controller = new AbortController();
    const stream = streamTokens(server.url, {
      signal: controller.signal,
      reconnect: { random: () => 1, initialDelayMs: 60_000, onRetry: () => controller.abort() },
    });
    const started = performance.now();
    await expect(stream.next()).rejects.toMatchObject({ name: 'StreamAbortedError' });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(server.requests).toHaveLength(1);
    expect(timers()).toBeLessThanOrEqual(baseline);
  });

  it('break closes the connection', async () => {
    const server = await serve(stalls);
    for await (const chunk of streamTokens(server.url)) {
      if (chunk.index === 1) break;
    }
    expect(await server.requests[0]?.closed).toBe(true);
  });

  it('return() during a pending read settles it at once and closes the connection', async () => {
    const server = await serve(stalls);
    const stream = streamEvents(server.url);
    await stream.next();
    await stream.next();
    const pending = stream.next();
    await stream.return();
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
    expect(await server.requests[0]?.closed).toBe(true);
  });

  it('a stream that is never read makes no request and holds no listener', async () => {
    const { fetch, requests } = fakeFetch(() => ({ body: 'data: x\n\n' }));
    const controller = new AbortController();
    streamTokens('http://127.0.0.1/chat', { fetch, signal: controller.signal });
    await new Promise((resolve) => setImmediate(resolve));
    expect(requests).toHaveLength(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('2,000 streams ending every way leave no listener, timer or open body behind', async () => {
    const baseline = timers();
    const ends = ['done', 'error', 'break', 'abort', '204', 'status'] as const;
    const { fetch, requests } = fakeFetch((request) => {
      const end = new URL(request.url).searchParams.get('end');
      if (end === '204') return { status: 204 };
      if (end === 'status') return { status: 401 };
      if (end === 'error') return { body: `${tokenFrames(0, 0)}event: error\ndata: {"code":"timeout","message":"x"}\n\n` };
      return { body: tokenFrames(0, 2) + doneFrame(2), hang: end !== 'done' };
    });
    const signal = new AbortController().signal; // shared and long-lived, like a page's
    for (let i = 0; i < 2_000; i++) {
      const end = ends[i % ends.length] as (typeof ends)[number];
      const own = new AbortController();
      const stream = streamTokens(`http://127.0.0.1/chat?end=${end}`, { fetch, signal: end === 'abort' ? own.signal : signal });
      try {
        for await (const chunk of stream) {
          if (chunk.index === 1 && end === 'break') break;
          if (chunk.index === 1 && end === 'abort') own.abort();
        }
      } catch {
        // error, abort and status end this way
      }
    }
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    expect(timers()).toBeLessThanOrEqual(baseline);
    expect(requests).toHaveLength(2_000);
    // Every body the client left open was cancelled: its connection is closed.
    const left = requests.filter((request) => /end=(break|abort)/.test(request.url));
    expect(left).toHaveLength(666);
    await Promise.all(left.map((request) => request.cancelled));
  });
});

describe('arguments', () => {
  it.each([
    [() => streamTokens(42 as never), 'Expected `input` to be a URL string or a URL, got 42'],
    [() => streamTokens('/chat'), 'Expected `input` to be an absolute URL (or one relative to the page), got "/chat"'],
    [() => streamTokens('http://x', { idleTimeoutMs: -1 }), 'Expected `idleTimeoutMs` to be a number >= 0, got -1'],
    [() => streamTokens('http://x', { reconnect: { retries: 1.5 } }), 'Expected `reconnect.retries` to be an integer >= 0, got 1.5'],
    [() => streamTokens('http://x', { reconnect: true as never }), 'Expected `reconnect` to be an object or false, got true'],
    [() => streamTokens('http://x', { resume: 3 as never }), 'Expected `resume` to be a URL template with {id} or a function (streamId) => url, got 3'],
    [() => streamTokens('http://x', { method: 'GE T' }), "Expected `method` to be an HTTP method such as 'POST', got \"GE T\""],
    [() => streamTokens('http://x', { signal: {} as never }), 'Expected `signal` to be an AbortSignal, got an object'],
    [() => streamTokens('http://x', { body: new ReadableStream() as never }), 'Expected `body` to be a string, Blob, ArrayBuffer, typed array, FormData, URLSearchParams or a plain object, got an object'],
    [() => streamTokens('http://x', { events: { token: 'a\nb' } }), 'Expected `events.token` to be a non-empty string without CR, LF or NUL, got "a\\nb"'],
    [() => streamTokens('http://x', { fetch: 'no' as never }), 'Expected `fetch` to be a function, got "no"'],
  ])('%#: %s', (call, message) => {
    expect(call).toThrow(new TypeError(message));
  });

  it('a resume function that returns no URL fails the stream', async () => {
    const server = await serve((req, res, n) => {
      openStream(res, { 'x-stream-id': 's1' });
      if (n === 1) res.end(tokenFrames(0, 0));
    });
    const stream = streamTokens(server.url, { resume: () => 'not a url', reconnect: { random: () => 0 } });
    await expect(stream.text()).rejects.toThrow(new TypeError('Expected the URL returned by `resume` to be an absolute URL (or one relative to the page), got "not a url"'));
  });
});
