import { pipe, toSSE, tokens, withHeartbeat } from 'tokenrelay';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TAKE_READY } from '../../src/core/kernel.js';

const PING = ': ping\n\n';
const DONE = { done: true, value: undefined };

type Step = { frame: string } | { error: unknown } | { end: true };

/** A frame source the test feeds by hand; it never reads ahead of what was pushed. */
function channel() {
  const state = { reads: 0, finallyRan: 0 };
  const queue: Step[] = [];
  let wake: (() => void) | undefined;
  async function* generate(): AsyncGenerator<string> {
    try {
      for (;;) {
        state.reads++;
        while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const step = queue.shift()!;
        if ('error' in step) throw step.error;
        if ('end' in step) return;
        yield step.frame;
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
});

describe('withHeartbeat', () => {
  it('sends the frame at each idle interval of a stall, and the same pending source read then continues', async () => {
    const { source, state, push } = channel();
    const frames: string[] = [];
    const consumer = (async () => {
      for await (const frame of pipe(source, withHeartbeat({ idleMs: 1000 }))) frames.push(frame);
    })();
    await vi.advanceTimersByTimeAsync(999);
    expect(frames).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(frames).toEqual([PING]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(frames).toEqual([PING, PING, PING]);
    expect(state.reads).toBe(1);
    push({ frame: 'a' });
    push({ end: true });
    await consumer;
    expect(frames).toEqual([PING, PING, PING, 'a']);
    expect(state.reads).toBe(2);
  });

  it('sends nothing while frames come faster than idleMs, with one timer rather than one per frame', async () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const { source, push } = channel();
    const frames: string[] = [];
    const consumer = (async () => {
      for await (const frame of pipe(source, withHeartbeat({ idleMs: 1000, frame: ': keep-alive\n\n' }))) frames.push(frame);
    })();
    for (let index = 0; index < 20; index++) {
      await vi.advanceTimersByTimeAsync(999);
      push({ frame: `f${index}` });
    }
    push({ end: true });
    await consumer;
    expect(frames).toEqual(Array.from({ length: 20 }, (_, index) => `f${index}`));
    expect(setTimeoutSpy.mock.calls.length).toBeLessThanOrEqual(21);
    setTimeoutSpy.mockRestore();
  });

  it('counts idle time from when the consumer asks, not while it holds a frame', async () => {
    const { source, push } = channel();
    push({ frame: 'a' });
    const iterator = pipe(source, withHeartbeat({ idleMs: 1000 }))[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: 'a' });
    await vi.advanceTimersByTimeAsync(5000);
    const next = iterator.next();
    const settled = isSettled(next);
    await vi.advanceTimersByTimeAsync(999);
    expect(settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await next).toEqual({ done: false, value: PING });
    await iterator.return!();
  });

  it.each([0, false, Infinity, 2 ** 31] as const)('creates no timer with idleMs %s', async (idleMs) => {
    const { source, push } = channel();
    const iterator = pipe(source, withHeartbeat({ idleMs }))[Symbol.asyncIterator]();
    const next = iterator.next();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(100_000);
    push({ frame: 'a' });
    expect(await next).toEqual({ done: false, value: 'a' });
    await iterator.return!();
  });

  it("creates no timer with frame ''", async () => {
    const { source, push } = channel();
    const iterator = pipe(source, withHeartbeat({ idleMs: 10, frame: '' }))[Symbol.asyncIterator]();
    const next = iterator.next();
    expect(vi.getTimerCount()).toBe(0);
    push({ end: true });
    expect(await next).toEqual(DONE);
  });

  it('return() while the source read is pending ends at once, clears the timer; the source finally runs once it settles', async () => {
    const { source, state, push } = channel();
    const iterator = pipe(source, withHeartbeat({ idleMs: 1000 }))[Symbol.asyncIterator]();
    const next = iterator.next();
    expect(vi.getTimerCount()).toBe(1);
    expect(await iterator.return!()).toEqual(DONE);
    expect(await next).toEqual(DONE);
    expect(vi.getTimerCount()).toBe(0);
    expect(state.finallyRan).toBe(0);
    push({ frame: 'late' });
    await vi.advanceTimersByTimeAsync(0);
    expect(state.finallyRan).toBe(1);
    expect(await iterator.next()).toEqual(DONE);
  });

  it('passes a source error through to the read, once, then reports done', async () => {
    const { source, push } = channel();
    const iterator = pipe(source, withHeartbeat({ idleMs: 1000 }))[Symbol.asyncIterator]();
    const error = new Error('encoder failed');
    const next = iterator.next();
    push({ error });
    await expect(next).rejects.toBe(error);
    expect(await iterator.next()).toEqual(DONE);
  });

  it('hands over what the source has ready without a wait (TAKE_READY), and nothing while a read is pending', async () => {
    const frames = pipe(tokens(['a', 'b']), toSSE({ heartbeatMs: 0 }), withHeartbeat({ idleMs: 1000 }));
    const iterator = frames[Symbol.asyncIterator]() as AsyncIterator<string> & { [TAKE_READY](): unknown };
    const first = iterator.next();
    expect(iterator[TAKE_READY]()).toBeUndefined();
    expect((await first).value).toContain('"token":"a"');
    await iterator.return!();
  });

  it('after toSSE({ heartbeatMs: 0 }) gives the same frames as toSSE({ heartbeatMs }) through a stall', async () => {
    async function run(split: boolean): Promise<string[]> {
      const { source, push } = channel();
      const chunks = (async function* () {
        for await (const token of source) yield { token, index: 0, timestamp: 0, type: 'text' as const };
      })();
      const frames = split
        ? pipe(chunks, toSSE({ heartbeatMs: 0 }), withHeartbeat({ idleMs: 1000 }))
        : pipe(chunks, toSSE({ heartbeatMs: 1000 }));
      const out: string[] = [];
      const consumer = (async () => {
        for await (const frame of frames) out.push(frame);
      })();
      await vi.advanceTimersByTimeAsync(2500);
      push({ frame: 'x' });
      push({ end: true });
      await consumer;
      return out;
    }
    const fused = await run(false);
    expect(fused.filter((frame) => frame === PING)).toHaveLength(2);
    expect(await run(true)).toEqual(fused);
  });

  it.each([
    [{ idleMs: -1 }, 'Expected `idleMs` to be a number >= 0, got -1'],
    [{ idleMs: 'soon' }, 'Expected `idleMs` to be a number >= 0, got "soon"'],
    [{ frame: 1 }, 'Expected `frame` to be a string, got 1'],
    [{ idleMS: 10 }, 'idleMS'],
  ])('rejects bad options %o', (options, message) => {
    expect(() => withHeartbeat(options as never)).toThrow(message);
  });
});
