import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  estimateCost,
  monitored,
  pipe,
  StreamAbortedError,
  StreamTimeoutError,
  type MonitorOptions,
  type StreamMetrics,
  type TokenChunk,
} from 'tokenrelay';
import { stalled } from '../helpers/sources.js';

function chunk(token: string, fields: Partial<TokenChunk> = {}): TokenChunk {
  return { token, index: 0, timestamp: 0, type: 'text', ...fields };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Yields (or throws) each step after its delay, on fake timers; counts reads and cleanups. */
function timed(steps: [delayMs: number, item: TokenChunk | Error][]) {
  const state = { reads: 0, finallyRan: 0 };
  async function* source(): AsyncGenerator<TokenChunk> {
    try {
      for (const [delayMs, item] of steps) {
        state.reads++;
        if (delayMs > 0) await sleep(delayMs);
        if (item instanceof Error) throw item;
        yield item;
      }
    } finally {
      state.finallyRan++;
    }
  }
  return { state, source: source() };
}

const instant = (items: TokenChunk[]) => timed(items.map((item): [number, TokenChunk] => [0, item]));

async function drain(stream: AsyncIterable<TokenChunk>): Promise<{ chunks: TokenChunk[]; error: unknown }> {
  const chunks: TokenChunk[] = [];
  try {
    for await (const item of stream) chunks.push(item);
    return { chunks, error: undefined };
  } catch (error) {
    return { chunks, error };
  }
}

function finishSpy() {
  const reports: StreamMetrics[] = [];
  return { reports, onFinish: (metrics: StreamMetrics) => void reports.push(metrics) };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('monitored', () => {
  it('passes the same chunks through and reports time to first token, throughput, usage and cost', async () => {
    const usage = { inputTokens: 1000, outputTokens: 50, cachedInputTokens: 400 };
    const items = [
      chunk('', { model: 'gpt-x', provider: 'openai' }),
      chunk('Hel'),
      chunk(' world'),
      chunk('', { finishReason: 'stop', usage }),
    ];
    const { state, source } = timed([
      [100, items[0]!],
      [200, items[1]!],
      [100, items[2]!],
      [100, items[3]!],
    ]);
    const { reports, onFinish } = finishSpy();
    const onFirstToken = vi.fn();
    const onChunk = vi.fn();
    const price = { inputPerMTok: 2, outputPerMTok: 8, cachedInputPerMTok: 0.5 };
    const run = drain(pipe(source, monitored({ onFirstToken, onChunk, onFinish, price })));

    await vi.advanceTimersByTimeAsync(299);
    expect(onFirstToken).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(onFirstToken).toHaveBeenCalledExactlyOnceWith({ ttftMs: 300, chunk: items[1] });
    expect(reports).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    const { chunks, error } = await run;

    expect(error).toBeUndefined();
    chunks.forEach((received, i) => expect(received).toBe(items[i]));
    expect(onChunk.mock.calls.map(([received]) => received)).toEqual(items);
    expect(onFirstToken).toHaveBeenCalledTimes(1);
    expect(reports).toEqual([
      {
        outcome: 'completed',
        ttftMs: 300,
        durationMs: 500,
        chunks: 4,
        outputTokens: 50,
        tokensPerSecond: 250,
        finishReason: 'stop',
        usage,
        error: undefined,
        provider: 'openai',
        model: 'gpt-x',
        cost: { input: 0.0014, output: 0.0004, total: 0.0018 },
      },
    ]);
    expect(state).toEqual({ reads: 4, finallyRan: 1 });
  });

  it('counts chunks with text when no usage is reported, and leaves unmeasurable numbers undefined', async () => {
    const { reports, onFinish } = finishSpy();
    const { source } = timed([
      [10, chunk('a')],
      [20, chunk('', { type: 'reasoning' })],
      [30, chunk('b', { type: 'reasoning' })],
      [40, chunk('', { finishReason: 'length' })],
    ]);
    const run = drain(pipe(source, monitored({ onFinish, price: { inputPerMTok: 1, outputPerMTok: 1 } })));
    await vi.advanceTimersByTimeAsync(100);
    await run;
    expect(reports[0]).toMatchObject({ outputTokens: 2, tokensPerSecond: 2 * 1000 / 90, ttftMs: 10, cost: undefined });

    const empty = finishSpy();
    const single = timed([[10, chunk('', { finishReason: 'stop' })]]);
    const done = drain(pipe(single.source, monitored({ onFinish: empty.onFinish })));
    await vi.advanceTimersByTimeAsync(10);
    await done;
    expect(empty.reports[0]).toMatchObject({ outcome: 'completed', ttftMs: undefined, tokensPerSecond: undefined, outputTokens: 0, chunks: 1 });
  });

  it('reports an abort with the usage that arrived before it, and rethrows the same error', async () => {
    const aborted = new StreamAbortedError(undefined, { cause: 'client left' });
    const usage = { inputTokens: 10, outputTokens: 1 };
    const { state, source } = timed([
      [50, chunk('a', { model: 'm' })],
      [50, chunk('', { usage })],
      [50, aborted],
    ]);
    const { reports, onFinish } = finishSpy();
    const run = drain(pipe(source, monitored({ onFinish, price: () => ({ inputPerMTok: 1, outputPerMTok: 10 }) })));
    await vi.advanceTimersByTimeAsync(150);
    const { chunks, error } = await run;
    expect(error).toBe(aborted);
    expect(chunks).toHaveLength(2);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ outcome: 'aborted', error: aborted, usage, durationMs: 150, ttftMs: 50, model: 'm' });
    expect(reports[0]?.cost).toEqual({ input: 0.00001, output: 0.00001, total: 0.00002 });
    expect(state.finallyRan).toBe(1);
  });

  it.each([
    ['aborted', new DOMException('The operation was aborted.', 'AbortError')],
    ['timeout', new StreamTimeoutError('idle', 1000)],
    ['timeout', new DOMException('The operation timed out.', 'TimeoutError')],
    ['timeout', Object.assign(new Error('from another copy'), { name: 'StreamTimeoutError', code: 'timeout' })],
    ['error', new Error('provider down')],
  ] as const)('classifies a source error as %s', async (outcome, thrown) => {
    const { reports, onFinish } = finishSpy();
    const { source } = timed([[0, chunk('a')], [5, thrown]]);
    const run = drain(pipe(source, monitored({ onFinish })));
    await vi.advanceTimersByTimeAsync(5);
    expect((await run).error).toBe(thrown);
    expect(reports.map((report) => [report.outcome, report.error])).toEqual([[outcome, thrown]]);
  });

  it('reports cancelled when the consumer breaks, and returns the source', async () => {
    const { reports, onFinish } = finishSpy();
    const { state, source } = timed([[10, chunk('a')], [10, chunk('b')], [10, chunk('', { finishReason: 'stop' })]]);
    const run = (async () => {
      for await (const received of pipe(source, monitored({ onFinish }))) if (received.token === 'b') break;
    })();
    await vi.advanceTimersByTimeAsync(20);
    await run;
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ outcome: 'cancelled', chunks: 2, durationMs: 20, finishReason: undefined, error: undefined });
    expect(state).toEqual({ reads: 2, finallyRan: 1 });
  });

  it('reports cancelled at once when the consumer returns while a read is pending', async () => {
    const { reports, onFinish } = finishSpy();
    const { state, source } = stalled([chunk('a')]);
    const iterator = pipe(source, monitored({ onFinish }))[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    await vi.advanceTimersByTimeAsync(1000);
    expect(await iterator.return?.()).toEqual({ done: true, value: undefined });
    expect(reports.map((report) => [report.outcome, report.durationMs])).toEqual([['cancelled', 1000]]);
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(state.finallyRan).toBe(0);
    state.release();
    await vi.waitFor(() => expect(state.finallyRan).toBe(1));
    await iterator.return?.();
    expect(reports).toHaveLength(1);
  });

  it('counts a stream whose finish reason arrived as ended by that reason, even if the consumer stops then', async () => {
    const completed = finishSpy();
    for await (const received of pipe(stalled([chunk('a'), chunk('', { finishReason: 'stop' })]).source, monitored({ onFinish: completed.onFinish }))) {
      if (received.finishReason !== undefined) break;
    }
    const inBand = finishSpy();
    await drain(pipe(timed([[0, chunk('a')], [0, chunk('', { finishReason: 'aborted' })]]).source, monitored({ onFinish: inBand.onFinish })));
    expect([completed.reports[0]?.outcome, inBand.reports[0]?.outcome]).toEqual(['completed', 'aborted']);
  });

  it('never lets a hook break the stream, and reports what hooks throw', async () => {
    const failure = new Error('hook bug');
    const onHookError = vi.fn();
    const items = [chunk('a'), chunk('b'), chunk('', { finishReason: 'stop', usage: { inputTokens: 1, outputTokens: 2 } })];
    const options: MonitorOptions = {
      onFirstToken: () => {
        throw failure;
      },
      onChunk: () => {
        throw failure;
      },
      onFinish: () => Promise.reject(failure),
      price: () => {
        throw failure;
      },
      onHookError,
    };
    const { chunks, error } = await drain(pipe(instant(items).source, monitored(options)));
    expect(error).toBeUndefined();
    expect(chunks).toEqual(items);
    await vi.waitFor(() => expect(onHookError).toHaveBeenCalledTimes(6));
    expect(onHookError.mock.calls.map(([caught, hook]) => [caught === failure, hook])).toEqual([
      [true, 'onFirstToken'],
      [true, 'onChunk'],
      [true, 'onChunk'],
      [true, 'onChunk'],
      [true, 'price'],
      [true, 'onFinish'],
    ]);

    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const quiet = await drain(pipe(timed([[0, chunk('a')]]).source, monitored({ onChunk: options.onChunk })));
    expect(quiet.chunks).toHaveLength(1);
    expect(logged).toHaveBeenCalledExactlyOnceWith('tokenrelay: the monitored() onChunk hook threw', failure);

    const throwingHandler = { onChunk: options.onChunk, onHookError: () => { throw new Error('handler bug'); } };
    expect((await drain(pipe(timed([[0, chunk('a')]]).source, monitored(throwingHandler)))).chunks).toHaveLength(1);
  });

  it('keeps the answer text with keepText, and prices by model', async () => {
    const { reports, onFinish } = finishSpy();
    const price = vi.fn((model?: string) => (model === 'known' ? { inputPerMTok: 1, outputPerMTok: 1 } : undefined));
    const items = [
      chunk('hmm', { type: 'reasoning', model: 'unknown' }),
      chunk('Hi'),
      chunk('{"x"', { type: 'tool-call', toolCall: { id: 'c', name: 't', index: 0 } }),
      chunk(' there'),
      chunk('', { finishReason: 'stop', usage: { inputTokens: 1, outputTokens: 1 } }),
    ];
    await drain(pipe(instant(items).source, monitored({ onFinish, price, keepText: true })));
    expect(reports[0]).toMatchObject({ text: 'Hi there', cost: undefined, model: 'unknown' });
    expect(price).toHaveBeenCalledExactlyOnceWith('unknown');

    const plain = finishSpy();
    await drain(pipe(timed([[0, chunk('Hi')]]).source, monitored({ onFinish: plain.onFinish })));
    expect(plain.reports[0]).not.toHaveProperty('text');
  });

  it('fails fast on bad options', () => {
    expect(() => monitored(null as never)).toThrow(new TypeError('Expected `options` to be an object, got null'));
    expect(() => monitored({ onFinish: 1 as never })).toThrow(new TypeError('Expected `onFinish` to be a function, got 1'));
    expect(() => monitored({ price: { inputPerMTok: -1, outputPerMTok: 1 } })).toThrow(
      new TypeError('Expected `price.inputPerMTok` to be a finite number >= 0, got -1'),
    );
  });
});

