import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackpressureError, isBackpressureError, monitored, pipe, withBackpressure, withTimeout } from 'tokenrelay';
import type { Operator, TokenChunk, WithBackpressureOptions } from 'tokenrelay';
import { StreamTimeoutError } from 'tokenrelay';
import { inspectBuffer, withBackpressureUntil } from '../../src/operators/with-backpressure.js';

afterEach(() => {
  vi.useRealTimers();
});

const DONE = { done: true, value: undefined };

function chunk(index: number, token = 'x', extra: Partial<TokenChunk> = {}): TokenChunk {
  return { token, index, timestamp: index, type: 'text', ...extra };
}

/** Lets every pending microtask and one macrotask turn run (real timers only). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Yields the given chunks as fast as asked, counting pulls and `finally` runs. */
function countingSource(count: number, make: (index: number) => TokenChunk = (index) => chunk(index)) {
  const state = { pulls: 0, finallyRuns: 0 };
  async function* source() {
    try {
      for (let index = 0; index < count; index++) {
        state.pulls++;
        yield make(index);
      }
    } finally {
      state.finallyRuns++;
    }
  }
  return { state, source: source() };
}

/** Yields `before` chunks, then hangs on a gate only the test can open. */
function hangingSource(before: number) {
  const state = { finallyRuns: 0, open: () => {} };
  const gate = new Promise<void>((resolve) => (state.open = resolve));
  async function* source() {
    try {
      for (let index = 0; index < before; index++) yield chunk(index);
      await gate;
      yield chunk(before);
    } finally {
      state.finallyRuns++;
    }
  }
  return { state, source: source() };
}

function iterate(stream: AsyncIterable<TokenChunk>): AsyncIterator<TokenChunk> {
  return stream[Symbol.asyncIterator]();
}

describe('withBackpressure: arguments', () => {
  it.each([
    [{ highWaterMark: 0 }, 'Expected `highWaterMark` to be an integer >= 1, got 0'],
    [{ highWaterMark: 2.5 }, 'Expected `highWaterMark` to be an integer >= 1, got 2.5'],
    [{ maxBufferedBytes: -1 }, 'Expected `maxBufferedBytes` to be a number >= 1, got -1'],
    [{ overflow: 'drop' }, "Expected `overflow` to be one of 'wait', 'coalesce', 'error', got \"drop\""],
    [{ rate: 0 }, 'Expected `rate` to be a finite number > 0, got 0'],
    [{ rate: Infinity }, 'Expected `rate` to be a finite number > 0, got Infinity'],
    [{ rate: 10, burst: 0.5 }, 'Expected `burst` to be a finite number >= 1, got 0.5'],
  ])('rejects %o', (options, message) => {
    expect(() => withBackpressure(options as never)).toThrow(new TypeError(message));
  });

  it('rejects a non-object options value and a source that is not async iterable', () => {
    expect(() => withBackpressure(null as never)).toThrow('Expected `options` to be an object, got null');
    expect(() => withBackpressure()([chunk(0)] as never)).toThrow(
      'Expected `source` to be an async iterable, got an array',
    );
  });
});

