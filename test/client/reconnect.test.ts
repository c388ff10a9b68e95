import { afterEach, describe, expect, it } from 'vitest';
import { isProviderError, isStreamTimeoutError, type TokenChunk } from 'tokenrelay';
import { isInvalidCursorError, isStreamNotFoundError } from 'tokenrelay/relay';
import { isStreamConnectionError, streamTokens, type RetryInfo, type StreamTokensOptions } from 'tokenrelay/client';
import { chunk, doneFrame, errorFrame, openStream, startServer, textOf, tokenFrames, writeThenCut, type Handler } from './server.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(handler: Handler) {
  const server = await startServer(handler);
  cleanups.push(server.close);
  return server;
}

/** Reads a stream to its end; resolves with its chunks and retries, or with the error it failed with. */
async function run(url: string, options: StreamTokensOptions = {}) {
  const retries: RetryInfo[] = [];
  const chunks: TokenChunk[] = [];
  const stream = streamTokens(url, {
    ...options,
    reconnect: options.reconnect === false ? false : { random: () => 0, ...options.reconnect, onRetry: (info) => retries.push(info) },
  });
  let error: unknown;
  try {
    for await (const item of stream) chunks.push(item);
  } catch (caught) {
    error = caught;
  }
  return { chunks, retries, error, stream };
}

const indexes = (chunks: TokenChunk[]): number[] => chunks.filter((item) => item.finishReason === undefined).map((item) => item.index);

