// The lifecycle contract, end to end: whatever way a stream ends, a full pipeline leaves no
// listener on a shared signal, no timer, and no memory behind. Run against the operators
// composed with pipe() and against the adapters' fused pipeline (openResponseStream): the same
// stages, so the same assertions.
import { getEventListeners } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  monitored,
  pipe,
  toSSE,
  withAbort,
  withBackpressure,
  withTimeout,
  type StreamOutcome,
  type TokenChunk,
} from 'tokenrelay';
import { openResponseStream } from '../../src/servers/internal/response-stream.js';
import { planResponse } from '../../src/servers/internal/options.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

type Ending = 'complete' | 'break' | 'source-error' | 'abort-while-pending' | 'timeout-while-pending';
const endings: Ending[] = ['complete', 'break', 'source-error', 'abort-while-pending', 'timeout-while-pending'];

const cleanups = { finallyRan: 0, started: 0 };

async function* source(ending: Ending): AsyncGenerator<TokenChunk> {
  cleanups.started++;
  try {
    for (let index = 0; index < 5; index++) {
      yield { token: `t${index} `, index, timestamp: index, type: 'text' };
    }
    if (ending === 'source-error') throw new Error('provider went away');
    if (ending === 'abort-while-pending' || ending === 'timeout-while-pending') {
      await new Promise<void>((resolve) => setTimeout(resolve, 30));
    }
    yield { token: '', index: 5, timestamp: 5, type: 'text', finishReason: 'stop' };
  } finally {
    cleanups.finallyRan++;
  }
}

type RunOne = (shared: AbortSignal, ending: Ending, outcomes: StreamOutcome[]) => Promise<void>;

const runComposed: RunOne = async (shared, ending, outcomes) => {
  const own = new AbortController();
  const frames = pipe(
    source(ending),
    withAbort(shared),
    withAbort(own.signal),
    withTimeout({ firstTokenMs: 5_000, idleMs: ending === 'timeout-while-pending' ? 1 : 5_000, totalMs: 60_000, controller: own }),
    withBackpressure({ highWaterMark: 4 }),
    monitored({ onFinish: (metrics) => void outcomes.push(metrics.outcome) }),
    toSSE({ heartbeatMs: 1_000 }),
  );
  let count = 0;
  for await (const frame of frames) {
    count++;
    if (ending === 'break' && count === 2) break;
    if (ending === 'abort-while-pending' && count === 5) setImmediate(() => own.abort(new Error('client left')));
    expect(typeof frame).toBe('string');
  }
};

// The shared signal plays the server's part: it aborts the stream's controller, and the
// listener that links them goes when the stream ends, as an adapter's does.
const runFused: RunOne = async (shared, ending, outcomes) => {
  const plan = planResponse({
    timeout: { firstTokenMs: 5_000, idleMs: ending === 'timeout-while-pending' ? 1 : 5_000, totalMs: 60_000 },
    backpressure: { highWaterMark: 4 },
    monitor: { onFinish: (metrics) => void outcomes.push(metrics.outcome), onError: () => undefined },
    heartbeatMs: 1_000,
  });
  const stream = openResponseStream(() => source(ending), plan);
  const link = () => stream.controller.abort(shared.reason);
  shared.addEventListener('abort', link, { once: true });
  try {
    expect(await stream.begin()).toBeUndefined();
    let count = 0;
    for (;;) {
      // Frames already there are taken without a promise (TAKE_READY), as an adapter's pump does.
      let frame = stream.takeFrame();
      if (frame === undefined) {
        const result = await stream.frames.next();
        if (result.done === true) break;
        frame = result.value;
      }
      count++;
      if (ending === 'break' && count === 2) {
        await stream.frames.return?.();
        break;
      }
      if (ending === 'abort-while-pending' && count === 5) setImmediate(() => stream.controller.abort(new Error('client left')));
      expect(typeof frame).toBe('string');
    }
    await stream.metrics;
    expect(getEventListeners(stream.controller.signal, 'abort')).toHaveLength(0);
  } finally {
    shared.removeEventListener('abort', link);
  }
};

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

async function settle(): Promise<void> {
  // Sources returned while a read was pending finish once that read settles (<= 30 ms later).
  for (let i = 0; i < 20 && cleanups.finallyRan < cleanups.started; i++) await new Promise((r) => setTimeout(r, 10));
}

describe.each([
  ['composed with pipe()', runComposed],
  ['fused (openResponseStream)', runFused],
] as const)('lifecycle of a full pipeline, %s', (_name, runOne) => {
  it('10,000 streams in a row leave no listener, no timer and no memory behind', { timeout: 120_000 }, async () => {
    const shared = new AbortController().signal;
    const outcomes: StreamOutcome[] = [];
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    await runOne(shared, 'complete', outcomes);
    await settle();
    gc();
    const timersBefore = activeTimers();
    const heapBefore = process.memoryUsage().heapUsed;

    for (let i = 0; i < 10_000; i++) {
      const ending = endings[i % endings.length]!;
      await runOne(shared, ending, outcomes);
    }
    await settle();
    gc();
    process.off('warning', onWarning);

    expect(getEventListeners(shared, 'abort')).toHaveLength(0);
    expect(warnings).toEqual([]);
    expect(activeTimers()).toBeLessThanOrEqual(timersBefore);
    expect(cleanups.finallyRan).toBe(cleanups.started);
    const growth = process.memoryUsage().heapUsed - heapBefore;
    expect(growth).toBeLessThan(4 * 1024 * 1024);
    const counts = Object.fromEntries(['completed', 'cancelled', 'error', 'aborted', 'timeout'].map((o) => [o, 0]));
    for (const outcome of outcomes.slice(1)) counts[outcome]!++;
    expect(counts).toEqual({ completed: 2_000, cancelled: 2_000, error: 2_000, aborted: 2_000, timeout: 2_000 });
  });

  it('1,000 concurrent streams ending every way leave no listener or timer behind', { timeout: 60_000 }, async () => {
    const shared = new AbortController().signal;
    const outcomes: StreamOutcome[] = [];
    await settle();
    const timersBefore = activeTimers();
    const started = cleanups.started;
    await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => runOne(shared, endings[i % endings.length]!, outcomes)),
    );
    await settle();
    expect(cleanups.started - started).toBe(1_000);
    expect(cleanups.finallyRan).toBe(cleanups.started);
    expect(getEventListeners(shared, 'abort')).toHaveLength(0);
    expect(activeTimers()).toBeLessThanOrEqual(timersBefore);
    expect(outcomes).toHaveLength(1_000);
  });
});
