import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import {
  ProviderError,
  StreamTimeoutError,
  pipe,
  toSSE,
  tokens,
  type TokenChunk,
} from 'tokenrelay';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const PING = ': ping\n\n';

function chunk(index: number, token: string, extra: Partial<TokenChunk> = {}): TokenChunk {
  return { token, index, timestamp: 0, type: 'text', ...extra };
}

function tokenFrame(c: TokenChunk, event = 'token'): string {
  return `id: ${c.index}\nevent: ${event}\ndata: ${JSON.stringify(c)}\n\n`;
}

type Step = { chunk: TokenChunk } | { error: unknown } | { end: true };

/** A source the test feeds by hand; it never reads ahead of what was pushed. */
function channel() {
  const state = { reads: 0, finallyRan: 0 };
  const queue: Step[] = [];
  let wake: (() => void) | undefined;
  async function* generate(): AsyncGenerator<TokenChunk> {
    try {
      for (;;) {
        state.reads++;
        while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const step = queue.shift()!;
        if ('error' in step) throw step.error;
        if ('end' in step) return;
        yield step.chunk;
      }
    } finally {
      state.finallyRan++;
    }
  }
  const push = (step: Step): void => {
    queue.push(step);
    wake?.();
    wake = undefined;
  };
  return { source: generate(), state, push };
}

async function collect(frames: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const frame of frames) out.push(frame);
  return out;
}

