import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidJSONError,
  TokenRelayError,
  isInvalidJSONError,
  partialJSON,
  partialToolCalls,
  pipe,
  type PartialJSONResult,
  type PartialToolCall,
  type TokenChunk,
} from 'tokenrelay';
import { collect, stalled } from '../helpers/sources.js';

async function* strings(parts: string[]): AsyncGenerator<string> {
  yield* parts;
}

function chunk(token: string, fields: Partial<TokenChunk> = {}): TokenChunk {
  return { token, index: 0, timestamp: 0, type: 'text', ...fields };
}

/** A source of scripted reads that records every read and whether its cleanup ran. */
function scripted<T>(items: T[]) {
  const state = { reads: 0, finallyRan: 0 };
  async function* source(): AsyncGenerator<T> {
    try {
      for (const item of items) {
        state.reads++;
        yield item;
      }
      state.reads++;
    } finally {
      state.finallyRan++;
    }
  }
  return { state, source: source() };
}

/** True when `partial` could still become `final`: the guarantee every snapshot must keep. */
function isPrefixOf(partial: unknown, final: unknown): boolean {
  if (typeof partial === 'string') return typeof final === 'string' && final.startsWith(partial);
  if (Array.isArray(partial)) {
    if (!Array.isArray(final) || partial.length > final.length) return false;
    return partial.every((item, i) =>
      i < partial.length - 1 ? JSON.stringify(item) === JSON.stringify(final[i]) : isPrefixOf(item, final[i]),
    );
  }
  if (partial !== null && typeof partial === 'object') {
    if (final === null || typeof final !== 'object' || Array.isArray(final)) return false;
    return Object.entries(partial).every(
      ([key, value]) => Object.prototype.hasOwnProperty.call(final, key) && isPrefixOf(value, (final as Record<string, unknown>)[key]),
    );
  }
  return Object.is(partial, final);
}

function splitAt(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b);
  const parts: string[] = [];
  let start = 0;
  for (const point of points) {
    parts.push(text.slice(start, point));
    start = point;
  }
  parts.push(text.slice(start));
  return parts;
}

