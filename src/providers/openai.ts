import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import type { ResponseCreateParamsStreaming, ResponseStreamEvent } from 'openai/resources/responses/responses';
import { StreamAbortedError } from '../core/errors.js';
import type { TokenChunk } from '../core/types.js';
import { assertOptions, assertSignal, describeValue } from '../core/validate.js';
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
   * client that goes away stops the bill. Optional, as in `streamAnthropic`: without it only
   * breaking out of the loop cancels the request, and the SDK stream's own `controller.signal`
   * tells an abort from a normal end.
   * @defaultValue the SDK stream's own `controller.signal`
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
export type OpenAIChatParams = Omit<ChatCompletionCreateParamsStreaming, 'stream'> & {
  /** Always a stream; `true` or left out. */
  stream?: true | undefined;
};

/** Responses API parameters as the SDK types them; `stream` is set for you. */
export type OpenAIResponsesParams = Omit<ResponseCreateParamsStreaming, 'stream'> & {
  /** Always a stream; `true` or left out. */
  stream?: true | undefined;
};

/** What {@link streamOpenAI} sends: parameters with `messages` go to Chat Completions, others to Responses. */
export type StreamOpenAIParams = OpenAIChatParams | OpenAIResponsesParams;

/** @inline */
interface RequestOptionsLike {
  /** Cancels the HTTP request. */
  signal?: AbortSignal | undefined;
}

/**
 * The parts of an `OpenAI` client that {@link streamOpenAI} uses. Any `openai` SDK ≥ 5 fits,
 * including `AzureOpenAI` and clients pointed at OpenAI-compatible servers.
 */
export interface OpenAIClientLike {
  /** Read only to keep the key out of error messages. */
  readonly apiKey?: unknown;
  /** The Chat Completions API. */
  chat: {
    /** `chat.completions`. */
    completions: {
      /** Starts a streamed Chat Completions request. */
      create(body: ChatCompletionCreateParamsStreaming, options?: RequestOptionsLike): PromiseLike<AsyncIterable<ChatCompletionChunk>>;
    };
  };
  /** The Responses API. */
  responses: {
    /** Starts a streamed Responses request. */
    create(body: ResponseCreateParamsStreaming, options?: RequestOptionsLike): PromiseLike<AsyncIterable<ResponseStreamEvent>>;
  };
}

/**
 * Normalizes a streamed OpenAI answer into TokenChunks: what `chat.completions.create`,
 * `responses.create` (with `stream: true`), `chat.completions.stream` or `responses.stream`
 * return. Text, reasoning and tool-call argument deltas become chunks, citations become
 * `'source'` chunks (each source once), and Responses items the application must act on
 * (`local_shell_call`, `shell_call`, `apply_patch_call`, `mcp_approval_request`…) become
 * tool calls; tools the provider ran itself (web search, code interpreter, remote MCP…) are
 * relayed as tool calls with `providerExecuted: true`. The stream ends with exactly one chunk
 * that carries the `finishReason` and the usage. Only the first choice (`index` 0) of a Chat
 * Completions stream is relayed. A refusal is relayed as text and makes the finish reason
 * `'content-filter'`. A stream the SDK's helpers reject (`responses.stream()` meeting an event
 * it does not know…) throws a non-retryable `ProviderError`.
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
export function fromOpenAI(
  stream: AsyncIterable<ChatCompletionChunk> | AsyncIterable<ResponseStreamEvent>,
  options: FromOpenAIOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (stream === null || typeof stream !== 'object' || typeof (stream as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`Expected \`stream\` to be an OpenAI stream (an async iterable), got ${describe(stream)}`);
  }
  assertRelayOptions(options);
  const context = { provider: options.provider ?? 'openai', signal: options.signal };
  return new OpenAIRelay(() => ({ stream, context, endSignal: options.signal ?? controllerSignal(stream) }));
}

/**
 * Starts a streamed OpenAI request and relays it as TokenChunks (see {@link fromOpenAI}).
 * Parameters with `messages` go to Chat Completions (with `stream_options.include_usage`
 * turned on unless you set it), any other parameters (`input`…) to the Responses API.
 *
 * Bad arguments (a missing client, params that are not an object, an unknown option key) throw
 * a `TypeError` at once; the request is sent on the first `next()`.
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
export function streamOpenAI(
  client: OpenAIClientLike,
  params: StreamOpenAIParams,
  options: StreamOpenAIOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (client === null || typeof client !== 'object') {
    throw new TypeError(`Expected \`client\` to be an OpenAI client, got ${describe(client)}`);
  }
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new TypeError(`Expected \`params\` to be the request parameters object, got ${describe(params)}`);
  }
  const method = isChatParams(params) ? 'chat.completions.create' : 'responses.create';
  const create = isChatParams(params) ? client.chat?.completions?.create : client.responses?.create;
  if (typeof create !== 'function') {
    throw new TypeError(`Expected \`client\` to be an OpenAI client with \`${method}\`, got ${describe(client)} without it`);
  }
  assertRelayOptions(options);
  return new OpenAIRelay(async () => {
    const { signal } = options;
    const context: OpenAIErrorContext = { provider: options.provider ?? 'openai', signal, secrets: secretsOf(client) };
    if (signal?.aborted === true) throw new StreamAbortedError('The stream was aborted', { cause: signal.reason });
    try {
      const stream = await startRequest(client, params, signal);
      return { stream, context, endSignal: signal ?? controllerSignal(stream) };
    } catch (error) {
      throw toOpenAIError(error, context);
    }
  });
}

/** What a relay reads, once its start (checks, and the request for `streamOpenAI`) succeeded. */
interface Started {
  stream: AsyncIterable<OpenAIStreamEvent>;
  context: OpenAIErrorContext;
  /** Once aborted, the SDK's silent end of the stream is an abort, not a normal end. */
  endSignal: AbortSignal | undefined;
}