function isSettled(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('toSSE frames', () => {
  it('writes one token frame per chunk and a done frame for the final chunk, exactly', async () => {
    const final = chunk(2, '', { finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 2 }, model: 'm', provider: 'p' });
    const frames = await collect(pipe(fromList([chunk(0, 'Hel'), chunk(1, 'lo\n"x"'), final]), toSSE()));
    expect(frames).toEqual([
      'id: 0\nevent: token\ndata: {"token":"Hel","index":0,"timestamp":0,"type":"text"}\n\n',
      'id: 1\nevent: token\ndata: {"token":"lo\\n\\"x\\"","index":1,"timestamp":0,"type":"text"}\n\n',
      'id: 2\nevent: done\ndata: {"finishReason":"stop","index":2,"usage":{"inputTokens":3,"outputTokens":2},"model":"m","provider":"p"}\n\n',
    ]);
  });

  it('writes a token frame for a final chunk that carries text, then the done frame with the same id', async () => {
    const final = chunk(1, 'end', { finishReason: 'length', usage: { inputTokens: 1, outputTokens: 2 } });
    const frames = await collect(pipe(fromList([chunk(0, 'a'), final]), toSSE()));
    expect(frames).toEqual([
      tokenFrame(chunk(0, 'a')),
      tokenFrame(chunk(1, 'end')) +
        'id: 1\nevent: done\ndata: {"finishReason":"length","index":1,"usage":{"inputTokens":1,"outputTokens":2}}\n\n',
    ]);
  });

  it('stops at the final chunk and returns the source without reading past it', async () => {
    const state = { reads: 0, finallyRan: false };
    async function* source() {
      try {
        state.reads++;
        yield chunk(0, '', { finishReason: 'stop' });
        state.reads++;
        throw new Error('read past the final chunk');
      } finally {
        state.finallyRan = true;
      }
    }
    const frames = await collect(pipe(source(), toSSE()));
    expect(frames).toEqual(['id: 0\nevent: done\ndata: {"finishReason":"stop","index":0}\n\n']);
    expect(state).toEqual({ reads: 1, finallyRan: true });
  });

  it('ends with a done frame without id when the source ends without a final chunk, carrying the last usage', async () => {
    const usage = { inputTokens: 5, outputTokens: 1 };
    const frames = await collect(pipe(fromList([chunk(0, 'a', { usage, model: 'm' })]), toSSE()));
    expect(frames).toEqual([
      tokenFrame(chunk(0, 'a', { usage, model: 'm' })),
      'event: done\ndata: {"finishReason":"stop","index":0,"usage":{"inputTokens":5,"outputTokens":1},"model":"m"}\n\n',
    ]);
    expect(await collect(pipe(fromList([]), toSSE()))).toEqual(['event: done\ndata: {"finishReason":"stop"}\n\n']);
  });

  it('sends retry in a frame of its own, first, before the source is read', async () => {
    const { source, state, push } = channel();
    const it = pipe(source, toSSE({ retryMs: 3000 }))[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ done: false, value: 'retry: 3000\n\n' });
    expect(state.reads).toBe(0);
    push({ chunk: chunk(0, '', { finishReason: 'stop' }) });
    const rest = await collect({ [Symbol.asyncIterator]: () => it });
    const retries: number[] = [];
    const events: EventSourceMessage[] = [];
    const parser = createParser({ onRetry: (ms) => retries.push(ms), onEvent: (e) => events.push(e) });
    parser.feed(`retry: 3000\n\n${rest.join('')}`);
    expect(retries).toEqual([3000]);
    expect(events.map((e) => e.event)).toEqual(['done']);
  });

  it('renames events', async () => {
    const frames = await collect(
      pipe(fromList([chunk(0, 'a'), chunk(1, '', { finishReason: 'stop' })]), toSSE({ events: { token: 'delta', done: 'end' } })),
    );
    expect(frames).toEqual([tokenFrame(chunk(0, 'a'), 'delta'), 'id: 1\nevent: end\ndata: {"finishReason":"stop","index":1}\n\n']);
    const failed = await collect(pipe(failingAfter([], new Error('x')), toSSE({ events: { error: 'oops' } })));
    expect(failed).toEqual(['event: oops\ndata: {"code":"internal","message":"Internal error"}\n\n']);
  });

  it('escapes lone surrogates in JSON, so they survive UTF-8 unchanged', async () => {
    const frames = await collect(pipe(fromList([chunk(0, 'a\uD800b\uDFFF😀')]), toSSE()));
    expect(frames[0]).toContain('"token":"a\\ud800b\\udfff😀"');
    const data = new TextDecoder().decode(new TextEncoder().encode(frames[0])).split('data: ')[1]!;
    expect((JSON.parse(data) as TokenChunk).token).toBe('a\uD800b\uDFFF😀');
  });

  it('splits serialize output on every line break so it cannot start a field or event', async () => {
    const serialize = (c: TokenChunk) => c.token;
    const frames = await collect(pipe(fromList([chunk(0, 'a\r\nevent: evil\rb\n\nc')]), toSSE({ serialize })));
    expect(frames[0]).toBe('id: 0\nevent: token\ndata: a\ndata: event: evil\ndata: b\ndata: \ndata: c\n\n');
  });

  it('turns a serialize result that is not a string, or an invalid index, into an error frame and returns the source', async () => {
    const { source, state, push } = channel();
    push({ chunk: chunk(0, 'a') });
    const serialize = () => 42 as unknown as string;
    const frames = await collect(pipe(source, toSSE({ serialize, exposeErrors: true })));
    expect(frames).toEqual([
      'event: error\ndata: {"code":"internal","message":"Expected `serialize` to return a string, got 42"}\n\n',
    ]);
    expect(state.finallyRan).toBe(1);
    const bad = await collect(pipe(fromList([chunk(-1, 'a')]), toSSE({ exposeErrors: true })));
    expect(bad).toEqual(['event: error\ndata: {"code":"internal","message":"Expected `index` to be an integer >= 0, got -1"}\n\n']);
  });
});

describe('toSSE errors', () => {
  const providerError = new ProviderError('upstream said: key sk-123 invalid', { status: 429, retryAfterMs: 2000 });
  const internal = Object.assign(new Error('db password is hunter2'), { code: 'provider' });

  it.each([
    ['a TokenRelayError', new StreamTimeoutError('idle', 500), false, { code: 'timeout', message: 'No chunk within 500 ms' }],
    [
      'a ProviderError',
      providerError,
      false,
      { code: 'provider', message: 'The provider failed', status: 429, retryable: true, retryAfterMs: 2000 },
    ],
    [
      'an exposed ProviderError',
      providerError,
      true,
      { code: 'provider', message: 'upstream said: key sk-123 invalid', status: 429, retryable: true, retryAfterMs: 2000 },
    ],
    ['an unknown error', internal, false, { code: 'internal', message: 'Internal error' }],
    ['an exposed unknown error', internal, true, { code: 'internal', message: 'db password is hunter2' }],
    ['a thrown string', 'nope', false, { code: 'internal', message: 'Internal error' }],
  ])('turns %s into one final error frame, then ends without rethrowing', async (_name, error, exposeErrors, payload) => {
    const frames = await collect(pipe(failingAfter([chunk(0, 'a')], error), toSSE({ exposeErrors })));
    expect(frames).toEqual([tokenFrame(chunk(0, 'a')), `event: error\ndata: ${JSON.stringify(payload)}\n\n`]);
    expect(frames.join('')).not.toContain('at ');
  });

  it('ends after the error frame: the source is not returned again and later reads are done', async () => {
    const { source, state, push } = channel();
    const it = pipe(source, toSSE({ heartbeatMs: 1000 }))[Symbol.asyncIterator]();
    const first = it.next();
    push({ error: new StreamTimeoutError('first-token', 10) });
    expect((await first).value).toBe('event: error\ndata: {"code":"timeout","message":"No first token within 10 ms"}\n\n');
    expect(vi.getTimerCount()).toBe(0);
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(state).toEqual({ reads: 1, finallyRan: 1 });
  });
});

