import { pipe, withBackpressure, withRate, type TokenChunk } from 'tokenrelay';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TAKE_READY } from '../../src/core/kernel.js';

const DONE = { done: true, value: undefined };

function chunk(index: number): TokenChunk {
  return { token: `t${index}`, index, timestamp: 0, type: 'text' };
}

/** A source that counts how often it is read and whether its finally ran. */
function countingSource(count: number) {
  const state = { pulls: 0, finallyRuns: 0 };
  async function* generate(): AsyncGenerator<TokenChunk> {
    try {
      for (let index = 0; index < count; index++) {
        state.pulls++;
        yield chunk(index);
      }
    } finally {
      state.finallyRuns++;
    }
  }
  return { state, source: generate() };
}

async function timesOf(stream: AsyncIterable<TokenChunk>, advanceMs: number): Promise<number[]> {
  const start = performance.now();
  const times: number[] = [];
  const done = (async () => {
    for await (const _ of stream) times.push(performance.now() - start);
  })();
  await vi.advanceTimersByTimeAsync(advanceMs);
  await done;
  return times;
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

describe('withRate', () => {
  it('delivers a burst at once, then one chunk per 1000/rate ms, and leaves no timer', async () => {
    const { source } = countingSource(6);
    expect(await timesOf(pipe(source, withRate({ rate: 10, burst: 2 })), 1000)).toEqual([0, 0, 100, 200, 300, 400]);
  });

  it('defaults burst to rate', async () => {
    const { source } = countingSource(6);
    expect(await timesOf(pipe(source, withRate({ rate: 4 })), 1000)).toEqual([0, 0, 0, 0, 250, 500]);
  });

  it('reads the source only on demand and holds at most one chunk', async () => {
    const { state, source } = countingSource(100);
    const iterator = pipe(source, withRate({ rate: 1, burst: 1 }))[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: chunk(0) });
    const pending = iterator.next();
    await vi.advanceTimersByTimeAsync(500);
    expect(state.pulls).toBe(2);
    await vi.advanceTimersByTimeAsync(500);
    expect(await pending).toEqual({ done: false, value: chunk(1) });
    expect(state.pulls).toBe(2);
    await iterator.return!();
  });

  it('never delays the end or a source error', async () => {
    const ended = pipe(countingSource(1).source, withRate({ rate: 1, burst: 1 }))[Symbol.asyncIterator]();
    await ended.next();
    expect(await ended.next()).toEqual(DONE);

    const error = new Error('broke');
    async function* failing() {
      yield chunk(0);
      throw error;
    }
    const failed = pipe(failing(), withRate({ rate: 1, burst: 1 }))[Symbol.asyncIterator]();
    await failed.next();
    await expect(failed.next()).rejects.toBe(error);
    expect(await failed.next()).toEqual(DONE);
  });

  it('return() during a paced wait ends the read at once, clears the timer and returns the source', async () => {
    const { state, source } = countingSource(10);
    const iterator = pipe(source, withRate({ rate: 1, burst: 1 }))[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    await vi.advanceTimersByTimeAsync(10);
    expect(vi.getTimerCount()).toBe(1);
    expect(await iterator.return!()).toEqual(DONE);
    expect(await pending).toEqual(DONE);
    expect(vi.getTimerCount()).toBe(0);
    expect(state.finallyRuns).toBe(1);
  });

  it('takes a ready chunk without a wait (TAKE_READY) only when a token is there', async () => {
    const { source } = countingSource(10);
    const buffered = pipe(source, withBackpressure({ highWaterMark: 8 }), withRate({ rate: 10, burst: 2 }));
    const iterator = buffered[Symbol.asyncIterator]() as AsyncIterator<TokenChunk> & {
      [TAKE_READY](): IteratorYieldResult<TokenChunk> | undefined;
    };
    expect(await iterator.next()).toEqual({ done: false, value: chunk(0) });
    await vi.advanceTimersByTimeAsync(0);
    expect(iterator[TAKE_READY]()).toEqual({ done: false, value: chunk(1) });
    expect(iterator[TAKE_READY]()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(100);
    expect(iterator[TAKE_READY]()).toEqual({ done: false, value: chunk(2) });
    await iterator.return!();
  });

  it('after withBackpressure, lets the source run ahead into the buffer while chunks wait for tokens', async () => {
    const { state, source } = countingSource(1000);
    const iterator = pipe(source, withBackpressure({ highWaterMark: 5 }), withRate({ rate: 10, burst: 1 }))[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    await vi.advanceTimersByTimeAsync(50);
    // One delivered, one held by withRate, five in the buffer.
    expect(state.pulls).toBe(7);
    await vi.advanceTimersByTimeAsync(50);
    expect(await pending).toEqual({ done: false, value: chunk(1) });
    await iterator.return!();
  });

  it.each([
    [{ rate: 0 }, 'Expected `rate` to be a finite number > 0, got 0'],
    [{ rate: Infinity }, 'Expected `rate` to be a finite number > 0, got Infinity'],
    [{}, 'Expected `rate` to be a finite number > 0, got undefined'],
    [{ rate: 10, burst: 0.5 }, 'Expected `burst` to be a finite number >= 1, got 0.5'],
    [{ rate: 10, brust: 2 }, 'brust'],
  ])('rejects bad options %o', (options, message) => {
    expect(() => withRate(options as never)).toThrow(message);
  });
});