type Result = IteratorResult<TokenChunk, void>;
const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
// %AsyncIteratorPrototype%, for `Symbol.asyncDispose` (`await using`) wherever the runtime has it.
const ASYNC_ITERATOR_PROTOTYPE: object = Object.getPrototypeOf(Object.getPrototypeOf(async function* () {}).prototype);

/**
 * One OpenAI stream relayed as TokenChunks: an async generator written by hand, because each
 * `async function*` layer costs several promises per chunk and this runs once per token. It
 * keeps a generator's contract: nothing starts before the first `next()`; calls are served in
 * order, one after the other; the first error ends it; `return()` and `throw()` close the SDK
 * stream (which aborts its HTTP request) and wait for that. Provider failures are thrown as
 * tokenrelay errors (`toOpenAIError`).
 */
class OpenAIRelay implements AsyncGenerator<TokenChunk, void, undefined> {
  #start: (() => Started | PromiseLike<Started>) | undefined;
  #context: OpenAIErrorContext = { provider: 'openai' };
  #endSignal: AbortSignal | undefined;
  #reader: OpenAIEventReader | undefined;
  #source: AsyncIterator<OpenAIStreamEvent> | undefined;
  /** Chunks of the last event beyond the one already delivered (an event may carry several). */
  readonly #queue: TokenChunk[] = [];
  /** An event failed after some of its chunks: they go out first, then this error. */
  #failure: { error: unknown } | undefined;
  #done = false;
  #sourceOpen = false;
  #reading = false;
  #current: Promise<Result> | undefined;
  /** Inherited from %AsyncIteratorPrototype% (it calls `return()`), where the runtime has it. */
  declare readonly [Symbol.asyncDispose]: () => Promise<void>;

  constructor(start: () => Started | PromiseLike<Started>) {
    this.#start = start;
  }

