import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { monitored, pipe, withAbort, type StreamMetrics, type StreamObserver, type TokenChunk } from 'tokenrelay';
import { chunk, consume, scripted } from './helpers.js';

const price = { inputPerMTok: 3, outputPerMTok: 15 };
const instant = (items: TokenChunk[]) => scripted(items.map((item): [number, TokenChunk] => [0, item]));

async function report(items: TokenChunk[], stopAfter = Infinity, options = {}): Promise<StreamMetrics> {
  const reports: StreamMetrics[] = [];
  await consume(pipe(instant(items).source, monitored({ price, ...options, onFinish: (m) => void reports.push(m) })), stopAfter);
  expect(reports).toHaveLength(1);
  return reports[0]!;
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('monitored: output estimated when the final usage never came', () => {
  it('estimates the larger of the chunks and characters / 4, and prices the estimate', async () => {
    // One CJK character per delta (OpenAI-like): the chunks count; characters / 4 would give 2.
    const cjk = await report([...'你好世界，今天'].map((token) => chunk(token)), 7);
    expect(cjk).toMatchObject({ outcome: 'cancelled', outputTokens: 7, estimated: true, usage: undefined });
    expect(cjk.cost).toEqual({ input: 0, output: (7 * 15) / 1e6, total: (7 * 15) / 1e6 });
    // Long deltas (Anthropic-like, or coalesced): characters / 4 counts, 2 chunks would be too few.
    const long = await report([chunk('The quick brown fox jumps '), chunk('over the lazy dog.')], 2);
    expect(long).toMatchObject({ outputTokens: 11, estimated: true });
    // Reasoning and tool-call text is output too.
    const mixed = await report([chunk('thinking hard', { type: 'reasoning' }), chunk('{"city":"Paris"}', { type: 'tool-call' })], 2);
    expect(mixed.outputTokens).toBe(Math.ceil(29 / 4));
  });

  it('keeps the input tokens reported early and never estimates fewer output tokens than reported', async () => {
    const early = { inputTokens: 2000, outputTokens: 40, cachedInputTokens: 1000 };
    const metrics = await report([chunk('', { usage: early }), chunk('short')], 2, { price: { ...price, cachedInputPerMTok: 0.3 } });
    expect(metrics).toMatchObject({ outputTokens: 40, estimated: true, usage: early });
    expect(metrics.cost?.total).toBeCloseTo((1000 * 3 + 1000 * 0.3 + 40 * 15) / 1e6, 12);
  });

  it('marks an aborted stream as estimated and still gives it a cost', async () => {
    const controller = new AbortController();
    const reports: StreamMetrics[] = [];
    const { source, state } = scripted([[0, chunk('Hello there, ')], [10, chunk('how are you?')]], { stall: true });
    const run = consume(pipe(source, withAbort(controller.signal), monitored({ price: () => price, onFinish: (m) => void reports.push(m) })));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await run;
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ outcome: 'aborted', outputTokens: 7, estimated: true, cost: { input: 0, output: 105 / 1e6, total: 105 / 1e6 } });
    expect(state.finallyRan).toBe(0); // the source stays stuck in its stall: withAbort did not wait for it
  });

  it('trusts the final usage: not estimated, and no estimated key at all', async () => {
    const metrics = await report([chunk('Hi'), chunk('', { finishReason: 'stop', usage: { inputTokens: 10, outputTokens: 1 } })]);
    expect(metrics.outputTokens).toBe(1);
    expect(metrics).not.toHaveProperty('estimated');
    expect(metrics.cost?.total).toBeCloseTo(45 / 1e6, 12);
  });

  it('estimates but does not price a stream that completed without any usage', async () => {
    const metrics = await report([chunk('Hello world!'), chunk('', { finishReason: 'stop' })]);
    expect(metrics).toMatchObject({ outcome: 'completed', outputTokens: 3, estimated: true, cost: undefined });
  });
});

describe('monitored: onStart', () => {
  it('is called once per stream at the first read, and its observer sees only that stream', async () => {
    const events: string[] = [];
    let streams = 0;
    const onStart = vi.fn((): StreamObserver => {
      const name = `s${++streams}`;
      events.push(`${name}:start`);
      return {
        onFirstToken: ({ chunk: first }) => void events.push(`${name}:first:${first.token}`),
        onChunk: (item) => void events.push(`${name}:chunk:${item.token}`),
        onFinish: (m) => void events.push(`${name}:finish:${m.outcome}`),
      };
    });
    const monitor = { onStart, onFinish: () => void events.push('shared:finish') };
    const one = pipe(instant([chunk('a'), chunk('b')]).source, monitored(monitor))[Symbol.asyncIterator]();
    const two = pipe(instant([chunk('x')]).source, monitored(monitor))[Symbol.asyncIterator]();
    expect(onStart).not.toHaveBeenCalled();
    await one.next();
    await two.next();
    await one.next();
    await one.next();
    await two.return?.();
    expect(onStart).toHaveBeenCalledTimes(2);
    expect(events).toEqual([
      's1:start',
      's1:first:a',
      's1:chunk:a',
      's2:start',
      's2:first:x',
      's2:chunk:x',
      's1:chunk:b',
      'shared:finish',
      's1:finish:completed',
      'shared:finish',
      's2:finish:cancelled',
    ]);
  });

  it('runs before onFinish also for a stream stopped before its first read', async () => {
    const calls: string[] = [];
    const iterator = pipe(instant([chunk('a')]).source, monitored({
      onStart: () => ({ onFinish: (m) => void calls.push(`finish:${m.outcome}:${m.durationMs}`) }),
    }))[Symbol.asyncIterator]();
    await iterator.return?.();
    expect(calls).toEqual(['finish:cancelled:0']);
  });

  it('reports an onStart that throws or rejects, and the stream goes on', async () => {
    const failure = new Error('start bug');
    const onHookError = vi.fn();
    const thrown = await consume(pipe(instant([chunk('a')]).source, monitored({ onHookError, onStart: () => { throw failure; } })));
    const rejected = await consume(pipe(instant([chunk('b')]).source, monitored({ onHookError, onStart: () => Promise.reject(failure) })));
    expect([thrown.chunks.length, rejected.chunks.length]).toEqual([1, 1]);
    await vi.waitFor(() => expect(onHookError.mock.calls).toEqual([[failure, 'onStart'], [failure, 'onStart']]));
    expect(() => monitored({ onStart: 'no' as never })).toThrow(new TypeError('Expected `onStart` to be a function, got "no"'));
  });
});
