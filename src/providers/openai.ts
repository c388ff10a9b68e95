import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import type { ResponseCreateParamsStreaming, ResponseStreamEvent } from 'openai/resources/responses/responses';
import { StreamAbortedError } from '../errors.js';
import type { TokenChunk } from '../types.js';
import { toOpenAIError, type OpenAIErrorContext } from './openai-errors.js';
import { OpenAIEventReader, type OpenAIStreamEvent } from './openai-events.js';

export type { OpenAIStreamEvent } from './openai-events.js';

/** Options of {@link fromOpenAI}. */
export interface FromOpenAIOptions {
  /**
   * The `provider` stamped on every chunk. Set it when the SDK talks to an OpenAI-compatible
   * server through `baseURL` (Ollama, vLLM, Groq, DeepSeek, OpenRouter…).
   * @defaultValue `'openai'`
   * @example
   * ```ts
   * fromOpenAI(stream, { provider: 'ollama' });
   * ```
   */
  provider?: string | undefined;
  /**
   * The signal you passed to the SDK request. The SDK ends a stream silently when it is
   * aborted; with the signal, tokenrelay reports that end as a `StreamAbortedError` instead
   * of a truncated stream.
   * @defaultValue the SDK stream's own `controller.signal`, when it has one
   * @example
   * ```ts
   * const stream = await openai.chat.completions.create({ ...params, stream: true }, { signal });
   * fromOpenAI(stream, { signal });
   * ```
   */
  signal?: AbortSignal | undefined;
}

/** Options of {@link streamOpenAI}. */
export interface StreamOpenAIOptions {
  /**
   * Cancels the HTTP request to the provider. Pass the signal of the source factory, so a
   * client that goes away stops the bill.
   * @defaultValue no cancellation
   * @example
   * ```ts
   * const source: TokenSourceFactory = (signal) => streamOpenAI(openai, params, { signal });
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * The `provider` stamped on every chunk and named in error messages.
   * @defaultValue `'openai'`
   * @example
   * ```ts
   * streamOpenAI(new OpenAI({ baseURL: 'http://localhost:11434/v1' }), params, { signal, provider: 'ollama' });
   * ```
   */
  provider?: string | undefined;
}

/** Chat Completions parameters as the SDK types them; `stream` is set for you. */
export type OpenAIChatParams = Omit<ChatCompletionCreateParamsStreaming, 'stream'> & { stream?: true | undefined };

/** Responses API parameters as the SDK types them; `stream` is set for you. */
export type OpenAIResponsesParams = Omit<ResponseCreateParamsStreaming, 'stream'> & { stream?: true | undefined };

/** What {@link streamOpenAI} sends: parameters with `messages` go to Chat Completions, others to Responses. */
export type StreamOpenAIParams = OpenAIChatParams | OpenAIResponsesParams;

interface RequestOptionsLike {
  signal?: AbortSignal | undefined;
}

/**
 * The parts of an `OpenAI` client that {@link streamOpenAI} uses. Any `openai` SDK ≥ 5 fits,
 * including `AzureOpenAI` and clients pointed at OpenAI-compatible servers.
 */
export interface OpenAIClientLike {
  /** Read only to keep the key out of error messages. */
  readonly apiKey?: unknown;
  chat: {
    completions: {
      create(body: ChatCompletionCreateParamsStreaming, options?: RequestOptionsLike): PromiseLike<AsyncIterable<ChatCompletionChunk>>;
    };
  };
  responses: {
    create(body: ResponseCreateParamsStreaming, options?: RequestOptionsLike): PromiseLike<AsyncIterable<ResponseStreamEvent>>;
  };
}

/**
 * Normalizes a streamed OpenAI answer into TokenChunks: what `chat.completions.create`,
 * `responses.create` (with `stream: true`), `chat.completions.stream` or `responses.stream`
 * return. Text, reasoning and tool-call argument deltas become chunks; the stream ends with
 * exactly one chunk that carries the `finishReason` and the usage. Only the first choice
 * (`index` 0) of a Chat Completions stream is relayed. A refusal is relayed as text and makes
 * the finish reason `'content-filter'`.
 *
 * Breaking out of the loop closes the SDK stream, which aborts its HTTP request. Provider
 * failures are thrown as `ProviderError` (`retryable` when sending again may help); a stream
 * that ends without a finish reason throws a retryable `ProviderError`.
 *
 * @example
 * ```ts
 * const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }, { signal });
 * for await (const chunk of fromOpenAI(stream, { signal })) process.stdout.write(chunk.token);
 * ```
 */
