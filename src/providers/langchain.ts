import type { AIMessageChunk } from '@langchain/core/messages';
import type { TokenChunk } from '../core/types.js';
import { assertOptions, assertSignal, describeValue } from '../core/validate.js';
import { LangChainChunkReader } from './langchain-chunks.js';
import { earlyEndError, toSourceError, type SourceErrorContext } from './source-errors.js';

/**
 * Options of {@link fromLangChain}.
 *
 * @example
 * ```ts
 * fromLangChain(await model.stream(messages, { signal }), { signal, provider: 'anthropic' });
 * ```
 */
export interface FromLangChainOptions {
  /**
   * The `provider` stamped on every chunk and error.
   * @defaultValue `'langchain'`
   */
  provider?: string | undefined;
  /**
   * The `signal` you gave `.stream()`. LangChain throws the signal's reason when it fires, and
   * some models just stop; with the signal, both become a `StreamAbortedError` whose `cause` is
   * `signal.reason`.
   * @defaultValue none: only an `AbortError` is reported as `StreamAbortedError`
   * @example
   * ```ts
   * const source: TokenSourceFactory = async function* (signal) {
   *   yield* fromLangChain(await model.stream(messages, { signal }), { signal });
   * };
   * ```
   */
  signal?: AbortSignal | undefined;
}

/**
 * Relays what a LangChain chat model's `.stream()` yields, `AIMessageChunk`s, as TokenChunks.
 * `content` as a string is text; as an array of parts, `text` parts are text (their citations
 * become `'source'` chunks), `thinking` and `reasoning` parts are `'reasoning'` (as is
 * `additional_kwargs.reasoning_content`), a `refusal` is text and finishes with
 * `'content-filter'`. `tool_call_chunks` become `'tool-call'` chunks, grouped into calls the way
 * `concat` merges them (by `index`, else by `id`); complete `tool_calls` of a chunk without
 * `tool_call_chunks` are relayed whole. Plain strings (a chain ending in `StringOutputParser`)
 * are text.
 *
 * LangChain has no finish chunk, so one more chunk ends the stream with the `finishReason` (from
 * `response_metadata.finish_reason` / `stop_reason` when the model gave one; `'tool-calls'`
 * when calls were made and the model gave only a plain stop or nothing; else `'stop'`) and the
 * usage summed over every chunk's `usage_metadata`, as `concat` does. Errors the model throws
 * become `ProviderError` (the original as `cause`, `status` and `retryable` read from it);
 * aborts become `StreamAbortedError`. Breaking out of the loop cancels the stream.
 *
 * @example
 * ```ts
 * const source: TokenSourceFactory = async function* (signal) {
 *   yield* fromLangChain(await model.stream(messages, { signal }), { signal });
 * };
 * ```
 */
export function fromLangChain(
  stream: AsyncIterable<AIMessageChunk | string>,
  options: FromLangChainOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (stream === null || typeof stream !== 'object' || typeof (stream as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`Expected \`stream\` to be what a LangChain chat model's .stream() returns (an async iterable), got ${describe(stream)}`);
  }
  assertOptions('options', options, OPTION_NAMES);
  const { signal, provider } = options;
  if (signal !== undefined) assertSignal('options.signal', signal);
  if (provider !== undefined && (typeof provider !== 'string' || provider === '')) {
    throw new TypeError(`Expected \`options.provider\` to be a non-empty string, got ${describeValue(provider)}`);
  }
  return relayChunks(stream, { provider: provider ?? 'langchain', label: 'LangChain', signal });
}

const OPTION_NAMES = ['provider', 'signal'] as const;

async function* relayChunks(stream: AsyncIterable<AIMessageChunk | string>, context: SourceErrorContext): AsyncGenerator<TokenChunk, void, undefined> {
  const reader = new LangChainChunkReader(context.provider);
  const chunks: TokenChunk[] = [];
  let invalid: { item: unknown } | undefined;
  try {
    for await (const item of stream) {
      if (typeof item !== 'string' && (item === null || typeof item !== 'object')) {
        invalid = { item };
        break;
      }
      reader.read(item, chunks);
      if (chunks.length === 1) yield chunks.pop() as TokenChunk;
      else if (chunks.length > 1) yield* chunks.splice(0);
    }
  } catch (error) {
    throw toSourceError(error, context);
  }
  if (invalid !== undefined) {
    throw new TypeError(`Expected each item of \`stream\` to be an AIMessageChunk or a string, got ${describeValue(invalid.item)}`);
  }
  // Models stop quietly once the signal fired: that is an abort, not the end of the answer.
  if (context.signal?.aborted === true) throw earlyEndError(context);
  yield reader.finish();
}

function describe(value: unknown): string {
  if (typeof (value as { then?: unknown } | null | undefined)?.then === 'function') return 'a Promise (did you forget `await`?)';
  return describeValue(value);
}
