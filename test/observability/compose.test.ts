import { afterEach, describe, expect, it, vi } from 'vitest';
import { composeMonitors, monitored, pipe, type MonitorOptions, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { chunk, consume, scripted } from './helpers.js';

const items = [chunk('a', { model: 'm' }), chunk('b'), chunk('', { finishReason: 'stop', usage: { inputTokens: 1_000_000, outputTokens: 0 } })];
const instant = () => scripted(items.map((item): [number, TokenChunk] => [0, item])).source;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('composeMonitors', () => {
  it('runs every hook of every monitor, per-stream observers included, with the first price', async () => {
    const calls: string[] = [];
    const finished: StreamMetrics[] = [];
    const first: MonitorOptions = {
      price: { inputPerMTok: 2, outputPerMTok: 0 },
      onChunk: (item) => void calls.push(`1:chunk:${item.token}`),
      onFinish: (m) => void finished.push(m),
    };
    const second: MonitorOptions = {
      price: { inputPerMTok: 99, outputPerMTok: 0 },
      keepText: true,
      onFirstToken: () => void calls.push('2:first'),
      onStart: () => ({ onFinish: (m) => void calls.push(`2:own-finish:${m.cost?.total}:${m.text}`) }),
    };
    const third: MonitorOptions = { onStart: () => void calls.push('3:start') };
    const composed = composeMonitors(first, second, third);
    expect(composed.onChunk).toBeTypeOf('function');
    await consume(pipe(instant(), monitored(composed)));
    expect(calls).toEqual(['3:start', '2:first', '1:chunk:a', '1:chunk:b', '1:chunk:', '2:own-finish:2:ab']);
    expect(finished.map((m) => m.cost?.total)).toEqual([2]);
  });

  it('adds no hook that no monitor has, so the per-chunk path stays empty', () => {
    const composed = composeMonitors({ onFinish: () => {} }, {});
    expect(Object.keys(composed)).toEqual(['onFinish']);
  });

  it('reports what one monitor throws to its own onHookError, and runs the others anyway', async () => {
    const failure = new Error('bug in one');
    const ownErrors = vi.fn();
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const finished = vi.fn();
    const broken: MonitorOptions = {
      onHookError: ownErrors,
      onStart: () => ({
        onChunk: () => {
          throw failure;
        },
      }),
      onFinish: () => Promise.reject(failure),
      price: () => {
        throw failure;
      },
    };
    const quiet: MonitorOptions = { onFirstToken: () => { throw failure; } };
    const { chunks, error } = await consume(pipe(instant(), monitored(composeMonitors(broken, quiet, { onFinish: finished }))));
    expect(error).toBeUndefined();
    expect(chunks).toHaveLength(3);
    expect(finished).toHaveBeenCalledOnce();
    await vi.waitFor(() => expect(ownErrors).toHaveBeenCalledTimes(5));
    expect(ownErrors.mock.calls.map(([caught, hook]) => [caught === failure, hook])).toEqual([
      [true, 'onChunk'],
      [true, 'onChunk'],
      [true, 'onChunk'],
      [true, 'price'],
      [true, 'onFinish'],
    ]);
    expect(logged).toHaveBeenCalledExactlyOnceWith('tokenrelay: the monitored() onFirstToken hook threw', failure);
  });

  it('fails fast on a monitor that is not one', () => {
    expect(() => composeMonitors({}, null as never)).toThrow(new TypeError('Expected monitor 1 to be an object of monitor options, got null'));
    expect(() => composeMonitors({ onChunk: 3 as never })).toThrow(new TypeError('Expected `onChunk` to be a function, got 3'));
  });
});
