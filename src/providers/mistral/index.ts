import type { ChatCompletionStreamRequest, CompletionEvent } from '@mistralai/mistralai/models/components';
import { StreamAbortedError } from '../../core/errors.js';
import type { TokenChunk } from '../../core/types.js';
import { assertOptions, assertSignal, describeValue } from '../../core/validate.js';
import { toMistralError, type MistralErrorContext } from './errors.js';
import { MistralEventReader, type MistralStreamEvent } from './events.js';

export type { MistralStreamEvent } from './events.js';

/** Options of {@link fromMistral}. */
export interface FromMistralOptions {
  /**
   * The signal you passed to `chat.stream()`. With it, a stream that ends after the signal
   * was aborted is reported as a `StreamAbortedError` (its `cause` is the signal's reason)
   * rather than as a provider failure.
   * @defaultValue none
   * @example
   * ```ts
   * const stream = await mistral.chat.stream(params, { signal });
   * fromMistral(stream, { signal });
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * The `provider` stamped on every chunk and named in error messages.
   * @defaultValue `'mistral'`
   * @example
   * ```ts
   * fromMistral(stream, { provider: 'mistral-eu' });
   * ```
   */
  provider?: string | undefined;
}

/** Options of {@link streamMistral}. */
export interface StreamMistralOptions {
  /**
   * Cancels the HTTP request to Mistral (it is passed as the request options' `signal`). Pass
   * the signal of the source factory, so a client that goes away stops the bill. Optional, as
   * in `streamOpenAI`: without it only breaking out of the loop cancels the request. Note that
   * the SDK applies its own `timeoutMs` only to requests sent without a signal.
   * @defaultValue none
   * @example
   * ```ts
   * const source: TokenSourceFactory = (signal) => streamMistral(mistral, params, { signal });
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * The `provider` stamped on every chunk and named in error messages.
   * @defaultValue `'mistral'`
   * @example
   * ```ts
   * streamMistral(mistral, params, { signal, provider: 'mistral-eu' });
   * ```
   */
  provider?: string | undefined;
}

/** `chat.stream()` parameters as the SDK types them (camelCase: `maxTokens`, `toolChoice`…). */
export type StreamMistralParams = ChatCompletionStreamRequest;

/**
 * The part of a `Mistral` client that {@link streamMistral} uses: any `@mistralai/mistralai`
 * 2.x client fits.
 */
export interface MistralClientLike {
  /** `mistral.chat`. */
  chat: {
    /** Starts a streamed chat request. */
    stream(request: ChatCompletionStreamRequest, options?: { signal?: AbortSignal }): PromiseLike<AsyncIterable<CompletionEvent>>;
  };
}

/**
 * Normalizes a streamed Mistral answer (what `mistral.chat.stream()` returns) into TokenChunks.
 * `content` given as a string or as typed parts becomes text chunks, `thinking` parts (magistral
 * models) become `'reasoning'` chunks, tool call deltas become `'tool-call'` chunks (a call is
 * told apart by its id; a follow-up delta whose id the SDK turned into `"null"` continues the
 * call at its index). The stream ends with exactly one chunk that carries the `finishReason`
 * (`model_length` is `'length'`) and the usage, cached prompt tokens included. Only the first
 * choice is relayed.
 *
 * Breaking out of the loop cancels the SDK stream, which closes its HTTP request. Failures are
 * thrown as `ProviderError` (`retryable` when sending again may help); a stream that ends
 * without a finish reason throws a retryable `ProviderError`.
 *
 * @example
 * ```ts
 * const stream = await mistral.chat.stream({ model: 'mistral-small-latest', messages }, { signal });
 * for await (const chunk of fromMistral(stream, { signal })) process.stdout.write(chunk.token);
 * ```
 */
export function fromMistral(
  stream: AsyncIterable<MistralStreamEvent>,
  options: FromMistralOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (stream === null || typeof stream !== 'object' || typeof (stream as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`Expected \`stream\` to be a Mistral stream (an async iterable), got ${describe(stream)}`);
  }
  assertRelayOptions(options);
  const context: MistralErrorContext = { provider: options.provider ?? 'mistral', signal: options.signal };
  return relay(() => ({ stream, context }));
}