describe('reconnection', () => {
  it('reconnects after a cut with Last-Event-ID and never yields a chunk twice', async () => {
    const server = await serve((req, res, n) => {
      openStream(res);
      if (n === 1) return writeThenCut(res, tokenFrames(0, 4));
      // A server that replays more than asked: the client drops what it already has.
      res.end(tokenFrames(2, 9) + doneFrame(9));
    });
    const retries: RetryInfo[] = [];
    const stream = streamTokens(`${server.url}/chat`, { body: { prompt: 'hi' }, reconnect: { random: () => 0, onRetry: (info) => retries.push(info) } });
    expect(await stream.text()).toBe(textOf(0, 9));
    expect(stream.lastEventId).toBe('9');
    expect(server.requests.map((request) => request.headers['last-event-id'])).toEqual([undefined, '4']);
    // Without a stream id the same request is repeated, body included.
    expect(server.requests.map((request) => [request.method, request.url, request.body])).toEqual([
      ['POST', '/chat', '{"prompt":"hi"}'],
      ['POST', '/chat', '{"prompt":"hi"}'],
    ]);
    expect(retries).toMatchObject([{ attempt: 1, reason: 'network', lastEventId: '4' }]);
  });

  it('yields each index once, in order, with the final chunk from the done event', async () => {
    const server = await serve((req, res, n) => {
      openStream(res);
      if (n === 1) return writeThenCut(res, tokenFrames(0, 2));
      res.end(tokenFrames(0, 5) + doneFrame(5, { usage: { inputTokens: 3, outputTokens: 6 }, model: 'm' }));
    });
    const { chunks, error } = await run(server.url);
    expect(error).toBeUndefined();
    expect(indexes(chunks)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(chunks.at(-1)).toEqual({ token: '', index: 5, timestamp: 5, type: 'text', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 6 }, model: 'm' });
  });

  it.each([
    ['a template', '/chat/{id}'],
    ['a function', (id: string) => `/chat/${encodeURIComponent(id)}`],
  ] as const)('resumes at the resume URL (%s) once the server sent X-Stream-Id', async (_kind, template) => {
    const server = await serve((req, res, n) => {
      openStream(res, n === 1 ? { 'x-stream-id': 'a/b c' } : {});
      if (n === 1) return writeThenCut(res, tokenFrames(0, 2));
      res.end(tokenFrames(3, 4) + doneFrame(4));
    });
    const resume = typeof template === 'string' ? `${server.url}${template}` : (id: string) => `${server.url}${template(id)}`;
    const stream = streamTokens(`${server.url}/chat`, {
      body: { prompt: 'hi' },
      headers: { authorization: 'Bearer t' },
      resume,
      reconnect: { random: () => 0 },
    });
    expect(await stream.text()).toBe(textOf(0, 4));
    expect(stream.streamId).toBe('a/b c');
    const [first, second] = server.requests;
    expect(first).toMatchObject({ method: 'POST', url: '/chat', headers: { 'content-type': 'application/json', accept: 'text/event-stream' } });
    expect(second).toMatchObject({ method: 'GET', url: '/chat/a%2Fb%20c', body: '', headers: { 'last-event-id': '2', authorization: 'Bearer t' } });
    expect(second?.headers['content-type']).toBeUndefined();
  });

  it('backs off exponentially with full jitter up to maxDelayMs, then gives up', async () => {
    const server = await serve((req, res) => res.writeHead(503).end());
    const draws = [0.5, 1, 0.25, 0.999, 0];
    const { retries, error } = await run(server.url, {
      reconnect: { retries: 4, initialDelayMs: 8, maxDelayMs: 40, random: () => draws.shift() ?? 0 },
    });
    // Ceilings 8, 16, 32, 40 (capped); delays are the draws times the ceilings.
    expect(retries.map(({ attempt, delayMs, reason }) => [attempt, delayMs, reason])).toEqual([
      [1, 4, 'status'],
      [2, 16, 'status'],
      [3, 8, 'status'],
      [4, 39, 'status'],
    ]);
    expect(isStreamConnectionError(error)).toBe(true);
    expect(error).toMatchObject({ status: 503, attempts: 5, message: 'The server answered 503; gave up after 5 connections' });
    expect(server.requests).toHaveLength(5);
  });

  it('waits the delays it announces', async () => {
    const server = await serve((req, res) => res.socket?.destroy());
    const { retries, error } = await run(server.url, { reconnect: { retries: 3, initialDelayMs: 30, random: () => 1 } });
    expect(retries.map((retry) => [retry.delayMs, retry.reason])).toEqual([
      [30, 'network'],
      [60, 'network'],
      [120, 'network'],
    ]);
    expect(error).toMatchObject({ name: 'StreamConnectionError', attempts: 4 });
    const arrivals = server.requests.map((request) => request.receivedAt);
    for (const [i, retry] of retries.entries()) {
      expect((arrivals[i + 1] as number) - (arrivals[i] as number)).toBeGreaterThanOrEqual(retry.delayMs - 2);
    }
  });

  it("never reconnects sooner than the server's retry", async () => {
    const server = await serve((req, res, n) => {
      openStream(res);
      if (n === 1) return void res.end(`retry: 60\n\n${tokenFrames(0, 0)}`);
      res.end(tokenFrames(1, 1) + doneFrame(1));
    });
    const { retries, chunks } = await run(server.url, { reconnect: { initialDelayMs: 10, random: () => 0.99 } });
    expect(retries.map((retry) => [retry.delayMs, retry.reason])).toEqual([[60, 'ended']]);
    expect(indexes(chunks)).toEqual([0, 1]);
    const [first, second] = server.requests;
    expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(58);
  });

  it('counts retries only while nothing new arrives', async () => {
    const server = await serve((req, res, n) => {
      openStream(res);
      res.end(n < 5 ? tokenFrames(n - 1, n - 1) : tokenFrames(0, 4) + doneFrame(4));
    });
    const { chunks, retries, error } = await run(server.url, { reconnect: { retries: 1 } });
    expect(error).toBeUndefined();
    expect(indexes(chunks)).toEqual([0, 1, 2, 3, 4]);
    expect(retries.map((retry) => retry.attempt)).toEqual([1, 1, 1, 1]);
  });

  it('reconnect: false fails on the first cut', async () => {
    const server = await serve((req, res) => {
      openStream(res);
      writeThenCut(res, tokenFrames(0, 1));
    });
    const { chunks, error } = await run(server.url, { reconnect: false });
    expect(indexes(chunks)).toEqual([0, 1]);
    expect(error).toMatchObject({ name: 'StreamConnectionError', message: 'The connection failed; gave up after 1 connection' });
    expect(server.requests).toHaveLength(1);
  });
});

