import { describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { monitored, type StreamMetrics } from '../../src/operators/monitored.js';
import { TAKE_READY, takeReady } from '../../src/operators/internal/interruptible.js';
import { toSSE } from '../../src/operators/to-sse.js';
import { withAbort } from '../../src/operators/with-abort.js';
import { withBackpressure } from '../../src/operators/with-backpressure.js';
import { pipe } from '../../src/pipe.js';
import { openResponseStream } from '../../src/servers/internal/response-stream.js';

const turns = async (count: number) => {
  for (let turn = 0; turn < count; turn++) await new Promise((resolve) => setImmediate(resolve));
};

function chunk(index: number, extra: Partial<TokenChunk> = {}): TokenChunk {
  return { token: `t${index}`, index, timestamp: 0, type: 'text', ...extra };
}

async function* chunks(count: number, finish = true): AsyncGenerator<TokenChunk> {
  for (let index = 0; index < count; index++) yield chunk(index);
  if (finish) yield chunk(count, { token: '', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: count } });
}

describe('taking what is read ahead without a promise (TAKE_READY)', () => {
  it('hands over buffered chunks at once, through withAbort and monitored, in order with next()', async () => {
    const controller = new AbortController();
    let metrics: StreamMetrics | undefined;
    const stream = pipe(
      chunks(10),
      withBackpressure({ highWaterMark: 4 }),
      withAbort(controller.signal),
      monitored({ onFinish: (report) => void (metrics = report) }),
    )[Symbol.asyncIterator]();
    expect(takeReady(stream)).toBeUndefined(); // nothing read yet: the read-ahead starts on the first read
    const seen: number[] = [];
    const first = await stream.next();
    seen.push((first.value as TokenChunk).index);
    await turns(3);
    let taken = 0;
    for (let result = takeReady(stream); result !== undefined; result = takeReady(stream)) {
      seen.push(result.value.index);
      taken++;
    }
    expect(taken).toBe(4); // exactly the read-ahead bound
    for (let result = await stream.next(); result.done !== true; result = await stream.next()) seen.push(result.value.index);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(metrics?.outcome).toBe('completed');
    expect(metrics?.chunks).toBe(11);
    expect(metrics?.usage).toEqual({ inputTokens: 3, outputTokens: 10 });
  });

  it('takes nothing while a read is pending, or after an abort', async () => {
    const controller = new AbortController();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slow(): AsyncGenerator<TokenChunk> {
      yield chunk(0);
      await gate;
      yield chunk(1);
    }
    const stream = pipe(slow(), withBackpressure(), withAbort(controller.signal))[Symbol.asyncIterator]();
    await stream.next();
    const pending = stream.next();
    expect(takeReady(stream)).toBeUndefined();
    release();
    expect(await pending).toEqual({ done: false, value: chunk(1) });

    const again = pipe(chunks(5), withBackpressure(), withAbort(controller.signal))[Symbol.asyncIterator]();
    await again.next();
    await turns(3);
    controller.abort();
    expect(takeReady(again)).toBeUndefined();
    await expect(again.next()).rejects.toMatchObject({ code: 'aborted' });
  });

  it('fails the take like a read when an observer throws, and the stream then ends', async () => {
    const source = {
      [Symbol.asyncIterator]() {
        return this;
      },
      next: () => Promise.resolve({ done: false as const, value: chunk(0) }),
      [TAKE_READY]: () => {
        throw new Error('broken buffer');
      },
    };
    let metrics: StreamMetrics | undefined;
    const stream = pipe(source, monitored({ onFinish: (report) => void (metrics = report) }))[Symbol.asyncIterator]();
    expect(() => takeReady(stream)).toThrow('broken buffer');
    expect(metrics?.outcome).toBe('error');
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('makes the frames of buffered chunks in toSSE, the done frame included', async () => {
    const frames = toSSE({ heartbeatMs: false })(pipe(chunks(3), withBackpressure()))[Symbol.asyncIterator]();
    const texts = [((await frames.next()).value as string)];
    await turns(3);
    for (let result = takeReady(frames); result !== undefined; result = takeReady(frames)) texts.push(result.value);
    expect(texts).toHaveLength(4);
    expect(texts[3]).toMatch(/^id: 3\nevent: done\n/);
    expect(takeReady(frames)).toBeUndefined();
    expect(await frames.next()).toEqual({ done: true, value: undefined });
  });

  it("lets an adapter take the peeked first frame and what follows it without waiting (takeFrame)", async () => {
    const stream = openResponseStream(chunks(20), { heartbeatMs: false, backpressure: { highWaterMark: 8 } });
    expect(await stream.begin()).toBeUndefined();
    await turns(3);
    const frames: string[] = [];
    for (let frame = stream.takeFrame(); frame !== undefined; frame = stream.takeFrame()) frames.push(frame);
    expect(frames).toHaveLength(9); // the peeked chunk and the 8 read ahead behind it
    expect(frames.map((frame) => /^id: (\d+)/.exec(frame)?.[1])).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
    let rest = 0;
    for (let result = await stream.frames.next(); result.done !== true; result = await stream.frames.next()) rest++;
    expect(rest).toBe(12); // 9 to 19, and the done frame
    expect((await stream.metrics).outcome).toBe('completed');
  });
});
