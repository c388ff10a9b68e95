import { getEventListeners, setMaxListeners } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { isStreamAbortedError, pipe, StreamAbortedError, StreamTimeoutError, withAbort } from 'tokenrelay';

/** A generator that yields `before`, then waits on a gate the test opens (or never). */
function gatedSource(before: number[], after: number[] = []) {
  const state = { reads: 0, finallyRuns: 0, open: () => {} };
  const gate = new Promise<void>((resolve) => (state.open = resolve));
  async function* source() {
    try {
      for (const value of before) {
        state.reads++;
        yield value;
      }
      state.reads++;
      await gate;
      yield* after;
    } finally {
      state.finallyRuns++;
    }
  }
  return { state, source: source() };
}

function listeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

describe('withAbort', () => {
  it('passes chunks through unchanged and removes its listener when the source ends', async () => {
    const signal = new AbortController().signal;
    const { state, source } = gatedSource([1, 2]);
    state.open();
    const stream = pipe(source, withAbort(signal));
    const seen: number[] = [];
    for await (const value of stream) {
      seen.push(value);
      expect(listeners(signal)).toBe(1);
    }
    expect(seen).toEqual([1, 2]);
    expect(listeners(signal)).toBe(0);
    expect(state.finallyRuns).toBe(1);
  });

  it('rejects a pending read at once when the signal aborts, with signal.reason as cause', async () => {
    const controller = new AbortController();
    const { state, source } = gatedSource([1], [2]);
    const iterator = pipe(source, withAbort(controller.signal))[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: 1 });
    const pending = iterator.next();
    const reason = new Error('client went away');
    controller.abort(reason);
    const error: unknown = await pending.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StreamAbortedError);
    expect(isStreamAbortedError(error) && error.code).toBe('aborted');
    expect((error as Error).cause).toBe(reason);
    expect(listeners(controller.signal)).toBe(0);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });

    // The source is stuck in its read: its finally runs once that read settles, exactly once.
    expect(state.finallyRuns).toBe(0);
    state.open();
    await vi.waitFor(() => expect(state.finallyRuns).toBe(1));
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('delivers an abort that happens between reads to the next read, then ends', async () => {
    const controller = new AbortController();
    const { state, source } = gatedSource([1, 2]);
    const iterator = pipe(source, withAbort(controller.signal))[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    const error: unknown = await iterator.next().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StreamAbortedError);
    expect((error as Error).cause).toBe(controller.signal.reason);
    expect((error as Error).cause).toBeInstanceOf(DOMException);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(state.finallyRuns).toBe(1);
    expect(state.reads).toBe(1);
  });

  it('ends before the first read when the signal is already aborted, and still returns the source', async () => {
    const reason = new Error('already gone');
    const signal = AbortSignal.abort(reason);
    const next = vi.fn(async () => ({ done: false as const, value: 1 }));
    const returned = vi.fn(async () => ({ done: true as const, value: undefined }));
    const source: AsyncIterable<number> = { [Symbol.asyncIterator]: () => ({ next, return: returned }) };
    const add = vi.spyOn(signal, 'addEventListener');
    const stream = pipe(source, withAbort(signal));
    const error: unknown = await (async () => {
      for await (const _ of stream) throw new Error('must not read');
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StreamAbortedError);
    expect((error as Error).cause).toBe(reason);
    expect(next).not.toHaveBeenCalled();
    expect(returned).toHaveBeenCalledTimes(1);
    expect(add).not.toHaveBeenCalled();
    expect(listeners(signal)).toBe(0);
  });

  it('on consumer break or throw: returns the source and removes the listener', async () => {
    const signal = new AbortController().signal;
    const broken = gatedSource([1, 2, 3]);
    for await (const value of pipe(broken.source, withAbort(signal))) {
      if (value === 1) break;
    }
    expect(broken.state.finallyRuns).toBe(1);
    expect(listeners(signal)).toBe(0);

    const thrown = gatedSource([1, 2, 3]);
    const failure = new Error('consumer failed');
    await expect(
      (async () => {
        for await (const _ of pipe(thrown.source, withAbort(signal))) throw failure;
      })(),
    ).rejects.toBe(failure);
    expect(thrown.state.finallyRuns).toBe(1);
    expect(listeners(signal)).toBe(0);
  });

  it('on return() while a read is pending: ends at once, the source finally runs once it settles', async () => {
    const signal = new AbortController().signal;
    const { state, source } = gatedSource([1], [2]);
    const iterator = pipe(source, withAbort(signal))[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    await iterator.return?.();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(listeners(signal)).toBe(0);
    state.open();
    await vi.waitFor(() => expect(state.finallyRuns).toBe(1));
  });

  it('propagates a source error unchanged and removes the listener', async () => {
    const controller = new AbortController();
    const failure = new Error('provider broke');
    async function* source() {
      yield 1;
      throw failure;
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const value of pipe(source(), withAbort(controller.signal))) seen.push(value);
      })(),
    ).rejects.toBe(failure);
    expect(seen).toEqual([1]);
    expect(listeners(controller.signal)).toBe(0);
    expect(() => controller.abort()).not.toThrow();
  });

  it('treats a source whose next() throws synchronously like a failed read: no leak, no hang', async () => {
    const signal = new AbortController().signal;
    const failure = new Error('sync throw');
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          throw failure;
        },
      }),
    };
    const iterator = pipe(source, withAbort(signal))[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toBe(failure);
    expect(listeners(signal)).toBe(0);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('gives each iteration its own listener on a shared signal', async () => {
    const controller = new AbortController();
    const a = gatedSource([1]);
    const b = gatedSource([1]);
    const first = pipe(a.source, withAbort(controller.signal))[Symbol.asyncIterator]();
    const second = pipe(b.source, withAbort(controller.signal))[Symbol.asyncIterator]();
    await Promise.all([first.next(), second.next()]);
    expect(listeners(controller.signal)).toBe(2);
    const pending = [first.next(), second.next()];
    controller.abort();
    for (const read of pending) await expect(read).rejects.toBeInstanceOf(StreamAbortedError);
    expect(listeners(controller.signal)).toBe(0);
    a.state.open();
    b.state.open();
  });

  it('leaves no listener and no MaxListenersExceeded warning after 10,000 streams on one signal', async () => {
    const controller = new AbortController();
    setMaxListeners(10, controller.signal); // Node would warn from the 11th listener left behind.
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const failure = new Error('upstream');
      for (let i = 0; i < 10_000; i++) {
        async function* source() {
          yield 1;
          if (i % 3 === 1) throw failure;
          yield 2;
        }
        try {
          for await (const value of pipe(source(), withAbort(controller.signal))) {
            if (i % 3 === 2 && value === 1) break;
          }
        } catch (error) {
          if (error !== failure) throw error;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(listeners(controller.signal)).toBe(0);
      expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('rejects an argument that is not an AbortSignal', () => {
    expect(() => withAbort(undefined as unknown as AbortSignal)).toThrow(
      new TypeError('Expected `signal` to be an AbortSignal, got undefined'),
    );
    expect(() => withAbort({} as AbortSignal)).toThrow(TypeError);
  });

  it('throws a reason that is already a tokenrelay error as it is (a timeout stays a timeout)', async () => {
    const controller = new AbortController();
    async function* slow() {
      yield 1;
      await new Promise(() => {});
    }
    const iterator = pipe(slow(), withAbort<number>(controller.signal))[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    const timeout = new StreamTimeoutError('idle', 100);
    controller.abort(timeout);
    await expect(pending).rejects.toBe(timeout);
  });
});