describe('statuses and terminal events', () => {
  const json = (status: number, error: Record<string, unknown>, headers: Record<string, string> = {}): Handler => (req, res) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify({ error }));
  };

  it('204 ends the stream for good', async () => {
    const server = await serve((req, res) => res.writeHead(204).end());
    const { chunks, error, retries } = await run(server.url);
    expect([chunks, error, retries]).toEqual([[], undefined, []]);
    expect(server.requests).toHaveLength(1);
  });

  it.each([
    [404, { code: 'not-found', message: 'The stream does not exist or has expired' }, isStreamNotFoundError],
    [400, { code: 'invalid-cursor', message: 'Bad cursor' }, isInvalidCursorError],
    [422, { code: 'provider', message: 'The provider failed', status: 422, retryable: false }, isProviderError],
  ] as const)('%i with an error body throws its typed error at once', async (status, body, guard) => {
    const server = await serve(json(status, body));
    const { error } = await run(server.url);
    expect(guard(error)).toBe(true);
    expect(error).toMatchObject({ message: body.message });
    expect(server.requests).toHaveLength(1);
  });

  it.each([401, 403, 405, 410])('%i without a tokenrelay body throws a StreamConnectionError at once', async (status) => {
    const server = await serve((req, res) => res.writeHead(status, { 'content-type': 'text/plain' }).end('no'));
    const { error } = await run(server.url);
    expect(isStreamConnectionError(error)).toBe(true);
    expect(error).toMatchObject({ status, attempts: 1 });
    expect(server.requests).toHaveLength(1);
  });

  it.each([408, 429, 500, 502, 503, 504])('%i is retried', async (status) => {
    const server = await serve((req, res, n) => {
      if (n === 1) return void res.writeHead(status).end();
      openStream(res);
      res.end(tokenFrames(0, 0) + doneFrame(0));
    });
    const { chunks, retries } = await run(server.url);
    expect(indexes(chunks)).toEqual([0]);
    expect(retries).toMatchObject([{ reason: 'status', error: { name: 'StreamConnectionError', status } }]);
  });

  it('Retry-After is the least delay; once retries run out the typed error of the body is thrown', async () => {
    const server = await serve(json(429, { code: 'provider', message: 'Rate limited', status: 429, retryAfterMs: 1000 }, { 'retry-after': '1' }));
    const retries: RetryInfo[] = [];
    const stream = streamTokens(server.url, {
      reconnect: {
        retries: 1,
        random: () => 0,
        onRetry: (info) => {
          retries.push(info);
          void stream.return(); // the delay is under test, not the wait
        },
      },
    });
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    expect(retries).toMatchObject([{ delayMs: 1000, reason: 'status' }]);
    expect(isProviderError(retries[0]?.error)).toBe(true);

    const exhausted = await run(server.url, { reconnect: { retries: 0 } });
    expect(isProviderError(exhausted.error)).toBe(true);
    expect(exhausted.error).toMatchObject({ status: 429, retryAfterMs: 1000, message: 'Rate limited' });
  });

  it('a done event ends the stream: no reconnection', async () => {
    const server = await serve((req, res) => {
      openStream(res);
      // The connection stays open after done: the client closes it.
      res.write(tokenFrames(0, 1) + doneFrame(1, { finishReason: 'length' }));
    });
    const { chunks, retries } = await run(server.url);
    expect(chunks.map((item) => item.finishReason)).toEqual([undefined, undefined, 'length']);
    expect(retries).toEqual([]);
    expect(await server.requests[0]?.closed).toBe(true);
    expect(server.requests).toHaveLength(1);
  });

  it('an error event is thrown as its typed error, with the server fields: no reconnection', async () => {
    const server = await serve((req, res) => {
      openStream(res);
      res.end(tokenFrames(0, 0) + errorFrame({ code: 'provider', message: 'The provider failed', status: 529, retryable: true }));
    });
    const { chunks, error, retries } = await run(server.url);
    expect(indexes(chunks)).toEqual([0]);
    expect(isProviderError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'provider', status: 529, retryable: true });
    expect(retries).toEqual([]);
  });

  it.each([
    [{ code: 'timeout', message: 'No chunk within 15000 ms' }, { name: 'StreamTimeoutError', phase: 'idle', timeoutMs: 15000 }],
    [{ code: 'timeout', message: 'No first token within 30000 ms' }, { name: 'StreamTimeoutError', phase: 'first-token', timeoutMs: 30000 }],
    [{ code: 'aborted', message: 'The stream was aborted' }, { name: 'StreamAbortedError', code: 'aborted' }],
    [{ code: 'limit', message: 'Too many', limit: 'chunks' }, { name: 'StreamLimitError', limit: 'chunks' }],
    [{ code: 'producer-lost', message: 'gone' }, { name: 'ProducerLostError' }],
    [{ code: 'backpressure', message: 'full' }, { name: 'BackpressureError' }],
    [{ code: 'internal', message: 'Internal error' }, { name: 'StreamServerError', code: 'internal' }],
  ])('error event %j', async (payload, expected) => {
    const server = await serve((req, res) => {
      openStream(res);
      res.end(errorFrame(payload));
    });
    const { error } = await run(server.url);
    expect(error).toMatchObject({ ...expected, message: payload.message });
    if (payload.code === 'timeout') expect(isStreamTimeoutError(error)).toBe(true);
  });

  it('a token event that is not a chunk fails the stream', async () => {
    const server = await serve((req, res) => {
      openStream(res);
      res.end('event: token\ndata: hello\n\n');
    });
    const { error } = await run(server.url);
    expect(error).toMatchObject({ name: 'StreamServerError', code: 'protocol' });
  });

  it('renamed events', async () => {
    const server = await serve((req, res) => {
      openStream(res);
      res.end(`event: t\ndata: ${JSON.stringify(chunk(0))}\n\nevent: token\ndata: ignored\n\nevent: d\ndata: {"finishReason":"stop"}\n\n`);
    });
    const { chunks, error } = await run(server.url, { events: { token: 't', done: 'd' } });
    expect(error).toBeUndefined();
    expect(chunks.map((item) => item.index)).toEqual([0, 0]);
  });
});

