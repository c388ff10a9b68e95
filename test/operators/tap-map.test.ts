import { describe, expect, expectTypeOf, it } from 'vitest';
import { collectText, map, pipe, tap, tokens, type TokenChunk } from 'tokenrelay';
import { collect, stalled } from '../helpers/sources.js';

/**
 * A starved source: it serves a read only when the test has granted one, and throws if the
 * operator reads ahead of its consumer. Counts reads and cleanups.
 */
function starved<T>(items: T[]) {
  const state = { granted: 0, reads: 0, finallyRan: 0 };
  async function* source(): AsyncGenerator<T> {
    try {
      for (const item of items) {
        state.reads++;
        if (state.reads > state.granted) throw new Error('read ahead');
        yield item;
      }
    } finally {
      state.finallyRan++;
    }
  }
  return { state, source: source() };
}

describe('map', () => {
  it('transforms each item with its index, reading only as fast as the consumer', async () => {
    const { state, source } = starved(['a', 'b', 'c']);
    const iterator = pipe(source, map((value: string, index) => `${index}:${value}`))[Symbol.asyncIterator]();
    state.granted = 1;
    expect(await iterator.next()).toEqual({ done: false, value: '0:a' });
    state.granted = 2;
    expect(await iterator.next()).toEqual({ done: false, value: '1:b' });
    expect(state.reads).toBe(2);
    state.granted = 4;
    expect(await iterator.next()).toEqual({ done: false, value: '2:c' });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(state.finallyRan).toBe(1);
  });

  it('infers the output type through pipe', () => {
    const stream = pipe(tokens(['a']), map((chunk) => chunk.token.length));
    expectTypeOf(stream).toEqualTypeOf<AsyncIterable<number>>();
  });

  it('propagates what fn throws, unchanged, and returns the source without reading further', async () => {
    const failure = new Error('bad item');
    const { state, source } = starved([1, 2, 3]);
    state.granted = 2;
    const seen: number[] = [];
    const stream = pipe(
      source,
      map((value: number) => {
        if (value === 2) throw failure;
        return value * 10;
      }),
    );
    await expect(
      (async () => {
        for await (const value of stream) seen.push(value);
      })(),
    ).rejects.toBe(failure);
    expect(seen).toEqual([10]);
    expect(state).toMatchObject({ reads: 2, finallyRan: 1 });
  });
});

describe('tap', () => {
  it('runs fn on each item before the consumer sees it, and passes the same objects on', async () => {
    const source = await collect(tokens(['a', 'b']));
    const order: string[] = [];
    const received: TokenChunk[] = [];
    for await (const chunk of pipe(
      (async function* () {
        yield* source;
      })(),
      tap((chunk: TokenChunk, index) => order.push(`tap ${index}`)),
    )) {
      order.push(`got ${chunk.index}`);
      received.push(chunk);
    }
    expect(order).toEqual(['tap 0', 'got 0', 'tap 1', 'got 1', 'tap 2', 'got 2']);
    received.forEach((chunk, i) => expect(chunk).toBe(source[i]));
  });

  it('propagates what fn throws and returns the source', async () => {
    const failure = new Error('side effect failed');
    const { state, source } = starved(['a', 'b', 'c']);
    state.granted = 1;
    const stream = pipe(
      source,
      tap(() => {
        throw failure;
      }),
    );
    await expect(collect(stream)).rejects.toBe(failure);
    expect(state).toMatchObject({ reads: 1, finallyRan: 1 });
  });

  it('fails fast when fn is not a function', () => {
    expect(() => tap(undefined as never)).toThrow(new TypeError('Expected `fn` to be a function, got undefined'));
    expect(() => map('x' as never)).toThrow(new TypeError('Expected `fn` to be a function, got "x"'));
  });
});

describe.each([
  ['map', () => map((value: string) => value)],
  ['tap', () => tap((_value: string) => {})],
])('%s lifecycle', (_name, operator) => {
  it('passes source errors through unchanged', async () => {
    const failure = new Error('upstream');
    const source = (async function* () {
      yield 'a';
      throw failure;
    })();
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const value of pipe(source, operator())) seen.push(value);
      })(),
    ).rejects.toBe(failure);
    expect(seen).toEqual(['a']);
  });

  it('returns the source when the consumer breaks', async () => {
    const { state, source } = starved(['a', 'b']);
    state.granted = 1;
    for await (const value of pipe(source, operator())) {
      expect(value).toBe('a');
      break;
    }
    expect(state).toMatchObject({ reads: 1, finallyRan: 1 });
  });

  it('ends at once when the consumer returns while a read is pending', async () => {
    const { state, source } = stalled(['a']);
    const iterator = pipe(source, operator())[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: 'a' });
    const pending = iterator.next();
    expect(await iterator.return?.()).toEqual({ done: true, value: undefined });
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(state.finallyRan).toBe(0);
    state.release();
    await expect.poll(() => state.finallyRan).toBe(1);
  });
});

describe('collectText', () => {
  it('concatenates the tokens of text chunks only', async () => {
    const stream = tokens([
      'Hello',
      { token: 'thinking', type: 'reasoning' },
      { token: '{"a":1}', type: 'tool-call', toolCall: { id: 'c', name: 't', index: 0 } },
      ', world',
    ]);
    expect(await collectText(stream)).toBe('Hello, world');
  });

  it('rejects with the stream error unchanged', async () => {
    const failure = new Error('upstream');
    const stream = (async function* () {
      yield* tokens(['a']);
      throw failure;
    })();
    await expect(collectText(stream)).rejects.toBe(failure);
    await expect(collectText(null as never)).rejects.toThrow('Expected `stream` to be an async iterable, got null');
  });
});