describe('estimateCost', () => {
  it('bills input and output per million tokens', () => {
    expect(estimateCost({ inputTokens: 1_000, outputTokens: 500 }, { inputPerMTok: 3, outputPerMTok: 15 })).toEqual({
      input: 0.003,
      output: 0.0075,
      total: 0.0105,
    });
  });

  it('bills cached input and reasoning at their own rates when given, else at the base rates', () => {
    const usage = { inputTokens: 1_000_000, outputTokens: 1_000_000, cachedInputTokens: 250_000, reasoningTokens: 400_000 };
    expect(estimateCost(usage, { inputPerMTok: 2, outputPerMTok: 10 })).toEqual({ input: 2, output: 10, total: 12 });
    expect(
      estimateCost(usage, { inputPerMTok: 2, outputPerMTok: 10, cachedInputPerMTok: 0.5, reasoningPerMTok: 20 }),
    ).toEqual({ input: 1.625, output: 14, total: 15.625 });
  });

  it('fails fast on a bad price or usage', () => {
    expect(() => estimateCost({ inputTokens: 1, outputTokens: 1 }, { inputPerMTok: 1, outputPerMTok: Number.NaN })).toThrow(
      'Expected `price.outputPerMTok` to be a finite number >= 0, got NaN',
    );
    expect(() => estimateCost(undefined as never, { inputPerMTok: 1, outputPerMTok: 1 })).toThrow(
      'Expected `usage` to be an object, got undefined',
    );
  });
});