export async function* fromOpenAI(
  stream: AsyncIterable<ChatCompletionChunk> | AsyncIterable<ResponseStreamEvent>,
  options: FromOpenAIOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (stream === null || typeof stream !== 'object' || !(Symbol.asyncIterator in stream)) {
    throw new TypeError(`Expected \`stream\` to be an OpenAI stream (an async iterable), got ${describe(stream)}`);
  }
  const context = { provider: options.provider ?? 'openai', signal: options.signal };
  yield* relay(stream, context, options.signal ?? controllerSignal(stream));
}

/**
 * Starts a streamed OpenAI request and relays it as TokenChunks (see {@link fromOpenAI}).
 * Parameters with `messages` go to Chat Completions (with `stream_options.include_usage`
 * turned on unless you set it), any other parameters (`input`…) to the Responses API.
 *
 * Errors are typed: an abort through `signal` throws `StreamAbortedError` (its `cause` is the
 * signal's reason); HTTP errors throw `ProviderError` with `status`, `retryable`,
 * `providerType` and `retryAfterMs`; connection failures throw a retryable `ProviderError`.
 * Messages never contain the API key or the request body.
 *
 * @example
 * ```ts
 * const source: TokenSourceFactory = (signal) =>
 *   streamOpenAI(openai, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] }, { signal });
 * ```
 */
export async function* streamOpenAI(
  client: OpenAIClientLike,
  params: StreamOpenAIParams,
  options: StreamOpenAIOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (params === null || typeof params !== 'object') {
    throw new TypeError(`Expected \`params\` to be the request parameters object, got ${describe(params)}`);
  }
  const { signal } = options;
  const context: OpenAIErrorContext = { provider: options.provider ?? 'openai', signal, secrets: secretsOf(client) };
  if (signal?.aborted === true) throw new StreamAbortedError('The stream was aborted', { cause: signal.reason });
  let stream: AsyncIterable<OpenAIStreamEvent>;
  try {
    stream = await startRequest(client, params, signal);
  } catch (error) {
    throw toOpenAIError(error, context);
  }
  yield* relay(stream, context, signal);
}

async function* relay(
  stream: AsyncIterable<OpenAIStreamEvent>,
  context: OpenAIErrorContext,
  endSignal: AbortSignal | undefined,
): AsyncGenerator<TokenChunk, void, undefined> {
  const reader = new OpenAIEventReader(context);
  try {
    for await (const event of stream) yield* reader.read(event);
  } catch (error) {
    throw toOpenAIError(error, context);
  }
  // The SDK ends an aborted stream without an error, so an abort looks like a normal end here.
  if (endSignal?.aborted === true) throw new StreamAbortedError('The stream was aborted', { cause: endSignal.reason });
  yield reader.finish();
}

function startRequest(
  client: OpenAIClientLike,
  params: StreamOpenAIParams,
  signal: AbortSignal | undefined,
): PromiseLike<AsyncIterable<OpenAIStreamEvent>> {
  const requestOptions = signal === undefined ? {} : { signal };
  if (isChatParams(params)) {
    const streamOptions = { include_usage: true, ...params.stream_options };
    return client.chat.completions.create({ ...params, stream: true, stream_options: streamOptions }, requestOptions);
  }
  return client.responses.create({ ...params, stream: true }, requestOptions);
}

function isChatParams(params: StreamOpenAIParams): params is OpenAIChatParams {
  return 'messages' in params && !('input' in params);
}

function secretsOf(client: OpenAIClientLike): string[] {
  return typeof client.apiKey === 'string' ? [client.apiKey] : [];
}

function controllerSignal(stream: object): AbortSignal | undefined {
  const signal = (stream as { controller?: { signal?: unknown } }).controller?.signal;
  return signal instanceof AbortSignal ? signal : undefined;
}

function describe(value: unknown): string {
  if (value !== null && typeof (value as { then?: unknown }).then === 'function') return 'a Promise (did you forget `await`?)';
  return value === null ? 'null' : typeof value;
}