/**
 * Starts a streamed Mistral chat completion (`client.chat.stream(params, { signal })`) and
 * relays it as TokenChunks (see {@link fromMistral}).
 *
 * Bad arguments (a missing client, params that are not an object, an unknown option key) throw
 * a `TypeError` at once; the request is sent on the first `next()`.
 *
 * Errors are typed: an abort through `signal` throws `StreamAbortedError` (its `cause` is the
 * signal's reason); HTTP errors throw `ProviderError` with `status`, `retryable` (429, 5xx),
 * `providerType` and `retryAfterMs`; timeouts and connection failures throw a retryable
 * `ProviderError`. Messages never contain the API key or the request body.
 *
 * @example
 * ```ts
 * const source: TokenSourceFactory = (signal) =>
 *   streamMistral(mistral, { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'Hi' }] }, { signal });
 * ```
 */
export function streamMistral(
  client: MistralClientLike,
  params: StreamMistralParams,
  options: StreamMistralOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (client === null || typeof client !== 'object') {
    throw new TypeError(`Expected \`client\` to be a Mistral client, got ${describe(client)}`);
  }
  if (typeof client.chat?.stream !== 'function') {
    throw new TypeError(`Expected \`client\` to be a Mistral client with \`chat.stream\`, got ${describe(client)} without it`);
  }
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new TypeError(`Expected \`params\` to be the request parameters object, got ${describe(params)}`);
  }
  assertRelayOptions(options);
  const { signal } = options;
  const context: MistralErrorContext = { provider: options.provider ?? 'mistral', signal, secrets: secretsOf(client) };
  return relay(async () => {
    if (signal?.aborted === true) throw new StreamAbortedError('The stream was aborted', { cause: signal.reason });
    try {
      const stream = await client.chat.stream({ ...params, stream: true }, signal === undefined ? undefined : { signal });
      return { stream, context };
    } catch (error) {
      throw toMistralError(error, context);
    }
  });
}

interface Started {
  stream: AsyncIterable<MistralStreamEvent>;
  context: MistralErrorContext;
}

/**
 * One Mistral stream relayed as TokenChunks. A plain async generator: its `return()` (a consumer
 * that breaks) closes the SDK stream, which cancels the HTTP body; a `next()` that is pending is
 * cut short through the signal instead (`withAbort`, `withTimeout`).
 */
async function* relay(start: () => Started | Promise<Started>): AsyncGenerator<TokenChunk, void, undefined> {
  const { stream, context } = await start();
  const { signal } = context;
  const reader = new MistralEventReader(context.provider);
  const out: TokenChunk[] = [];
  try {
    for await (const event of stream) {
      // Events already buffered when the signal fired are not relayed: the reader has gone.
      if (signal?.aborted === true) throw new StreamAbortedError('The stream was aborted', { cause: signal.reason });
      reader.read(event, out);
      for (let i = 0; i < out.length; i++) yield out[i] as TokenChunk;
      out.length = 0;
    }
  } catch (error) {
    throw toMistralError(error, context);
  }
  if (signal?.aborted === true) throw new StreamAbortedError('The stream was aborted', { cause: signal.reason });
  yield reader.finish();
}

/** The API key of a `Mistral` client, when it is a string, to keep it out of error messages. */
function secretsOf(client: object): string[] {
  const apiKey = (client as { _options?: { apiKey?: unknown } })._options?.apiKey;
  return typeof apiKey === 'string' ? [apiKey] : [];
}

const OPTION_KEYS = ['provider', 'signal'] as const;

/** `options` of both entry points: the same two keys, each checked. */
function assertRelayOptions(options: unknown): asserts options is FromMistralOptions {
  assertOptions('options', options, OPTION_KEYS);
  const { provider, signal } = (options ?? {}) as FromMistralOptions;
  if (signal !== undefined) assertSignal('options.signal', signal);
  if (provider !== undefined && (typeof provider !== 'string' || provider === '')) {
    throw new TypeError(`Expected \`options.provider\` to be a non-empty string, got ${describeValue(provider)}`);
  }
}

function describe(value: unknown): string {
  if (typeof (value as { then?: unknown } | null | undefined)?.then === 'function') return 'a Promise (did you forget `await`?)';
  return describeValue(value);
}