describe("withBackpressure: overflow 'wait'", () => {
  it('passes every chunk through unchanged and in order, and completes', async () => {
    const { state, source } = countingSource(200);
    const seen: TokenChunk[] = [];
    for await (const value of pipe(source, withBackpressure({ highWaterMark: 4 }))) seen.push(value);
    expect(seen.map((value) => value.index)).toEqual([...Array(200).keys()]);
    expect(state.finallyRuns).toBe(1);
  });

  it('does not touch the source before the first read', async () => {
    const { state, source } = countingSource(10);
    iterate(pipe(source, withBackpressure()));
    await flush();
    expect(state.pulls).toBe(0);
  });

  it('reads ahead up to highWaterMark and never beyond, however slow the consumer', async () => {
    const highWaterMark = 8;
    let consumed = 0;
    let maxLead = 0;
    let pulled = 0;
    // Starved source: fails the stream if it is read more than highWaterMark ahead.
    const source: AsyncIterable<TokenChunk> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          if (pulled === 100) return DONE as IteratorResult<TokenChunk>;
          const lead = pulled - consumed;
          if (lead > highWaterMark) throw new Error(`read ${lead} chunks ahead`);
          maxLead = Math.max(maxLead, lead);
          return { done: false, value: chunk(pulled++) };
        },
      }),
    };
    const received: number[] = [];
    for await (const value of pipe(source, withBackpressure({ highWaterMark }))) {
      received.push(value.index);
      await flush();
      consumed++;
    }
    expect(received).toEqual([...Array(100).keys()]);
    expect(maxLead).toBe(highWaterMark);
  });

  it('stops reading at maxBufferedBytes, counting UTF-8 bytes exactly', async () => {
    const tokens = ['é', '€', '😀', 'a', '\ud800', 'ß€', 'xyz'];
    const { state, source } = countingSource(1000, (index) => chunk(index, tokens[index % tokens.length]));
    const iterator = iterate(pipe(source, withBackpressure({ maxBufferedBytes: 20 })));
    await iterator.next();
    await flush();
    const buffered = tokens.concat(tokens).slice(1, state.pulls);
    const expected = new TextEncoder().encode(buffered.join('')).length;
    expect(inspectBuffer(iterator)).toEqual({ chunks: state.pulls - 1, bytes: expected });
    // Reading stopped with the first chunk that reached the bound, not before.
    expect(expected).toBeGreaterThanOrEqual(20);
    expect(expected - new TextEncoder().encode(buffered.at(-1)).length).toBeLessThan(20);
    await iterator.return?.();
    expect(state.finallyRuns).toBe(1);
  });

  it('hands a chunk straight to a waiting reader without buffering it', async () => {
    let open = () => {};
    async function* source() {
      for (let index = 0; index < 5; index++) {
        await new Promise<void>((resolve) => (open = resolve));
        yield chunk(index);
      }
    }
    const iterator = iterate(pipe(source(), withBackpressure()));
    for (let index = 0; index < 5; index++) {
      const read = iterator.next();
      await flush();
      expect(inspectBuffer(iterator)).toEqual({ chunks: 0, bytes: 0 });
      open();
      expect(await read).toEqual({ done: false, value: chunk(index) });
      expect(inspectBuffer(iterator)).toEqual({ chunks: 0, bytes: 0 });
    }
  });

  it('serves concurrent reads in order', async () => {
    const { source } = countingSource(2);
    const iterator = iterate(pipe(source, withBackpressure()));
    const results = await Promise.all([iterator.next(), iterator.next(), iterator.next()]);
    expect(results).toEqual([{ done: false, value: chunk(0) }, { done: false, value: chunk(1) }, DONE]);
  });
});

