import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { monitored, type StreamMetrics } from '../../src/operators/monitored.js';
import { READ_INTO, TAKE_READY, takeReady } from '../../src/core/kernel.js';
import { toSSE } from '../../src/operators/to-sse.js';
import { withAbort } from '../../src/operators/with-abort.js';
import { withBackpressure } from '../../src/operators/with-backpressure.js';
import { pipe } from '../../src/core/pipe.js';
import { openChunkStream, openResponseStream } from '../../src/servers/internal/response-stream.js';
import { planChunkStream, planResponse } from '../../src/servers/internal/options.js';

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
    const stream = openResponseStream(chunks(20), planResponse({ heartbeatMs: false, backpressure: { highWaterMark: 8 } }));
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

describe('the fast paths through the fused pipeline (openChunkStream, openResponseStream)', () => {
  it('takes a read into handlers (READ_INTO) with no promise, then hands the read-ahead over with TAKE_READY', async () => {
    const stream = openChunkStream(chunks(6), planChunkStream({ backpressure: { highWaterMark: 4 } }));
    const iterator = stream.chunks as AsyncIterableIterator<TokenChunk> & {
      [READ_INTO](onResult: (result: IteratorResult<TokenChunk>) => unknown, onError: (error: unknown) => unknown): boolean;
    };
    const results: IteratorResult<TokenChunk>[] = [];
    expect(iterator[READ_INTO]((result) => results.push(result), (error) => results.push({ done: true, value: error as never }))).toBe(true);
    // One read at a time: a second one is refused while the first is pending.
    expect(iterator[READ_INTO](() => undefined, () => undefined)).toBe(false);
    expect(takeReady(iterator)).toBeUndefined();
    await turns(3);
    expect(results).toEqual([{ done: false, value: chunk(0) }]);
    const taken: number[] = [];
    for (let result = takeReady(iterator); result !== undefined; result = takeReady(iterator)) taken.push(result.value.index);
    expect(taken).toEqual([1, 2, 3, 4]);
    const rest: number[] = [];
    for (let result = await iterator.next(); result.done !== true; result = await iterator.next()) rest.push(result.value.index);
    expect(rest).toEqual([5, 6]);
    const metrics = await stream.metrics;
    expect(metrics.outcome).toBe('completed');
    expect(metrics.chunks).toBe(7);
  });

  it('takes a frame read into handlers (READ_INTO) and settles it with the next frame, or with a heartbeat', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slow(): AsyncGenerator<TokenChunk> {
      yield chunk(0);
      await gate;
      yield chunk(1, { finishReason: 'stop' });
    }
    const stream = openResponseStream(slow(), planResponse({ heartbeatMs: 20 }));
    expect(await stream.begin()).toBeUndefined();
    const frames = stream.frames as AsyncIterator<string> & {
      [READ_INTO](onResult: (result: IteratorResult<string>) => unknown, onError: (error: unknown) => unknown): boolean;
    };
    // The peeked first frame is there: it is taken, not read into handlers.
    expect(frames[READ_INTO](() => undefined, () => undefined)).toBe(false);
    expect(stream.takeFrame()).toMatch(/^id: 0\n/);
    const into: string[] = [];
    const read = () => frames[READ_INTO]((result) => void into.push(result.value as string), () => undefined);
    expect(read()).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(into).toEqual([': ping\n\n']);
    expect(read()).toBe(true);
    release();
    await turns(3);
    expect(into).toHaveLength(2);
    expect(into[1]).toMatch(/^id: 1\nevent: token\n[^]*\nevent: done\n/);
    expect(await frames.next()).toEqual({ done: true, value: undefined });
    expect((await stream.metrics).outcome).toBe('completed');
  });
});

describe('takeFrame mixed with frames.next() (property)', () => {
  type Op = 'take' | 'drain' | 'next' | 'turn';

  it('delivers every frame once, in order, with exactly one outcome, whatever the interleaving and wherever an abort lands', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.constantFrom<Op>('take', 'drain', 'next', 'turn'), { minLength: 1, maxLength: 30 }),
        fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
        async (bursts, highWaterMark, ops, abortAt) => {
          const total = bursts.reduce((sum, size) => sum + size, 0);
          async function* bursty(): AsyncGenerator<TokenChunk> {
            let index = 0;
            for (const size of bursts) {
              await new Promise((resolve) => setImmediate(resolve));
              for (let i = 0; i < size; i++, index++) yield chunk(index);
            }
            yield chunk(index, { token: '', finishReason: 'stop' });
          }
          let reports = 0;
          const stream = openResponseStream(
            bursty(),
            planResponse({ heartbeatMs: false, backpressure: { highWaterMark }, monitor: { onFinish: () => void reports++ } }),
          );
          expect(await stream.begin()).toBeUndefined();
          const frames: string[] = [];
          let done = false;
          const next = async () => {
            const result = await stream.frames.next();
            if (result.done === true) done = true;
            else frames.push(result.value);
          };
          for (let step = 0; !done && step < 10_000; step++) {
            if (step === abortAt) stream.controller.abort(new Error('client gone'));
            const op = ops[step % ops.length] as Op;
            if (op === 'take') {
              const frame = stream.takeFrame();
              if (frame !== undefined) frames.push(frame);
            } else if (op === 'drain') {
              for (let frame = stream.takeFrame(); frame !== undefined; frame = stream.takeFrame()) frames.push(frame);
            } else if (op === 'turn') {
              await new Promise((resolve) => setImmediate(resolve));
            } else await next();
            // Whatever the script, the stream has to finish: read on after it ran out.
            if (step >= ops.length * 4) await next();
          }
          expect(done).toBe(true);
          const ids = frames.filter((frame) => frame.includes('event: token')).map((frame) => Number(/^id: (\d+)/.exec(frame)?.[1]));
          expect(ids).toEqual(Array.from({ length: ids.length }, (_, index) => index));
          const last = frames.at(-1) ?? '';
          const metrics = await stream.metrics;
          if (metrics.outcome === 'completed') {
            expect(ids).toHaveLength(total);
            expect(last).toMatch(/event: done/);
          } else {
            expect(abortAt).toBeDefined();
            expect(metrics.outcome).toBe('aborted');
            expect(last).toMatch(/event: (error|done)/);
          }
          expect(frames.filter((frame) => /event: (done|error)/.test(frame))).toHaveLength(1);
          await new Promise((resolve) => setImmediate(resolve));
          expect(reports).toBe(1);
        },
      ),
      { numRuns: 300, seed: 20261121 },
    );
  });
});
