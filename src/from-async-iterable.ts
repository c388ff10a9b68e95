import { ChunkStamper } from './chunk-stamper.js';
import type { FinishReason, TokenChunk } from './core/types.js';
import { describeValue } from './core/validate.js';

/** What {@link fromAsyncIterable} accepts per item: a text delta, or the fields of a chunk. */
export type TokenInput =
  | string
  | (Partial<Omit<TokenChunk, 'index' | 'timestamp'>> & {
      /** The text delta; `''` when left out. */
      token?: string;
    });

/** Options of {@link fromAsyncIterable} and {@link tokens}. */
export interface FromAsyncIterableOptions {
  /**
   * The `provider` stamped on every chunk.
   * @defaultValue left out
   */
  provider?: string | undefined;
  /**
   * The `model` stamped on every chunk.
   * @defaultValue left out
   */
  model?: string | undefined;
  /**
   * The `finishReason` of the final chunk when the source ends without one.
   * @defaultValue `'stop'`
   */
  finishReason?: FinishReason | undefined;
}

/**
 * Turns any iterable of strings (or partial chunks) into a normalized TokenChunk stream:
 * gap-free indexes, timestamps, and exactly one final chunk with a `finishReason`. Use it for
 * sources that have no adapter of their own, such as LangChain's `.stream()`, and in tests.
 * A chunk that carries a `finishReason` ends the stream.
 *
 * @example
 * ```ts
 * const stream = fromAsyncIterable(await chain.stream({ topic }), { provider: 'langchain' });
 * ```
 */
export function fromAsyncIterable(
  source: AsyncIterable<TokenInput> | Iterable<TokenInput>,
  options: FromAsyncIterableOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (source === null || typeof source !== 'object' || !(Symbol.asyncIterator in source || Symbol.iterator in source)) {
    throw new TypeError(`Expected \`source\` to be an iterable or async iterable, got ${describeValue(source)}`);
  }
  return normalize(source, options);
}

async function* normalize(
  source: AsyncIterable<TokenInput> | Iterable<TokenInput>,
  options: FromAsyncIterableOptions,
): AsyncGenerator<TokenChunk, void, undefined> {
  const stamper = new ChunkStamper(options.provider, options.model);
  for await (const item of source) {
    if (typeof item === 'string') {
      yield stamper.chunk(item);
      continue;
    }
    if (item === null || typeof item !== 'object') {
      throw new TypeError(`Expected each item to be a string or a chunk object, got ${describeValue(item)}`);
    }
    if (item.model !== undefined) stamper.model = item.model;
    if (item.provider !== undefined) stamper.provider = item.provider;
    if (item.finishReason !== undefined) {
      yield withToken(stamper.finish(item.finishReason, item.usage), item.token);
      return;
    }
    const chunk = stamper.chunk(item.token ?? '', item.type ?? 'text', item.toolCall);
    if (item.usage !== undefined) chunk.usage = item.usage;
    yield chunk;
  }
  yield stamper.finish(options.finishReason ?? 'stop');
}

/**
 * A finished stream of the given text deltas, for tests and examples.
 *
 * @example
 * ```ts
 * for await (const chunk of tokens(['Hel', 'lo'])) process.stdout.write(chunk.token);
 * ```
 */
export function tokens(
  deltas: Iterable<TokenInput> | AsyncIterable<TokenInput>,
  options: FromAsyncIterableOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  return fromAsyncIterable(deltas, options);
}

function withToken(chunk: TokenChunk, token: string | undefined): TokenChunk {
  if (token !== undefined) chunk.token = token;
  return chunk;
}