describe('idle connections', () => {
  it('a connection silent for idleTimeoutMs is closed and resumed', async () => {
    const server = await serve((req, res, n) => {
      openStream(res);
      if (n === 1) return void res.write(tokenFrames(0, 1)); // then silence, connection open
      res.end(tokenFrames(2, 3) + doneFrame(3));
    });
    const { chunks, retries } = await run(server.url, { idleTimeoutMs: 80 });
    expect(indexes(chunks)).toEqual([0, 1, 2, 3]);
    expect(retries).toMatchObject([{ reason: 'idle', lastEventId: '1', error: { name: 'StreamConnectionError', message: 'No data for 80 ms' } }]);
    expect(await server.requests[0]?.closed).toBe(true);
    expect(server.requests[1]?.headers['last-event-id']).toBe('1');
  });

  it('waiting for the response headers counts too', async () => {
    const server = await serve((req, res, n) => {
      if (n === 1) return; // never answers
      openStream(res);
      res.end(tokenFrames(0, 0) + doneFrame(0));
    });
    const { chunks, retries } = await run(server.url, { idleTimeoutMs: 80 });
    expect(indexes(chunks)).toEqual([0]);
    expect(retries.map((retry) => retry.reason)).toEqual(['idle']);
    expect(await server.requests[0]?.closed).toBe(true);
  });

  it('heartbeat comments keep a connection alive', async () => {
    const server = await serve(async (req, res) => {
      openStream(res);
      for (let beat = 0; beat < 6; beat++) {
        await new Promise((resolve) => setTimeout(resolve, 40));
        res.write(': ping\n\n');
      }
      res.end(tokenFrames(0, 0) + doneFrame(0));
    });
    // 240 ms of heartbeats only, one every 40 ms: never idle for 200 ms.
    const { chunks, retries } = await run(server.url, { idleTimeoutMs: 200 });
    expect(indexes(chunks)).toEqual([0]);
    expect(retries).toEqual([]);
  });

  it('0 turns the idle timeout off', async () => {
    const server = await serve(async (req, res) => {
      openStream(res);
      await new Promise((resolve) => setTimeout(resolve, 60));
      res.end(tokenFrames(0, 0) + doneFrame(0));
    });
    const { retries } = await run(server.url, { idleTimeoutMs: 0 });
    expect(retries).toEqual([]);
  });
});
