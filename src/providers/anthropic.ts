import type { Anthropic } from '@anthropic-ai/sdk';
import { ChunkStamper } from '../chunk-stamper.js';
import type { FinishReason, TokenChunk, ToolCallInfo, Usage } from '../types.js';
import { inBandError, isMessageStream, toAnthropicError, whyEndedEarly, type ErrorContext } from './anthropic-errors.js';

/** The in-band `event: error` frame Anthropic sends when a stream fails after it started. */
export interface AnthropicErrorEvent {
  type: 'error';
  error: { type: string; message?: string | undefined };
}

/** The keep-alive `event: ping` frame (the SDK drops it; other sources may not). */
export interface AnthropicPingEvent {
  type: 'ping';
}

/** Every event {@link fromAnthropic} understands. */
export type AnthropicStreamEvent = Anthropic.RawMessageStreamEvent | AnthropicErrorEvent | AnthropicPingEvent;

/**
 * Options of {@link fromAnthropic}.
 *
 * @example
 * ```ts
 * const stream = client.messages.stream(params, { signal });
 * const chunks = fromAnthropic(stream, { signal, provider: 'claude' });
 * ```
 */
export interface FromAnthropicOptions {
  /**
   * The `provider` stamped on every chunk and error.
   * @defaultValue `'anthropic'`
   */
  provider?: string | undefined;
  /**
   * The signal you gave the SDK call. When it has fired, an early end or an SDK abort error
   * becomes a `StreamAbortedError` whose `cause` is `signal.reason`.
   * @defaultValue none: aborts are recognised from the SDK's own abort error and controller
   */
  signal?: AbortSignal | undefined;
}

/**
 * Options of {@link streamAnthropic}.
 *
 * @example
 * ```ts
 * streamAnthropic(client, params, { signal: request.signal, provider: 'anthropic-eu' });
 * ```
 */
export interface StreamAnthropicOptions {
  /** Cancels the HTTP request; pass the signal of the `TokenSourceFactory`. */
  signal: AbortSignal;
  /**
   * The `provider` stamped on every chunk and error.
   * @defaultValue `'anthropic'`
   */
  provider?: string | undefined;
}

/** What {@link streamAnthropic} needs of a client: `messages.create`, as in any `@anthropic-ai/sdk` copy. */
export interface AnthropicMessagesClient {
  messages: {
    create(
      body: Anthropic.MessageCreateParamsStreaming,
      options?: { signal?: AbortSignal | null | undefined },
    ): PromiseLike<AsyncIterable<Anthropic.RawMessageStreamEvent>>;
  };
}

/** The request body of {@link streamAnthropic}: a Messages request; `stream` is set for you. */
export type AnthropicStreamParams = Omit<Anthropic.MessageCreateParamsStreaming, 'stream'>;

/**
 * Normalizes an Anthropic Messages stream into TokenChunks: text, thinking (as `'reasoning'`)
 * and tool-call argument fragments, then one final chunk with `finishReason` and `usage`.
 * Accepts the `MessageStream` of `client.messages.stream()` and the `Stream` of
 * `client.messages.create({ stream: true })`. Breaking out of the loop calls `return()` on the
 * SDK stream, which aborts its HTTP request. Errors are thrown as `ProviderError` or
 * `StreamAbortedError`.
 *
 * Pass a `MessageStream` right after creating it: it starts its request at once and does not
 * replay events to an iterator that attaches later.
 *
 * @example
 * ```ts
 * const stream = client.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 1024, messages });
 * for await (const chunk of fromAnthropic(stream)) process.stdout.write(chunk.token);
 * ```
 */
export function fromAnthropic(
  stream: AsyncIterable<AnthropicStreamEvent>,
  options: FromAnthropicOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (stream === null || typeof stream !== 'object' || typeof stream[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`Expected \`stream\` to be an Anthropic SDK stream (an async iterable), got ${describe(stream)}`);
  }
  if (isMessageStream(stream) && (stream.ended === true || stream.currentMessage !== undefined)) {
    throw new TypeError('Expected a MessageStream that nothing has read yet, got one that already received events');
  }
  // Taken now, not on the first `next()`: a MessageStream only delivers events to iterators that exist.
  const iterator = stream[Symbol.asyncIterator]();
  return relayEvents(stream, iterator, options);
}

/**
 * Sends a streamed Messages request and yields its normalized chunks. Errors before or during
 * the stream become typed errors: `StreamAbortedError` (with `cause: signal.reason`) when the
 * signal fired, else `ProviderError` with `status`, `retryable`, `providerType` and
 * `retryAfterMs`. Error messages never contain the API key or the request body; the SDK error
 * is kept as `cause`. Bad arguments throw a `TypeError` at once; the request is sent on the
 * first `next()`.
 *
 * @example
 * ```ts
 * const source: TokenSourceFactory = (signal) =>
 *   streamAnthropic(anthropic, { model: 'claude-haiku-4-5', max_tokens: 1024, messages }, { signal });
 * ```
 */
export function streamAnthropic(
  client: AnthropicMessagesClient,
  params: AnthropicStreamParams,
  options: StreamAnthropicOptions,
): AsyncGenerator<TokenChunk, void, undefined> {
  if (typeof client?.messages?.create !== 'function') {
    throw new TypeError(`Expected \`client\` to be an Anthropic client with \`messages.create\`, got ${describe(client)}`);
  }
  if (!isAbortSignal(options?.signal)) {
    throw new TypeError(`Expected \`options.signal\` to be an AbortSignal, got ${describe(options?.signal)}`);
  }
  return requestStream(client, params, { provider: options.provider ?? 'anthropic', signal: options.signal });
}

