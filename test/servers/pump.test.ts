import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { toResponse } from 'tokenrelay/web';
import { FrameWriter, setWriteCombining, type FrameSink } from '../../src/servers/internal/pump.js';

afterEach(() => {
  setWriteCombining(true);
  vi.useRealTimers();
});

/** A source whose chunks are all there at once: no await between them but the generator's own. */
function burst(count: number): AsyncGenerator<TokenChunk> {
  return (async function* () {
    for (let index = 0; index < count; index++) yield { token: `tök${index} `, index, timestamp: 0, type: 'text' };
    yield { token: '', index: count, timestamp: 0, type: 'text', finishReason: 'stop' };
  })();
}

/** Reads a body to its end: each read's bytes, decoded. */
async function reads(response: Response): Promise<string[]> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const chunks: string[] = [];
  for (let count = 0; count < 10_000; count++) {
    const { done, value } = await reader.read();
    if (done) return chunks;
    chunks.push(decoder.decode(value));
  }
  throw new Error('the body never ended');
}

const options = { backpressure: false, heartbeatMs: false } as const;

describe('the web body joins the frames of one turn, like sendSSE', () => {
  it('delivers a burst of frames in fewer reads than frames, with the same bytes', async () => {
    setWriteCombining(false);
    const separate = await reads(await toResponse(burst(40), options));
    setWriteCombining(true);
    const joined = await reads(await toResponse(burst(40), options));
    // Off, one read per frame: 40 tokens and the done event.
    expect(separate).toHaveLength(41);
    expect(joined.length).toBeLessThan(separate.length / 4);
    expect(joined.join('')).toBe(separate.join(''));
    expect(joined.join('')).toContain('tök39 ');
  });

  it('still reads the provider only as the body is pulled (pull-based, one chunk ahead at most)', async () => {
    let produced = 0;
    async function* counted(): AsyncGenerator<TokenChunk> {
      for (let index = 0; index < 1000; index++) {
        produced++;
        yield { token: 'x'.repeat(1024), index, timestamp: 0, type: 'text' };
      }
    }
    const response = await toResponse(counted(), options);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    // One read takes at most a combine limit (16 KiB) of frames, plus the one in flight.
    expect(first.value?.byteLength).toBeGreaterThan(1024);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(produced).toBeLessThan(24);
    await reader.cancel();
  });
});

/** A sink that is full after each write until `pull()`. */
class PullSink implements FrameSink {
  writes: string[] = [];
  #listener: (() => void) | undefined;
  readonly stalled: () => void;

  constructor(onStall: () => void) {
    this.stalled = onStall;
  }

  write(text: string): boolean {
    this.writes.push(text);
    return false;
  }
  watch(onWritable: () => void): void {
    this.#listener = onWritable;
  }
  unwatch(): void {
    this.#listener = undefined;
  }
  end(): void {}
  destroy(): void {}
  pull(): void {
    this.#listener?.();
  }
}

describe('FrameWriter write timeout', () => {
  it('counts from the last time the sink became full, with one timer, not one per write', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const onStall = vi.fn();
    const sink = new PullSink(onStall);
    const writer = new FrameWriter(sink, { writeTimeoutMs: 1000, combine: false }, true);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    sink.pull();
    writer.push('a\n\n');
    expect(sink.writes).toEqual(['a\n\n']);
    expect(writer.blocked).toBe(true);
    await vi.advanceTimersByTimeAsync(100);
    sink.pull();
    writer.push('b\n\n');
    // Full again at 600 ms: the timer armed at 0 ms is still the only one.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(onStall).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(onStall).toHaveBeenCalledTimes(1);
    writer.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never stalls a sink that keeps taking writes, and leaves no timer once closed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const onStall = vi.fn();
    const sink = new PullSink(onStall);
    const writer = new FrameWriter(sink, { writeTimeoutMs: 1000, combine: false }, true);
    for (let step = 0; step < 30; step++) {
      await vi.advanceTimersByTimeAsync(300);
      sink.pull();
      writer.push(`${step}\n\n`);
    }
    expect(onStall).not.toHaveBeenCalled();
    expect(sink.writes).toHaveLength(30);
    writer.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
