import type { TokenChunk } from '../core/types.js';
import { assertOptions, assertSignal, describeValue } from '../core/validate.js';
import { AISDKPartReader, type AISDKStreamPart } from './ai-sdk-parts.js';
import { toSourceError, type SourceErrorContext } from './source-errors.js';

export type { AISDKStreamPart } from './ai-sdk-parts.js';

/** What {@link fromAISDK} reads: the result of `streamText` (its `fullStream`), or a `fullStream`. */
export type AISDKSource =
  | {
      /** The result's stream of every part: text, reasoning, tool calls, sources, finish. */
      readonly fullStream: AsyncIterable<AISDKStreamPart>;
    }
  | AsyncIterable<AISDKStreamPart>;

/**
 * Options of {@link fromAISDK}.
 *
 * @example
 * ```ts
 * const result = streamText({ model, messages, abortSignal: signal });
 * fromAISDK(result, { signal, provider: 'openai' });
 * ```
 */
export interface FromAISDKOptions {
  /**
   * The `provider` stamped on every chunk and error.
   * @defaultValue `'ai-sdk'`
   */
  provider?: string | undefined;
  /**
   * The `abortSignal` you gave `streamText`. Once it has fired, the `abort` part, an `error`
   * part or an end without `finish` becomes a `StreamAbortedError` whose `cause` is
   * `signal.reason`.
   * @defaultValue none: an `abort` part is still a `StreamAbortedError`, with its `reason` as `cause`
   * @example
   * ```ts
   * const source: TokenSourceFactory = (signal) =>
   *   fromAISDK(streamText({ model, messages, abortSignal: signal }), { signal });
   * ```
   */
  signal?: AbortSignal | undefined;
}

/**
 * Relays an AI SDK (`ai` 7) `streamText` answer as TokenChunks, so a backend that already uses
 * the AI SDK's providers gets tokenrelay's servers, resume and limits. Reads the result's
 * `fullStream` (or a `fullStream` you pass): `text-delta` and `reasoning-delta` parts become
 * `'text'` and `'reasoning'` chunks; `tool-input-delta` parts become `'tool-call'` chunks, and a
 * `tool-call` part whose input was not streamed is relayed whole, once (calls the provider ran
 * itself carry `providerExecuted: true`); `source` parts and the citations of `text-end` become
 * `'source'` chunks. The `finish` part ends the stream with one chunk that carries the
 * `finishReason` and the `totalUsage` of all steps.
 *
 * The results of tools the AI SDK executed (`tool-result`, `tool-error`) are not relayed: with
 * `stopWhen`, the calls of a step show up as `'tool-call'` chunks and the answer continues
 * with the next step's text. An `error` part throws a `ProviderError` (the AI SDK's error as
 * `cause`, `status`, `retryable` and `retryAfterMs` read from an `APICallError`); an `abort`
 * part throws `StreamAbortedError`; a stream that ends without `finish` throws a retryable
 * `ProviderError`. Breaking out of the loop cancels the `fullStream`; pass `abortSignal` to
 * `streamText` to cancel the provider request itself.
 *
 * @example
 * ```ts
 * const source: TokenSourceFactory = (signal) =>
 *   fromAISDK(streamText({ model: openai('gpt-4o-mini'), messages, abortSignal: signal }), { signal });
 * ```
 */
export function fromAISDK(source: AISDKSource, options: FromAISDKOptions = {}): AsyncGenerator<TokenChunk, void, undefined> {
  if (source === null || typeof source !== 'object') {
    throw new TypeError(`Expected \`source\` to be a streamText result or its fullStream, got ${describe(source)}`);
  }
  // Read once: `fullStream` is a getter that tees a new branch on every access.
  const parts = 'fullStream' in source ? source.fullStream : source;
  if (parts === null || typeof parts !== 'object' || typeof (parts as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`Expected \`source\` to be a streamText result or its fullStream (an async iterable), got ${describe(source)}`);
  }
  assertOptions('options', options, OPTION_NAMES);
  const { signal, provider } = options;
  if (signal !== undefined) assertSignal('options.signal', signal);
  if (provider !== undefined && (typeof provider !== 'string' || provider === '')) {
    throw new TypeError(`Expected \`options.provider\` to be a non-empty string, got ${describeValue(provider)}`);
  }
  return relayParts(parts, { provider: provider ?? 'ai-sdk', label: 'AI SDK', signal });
}

const OPTION_NAMES = ['provider', 'signal'] as const;

async function* relayParts(parts: AsyncIterable<AISDKStreamPart>, context: SourceErrorContext): AsyncGenerator<TokenChunk, void, undefined> {
  const reader = new AISDKPartReader(context);
  const chunks: TokenChunk[] = [];
  try {
    for await (const part of parts) {
      reader.read(part, chunks);
      if (chunks.length === 1) yield chunks.pop() as TokenChunk;
      else if (chunks.length > 1) yield* chunks.splice(0);
      // Leaving the loop cancels the rest: the final chunk need not wait for the stream to close.
      if (reader.finished) break;
    }
  } catch (error) {
    throw toSourceError(error, context);
  }
  yield reader.finish();
}

function describe(value: unknown): string {
  if (typeof (value as { then?: unknown } | null | undefined)?.then === 'function') return 'a Promise';
  return describeValue(value);
}