  next(): Promise<Result> {
    if (this.#reading) {
      const again = () => this.next();
      return (this.#current as Promise<Result>).then(again, again);
    }
    const queue = this.#queue;
    if (queue.length > 0) return Promise.resolve({ done: false, value: queue.shift() as TokenChunk });
    const failure = this.#failure;
    if (failure !== undefined) return this.#fail(failure.error);
    if (this.#done) return Promise.resolve(DONE);
    this.#reading = true;
    const read = this.#source === undefined ? this.#begin() : this.#read();
    this.#current = read;
    return read;
  }

  return(): Promise<Result> {
    if (this.#reading) {
      const again = () => this.return();
      return (this.#current as Promise<Result>).then(again, again);
    }
    const open = this.#stop();
    if (!open) return Promise.resolve(DONE);
    return this.#closeSource().then(
      () => DONE,
      (error: unknown) => Promise.reject(toOpenAIError(error, this.#context)),
    );
  }

  throw(error: unknown): Promise<Result> {
    if (this.#reading) {
      const again = () => this.throw(error);
      return (this.#current as Promise<Result>).then(again, again);
    }
    const open = this.#stop();
    return open ? this.#fail(error) : Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #begin(): Promise<Result> {
    const start = this.#start as () => Started | PromiseLike<Started>;
    this.#start = undefined;
    return new Promise<Started>((resolve) => resolve(start())).then(this.#onStart, this.#onStartError);
  }

  readonly #onStart = (started: Started): Promise<Result> => {
    this.#context = started.context;
    this.#endSignal = started.endSignal;
    this.#reader = new OpenAIEventReader(started.context);
    try {
      this.#source = started.stream[Symbol.asyncIterator]();
    } catch (error) {
      this.#reading = false;
      this.#done = true;
      throw toOpenAIError(error, started.context);
    }
    this.#sourceOpen = true;
    return this.#read();
  };

  readonly #onStartError = (error: unknown): never => {
    this.#reading = false;
    this.#done = true;
    throw error;
  };

  #read(): Promise<Result> {
    let next: Promise<IteratorResult<OpenAIStreamEvent>>;
    try {
      next = (this.#source as AsyncIterator<OpenAIStreamEvent>).next();
    } catch (error) {
      next = Promise.reject(error);
    }
    return next.then(this.#onEvent, this.#onError);
  }

  // One event: its first chunk is the result of the read, the others wait in the queue.
  readonly #onEvent = (result: IteratorResult<OpenAIStreamEvent>): Result | Promise<Result> => {
    if (result.done === true) {
      this.#sourceOpen = false;
      return this.#end();
    }
    const queue = this.#queue;
    try {
      (this.#reader as OpenAIEventReader).read(result.value, queue);
    } catch (error) {
      // An event the reader rejects (an in-band error) ends the stream, after its chunks so far.
      this.#done = true;
      this.#failure = { error };
    }
    const chunk = queue.shift();
    if (chunk !== undefined) {
      this.#reading = false;
      return { done: false, value: chunk };
    }
    const failure = this.#failure;
    if (failure === undefined) return this.#read();
    this.#reading = false;
    return this.#fail(failure.error);
  };

  readonly #onError = (error: unknown): never => {
    this.#reading = false;
    this.#done = true;
    this.#sourceOpen = false;
    throw toOpenAIError(error, this.#context);
  };

  #end(): Result {
    this.#reading = false;
    this.#done = true;
    // The SDK ends an aborted stream without an error, so an abort looks like a normal end here.
    const signal = this.#endSignal;
    if (signal?.aborted === true) throw new StreamAbortedError('The stream was aborted', { cause: signal.reason });
    return { done: false, value: (this.#reader as OpenAIEventReader).finish() };
  }

  /** As an error inside a generator's loop: the source is closed (its own failure ignored), then the error mapped. */
  #fail(error: unknown): Promise<Result> {
    this.#failure = undefined;
    const fail = () => Promise.reject(toOpenAIError(error, this.#context));
    return this.#closeSource().then(fail, fail);
  }

  /** Ends the relay; true when the source is open and must still be closed. */
  #stop(): boolean {
    this.#start = undefined;
    this.#done = true;
    this.#queue.length = 0;
    this.#failure = undefined;
    return this.#sourceOpen;
  }

  #closeSource(): Promise<unknown> {
    this.#sourceOpen = false;
    const source = this.#source as AsyncIterator<OpenAIStreamEvent>;
    try {
      return Promise.resolve(source.return?.());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
Object.setPrototypeOf(OpenAIRelay.prototype, ASYNC_ITERATOR_PROTOTYPE);

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

const OPTION_KEYS = ['provider', 'signal'] as const;

/** `options` of both entry points: the same two keys, each checked. */
function assertRelayOptions(options: unknown): asserts options is FromOpenAIOptions {
  assertOptions('options', options, OPTION_KEYS);
  const { provider, signal } = (options ?? {}) as FromOpenAIOptions;
  if (signal !== undefined) assertSignal('options.signal', signal);
  if (provider !== undefined && (typeof provider !== 'string' || provider === '')) {
    throw new TypeError(`Expected \`options.provider\` to be a non-empty string, got ${describeValue(provider)}`);
  }
}

function describe(value: unknown): string {
  if (typeof (value as { then?: unknown } | null | undefined)?.then === 'function') return 'a Promise (did you forget `await`?)';
  return describeValue(value);
}