async function* requestStream(
  client: AnthropicMessagesClient,
  params: AnthropicStreamParams,
  context: Required<ErrorContext>,
): AsyncGenerator<TokenChunk, void, undefined> {
  let stream: AsyncIterable<Anthropic.RawMessageStreamEvent>;
  try {
    stream = await client.messages.create({ ...params, stream: true }, { signal: context.signal });
  } catch (error) {
    throw toAnthropicError(error, context);
  }
  yield* fromAnthropic(stream, context);
}

async function* relayEvents(
  source: AsyncIterable<AnthropicStreamEvent>,
  iterator: AsyncIterator<AnthropicStreamEvent>,
  options: FromAnthropicOptions,
): AsyncGenerator<TokenChunk, void, undefined> {
  const context: ErrorContext = { provider: options.provider ?? 'anthropic', signal: options.signal };
  const message = new MessageState(context.provider);
  try {
    for await (const event of { [Symbol.asyncIterator]: () => iterator }) {
      const chunk = message.accept(event);
      if (chunk !== undefined) yield chunk;
    }
  } catch (error) {
    throw toAnthropicError(error, context);
  }
  if (!message.stopped) throw await whyEndedEarly(source, context);
  yield message.finish();
}

/** The state of one message as its events arrive. */
class MessageState {
  stopped = false;
  readonly #stamper: ChunkStamper;
  readonly #usage = new UsageCounts();
  readonly #toolCalls = new Map<number, ToolCallInfo>();
  #finishReason: FinishReason = 'other';

  constructor(provider: string) {
    this.#stamper = new ChunkStamper(provider);
  }

  accept(event: AnthropicStreamEvent): TokenChunk | undefined {
    switch (event.type) {
      case 'message_start':
        this.#stamper.model = event.message.model;
        this.#usage.update(event.message.usage);
        return undefined;
      case 'content_block_start':
        this.#startBlock(event.index, event.content_block);
        return undefined;
      case 'content_block_delta':
        return this.#delta(event.index, event.delta);
      case 'message_delta':
        if (event.delta.stop_reason != null) this.#finishReason = toFinishReason(event.delta.stop_reason);
        this.#usage.update(event.usage);
        return undefined;
      case 'message_stop':
        this.stopped = true;
        return undefined;
      case 'error':
        throw inBandError(event.error, { provider: this.#stamper.provider ?? 'anthropic' }, event);
      default:
        return undefined;
    }
  }

  finish(): TokenChunk {
    return this.#stamper.finish(this.#finishReason, this.#usage.toUsage());
  }

  #startBlock(index: number, block: { type: string; id?: unknown; name?: unknown }): void {
    if (!block.type.endsWith('tool_use') || typeof block.id !== 'string' || typeof block.name !== 'string') return;
    this.#toolCalls.set(index, { id: block.id, name: block.name, index: this.#toolCalls.size });
  }

  #delta(index: number, delta: Anthropic.RawContentBlockDelta): TokenChunk | undefined {
    if (delta.type === 'text_delta') return this.#early(this.#stamper.chunk(delta.text));
    if (delta.type === 'thinking_delta') return this.#early(this.#stamper.chunk(delta.thinking, 'reasoning'));
    if (delta.type !== 'input_json_delta') return undefined;
    const toolCall = this.#toolCalls.get(index);
    return toolCall === undefined ? undefined : this.#early(this.#stamper.chunk(delta.partial_json, 'tool-call', { ...toolCall }));
  }

  // Anthropic reports the input tokens at the start: the first chunk carries the usage known
  // so far, so a stream stopped before its end is still costed with its real input.
  #early(chunk: TokenChunk): TokenChunk {
    if (chunk.index === 0 && this.#usage.known) chunk.usage = this.#usage.toUsage();
    return chunk;
  }
}

interface AnthropicUsageFields {
  input_tokens?: number | null | undefined;
  cache_read_input_tokens?: number | null | undefined;
  cache_creation_input_tokens?: number | null | undefined;
  output_tokens?: number | null | undefined;
  output_tokens_details?: { thinking_tokens?: number | null | undefined } | null | undefined;
}

/** Anthropic's counts are cumulative: each report replaces the fields it carries. */
class UsageCounts {
  #seen = false;

  /** Whether any report came yet. */
  get known(): boolean {
    return this.#seen;
  }

  #input = 0;
  #cacheRead = 0;
  #cacheCreation = 0;
  #output = 0;
  #thinking = 0;

  update(usage: AnthropicUsageFields | null | undefined): void {
    if (usage == null) return;
    this.#seen = true;
    this.#input = usage.input_tokens ?? this.#input;
    this.#cacheRead = usage.cache_read_input_tokens ?? this.#cacheRead;
    this.#cacheCreation = usage.cache_creation_input_tokens ?? this.#cacheCreation;
    this.#output = usage.output_tokens ?? this.#output;
    this.#thinking = usage.output_tokens_details?.thinking_tokens ?? this.#thinking;
  }

  toUsage(): Usage | undefined {
    if (!this.#seen) return undefined;
    const usage: Usage = {
      inputTokens: this.#input + this.#cacheRead + this.#cacheCreation,
      outputTokens: this.#output,
    };
    if (this.#cacheRead > 0) usage.cachedInputTokens = this.#cacheRead;
    if (this.#thinking > 0) usage.reasoningTokens = this.#thinking;
    return usage;
  }
}

const FINISH_REASONS: Readonly<Record<string, FinishReason>> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool-calls',
  refusal: 'content-filter',
};

function toFinishReason(stopReason: string): FinishReason {
  return FINISH_REASONS[stopReason] ?? 'other';
}


function isAbortSignal(value: unknown): value is AbortSignal {
  const signal = value as AbortSignal | null | undefined;
  return typeof signal?.aborted === 'boolean' && typeof signal.addEventListener === 'function';
}



function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
