import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isStreamTimeoutError, pipe, StreamTimeoutError, withAbort, withTimeout } from 'tokenrelay';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Yields i after waiting delays[i] from the moment it is asked for the next value. */
function delayedSource(delays: number[], signal?: AbortSignal) {
  const state = { finallyRuns: 0 };
  async function* source() {
    try {
      for (const [index, delay] of delays.entries()) {
        await sleep(delay, signal);
        yield index;
      }
    } finally {
      state.finallyRuns++;
    }
  }
  return { state, source: source() };
}

/** Yields `before`, then hangs on a gate that only the test can open. */
function hangingSource(before: number[]) {
  const state = { finallyRuns: 0, open: () => {} };
  const gate = new Promise<void>((resolve) => (state.open = resolve));
  async function* source() {
    try {
      yield* before;
      await gate;
    } finally {
      state.finallyRuns++;
    }
  }
  return { state, source: source() };
}

/** Consumes a stream, recording each value and the outcome with its time since the first read. */
async function consume<T>(stream: AsyncIterable<T>) {
  const start = performance.now();
  const values: Array<[T, number]> = [];
  try {
    for await (const value of stream) values.push([value, performance.now() - start]);
    return { values, error: undefined as unknown, at: performance.now() - start };
  } catch (error) {
    return { values, error, at: performance.now() - start };
  }
}

async function run<T>(stream: AsyncIterable<T>, advanceMs = 100_000) {
  const result = consume(stream);
  await vi.advanceTimersByTimeAsync(advanceMs);
  return result;
}