describe('toSSE lifecycle', () => {
  it('return() while the source read is pending ends at once; the source finally runs once it settles', async () => {
    const { source, state, push } = channel();
    push({ chunk: chunk(0, 'a') });
    const it = pipe(source, toSSE({ heartbeatMs: 1000 }))[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe(tokenFrame(chunk(0, 'a')));
    const pending = it.next();
    expect(vi.getTimerCount()).toBe(1);
    expect(await it.return!()).toEqual({ done: true, value: undefined });
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(vi.getTimerCount()).toBe(0);
    expect(state.finallyRan).toBe(0);
    push({ chunk: chunk(1, 'b') });
    await vi.waitFor(() => expect(state.finallyRan).toBe(1));
    expect(state.reads).toBe(2);
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('a consumer break after a heartbeat returns the still-pending source read and clears the timer', async () => {
    const { source, state, push } = channel();
    push({ chunk: chunk(0, 'a') });
    const frames: string[] = [];
    const consumer = (async () => {
      for await (const frame of pipe(source, toSSE({ heartbeatMs: 1000 }))) {
        frames.push(frame);
        if (frame === PING) break;
      }
    })();
    await vi.advanceTimersByTimeAsync(1000);
    await consumer;
    expect(frames).toEqual([tokenFrame(chunk(0, 'a')), PING]);
    expect(vi.getTimerCount()).toBe(0);
    push({ end: true });
    await vi.waitFor(() => expect(state.finallyRan).toBe(1));
  });

  it('a consumer break between frames runs the source finally', async () => {
    const { source, state, push } = channel();
    push({ chunk: chunk(0, 'a') });
    push({ chunk: chunk(1, 'b') });
    for await (const frame of pipe(source, toSSE())) {
      expect(frame).toBe(tokenFrame(chunk(0, 'a')));
      break;
    }
    await vi.waitFor(() => expect(state.finallyRan).toBe(1));
    expect(state.reads).toBe(1);
  });

  it('throw() rejects with the given error and stops the stream', async () => {
    const { source, state, push } = channel();
    const it = pipe(source, toSSE())[Symbol.asyncIterator]();
    const pending = it.next();
    const error = new Error('consumer failed');
    await expect(it.throw!(error)).rejects.toBe(error);
    expect(await pending).toEqual({ done: true, value: undefined });
    push({ end: true });
    await vi.waitFor(() => expect(state.finallyRan).toBe(1));
  });

  it('return() before the first read never starts the source', async () => {
    const { source, state } = channel();
    const it = pipe(source, toSSE({ retryMs: 10 }))[Symbol.asyncIterator]();
    await it.return!();
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(state).toEqual({ reads: 0, finallyRan: 0 });
  });

  it('turns a source next() that throws synchronously into an error frame, and returns nothing more', async () => {
    const source: AsyncIterable<TokenChunk> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          throw new Error('sync failure');
        },
      }),
    };
    expect(await collect(pipe(source, toSSE({ exposeErrors: true })))).toEqual([
      'event: error\ndata: {"code":"internal","message":"sync failure"}\n\n',
    ]);
  });

  it('serves concurrent reads in order', async () => {
    const it = pipe(fromList([chunk(0, 'a'), chunk(1, '', { finishReason: 'stop' })]), toSSE())[Symbol.asyncIterator]();
    const results = await Promise.all([it.next(), it.next(), it.next()]);
    expect(results.map((r) => r.value)).toEqual([
      tokenFrame(chunk(0, 'a')),
      'id: 1\nevent: done\ndata: {"finishReason":"stop","index":1}\n\n',
      undefined,
    ]);
  });
});

