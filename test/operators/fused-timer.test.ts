// The adapters' fused pipeline (openResponseStream) runs its heartbeat and its timeout deadlines
// on one timer per stream, and makes its metrics promise only when asked for.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { tokens, type TokenChunk } from 'tokenrelay';
import { openResponseStream } from '../../src/servers/internal/response-stream.js';
import { planResponse } from '../../src/servers/internal/options.js';
import { HEARTBEAT_FRAME } from '../../src/sse/encoder.js';

/** A provider that sends nothing until its request is aborted. */
function silent(signal: AbortSignal): AsyncIterable<TokenChunk> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: () =>
        new Promise<IteratorResult<TokenChunk>>((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
      return: () => Promise.resolve({ done: true, value: undefined }),
    }),
  };
}

describe('the fused pipeline: one timer per stream', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('serves the heartbeat and the first-token deadline with one timer, and leaves none', async () => {
    const plan = planResponse({ heartbeatMs: 1_000, timeout: { firstTokenMs: 2_500 }, monitor: { onError: () => undefined } });
    const stream = openResponseStream((signal) => silent(signal), plan);
    const first = stream.frames.next();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(first).resolves.toEqual({ done: false, value: HEARTBEAT_FRAME });
    const second = stream.frames.next();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(second).resolves.toEqual({ done: false, value: HEARTBEAT_FRAME });
    const third = stream.frames.next();
    await vi.advanceTimersByTimeAsync(499);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const { value } = (await third) as IteratorYieldResult<string>;
    expect(value).toMatch(/^event: error\n/);
    expect(value).toContain('"code":"timeout"');
    await expect(stream.frames.next()).resolves.toEqual({ done: true, value: undefined });
    expect(vi.getTimerCount()).toBe(0);
    await expect(stream.metrics).resolves.toMatchObject({ outcome: 'timeout', durationMs: 2_500 });
  });

  it('still sends the heartbeat of a read that began after the deadline timer was armed', async () => {
    const plan = planResponse({ heartbeatMs: 1_000, timeout: { totalMs: 600 }, monitor: { onError: () => undefined } });
    const stream = openResponseStream((signal) => silent(signal), plan);
    const read = stream.frames.next();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(600);
    const { value } = (await read) as IteratorYieldResult<string>;
    expect(value).toContain('"code":"timeout"');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('the fused pipeline: metrics', () => {
  it('makes one metrics promise, whether asked for before or after the end', async () => {
    const plan = planResponse({});
    const early = openResponseStream(tokens(['a']), plan);
    const promise = early.metrics;
    expect(early.metrics).toBe(promise);
    while (!(await early.frames.next()).done);
    await expect(promise).resolves.toMatchObject({ outcome: 'completed' });

    const late = openResponseStream(tokens(['b']), plan);
    while (!(await late.frames.next()).done);
    expect(late.metrics).toBe(late.metrics);
    await expect(late.metrics).resolves.toMatchObject({ outcome: 'completed' });
  });
});
