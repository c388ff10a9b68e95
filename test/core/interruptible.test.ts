import { describe, expect, it, vi } from 'vitest';
import { Interruptible } from '../../src/core/kernel.js';

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