describe('withBackpressure: a consumer that stops reading', () => {
  it("'wait': a 1,000,000-chunk source is read exactly highWaterMark ahead, then left alone", async () => {
    const { state, source } = countingSource(1_000_000);
    const iterator = iterate(pipe(source, withBackpressure({ highWaterMark: 64 })));
    await iterator.next();
    await flush();
    expect(state.pulls).toBe(65);
    expect(inspectBuffer(iterator)).toEqual({ chunks: 64, bytes: 64 });
    await flush();
    expect(state.pulls).toBe(65);
    await iterator.return?.();
    expect(state.finallyRuns).toBe(1);
  });

  it("'coalesce': a 1,000,000-chunk source fills the byte bound in <= highWaterMark chunks, then waits", async () => {
    const { state, source } = countingSource(1_000_000, (index) => chunk(index, 'abcd'));
    const iterator = iterate(pipe(source, withBackpressure({ overflow: 'coalesce' })));
    await iterator.next();
    await flush();
    // 256 KiB of 4-byte tokens after the one chunk already delivered.
    expect(state.pulls).toBe(1 + 65_536);
    const buffered = inspectBuffer(iterator);
    expect(buffered?.bytes).toBe(256 * 1024);
    expect(buffered?.chunks).toBeLessThanOrEqual(64);
    await flush();
    expect(state.pulls).toBe(1 + 65_536);
    // What was buffered comes out in at most 64 reads, every byte of it.
    let text = 0;
    let last = 0;
    let reads = 0;
    while (last < 65_536) {
      const { value } = (await iterator.next()) as IteratorYieldResult<TokenChunk>;
      text += value.token.length;
      last = value.index;
      reads++;
    }
    expect(reads).toBeLessThanOrEqual(64);
    expect(text).toBe(4 * last);
    await iterator.return?.();
    // The read-ahead had a read in flight again; the source's return() settles right behind it.
    await flush();
    expect(state.finallyRuns).toBe(1);
  });

  it("'error': returns the source and fails after the buffered chunks, naming highWaterMark", async () => {
    const { state, source } = countingSource(1_000_000);
    const iterator = iterate(pipe(source, withBackpressure({ highWaterMark: 3, overflow: 'error' })));
    expect((await iterator.next()).value).toEqual(chunk(0));
    await flush();
    expect(state.finallyRuns).toBe(1);
    // One handed over, three buffered, the fifth overflowed.
    expect(state.pulls).toBe(5);
    const received = [];
    let failure: unknown;
    try {
      for (;;) {
        const result = await iterator.next();
        if (result.done === true) break;
        received.push(result.value.index);
      }
    } catch (error) {
      failure = error;
    }
    expect(received).toEqual([1, 2, 3]);
    expect(failure).toBeInstanceOf(BackpressureError);
    expect(isBackpressureError(failure)).toBe(true);
    expect((failure as BackpressureError).code).toBe('backpressure');
    expect((failure as Error).message).toBe('The consumer fell more than 3 chunks behind the source (`highWaterMark`)');
    expect(await iterator.next()).toEqual(DONE);
  });

  it("'error': names maxBufferedBytes when the byte bound overflows first", async () => {
    const { source } = countingSource(100, (index) => chunk(index, '€€'));
    const iterator = iterate(pipe(source, withBackpressure({ maxBufferedBytes: 10, overflow: 'error' })));
    const indexes: number[] = [];
    await expect(
      (async () => {
        for (let result = await iterator.next(); result.done !== true; result = await iterator.next()) {
          indexes.push(result.value.index);
          await flush();
        }
      })(),
    ).rejects.toThrow('The consumer fell more than 10 bytes behind the source (`maxBufferedBytes`)');
    // Chunk 0 handed over; 1 fits (6 bytes); 2 would make 12.
    expect(indexes).toEqual([0, 1]);
  });
});