describe('toSSE heartbeat', () => {
  it('sends no heartbeat while chunks come every heartbeatMs - 1, with one timer rather than one per chunk', async () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const { source, push } = channel();
    const frames: string[] = [];
    const consumer = (async () => {
      for await (const frame of pipe(source, toSSE({ heartbeatMs: 1000 }))) frames.push(frame);
    })();
    for (let index = 0; index < 20; index++) {
      await vi.advanceTimersByTimeAsync(999);
      push({ chunk: chunk(index, 'x') });
      await vi.advanceTimersByTimeAsync(0);
      expect(vi.getTimerCount()).toBeLessThanOrEqual(1);
    }
    push({ chunk: chunk(20, '', { finishReason: 'stop' }) });
    await consumer;
    expect(frames).toHaveLength(21);
    expect(frames).not.toContain(PING);
    expect(setTimeoutSpy.mock.calls.length).toBeLessThanOrEqual(21);

    setTimeoutSpy.mockClear();
    const fast = channel();
    const fastConsumer = collect(pipe(fast.source, toSSE({ heartbeatMs: 1000 })));
    for (let index = 0; index < 100; index++) {
      await vi.advanceTimersByTimeAsync(5);
      fast.push({ chunk: chunk(index, 'x') });
    }
    fast.push({ end: true });
    expect(await fastConsumer).not.toContain(PING);
    expect(setTimeoutSpy.mock.calls.length).toBeLessThanOrEqual(2);
  });

  it('sends a heartbeat at each interval of a stall, and the same pending read then continues', async () => {
    const { source, state, push } = channel();
    push({ chunk: chunk(0, 'a') });
    const frames: string[] = [];
    const consumer = (async () => {
      for await (const frame of pipe(source, toSSE({ heartbeatMs: 1000 }))) frames.push(frame);
    })();
    await vi.advanceTimersByTimeAsync(999);
    expect(frames).toEqual([tokenFrame(chunk(0, 'a'))]);
    await vi.advanceTimersByTimeAsync(1);
    expect(frames).toEqual([tokenFrame(chunk(0, 'a')), PING]);
    await vi.advanceTimersByTimeAsync(999);
    expect(frames.filter((f) => f === PING)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(frames.filter((f) => f === PING)).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(3000);
    expect(frames.filter((f) => f === PING)).toHaveLength(5);
    expect(state.reads).toBe(2);
    push({ chunk: chunk(1, 'b') });
    push({ chunk: chunk(2, '', { finishReason: 'stop' }) });
    await consumer;
    expect(frames.slice(-2)).toEqual([tokenFrame(chunk(1, 'b')), 'id: 2\nevent: done\ndata: {"finishReason":"stop","index":2}\n\n']);
    expect(state.reads).toBe(3);
  });

  it('counts idle time from when the consumer asks, not while it holds a frame', async () => {
    const { source, push } = channel();
    push({ chunk: chunk(0, 'a') });
    const it = pipe(source, toSSE({ heartbeatMs: 1000 }))[Symbol.asyncIterator]();
    await it.next();
    await vi.advanceTimersByTimeAsync(5000);
    const next = it.next();
    const settled = isSettled(next);
    await vi.advanceTimersByTimeAsync(999);
    expect(settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await next).toEqual({ done: false, value: PING });
    await it.return!();
  });

  it.each([0, false, Infinity, 2 ** 31] as const)('creates no timer with heartbeatMs %s', async (heartbeatMs) => {
    const { source, push } = channel();
    const it = pipe(source, toSSE({ heartbeatMs }))[Symbol.asyncIterator]();
    const next = it.next();
    const settled = isSettled(next);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(100_000);
    expect(settled()).toBe(false);
    push({ chunk: chunk(0, 'a') });
    expect((await next).value).toBe(tokenFrame(chunk(0, 'a')));
    await it.return!();
  });

  it('uses 15 s by default', async () => {
    const { source } = channel();
    const it = pipe(source, toSSE())[Symbol.asyncIterator]();
    const next = it.next();
    const settled = isSettled(next);
    await vi.advanceTimersByTimeAsync(14_999);
    expect(settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await next).toEqual({ done: false, value: PING });
    await it.return!();
  });
});

