import type { Anthropic } from '@anthropic-ai/sdk';
import type { TokenChunk } from '../core/types.js';
import { assertOptions, assertSignal, describeValue } from '../core/validate.js';
import { MessageState } from './anthropic-events.js';
import { isMessageStream, toAnthropicError, whyEndedEarly, type ErrorContext } from './anthropic-errors.js';

/** The in-band `event: error` frame Anthropic sends when a stream fails after it started. */
export interface AnthropicErrorEvent {
  /** Always `'error'`. */
  type: 'error';
  /** What went wrong. */
  error: {
    /** Anthropic's error type, e.g. `'overloaded_error'`. */
    type: string;
    /** Anthropic's message. */
    message?: string | undefined;
  };
}

/** The keep-alive `event: ping` frame (the SDK drops it; other sources may not). */
export interface AnthropicPingEvent {
  /** Always `'ping'`. */
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
  /**
   * Cancels the HTTP request; pass the signal of the `TokenSourceFactory`, so a client that goes
   * away stops the bill. Without it the request is cancelled only by breaking out of the loop,
   * and an abort of the SDK stream's own `controller` is still reported as `StreamAbortedError`
   * (the same fallback as `streamOpenAI`).
   * @defaultValue none: the SDK stream's own `controller.signal`
   * @example
   * ```ts
   * const source: TokenSourceFactory = (signal) => streamAnthropic(anthropic, params, { signal });
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * The `provider` stamped on every chunk and error.
   * @defaultValue `'anthropic'`
   */
  provider?: string | undefined;
}

/** What {@link streamAnthropic} needs of a client: `messages.create`, as in any `@anthropic-ai/sdk` copy. */
export interface AnthropicMessagesClient {
  /** The Messages API. */
  messages: {
    /** Starts a streamed Messages request. */
    create(
      body: Anthropic.MessageCreateParamsStreaming,
      options?: { signal?: AbortSignal | null | undefined },
    ): PromiseLike<AsyncIterable<Anthropic.RawMessageStreamEvent>>;
  };
}

/** The request body of {@link streamAnthropic}: a Messages request; `stream` is set for you. */
export type AnthropicStreamParams = Omit<Anthropic.MessageCreateParamsStreaming, 'stream'>;

/**
 * Normalizes an Anthropic Messages stream into TokenChunks: text, thinking (as `'reasoning'`),
 * tool-call arguments (streamed fragments, or the whole input as one chunk when it arrives
 * complete), citations and web results (as `'source'` chunks), then one final chunk with
 * `finishReason` and `usage`. Calls of tools Anthropic runs itself (`server_tool_use`,
 * `mcp_tool_use`) carry `toolCall.providerExecuted: true`: show them, do not run them. A whole
 * message sent in `message_start` (programmatic tool calling) is relayed the same way.
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
  assertAnthropicOptions(options);
  if (isMessageStream(stream) && (stream.ended === true || stream.currentMessage !== undefined)) {
    throw new TypeError('Expected a MessageStream that nothing has read yet, got one that already received events');
  }
  const start = watchMessageStart(stream);
  // Taken now, not on the first `next()`: a MessageStream only delivers events to iterators that exist.
  const iterator = stream[Symbol.asyncIterator]();
  return relayEvents(stream, iterator, options, start);
}

/** The `message` of `message_start` as it arrived. */
interface MessageStartWatch {
  message: Anthropic.Message | undefined;
  stop(): void;
}

interface EventEmitterLike {
  on(event: 'streamEvent', listener: (event: Anthropic.RawMessageStreamEvent) => void): unknown;
  off(event: 'streamEvent', listener: (event: Anthropic.RawMessageStreamEvent) => void): unknown;
}

/**
 * A `MessageStream` builds its message by changing the `message_start` event's `message` in
 * place as later events arrive, ahead of a reader that is slower than the network: keep a copy
 * taken when it arrived, so its content, stop reason and usage are read as the API sent them.
 */
function watchMessageStart(stream: object): MessageStartWatch {
  const watch: MessageStartWatch = { message: undefined, stop: () => {} };
  const emitter = stream as Partial<EventEmitterLike>;
  if (!isMessageStream(stream) || typeof emitter.on !== 'function' || typeof emitter.off !== 'function') return watch;
  const listener = (event: Anthropic.RawMessageStreamEvent) => {
    if (event.type === 'message_start' && watch.message === undefined) watch.message = structuredClone(event.message);
  };
  emitter.on.call(stream, 'streamEvent', listener);
  watch.stop = () => void emitter.off?.call(stream, 'streamEvent', listener);
  return watch;
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
  options: StreamAnthropicOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (typeof client?.messages?.create !== 'function') {
    throw new TypeError(`Expected \`client\` to be an Anthropic client with \`messages.create\`, got ${describe(client)}`);
  }
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new TypeError(`Expected \`params\` to be the Messages request parameters (an object), got ${describe(params)}`);
  }
  assertAnthropicOptions(options);
  return requestStream(client, params, { provider: options.provider ?? 'anthropic', signal: options.signal });
}

const OPTION_NAMES = ['signal', 'provider'] as const;

function assertAnthropicOptions(options: unknown): asserts options is FromAnthropicOptions {
  assertOptions('options', options, OPTION_NAMES);
  const { signal, provider } = (options ?? {}) as FromAnthropicOptions;
  if (signal !== undefined) assertSignal('options.signal', signal);
  if (provider !== undefined && (typeof provider !== 'string' || provider === '')) {
    throw new TypeError(`Expected \`options.provider\` to be a non-empty string, got ${describeValue(provider)}`);
  }
}

async function* requestStream(
  client: AnthropicMessagesClient,
  params: AnthropicStreamParams,
  context: ErrorContext,
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
  start: MessageStartWatch,
): AsyncGenerator<TokenChunk, void, undefined> {
  const context: ErrorContext = { provider: options.provider ?? 'anthropic', signal: options.signal };
  const message = new MessageState(context.provider);
  try {
    const chunks: TokenChunk[] = [];
    for await (const event of { [Symbol.asyncIterator]: () => iterator }) {
      const pristine = event.type === 'message_start' && start.message !== undefined ? { ...event, message: start.message } : event;
      message.accept(pristine, chunks);
      if (chunks.length === 1) yield chunks.pop() as TokenChunk;
      else if (chunks.length > 1) yield* chunks.splice(0);
    }
  } catch (error) {
    throw toAnthropicError(error, context);
  } finally {
    start.stop();
  }
  if (!message.stopped) throw await whyEndedEarly(source, context);
  yield message.finish();
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