describe("withBackpressure: overflow 'coalesce'", () => {
  it('merges runs of one kind and tool call, keeps metadata chunks apart, never mutates the input', async () => {
    const call = (id: string) => ({ id, name: 'lookup', index: 0 });
    const input: TokenChunk[] = [
      chunk(0, 'first'),
      chunk(1, 'He'),
      chunk(2, 'llo'),
      chunk(3, 'think', { type: 'reasoning' }),
      chunk(4, 'ing', { type: 'reasoning' }),
      chunk(5, '{"q":', { type: 'tool-call', toolCall: call('a') }),
      chunk(6, '1}', { type: 'tool-call', toolCall: call('a') }),
      chunk(7, '{}', { type: 'tool-call', toolCall: call('b') }),
      chunk(8, ' wor', { usage: { inputTokens: 1, outputTokens: 2 } }),
      chunk(9, 'ld'),
      chunk(10, '!'),
      chunk(11, '', { finishReason: 'stop' }),
    ];
    const copies = structuredClone(input);
    async function* source() {
      yield* input;
    }
    const iterator = iterate(pipe(source(), withBackpressure({ highWaterMark: 3, overflow: 'coalesce' })));
    const output: TokenChunk[] = [];
    // The consumer lets the read-ahead fill up (and stall) before each read.
    for (let result = await iterator.next(); result.done !== true; result = await iterator.next()) {
      output.push(result.value);
      await flush();
    }
    expect(output).toEqual([
      chunk(0, 'first'),
      chunk(2, 'Hello'),
      chunk(4, 'thinking', { type: 'reasoning' }),
      chunk(6, '{"q":1}', { type: 'tool-call', toolCall: call('a') }),
      chunk(7, '{}', { type: 'tool-call', toolCall: call('b') }),
      chunk(8, ' wor', { usage: { inputTokens: 1, outputTokens: 2 } }),
      chunk(10, 'ld!'),
      chunk(11, '', { finishReason: 'stop' }),
    ]);
    expect(input).toEqual(copies);
  });

  it('loses no text and keeps indexes strictly increasing, for any stream and any reading pattern', async () => {
    const kinds = fc.constantFrom<Partial<TokenChunk>>(
      { type: 'text' },
      { type: 'reasoning' },
      { type: 'tool-call', toolCall: { id: 'a', name: 't', index: 0 } },
      { type: 'tool-call', toolCall: { id: 'b', name: 't', index: 1 } },
    );
    const item = fc.record({
      token: fc.string({ unit: fc.constantFrom('a', 'b', ' ', '\n', 'é', '€', '😀', '\ud800'), maxLength: 6 }),
      kind: kinds,
      usage: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(item, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
        async (items, highWaterMark, maxBufferedBytes, pauses) => {
          const input = items.map(({ token, kind, usage }, index) =>
            chunk(index, token, usage ? { ...kind, usage: { inputTokens: 0, outputTokens: index } } : kind),
          );
          input.push(chunk(input.length, '', { finishReason: 'stop' }));
          async function* source() {
            yield* input;
          }
          const stream = pipe(source(), withBackpressure({ highWaterMark, maxBufferedBytes, overflow: 'coalesce' }));
          const iterator = iterate(stream);
          const output: TokenChunk[] = [];
          let mostChunks = 0;
          let mostBytes = 0;
          for (let result = await iterator.next(); result.done !== true; result = await iterator.next()) {
            output.push(result.value);
            if (pauses[output.length % pauses.length] === true) await flush();
            const buffered = inspectBuffer(iterator) as { chunks: number; bytes: number };
            mostChunks = Math.max(mostChunks, buffered.chunks);
            mostBytes = Math.max(mostBytes, buffered.bytes);
          }
          expect(mostChunks).toBeLessThanOrEqual(highWaterMark);
          // Reading stops at the byte bound, so only the chunk that crossed it (<= 6 × 4 bytes) is over.
          expect(mostBytes).toBeLessThan(maxBufferedBytes + 24);
          expect(output.map((value) => value.token).join('')).toBe(input.map((value) => value.token).join(''));
          let previous = -1;
          for (const value of output) {
            const merged = input.slice(previous + 1, value.index + 1);
            const last = merged.at(-1) as TokenChunk;
            // Each output chunk is a run of one kind, joined, with the fields of its last input.
            expect(value).toEqual({ ...last, token: merged.map((part) => part.token).join('') });
            expect(new Set(merged.map((part) => `${part.type}/${part.toolCall?.id}`)).size).toBe(1);
            if (merged.length > 1) expect(merged.every((part) => part.usage === undefined)).toBe(true);
            previous = value.index;
          }
          expect(previous).toBe(input.length - 1);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('withBackpressure: exit paths', () => {
  it('a break ends at once while a read of a hanging source is pending; its finally runs later', async () => {
    const { state, source } = hangingSource(1);
    for await (const value of pipe(source, withBackpressure())) {
      expect(value.index).toBe(0);
      await flush();
      break;
    }
    expect(state.finallyRuns).toBe(0);
    state.open();
    await flush();
    expect(state.finallyRuns).toBe(1);
  });

  it('return() settles a read pending on a hanging source as done', async () => {
    const { state, source } = hangingSource(0);
    const iterator = iterate(pipe(source, withBackpressure()));
    const pending = iterator.next();
    await flush();
    expect(await iterator.return?.()).toEqual(DONE);
    expect(await pending).toEqual(DONE);
    expect(await iterator.next()).toEqual(DONE);
    state.open();
    await flush();
    expect(state.finallyRuns).toBe(1);
  });

  it('a consumer that throws gets its own error back and the source is returned', async () => {
    const { state, source } = countingSource(100);
    const error = new Error('consumer failed');
    await expect(
      (async () => {
        for await (const value of pipe(source, withBackpressure())) if (value.index === 3) throw error;
      })(),
    ).rejects.toBe(error);
    expect(state.finallyRuns).toBe(1);
    const iterator = iterate(pipe(countingSource(1).source, withBackpressure()));
    await expect(iterator.throw?.(error)).rejects.toBe(error);
    expect(await iterator.next()).toEqual(DONE);
  });

  it('a source error reaches the consumer unchanged, after every chunk already buffered', async () => {
    const error = new Error('provider broke');
    async function* source() {
      yield chunk(0);
      yield chunk(1);
      yield chunk(2);
      throw error;
    }
    const iterator = iterate(pipe(source(), withBackpressure()));
    expect((await iterator.next()).value).toEqual(chunk(0));
    await flush();
    expect(inspectBuffer(iterator)?.chunks).toBe(2);
    expect((await iterator.next()).value).toEqual(chunk(1));
    expect((await iterator.next()).value).toEqual(chunk(2));
    await expect(iterator.next()).rejects.toBe(error);
    expect(await iterator.next()).toEqual(DONE);
  });

  it('a source error is delivered to a waiting reader, and one after the consumer left is swallowed', async () => {
    const error = new Error('late');
    let fail = (_: unknown) => {};
    const failing = new Promise<never>((_, reject) => (fail = reject));
    async function* source() {
      yield chunk(0);
      await failing;
    }
    const first = iterate(pipe(source(), withBackpressure()));
    await first.next();
    const read = first.next();
    fail(error);
    await expect(read).rejects.toBe(error);

    let failLater = (_: unknown) => {};
    const failingLater = new Promise<never>((_, reject) => (failLater = reject));
    async function* later() {
      yield chunk(0);
      await failingLater;
    }
    const second = iterate(pipe(later(), withBackpressure()));
    await second.next();
    await second.return?.();
    failLater(error);
    await flush();
    expect(await second.next()).toEqual(DONE);
  });
});

describe('withBackpressure: pacing', () => {
  async function timesOf(stream: AsyncIterable<TokenChunk>, advanceMs: number) {
    const start = performance.now();
    const times: number[] = [];
    const done = (async () => {
      for await (const _ of stream) times.push(performance.now() - start);
    })();
    await vi.advanceTimersByTimeAsync(advanceMs);
    await done;
    return times;
  }

  it('delivers a burst at once, then one chunk per 1000/rate ms, and leaves no timer', async () => {
    vi.useFakeTimers();
    const { source } = countingSource(6);
    const times = await timesOf(pipe(source, withBackpressure({ rate: 10, burst: 2 })), 1000);
    expect(times).toEqual([0, 0, 100, 200, 300, 400]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('defaults burst to rate, and refills while the source is slow', async () => {
    vi.useFakeTimers();
    async function* source() {
      for (let index = 0; index < 8; index++) yield chunk(index);
      // Read ahead, chunk 7 was taken at 0 ms: this ends at 2000 ms with a full bucket again.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      for (let index = 8; index < 13; index++) yield chunk(index);
    }
    const times = await timesOf(pipe(source(), withBackpressure({ rate: 4 })), 5000);
    expect(times).toEqual([0, 0, 0, 0, 250, 500, 750, 1000, 2000, 2000, 2000, 2000, 2250]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("with 'wait', pacing holds the source back at highWaterMark", async () => {
    vi.useFakeTimers();
    const { state, source } = countingSource(1000);
    const iterator = iterate(pipe(source, withBackpressure({ rate: 10, burst: 1, highWaterMark: 5 })));
    await iterator.next();
    const pending = iterator.next();
    await vi.advanceTimersByTimeAsync(50);
    expect(state.pulls).toBe(6);
    await vi.advanceTimersByTimeAsync(50);
    expect(await pending).toEqual({ done: false, value: chunk(1) });
    await vi.advanceTimersByTimeAsync(0);
    expect(state.pulls).toBe(7);
    await iterator.return?.();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("with 'coalesce', pacing keeps the buffer within its bounds and loses no text", async () => {
    vi.useFakeTimers();
    const { state, source } = countingSource(1000, (index) => chunk(index, 'ab'));
    const options = { rate: 2, burst: 1, highWaterMark: 4, maxBufferedBytes: 100, overflow: 'coalesce' } as const;
    const iterator = iterate(pipe(source, withBackpressure(options)));
    let text = '';
    let reads = 0;
    for (;;) {
      const read = iterator.next();
      await vi.advanceTimersByTimeAsync(100);
      // Paced out, the consumer is behind: the source is read up to the byte bound, in <= 4 chunks.
      if (reads === 0) expect(state.pulls).toBe(1 + 50);
      const buffered = inspectBuffer(iterator) as { chunks: number; bytes: number };
      expect(buffered.chunks).toBeLessThanOrEqual(4);
      expect(buffered.bytes).toBeLessThanOrEqual(100);
      await vi.advanceTimersByTimeAsync(400);
      const result = await read;
      if (result.done === true) break;
      reads++;
      text += result.value.token;
    }
    expect(text).toBe('ab'.repeat(1000));
    expect(reads).toBeLessThan(40);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clears its timer when the consumer leaves during a paced wait, and when the source fails', async () => {
    vi.useFakeTimers();
    const { state, source } = countingSource(10);
    const iterator = iterate(pipe(source, withBackpressure({ rate: 1, burst: 1 })));
    await iterator.next();
    const pending = iterator.next();
    await vi.advanceTimersByTimeAsync(10);
    expect(vi.getTimerCount()).toBe(1);
    await iterator.return?.();
    expect(await pending).toEqual(DONE);
    expect(vi.getTimerCount()).toBe(0);
    expect(state.finallyRuns).toBe(1);

    const error = new Error('broke');
    async function* failing() {
      yield chunk(0);
      yield chunk(1);
      throw error;
    }
    const paced = iterate(pipe(failing(), withBackpressure({ rate: 10, burst: 1 })));
    await paced.next();
    const outcome = (async () => {
      const results = [await paced.next()];
      try {
        await paced.next();
      } catch (caught) {
        results.push({ done: true, value: caught as never });
      }
      return results;
    })();
    await vi.advanceTimersByTimeAsync(100);
    expect(await outcome).toEqual([
      { done: false, value: chunk(1) },
      { done: true, value: error },
    ]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("with 'error', a source faster than the rate overflows and leaves no timer", async () => {
    vi.useFakeTimers();
    const { state, source } = countingSource(1000);
    const options = { rate: 5, burst: 1, highWaterMark: 2, overflow: 'error' } as const;
    const iterator = iterate(pipe(source, withBackpressure(options)));
    await iterator.next();
    const outcome = (async () => {
      const indexes: number[] = [];
      try {
        for (;;) {
          const result = await iterator.next();
          if (result.done === true) return { indexes };
          indexes.push(result.value.index);
        }
      } catch (error) {
        return { indexes, error };
      }
    })();
    await vi.advanceTimersByTimeAsync(1000);
    const { indexes, error } = await outcome;
    expect(indexes).toEqual([1, 2]);
    expect(isBackpressureError(error)).toBe(true);
    expect(state.finallyRuns).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('withBackpressureUntil (the adapters’ read-ahead and abort in one layer)', () => {
  /** A signal whose abort listeners can be counted. */
  function countedSignal() {
    const controller = new AbortController();
    return { controller, listeners: () => getEventListeners(controller.signal, 'abort').length };
  }

  it('drops what is buffered on abort: the next read rejects with StreamAbortedError, then done', async () => {
    const { controller, listeners } = countedSignal();
    const { state, source } = countingSource(100);
    const iterator = withBackpressureUntil({ highWaterMark: 8 }, controller.signal)(source)[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: chunk(0) });
    await flush();
    expect(inspectBuffer(iterator)?.chunks).toBe(8);
    const reason = new Error('client gone');
    controller.abort(reason);
    expect(inspectBuffer(iterator)?.chunks).toBe(0);
    await expect(iterator.next()).rejects.toMatchObject({ name: 'StreamAbortedError', cause: reason });
    expect(await iterator.next()).toEqual(DONE);
    await flush();
    expect(state.finallyRuns).toBe(1);
    expect(listeners()).toBe(0);
  });

  it('rejects a pending read at once, with a tokenrelay reason (a timeout) as it is', async () => {
    const { controller, listeners } = countedSignal();
    const { state, source } = hangingSource(1);
    const iterator = withBackpressureUntil({}, controller.signal)(source)[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    const timeout = new StreamTimeoutError('idle', 1000);
    controller.abort(timeout);
    await expect(pending).rejects.toBe(timeout);
    expect(listeners()).toBe(0);
    state.open();
    await flush();
    expect(state.finallyRuns).toBe(1);
  });

  it('never opens a source whose signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    let reads = 0;
    let returned = 0;
    const source = {
      [Symbol.asyncIterator]: () => ({
        next: () => (reads++, Promise.resolve({ done: false as const, value: chunk(0) })),
        return: () => (returned++, Promise.resolve({ done: true as const, value: undefined })),
      }),
    };
    const iterator = withBackpressureUntil({}, controller.signal)(source)[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toMatchObject({ name: 'StreamAbortedError' });
    expect(await iterator.next()).toEqual(DONE);
    expect(reads).toBe(0);
    expect(returned).toBe(1);
  });

  it('removes its listener on every other exit: end, source error, consumer return', async () => {
    for (const exit of ['end', 'error', 'return'] as const) {
      const { controller, listeners } = countedSignal();
      async function* source() {
        yield chunk(0);
        if (exit === 'error') throw new Error('provider failed');
      }
      const iterator = withBackpressureUntil({}, controller.signal)(source())[Symbol.asyncIterator]();
      expect(listeners()).toBe(1);
      await iterator.next();
      if (exit === 'return') await iterator.return?.();
      else if (exit === 'error') await expect(iterator.next()).rejects.toThrow('provider failed');
      else expect(await iterator.next()).toEqual(DONE);
      expect(listeners()).toBe(0);
    }
  });
});

// Issue 12: behind withTimeout (given the controller the adapter aborts on disconnect), the
// read-ahead took the source's return(), which settles its pending read as done, for the end of
// the stream: a disconnect with `timeout` set was reported as `completed`.
describe('withBackpressureUntil: a disconnect is reported as aborted behind withTimeout and every upstream that settles on return()', () => {
  /** The adapters' pipeline: `upstream` (withTimeout on the shared controller), read-ahead and abort, monitored. */
  function adapterPipeline(
    source: AsyncIterable<TokenChunk>,
    controller: AbortController,
    options: WithBackpressureOptions = {},
    upstream: Operator<TokenChunk, TokenChunk> = withTimeout({ firstTokenMs: 60_000, idleMs: 60_000, totalMs: 600_000, controller }),
  ) {
    const outcomes: string[] = [];
    const stream = pipe(
      source,
      upstream,
      withBackpressureUntil(options, controller.signal),
      monitored({ onFinish: (metrics) => void outcomes.push(metrics.outcome) }),
    );
    return { iterator: iterate(stream), outcomes };
  }

  it('withTimeout + read-ahead + monitored, aborted while a read is pending: the read rejects and the outcome is aborted', async () => {
    const controller = new AbortController();
    const { state, source } = hangingSource(2);
    const { iterator, outcomes } = adapterPipeline(source, controller);
    expect(await iterator.next()).toEqual({ done: false, value: chunk(0) });
    expect(await iterator.next()).toEqual({ done: false, value: chunk(1) });
    const pending = iterator.next();
    const reason = new Error('client gone');
    controller.abort(reason);
    await expect(pending).rejects.toMatchObject({ name: 'StreamAbortedError', cause: reason });
    expect(outcomes).toEqual(['aborted']);
    expect(await iterator.next()).toEqual(DONE);
    state.open();
    await flush();
    expect(state.finallyRuns).toBe(1);
    expect(outcomes).toEqual(['aborted']);
  });

  it('aborted with chunks buffered in the read-ahead and a read waiting for the pace: aborted, the buffered chunks dropped', async () => {
    const controller = new AbortController();
    const { state, source } = hangingSource(4);
    const { iterator, outcomes } = adapterPipeline(source, controller, { rate: 1, burst: 1 });
    expect(await iterator.next()).toEqual({ done: false, value: chunk(0) });
    const pending = iterator.next(); // the bucket is empty for a second: this read waits with chunks buffered
    await flush(); // chunks 1 to 3 are read ahead; the pull of chunk 4 hangs
    controller.abort(new Error('client gone'));
    await expect(pending).rejects.toMatchObject({ name: 'StreamAbortedError' });
    expect(outcomes).toEqual(['aborted']);
    expect(await iterator.next()).toEqual(DONE);
    state.open();
    await flush();
    expect(state.finallyRuns).toBe(1);
  });

  it('aborted between reads with chunks buffered and the next pull pending: the next read rejects, aborted', async () => {
    const controller = new AbortController();
    const { state, source } = hangingSource(5);
    const { iterator, outcomes } = adapterPipeline(source, controller, { highWaterMark: 8 });
    expect(await iterator.next()).toEqual({ done: false, value: chunk(0) });
    await flush(); // chunks 1 to 4 are read ahead; the pull of chunk 5 hangs
    controller.abort(new Error('client gone'));
    await expect(iterator.next()).rejects.toMatchObject({ name: 'StreamAbortedError' });
    expect(outcomes).toEqual(['aborted']);
    state.open();
    await flush();
    expect(state.finallyRuns).toBe(1);
  });

  it.each([
    ['withBackpressure', () => withBackpressure()],
    ['monitored', () => monitored({})],
  ])('behind %s (a source already piped by the app), without withTimeout: aborted', async (_name, upstream) => {
    const controller = new AbortController();
    const { state, source } = hangingSource(2);
    const { iterator, outcomes } = adapterPipeline(source, controller, {}, upstream());
    await iterator.next();
    await iterator.next();
    const pending = iterator.next();
    controller.abort(new Error('client gone'));
    await expect(pending).rejects.toMatchObject({ name: 'StreamAbortedError' });
    expect(outcomes).toEqual(['aborted']);
    state.open();
    await flush();
    expect(state.finallyRuns).toBe(1);
  });

  it('a timeout on the shared controller is still reported as timeout', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const controller = new AbortController();
    const { source } = hangingSource(1);
    const { iterator, outcomes } = adapterPipeline(source, controller, {}, withTimeout({ idleMs: 100, controller }));
    await iterator.next();
    const pending = iterator.next();
    const settled = pending.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(await settled).toMatchObject({ name: 'StreamTimeoutError', phase: 'idle' });
    expect(outcomes).toEqual(['timeout']);
    expect(controller.signal.reason).toBe(await settled);
  });
});
