import { describe, expect, expectTypeOf, it } from 'vitest';
import { pipe, tokens, type Operator, type TokenChunk } from 'tokenrelay';

const toLength: Operator<string, number> = async function* (source) {
  for await (const item of source) yield item.length;
};
const double: Operator<number, number> = async function* (source) {
  for await (const item of source) yield item * 2;
};
const toLabel: Operator<number, string> = async function* (source) {
  for await (const item of source) yield `#${item}`;
};
const tokenText: Operator<TokenChunk, string> = async function* (source) {
  for await (const chunk of source) yield chunk.token;
};

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of source) items.push(item);
  return items;
}

describe('pipe', () => {
  it('returns the source itself when given no operators', () => {
    const source = tokens(['a']);
    expect(pipe(source)).toBe(source);
  });

  it('applies operators left to right', async () => {
    const out = pipe(tokens(['ab', 'cde']), tokenText, toLength, double, toLabel);
    expect(await collect(out)).toEqual(['#4', '#6', '#0']);
  });

  it('infers the element type through ten steps', () => {
    const out = pipe(
      tokens(['x']),
      tokenText,
      toLength,
      double,
      toLabel,
      toLength,
      double,
      double,
      toLabel,
      toLength,
      toLabel,
    );
    expectTypeOf(out).toEqualTypeOf<AsyncIterable<string>>();
    const eight = pipe(tokens(['x']), tokenText, toLength, double, toLabel, toLength, double, double, double);
    expectTypeOf(eight).toEqualTypeOf<AsyncIterable<number>>();
    // @ts-expect-error a number stream cannot feed an operator that takes strings
    pipe(tokens(['x']), tokenText, toLength, toLength);
  });

  it('rejects a non-function operator with a TypeError that says what came', () => {
    expect(() => pipe(tokens(['x']), 42 as never)).toThrow(
      new TypeError('Expected every operator passed to pipe() to be a function, got 42'),
    );
  });
});