describe('partialJSON', () => {
  it('yields growing strings and completed members, then the document with done: true', async () => {
    const parts = ['{"title": "Hel', 'lo", "tags": ["a', '", "b"], "n": 12', '3, "ok": tr', 'ue}'];
    const items = await collect(pipe(strings(parts), partialJSON()));
    expect(items).toEqual([
      { value: { title: 'Hel' }, done: false },
      { value: { title: 'Hello', tags: ['a'] }, done: false },
      { value: { title: 'Hello', tags: ['a', 'b'] }, done: false },
      { value: { title: 'Hello', tags: ['a', 'b'], n: 123 }, done: false },
      { value: { title: 'Hello', tags: ['a', 'b'], n: 123, ok: true }, done: true },
    ]);
  });

  it('holds numbers and literals back until they are complete, and yields only on change', async () => {
    const items = await collect(pipe(strings(['[1', '2', '3', ', nu', 'll', ' ', ', 4', '.5e', '1]']), partialJSON()));
    expect(items).toEqual([
      { value: [], done: false },
      { value: [123], done: false },
      { value: [123, null], done: false },
      { value: [123, null, 45], done: true },
    ]);
    expect(await collect(pipe(strings(['1', '2', '3']), partialJSON()))).toEqual([{ value: 123, done: true }]);
    expect(await collect(pipe(strings(['"a', '\\u00', 'e9"']), partialJSON()))).toEqual([
      { value: 'a', done: false },
      { value: 'aé', done: true },
    ]);
    // Half of a surrogate pair is held back until its other half arrives, raw or escaped.
    expect(await collect(pipe(strings(['"a\ud83d', '\ude00b"']), partialJSON()))).toEqual([
      { value: 'a', done: false },
      { value: 'a\u{1f600}b', done: true },
    ]);
    expect(await collect(pipe(strings(['["\\ud83d', '\\ude00"]']), partialJSON()))).toEqual([
      { value: [''], done: false },
      { value: ['\u{1f600}'], done: true },
    ]);
  });

  it('reads only text chunks of a token stream', async () => {
    const source = [
      chunk('thinking {', { type: 'reasoning' }),
      chunk('{"a":'),
      chunk('{"x":1}', { type: 'tool-call', toolCall: { id: 'c', name: 't', index: 0 } }),
      chunk('1}'),
      chunk('', { finishReason: 'stop' }),
    ];
    const items = await collect(pipe((async function* () { yield* source; })(), partialJSON<{ a: number }>()));
    expect(items).toEqual([
      { value: {}, done: false },
      { value: { a: 1 }, done: true },
    ]);
  });

  it('matches JSON.parse, never contradicts the final value, and never mutates a yielded value', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' })),
        fc.constantFrom<'' | 2>('', 2),
        fc.array(fc.nat(), { maxLength: 30 }),
        async (value, indent, cuts) => {
          const text = JSON.stringify(value, null, indent);
          const expected: unknown = JSON.parse(text);
          const items: PartialJSONResult[] = [];
          const copies: string[] = [];
          for await (const item of pipe(strings(splitAt(text, cuts)), partialJSON())) {
            items.push(item);
            copies.push(JSON.stringify(item.value));
          }
          const last = items.at(-1);
          expect(last?.done).toBe(true);
          expect(last?.value).toEqual(expected);
          expect(items.filter((item) => item.done)).toHaveLength(1);
          items.forEach((item, i) => {
            expect(isPrefixOf(item.value, expected)).toBe(true);
            expect(JSON.stringify(item.value)).toBe(copies[i]);
            if (i > 0 && !item.done) expect(copies[i]).not.toBe(copies[i - 1]);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('shares completed parts between snapshots instead of copying them', async () => {
    const items = await collect(pipe(strings(['[{"a":1},', '{"b":', '2}', ']']), partialJSON()));
    const [first, second, third] = items.map((item) => item.value as object[]);
    expect(second).not.toBe(first);
    expect(second?.[0]).toBe(first?.[0]);
    expect(third?.[0]).toBe(first?.[0]);
    expect(first).toEqual([{ a: 1 }]);
  });

  it('keeps a streamed "__proto__" member as an own member, like JSON.parse', async () => {
    const text = '{"__proto__": {"polluted": true}, "b": [1]}';
    const [item] = (await collect(pipe(strings([text]), partialJSON()))) as [PartialJSONResult];
    expect(item.value).toEqual(JSON.parse(text));
    expect(Object.getPrototypeOf(item.value)).toBe(Object.prototype);
    expect(Object.keys(item.value as object)).toEqual(['__proto__', 'b']);
  });

  it('throws an InvalidJSONError as soon as the text cannot be JSON, and stops reading the source', async () => {
    const { state, source } = scripted(['{"a": 1', ', "b" 2', '}', 'never read']);
    const items: PartialJSONResult[] = [];
    const error = await (async () => {
      for await (const item of pipe(source, partialJSON())) items.push(item);
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidJSONError);
    expect(error).toBeInstanceOf(TokenRelayError);
    expect((error as InvalidJSONError).code).toBe('invalid-json');
    expect(isInvalidJSONError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'invalid-json', position: 13, message: 'Unexpected character "2" at position 13' });
    expect(items).toEqual([{ value: {}, done: false }]);
    expect(state).toEqual({ reads: 2, finallyRan: 1 });
  });

  it('throws when the text ends incomplete, is empty, or goes on after the document', async () => {
    await expect(collect(pipe(strings(['{"a": "b']), partialJSON()))).rejects.toMatchObject({
      name: 'InvalidJSONError',
      message: 'Unexpected end of JSON input at position 8',
    });
    await expect(collect(pipe(strings([' ']), partialJSON()))).rejects.toBeInstanceOf(InvalidJSONError);
    await expect(collect(pipe(strings(['[1.]']), partialJSON()))).rejects.toThrow('Invalid number "1." at position 3');
    await expect(collect(pipe(strings(['{"a":1,}']), partialJSON()))).rejects.toThrow('Unexpected character "}" at position 7');
    await expect(collect(pipe(strings(['"a\nb"']), partialJSON()))).rejects.toThrow('Bad control character');

    const items: PartialJSONResult[] = [];
    const error = await (async () => {
      for await (const item of pipe(strings(['{"a":1} ', ' x']), partialJSON())) items.push(item);
    })().catch((caught: unknown) => caught);
    expect(items).toEqual([{ value: { a: 1 }, done: true }]);
    expect(error).toMatchObject({ message: 'Unexpected "x" after the end of the JSON document at position 9' });
  });

  it('passes source errors through unchanged', async () => {
    const failure = new Error('provider down');
    const source = (async function* () {
      yield '{"a": "x';
      throw failure;
    })();
    const items: PartialJSONResult[] = [];
    const error = await (async () => {
      for await (const item of pipe(source, partialJSON())) items.push(item);
    })().catch((caught: unknown) => caught);
    expect(error).toBe(failure);
    expect(items).toEqual([{ value: { a: 'x' }, done: false }]);
  });

  it('stops the source when the consumer breaks', async () => {
    const { state, source } = scripted(['[1', ',2', ',3', ']']);
    const seen: unknown[] = [];
    for await (const item of pipe(source, partialJSON())) {
      seen.push(item.value);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([[], [1]]);
    expect(state).toEqual({ reads: 2, finallyRan: 1 });
  });

  it('ends at once when the consumer returns while a read is pending', async () => {
    const { state, source } = stalled(['{"a": "x']);
    const iterator = pipe(source, partialJSON())[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: { value: { a: 'x' }, done: false } });
    const pending = iterator.next();
    expect(await iterator.return?.()).toEqual({ done: true, value: undefined });
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(state.finallyRan).toBe(0);
    state.release();
    await expect.poll(() => state.finallyRan).toBe(1);
  });
});

describe('partialToolCalls', () => {
  const weather = { id: 'call_1', name: 'get_weather', index: 0 };
  const time = { id: 'call_2', name: 'get_time', index: 1 };
  const noArgs = { id: 'call_3', name: 'ping', index: 2 };

  it('reassembles the argument fragments of each call, done at its closing brace', async () => {
    const source = (async function* () {
      yield chunk('Let me check.');
      yield chunk('', { type: 'tool-call', toolCall: weather });
      yield chunk('{"city": "Par', { type: 'tool-call', toolCall: weather });
      yield chunk('is", "days": 3', { type: 'tool-call', toolCall: weather });
      yield chunk('}', { type: 'tool-call', toolCall: weather });
      yield chunk('{"tz":', { type: 'tool-call', toolCall: time });
      yield chunk(' "UTC"}', { type: 'tool-call' });
      yield chunk('', { type: 'tool-call', toolCall: noArgs });
      yield chunk('', { finishReason: 'tool-calls' });
    })();
    const calls = await collect(pipe(source, partialToolCalls<{ city: string; days: number }>()));
    expect(calls).toEqual([
      { ...weather, arguments: { city: 'Par' }, done: false },
      { ...weather, arguments: { city: 'Paris' }, done: false },
      { ...weather, arguments: { city: 'Paris', days: 3 }, done: true },
      { ...time, arguments: {}, done: false },
      { ...time, arguments: { tz: 'UTC' }, done: true },
      { ...noArgs, arguments: {}, done: true },
    ] satisfies PartialToolCall[]);
  });

  it('completes calls at the end of the stream, and fails on arguments left incomplete', async () => {
    const scalar = (async function* () {
      yield chunk('4', { type: 'tool-call', toolCall: weather });
      yield chunk('2', { type: 'tool-call', toolCall: weather });
    })();
    expect(await collect(pipe(scalar, partialToolCalls()))).toEqual([{ ...weather, arguments: 42, done: true }]);

    const truncated = (async function* () {
      yield chunk('{"tz": "UTC"}', { type: 'tool-call', toolCall: time });
      yield chunk('{"city": "Par', { type: 'tool-call', toolCall: weather });
    })();
    const calls: PartialToolCall[] = [];
    const error = await (async () => {
      for await (const call of pipe(truncated, partialToolCalls())) calls.push(call);
    })().catch((caught: unknown) => caught);
    expect(calls).toEqual([
      { ...time, arguments: { tz: 'UTC' }, done: true },
      { ...weather, arguments: { city: 'Par' }, done: false },
    ]);
    expect(error).toBeInstanceOf(InvalidJSONError);
    expect(error).toMatchObject({
      toolCall: weather,
      message: 'Unexpected end of JSON input at position 13 in the arguments of tool call "get_weather"',
    });
  });

  it('stops the source on invalid arguments and when the consumer breaks', async () => {
    const bad = scripted([chunk('{"a" 1}', { type: 'tool-call', toolCall: weather }), chunk('never read')]);
    await expect(collect(pipe(bad.source, partialToolCalls()))).rejects.toMatchObject({ name: 'InvalidJSONError', position: 5 });
    expect(bad.state).toEqual({ reads: 1, finallyRan: 1 });

    const { state, source } = stalled([chunk('{"a": 1', { type: 'tool-call', toolCall: weather })]);
    const iterator = pipe(source, partialToolCalls())[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: { ...weather, arguments: {}, done: false } });
    const pending = iterator.next();
    expect(await iterator.return?.()).toEqual({ done: true, value: undefined });
    expect(await pending).toEqual({ done: true, value: undefined });
    state.release();
    await expect.poll(() => state.finallyRan).toBe(1);
  });
});
