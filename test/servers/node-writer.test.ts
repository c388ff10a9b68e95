import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeSink, type WritableResponse } from '../../src/servers/internal/node-writer.js';
import { COMBINE_LIMIT, FrameWriter } from '../../src/servers/internal/pump.js';

/** A response that records its writes; `full` makes write() report a full buffer. */
class FakeResponse extends EventEmitter implements WritableResponse {
  writes: string[] = [];
  full = false;
  failWith: Error | undefined;
  ended: string | undefined;
  destroyed = false;

  write(chunk: string): boolean {
    if (this.failWith !== undefined) throw this.failWith;
    this.writes.push(chunk);
    return !this.full;
  }

  end(chunk?: string): void {
    this.ended = chunk ?? '';
  }

  destroy(): void {
    this.destroyed = true;
  }
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
/** The sink part of a Node response, as the server's response class extends it. */
class FakeSink extends NodeSink {
  readonly #onStall: () => void;

  constructor(res: WritableResponse, onStall: () => void) {
    super(res);
    this.#onStall = onStall;
  }

  stalled(): void {
    this.#onStall();
  }
}

const writerOf = (res: FakeResponse, onStall = () => undefined) =>
  new FrameWriter(new FakeSink(res, onStall), { writeTimeoutMs: 60_000, combine: true });

afterEach(() => {
  vi.restoreAllMocks();
});

describe('FrameWriter', () => {
  it('writes the frames of one turn in one write per response, after that turn', async () => {
    const responses = [new FakeResponse(), new FakeResponse(), new FakeResponse()];
    const writers = responses.map((res) => writerOf(res));
    writers.forEach((writer, index) => {
      writer.push(`a${index}\n\n`);
      writer.push(`b${index}\n\n`);
    });
    expect(responses.map((res) => res.writes)).toEqual([[], [], []]);
    await nextTurn();
    expect(responses.map((res) => res.writes)).toEqual([['a0\n\nb0\n\n'], ['a1\n\nb1\n\n'], ['a2\n\nb2\n\n']]);
    writers[1]?.push('c1\n\n');
    await nextTurn();
    expect(responses.map((res) => res.writes.length)).toEqual([1, 2, 1]);
    expect(responses[1]?.writes[1]).toBe('c1\n\n');
  });

  it('shares one setImmediate among every writer with frames pending', async () => {
    const spy = vi.spyOn(globalThis, 'setImmediate');
    const writers = Array.from({ length: 50 }, () => writerOf(new FakeResponse()));
    for (const writer of writers) writer.push('x\n\n');
    expect(spy).toHaveBeenCalledTimes(1);
    await nextTurn();
  });

  it('writes at once past the combine limit, and nothing twice', async () => {
    const res = new FakeResponse();
    const writer = writerOf(res);
    writer.push('y'.repeat(COMBINE_LIMIT));
    expect(res.writes).toHaveLength(1);
    writer.push('z\n\n');
    await nextTurn();
    expect(res.writes).toEqual(['y'.repeat(COMBINE_LIMIT), 'z\n\n']);
  });

  it('writes nothing after close, and keeps flushing the others when one response throws', async () => {
    const closed = new FakeResponse();
    const broken = new FakeResponse();
    const healthy = new FakeResponse();
    broken.failWith = new Error('socket gone');
    const closedWriter = writerOf(closed);
    closedWriter.push('dropped\n\n');
    closedWriter.close();
    writerOf(broken).push('lost\n\n');
    writerOf(healthy).push('kept\n\n');
    const uncaught = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
    await nextTurn();
    expect(closed.writes).toEqual([]);
    expect(healthy.writes).toEqual(['kept\n\n']);
    expect(await uncaught).toBe(broken.failWith);
  });

  it('holds frames while the response is full and writes them on drain', async () => {
    const res = new FakeResponse();
    res.full = true;
    const writer = writerOf(res);
    writer.push('one\n\n');
    await nextTurn();
    expect(writer.blocked).toBe(true);
    writer.push('two\n\n');
    await nextTurn();
    expect(res.writes).toEqual(['one\n\n']);
    res.full = false;
    const writable = writer.whenWritable();
    res.emit('drain');
    await writable;
    expect(res.writes).toEqual(['one\n\n', 'two\n\n']);
    expect(writer.blocked).toBe(false);
  });

  it('calls res.flush() after each write where compression middleware added it', async () => {
    const res = Object.assign(new FakeResponse(), { flushes: 0, flush() { this.flushes++; } });
    const writer = writerOf(res);
    writer.push('a\n\n');
    writer.push('b\n\n');
    await nextTurn();
    writer.push('c\n\n');
    await nextTurn();
    expect(res.writes).toEqual(['a\n\nb\n\n', 'c\n\n']);
    expect(res.flushes).toBe(2);
  });

  it('ends the response once, with the text it still held, and then neither writes nor destroys', async () => {
    const res = new FakeResponse();
    res.full = true;
    const writer = writerOf(res);
    writer.push('one\n\n');
    await nextTurn();
    writer.push('two\n\n');
    writer.end('last\n\n');
    writer.end('again\n\n');
    writer.destroy(new Error('late'));
    writer.push('after\n\n');
    await nextTurn();
    expect(res.writes).toEqual(['one\n\n']);
    expect(res.ended).toBe('two\n\nlast\n\n');
    expect(res.destroyed).toBe(false);
    expect(res.listenerCount('drain')).toBe(0);
  });
});