describe('toSSE options', () => {
  it.each([
    [{ heartbeatMs: -1 }, 'Expected `heartbeatMs` to be a number >= 0, got -1'],
    [{ heartbeatMs: NaN }, 'Expected `heartbeatMs` to be a number >= 0, got NaN'],
    [{ heartbeatMs: true }, 'Expected `heartbeatMs` to be a number >= 0, got true'],
    [{ retryMs: -1 }, 'Expected `retryMs` to be an integer >= 0, got -1'],
    [{ retryMs: 1.5 }, 'Expected `retryMs` to be an integer >= 0, got 1.5'],
    [{ serialize: 'json' }, 'Expected `serialize` to be a function, got "json"'],
    [{ exposeErrors: 'yes' }, 'Expected `exposeErrors` to be a boolean, got "yes"'],
    [{ events: null }, 'Expected `events` to be an object, got null'],
    [{ events: { token: '' } }, 'Expected `events.token` to be a non-empty string without CR, LF, NUL or lone surrogates, got ""'],
    [{ events: { done: 'a\nb' } }, 'Expected `events.done` to be a non-empty string'],
    [{ events: { error: 'a\0' } }, 'Expected `events.error` to be a non-empty string'],
  ])('rejects %j', (options, message) => {
    expect(() => toSSE(options as never)).toThrow(TypeError);
    expect(() => toSSE(options as never)).toThrow(message);
  });

  it('rejects a source that is not async iterable', () => {
    expect(() => toSSE()(['a'] as never)).toThrow('Expected `source` to be an async iterable, got an array');
    expect(() => toSSE(null as never)).toThrow('Expected `options` to be an object, got null');
  });
});

describe('toSSE round trip (property)', () => {
  const special = fc.constantFrom(
    '\r', '\n', '\r\n', '\n\r', '\u2028', '\u2029', '\0', '\uFEFF', '\uD800', '\uDBFF', '\uDC00', '\uDFFF',
    '😀', '👩‍👩‍👧', 'é', 'data: x', 'event: evil', 'id: 9', 'retry: 1', ':', ' ', '"', '\\',
  );
  const unit = fc.oneof(
    special,
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
  );
  const token = fc.string({ unit, maxLength: 8 });
  const eventName = fc
    .string({ unit: fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), fc.constantFrom(' ', ':', 'ü')), minLength: 1, maxLength: 6 })
    .filter((name) => !/[\r\n\0]/.test(name));

  it('gives back the same tokens, indexes, event names and done event through bytes split anywhere', async () => {
    vi.useRealTimers();
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(token, { maxLength: 12 }),
          fc.option(eventName, { nil: undefined }),
          fc.array(fc.nat(), { maxLength: 8 }),
          async (deltas, tokenEvent, cuts) => {
            const text = (await collect(pipe(tokens(deltas, { provider: 'p' }), toSSE({ events: { token: tokenEvent } })))).join('');
            const bytes = new TextEncoder().encode(text);
            const offsets = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
            const events: EventSourceMessage[] = [];
            const errors: unknown[] = [];
            const parser = createParser({ onEvent: (e) => events.push(e), onError: (e) => errors.push(e) });
            const decoder = new TextDecoder();
            let start = 0;
            for (const end of [...offsets, bytes.length]) {
              parser.feed(decoder.decode(bytes.subarray(start, end), { stream: true }));
              start = end;
            }
            parser.feed(decoder.decode());
            expect(errors).toEqual([]);
            expect(events).toHaveLength(deltas.length + 1);
            deltas.forEach((delta, index) => {
              const event = events[index]!;
              expect(event.event).toBe(tokenEvent ?? 'token');
              expect(event.id).toBe(String(index));
              const parsed = JSON.parse(event.data) as TokenChunk;
              expect(parsed.token).toBe(delta);
              expect(parsed.index).toBe(index);
            });
            const done = events[deltas.length]!;
            expect(done.event).toBe('done');
            expect(done.id).toBe(String(deltas.length));
            expect(JSON.parse(done.data)).toEqual({ finishReason: 'stop', index: deltas.length, provider: 'p' });
          },
        ),
        { seed: 20240611, numRuns: 1000 },
      );
    } finally {
      vi.useFakeTimers();
    }
  });
});

async function* fromList(chunks: TokenChunk[]): AsyncGenerator<TokenChunk> {
  yield* chunks;
}

async function* failingAfter(chunks: TokenChunk[], error: unknown): AsyncGenerator<TokenChunk> {
  yield* chunks;
  throw error;
}
