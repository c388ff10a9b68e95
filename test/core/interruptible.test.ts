import { describe, expect, it, vi } from 'vitest';
import {
  Interruptible,
  READ_INTO,
  READ_THROUGH,
  SETTLES_ON_RETURN,
  TAKE_READY,
} from '../../src/core/kernel.js';

function neverEndingSource() {
  const state = { finallyRan: false, release: () => {} };
  const gate = new Promise<void>((resolve) => (state.release = resolve));
  async function* source() {
    try {
      yield 1;
      await gate;
      yield 2;
    } finally {
      state.finallyRan = true;
    }
  }
  return { state, source: source() };
}

describe('Interruptible', () => {
  it('ends a pending read at once when stopped, and the source finally runs once it settles', async () => {
    const { state, source } = neverEndingSource();
    const onClose = vi.fn();
    const it = new Interruptible(source, onClose);
    expect(await it.next()).toEqual({ done: false, value: 1 });
    const pending = it.next();
    await it.return();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(state.finallyRan).toBe(false);
    state.release();
    await vi.waitFor(() => expect(state.finallyRan).toBe(true));
  });

  it('rejects the pending read with the stop error, then reports done', async () => {
    const { state, source } = neverEndingSource();
    const it = new Interruptible(source);
    await it.next();
    const pending = it.next();
    const error = new Error('stop');
    it.stop(error);
    await expect(pending).rejects.toBe(error);
    expect(await it.next()).toEqual({ done: true, value: undefined });
    state.release();
  });

  it('delivers a stop error raised between reads to the next read', async () => {
    const { state, source } = neverEndingSource();
    const it = new Interruptible(source);
    await it.next();
    const error = new Error('late');
    it.stop(error);
    await expect(it.next()).rejects.toBe(error);
    expect(await it.next()).toEqual({ done: true, value: undefined });
    state.release();
  });

  it('closes once when the source ends or fails, without calling return()', async () => {
    const onClose = vi.fn();
    const returnSpy = vi.fn();
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => ({ done: true, value: undefined }),
        return: async () => (returnSpy(), { done: true, value: undefined }),
      }),
    };
    const it = new Interruptible(source, onClose);
    expect((await it.next()).done).toBe(true);
    it.stop();
    await it.return();
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(returnSpy).not.toHaveBeenCalled();

    const failing = new Interruptible(
      (async function* () {
        throw new Error('boom');
      })(),
      onClose,
    );
    await expect(failing.next()).rejects.toThrow('boom');
    expect(onClose).toHaveBeenCalledTimes(2);
  });

  it('serves concurrent reads in order', async () => {
    const it = new Interruptible(
      (async function* () {
        yield 1;
        yield 2;
      })(),
    );
    const [a, b, c] = await Promise.all([it.next(), it.next(), it.next()]);
    expect([a, b, c]).toEqual([
      { done: false, value: 1 },
      { done: false, value: 2 },
      { done: true, value: undefined },
    ]);
  });
});

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** A source whose reads the test settles by hand; it can brand itself SETTLES_ON_RETURN and offer a ready value. */
function manualSource(options: { settlesOnReturn?: boolean; ready?: number[] } = {}) {
  const calls = { next: 0, return: 0, readThrough: 0 };
  let settle: ((result: IteratorResult<number>) => void) | undefined;
  let fail: ((error: unknown) => void) | undefined;
  const iterator = {
    next(): Promise<IteratorResult<number>> {
      calls.next++;
      return new Promise((resolve, reject) => {
        settle = resolve;
        fail = reject;
      });
    },
    return(): Promise<IteratorResult<number>> {
      calls.return++;
      // A source that settles on return ends its own pending read at once.
      if (options.settlesOnReturn === true) settle?.(DONE);
      return Promise.resolve(DONE);
    },
    [TAKE_READY]: () => {
      const value = options.ready?.shift();
      return value === undefined ? undefined : { done: false as const, value };
    },
    [READ_THROUGH]: () => {
      calls.readThrough++;
      return undefined;
    },
    get [SETTLES_ON_RETURN]() {
      return options.settlesOnReturn === true;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return {
    calls,
    source: iterator as AsyncIterableIterator<number>,
    deliver: (value: number) => settle?.({ done: false, value }),
    end: () => settle?.(DONE),
    fail: (error: unknown) => fail?.(error),
  };
}

describe('Interruptible fast paths', () => {
  it('SETTLES_ON_RETURN: reads such a source directly (through it first), and a stop ends the read the source settles', async () => {
    const { calls, source, deliver } = manualSource({ settlesOnReturn: true });
    const it = new Interruptible(source);
    const first = it.next();
    expect(calls.readThrough).toBe(1);
    expect(calls.next).toBe(1);
    deliver(1);
    expect(await first).toEqual({ done: false, value: 1 });
    const pending = it.next();
    const error = new Error('stopped');
    it.stop(error);
    expect(calls.return).toBe(1);
    await expect(pending).rejects.toBe(error);
    expect(await it.next()).toEqual(DONE);
  });

  it('READ_THROUGH: settles the read with the handlers applied, and takes no read while one is in flight', async () => {
    const { source, deliver } = manualSource();
    const it = new Interruptible(source);
    const read = it[READ_THROUGH]((result) => (result.done === true ? -1 : result.value * 10), () => -2);
    expect(read).toBeInstanceOf(Promise);
    expect(it[READ_THROUGH](() => 0, () => 0)).toBeUndefined();
    deliver(4);
    expect(await read).toBe(40);
  });

  it('READ_INTO: hands the result to the handlers with no promise, and refuses while busy or closed', async () => {
    const { source, deliver, fail } = manualSource();
    const it = new Interruptible(source);
    const results: unknown[] = [];
    expect(it[READ_INTO]((result) => results.push(result), (error) => results.push(error))).toBe(true);
    expect(it[READ_INTO](() => undefined, () => undefined)).toBe(false);
    deliver(7);
    await vi.waitFor(() => expect(results).toEqual([{ done: false, value: 7 }]));
    const error = new Error('boom');
    expect(it[READ_INTO]((result) => results.push(result), (caught) => results.push(caught))).toBe(true);
    fail(error);
    await vi.waitFor(() => expect(results).toEqual([{ done: false, value: 7 }, error]));
    expect(it[READ_INTO](() => undefined, () => undefined)).toBe(false);
  });

  it('TAKE_READY: takes a ready result synchronously through the observer, and nothing while a read is pending', () => {
    const { source } = manualSource({ ready: [1, 2] });
    const seen: unknown[] = [];
    const it = new Interruptible(source, undefined, { result: (result) => (seen.push(result), result) });
    expect(it[TAKE_READY]()).toEqual({ done: false, value: 1 });
    expect(seen).toEqual([{ done: false, value: 1 }]);
    void it.next();
    expect(it[TAKE_READY]()).toBeUndefined();
  });
});

describe('Interruptible exit paths', () => {
  it('exit: source done closes once and reports done, without returning the source', async () => {
    const { calls, source, end } = manualSource();
    const onClose = vi.fn();
    const it = new Interruptible(source, onClose);
    const read = it.next();
    end();
    expect(await read).toEqual(DONE);
    expect(await it.next()).toEqual(DONE);
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(calls.return).toBe(0);
  });

  it('exit: source error fails the read, reaches the observer once, then reads are done', async () => {
    const { source, fail } = manualSource();
    const onClose = vi.fn();
    const errors: unknown[] = [];
    const it = new Interruptible(source, onClose, { error: (error) => void errors.push(error) });
    const read = it.next();
    const error = new Error('provider went away');
    fail(error);
    await expect(read).rejects.toBe(error);
    expect(await it.next()).toEqual(DONE);
    expect(errors).toEqual([error]);
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('exit: consumer return() between reads returns the source and closes once', async () => {
    const { calls, source, deliver } = manualSource();
    const onClose = vi.fn();
    const it = new Interruptible(source, onClose);
    const read = it.next();
    deliver(1);
    await read;
    expect(await it.return()).toEqual(DONE);
    await it.return();
    expect(calls.return).toBe(1);
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(await it.next()).toEqual(DONE);
  });

  it('exit: stop() without an error resolves the pending read as done', async () => {
    const { calls, source } = manualSource();
    const it = new Interruptible(source);
    const pending = it.next();
    it.stop();
    expect(await pending).toEqual(DONE);
    expect(calls.return).toBe(1);
  });

  it('exit: stop(error) between reads fails the next read once, then reads are done', async () => {
    const { source } = manualSource();
    const it = new Interruptible(source);
    const error = new Error('timeout');
    it.stop(error);
    expect(it.closed).toBe(true);
    await expect(it.next()).rejects.toBe(error);
    expect(await it.next()).toEqual(DONE);
  });

  it('exit: stop during a pending read settles it at once, and a late source result is dropped', async () => {
    const { source, deliver } = manualSource();
    const seen: unknown[] = [];
    const it = new Interruptible(source, undefined, { result: (result) => (seen.push(result), result) });
    const pending = it.next();
    const error = new Error('aborted');
    it.stop(error);
    await expect(pending).rejects.toBe(error);
    deliver(1);
    await Promise.resolve();
    expect(seen).toEqual([]);
    expect(await it.next()).toEqual(DONE);
  });
});