describe('withTimeout', () => {
  it('times out between chunks: a chunk at idleMs - 1 is in time, one at idleMs is not', async () => {
    const controller = new AbortController();
    const { state, source } = delayedSource([5, 99, 99, 100, 1], controller.signal);
    const result = await run(pipe(source, withTimeout({ idleMs: 100, controller })));
    expect(result.values).toEqual([[0, 5], [1, 104], [2, 203]]);
    expect(result.at).toBe(303);
    expect(result.error).toBeInstanceOf(StreamTimeoutError);
    expect(result.error).toMatchObject({ code: 'timeout', phase: 'idle', timeoutMs: 100 });
    expect(controller.signal.reason).toBe(result.error);
    expect(state.finallyRuns).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends a source that never answers exactly at the idle deadline', async () => {
    const { state, source } = hangingSource([1]);
    const iterator = pipe(source, withTimeout({ idleMs: 1_000 }))[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: 1 });
    let outcome: unknown;
    iterator.next().then(
      (result) => (outcome = result),
      (error: unknown) => (outcome = error),
    );
    await vi.advanceTimersByTimeAsync(999);
    expect(outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(isStreamTimeoutError(outcome) && outcome.phase).toBe('idle');
    expect(vi.getTimerCount()).toBe(0);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(state.finallyRuns).toBe(0);
    state.open();
    await vi.waitFor(() => expect(state.finallyRuns).toBe(1));
  });

  it('does not count consumer think-time as idle', async () => {
    const { source } = delayedSource([10, 99, 99]);
    const iterator = pipe(source, withTimeout({ idleMs: 100, totalMs: 10_000 }))[Symbol.asyncIterator]();
    const first = iterator.next();
    await vi.advanceTimersByTimeAsync(10);
    expect(await first).toEqual({ done: false, value: 0 });
    await vi.advanceTimersByTimeAsync(5_000); // the consumer is busy far longer than idleMs
    const second = iterator.next();
    await vi.advanceTimersByTimeAsync(99);
    expect(await second).toEqual({ done: false, value: 1 });
    await vi.advanceTimersByTimeAsync(300);
    const third = iterator.next();
    await vi.advanceTimersByTimeAsync(99);
    expect(await third).toEqual({ done: false, value: 2 });
    const end = iterator.next();
    await vi.advanceTimersByTimeAsync(0);
    expect(await end).toEqual({ done: true, value: undefined });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('times the first chunk from the first read, not from when the stream was built', async () => {
    const late = pipe(delayedSource([1_000]).source, withTimeout({ firstTokenMs: 1_000, idleMs: 10 }));
    await vi.advanceTimersByTimeAsync(5_000);
    const result = await run(late);
    expect(result.values).toEqual([]);
    expect(result.at).toBe(1_000);
    expect(result.error).toMatchObject({ phase: 'first-token', timeoutMs: 1_000 });
    expect(String((result.error as Error).message)).toBe('No first token within 1000 ms');

    // firstTokenMs only bounds the first chunk, and idleMs does not apply to it.
    const inTime = pipe(delayedSource([999, 500, 500]).source, withTimeout({ firstTokenMs: 1_000 }));
    const iterator = inTime[Symbol.asyncIterator]();
    const first = iterator.next();
    await vi.advanceTimersByTimeAsync(999);
    expect(await first).toEqual({ done: false, value: 0 });
    expect(vi.getTimerCount()).toBe(1); // the first-token timer, armed lazily, is still pending
    const second = iterator.next();
    expect(vi.getTimerCount()).toBe(1); // released: the source's delay is the only timer left
    await vi.advanceTimersByTimeAsync(500);
    expect(await second).toEqual({ done: false, value: 1 });
    const third = iterator.next();
    await vi.advanceTimersByTimeAsync(500);
    expect(await third).toEqual({ done: false, value: 2 });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    const idleOnly = pipe(delayedSource([5_000, 50]).source, withTimeout({ idleMs: 100 }));
    expect((await run(idleOnly)).values).toEqual([[0, 5_000], [1, 5_050]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends a source that never answers exactly at the first-token deadline', async () => {
    const controller = new AbortController();
    const { state, source } = hangingSource([]);
    const result = consume(pipe(source, withTimeout({ firstTokenMs: 250, controller })));
    await vi.advanceTimersByTimeAsync(249);
    expect(controller.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(controller.signal.aborted).toBe(true);
    const { error, at } = await result;
    expect(at).toBe(250);
    expect(error).toMatchObject({ phase: 'first-token', timeoutMs: 250 });
    expect(controller.signal.reason).toBe(error);
    expect(vi.getTimerCount()).toBe(0);
    state.open();
    await vi.waitFor(() => expect(state.finallyRuns).toBe(1));
  });

  it('bounds the whole stream with totalMs over many chunks', async () => {
    const controller = new AbortController();
    const { state, source } = delayedSource(Array.from({ length: 20 }, () => 100), controller.signal);
    const result = await run(pipe(source, withTimeout({ idleMs: 150, totalMs: 1_000, controller })));
    expect(result.values.map(([, at]) => at)).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900]);
    expect(result.at).toBe(1_000);
    expect(result.error).toMatchObject({ phase: 'total', timeoutMs: 1_000 });
    expect(controller.signal.reason).toBe(result.error);
    expect(state.finallyRuns).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('counts consumer time in totalMs and aborts the controller at the deadline, between reads', async () => {
    const controller = new AbortController();
    const { state, source } = delayedSource([10, 10], controller.signal);
    const iterator = pipe(source, withTimeout({ totalMs: 500, controller }))[Symbol.asyncIterator]();
    const first = iterator.next();
    await vi.advanceTimersByTimeAsync(10);
    expect(await first).toEqual({ done: false, value: 0 });
    await vi.advanceTimersByTimeAsync(489);
    expect(controller.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(controller.signal.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await vi.waitFor(() => expect(state.finallyRuns).toBe(1));
    const error: unknown = await iterator.next().catch((caught: unknown) => caught);
    expect(error).toBe(controller.signal.reason);
    expect(error).toMatchObject({ phase: 'total', timeoutMs: 500 });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('cleans up on consumer break, return() during a pending read, and a source error', async () => {
    const controller = new AbortController();
    const options = { firstTokenMs: 1_000, idleMs: 1_000, totalMs: 10_000, controller };

    const broken = delayedSource([10, 10, 10]);
    const consumer = (async () => {
      for await (const value of pipe(broken.source, withTimeout(options))) if (value === 1) break;
    })();
    await vi.advanceTimersByTimeAsync(20);
    await consumer;
    expect(broken.state.finallyRuns).toBe(1);
    expect(vi.getTimerCount()).toBe(0);

    const hanging = hangingSource([1]);
    const iterator = pipe(hanging.source, withTimeout(options))[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    await vi.advanceTimersByTimeAsync(500);
    await iterator.return?.();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(vi.getTimerCount()).toBe(0);
    hanging.state.open();
    await vi.waitFor(() => expect(hanging.state.finallyRuns).toBe(1));

    const failure = new Error('provider broke');
    async function* failing() {
      yield 1;
      await sleep(10);
      throw failure;
    }
    const result = await run(pipe(failing(), withTimeout(options)));
    expect(result.values).toEqual([[1, 0]]);
    expect(result.error).toBe(failure);
    expect(result.at).toBe(10);
    expect(vi.getTimerCount()).toBe(0);
    expect(controller.signal.aborted).toBe(false);
  });

  it('keeps a single timer alive instead of creating one per chunk', async () => {
    const pending: Array<(result: IteratorResult<number>) => void> = [];
    let reads = 0;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          if (pending.length > 0) throw new Error('read ahead');
          reads++;
          return new Promise((resolve) => pending.push(resolve));
        },
      }),
    };
    const setSpy = vi.spyOn(globalThis, 'setTimeout');
    const clearSpy = vi.spyOn(globalThis, 'clearTimeout');
    const iterator = pipe(source, withTimeout({ firstTokenMs: 500, idleMs: 300, totalMs: 60_000 }))[
      Symbol.asyncIterator
    ]();
    for (let index = 0; index < 100; index++) {
      const read = iterator.next();
      await vi.advanceTimersByTimeAsync(10);
      pending.shift()?.({ done: false, value: index });
      expect(await read).toEqual({ done: false, value: index });
    }
    expect(reads).toBe(100);
    expect(vi.getTimerCount()).toBe(1);
    // 1,000 ms of reads against a 300 ms idle limit: a handful of re-arms, not 100.
    expect(setSpy.mock.calls.length).toBeLessThanOrEqual(6);
    expect(clearSpy.mock.calls.length).toBeLessThanOrEqual(2);
    await iterator.return?.();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('wins over an upstream withAbort on the same controller: the consumer sees the timeout', async () => {
    const controller = new AbortController();
    const { state, source } = hangingSource([1]);
    const stream = pipe(source, withAbort(controller.signal), withTimeout({ idleMs: 50, controller }));
    const result = await run(stream, 50);
    expect(result.values).toEqual([[1, 0]]);
    expect(result.error).toMatchObject({ phase: 'idle', timeoutMs: 50 });
    expect(controller.signal.reason).toBe(result.error);
    state.open();
    await vi.waitFor(() => expect(state.finallyRuns).toBe(1));
  });

  it('passes the source through untouched when no limit is set', () => {
    const source = delayedSource([1]).source;
    expect(withTimeout()(source)).toBe(source);
    expect(withTimeout({ idleMs: Infinity, totalMs: undefined })(source)).toBe(source);
  });

  it('validates its options', () => {
    expect(() => withTimeout({ idleMs: -1 })).toThrow(new TypeError('Expected `idleMs` to be a number >= 0, got -1'));
    expect(() => withTimeout({ firstTokenMs: Number.NaN })).toThrow(
      new TypeError('Expected `firstTokenMs` to be a number >= 0, got NaN'),
    );
    expect(() => withTimeout({ totalMs: '5' as unknown as number })).toThrow(
      new TypeError('Expected `totalMs` to be a number >= 0, got "5"'),
    );
    expect(() => withTimeout({ controller: {} as AbortController })).toThrow(
      new TypeError('Expected `controller` to be an AbortController, got an object'),
    );
    expect(() => withTimeout({ idleMs: 0, totalMs: Infinity, controller: new AbortController() })).not.toThrow();
  });
});
