import type { GenerateContentParameters } from '@google/genai';
import { StreamAbortedError } from '../../core/errors.js';
import type { TokenChunk } from '../../core/types.js';
import { assertOptions, assertSignal, describeValue } from '../../core/validate.js';
import { toGoogleError, type GoogleErrorContext } from './google-errors.js';
import { GoogleResponseReader, type GoogleStreamResponse } from './google-events.js';

export type { GoogleStreamResponse } from './google-events.js';

/** Options of {@link fromGoogle}. */
export interface FromGoogleOptions {
  /**
   * The `provider` stamped on every chunk and named in error messages.
   * @defaultValue `'google'`
   * @example
   * ```ts
   * fromGoogle(stream, { provider: 'vertex' });
   * ```
   */
  provider?: string | undefined;
  /**
   * The signal you passed as `config.abortSignal`. With it, an abort is reported as a
   * `StreamAbortedError` whose `cause` is `signal.reason`, and an abort the signal did not cause
   * (the SDK's `httpOptions.timeout`) as a retryable `ProviderError`.
   * @defaultValue none: every abort is reported as `StreamAbortedError`
   * @example
   * ```ts
   * const stream = await ai.models.generateContentStream({ model, contents, config: { abortSignal: signal } });
   * fromGoogle(stream, { signal });
   * ```
   */
  signal?: AbortSignal | undefined;
}

/** Options of {@link streamGoogle}. */
export interface StreamGoogleOptions {
  /**
   * Cancels the HTTP request to Google. Pass the signal of the source factory, so a client that
   * goes away stops the bill. Optional, as in `streamOpenAI`: without it, breaking out of the
   * loop still cancels the request.
   * @defaultValue none
   * @example
   * ```ts
   * const source: TokenSourceFactory = (signal) => streamGoogle(ai, params, { signal });
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * The `provider` stamped on every chunk and named in error messages.
   * @defaultValue `'google'`
   * @example
   * ```ts
   * streamGoogle(new GoogleGenAI({ vertexai: true, project, location }), params, { signal, provider: 'vertex' });
   * ```
   */
  provider?: string | undefined;
}

/** What {@link streamGoogle} sends: `generateContentStream` parameters as the SDK types them. */
export type StreamGoogleParams = GenerateContentParameters;

/**
 * The part of a `GoogleGenAI` client that {@link streamGoogle} uses: `models.generateContentStream`,
 * for the Gemini API and Vertex AI (`vertexai: true`) alike.
 */
export interface GoogleClientLike {
  /** `ai.models`. */
  models: {
    /** Starts a streamed Gemini request. */
    generateContentStream(params: GenerateContentParameters): PromiseLike<AsyncIterable<GoogleStreamResponse>>;
  };
}

/**
 * Normalizes a streamed Gemini answer (what `ai.models.generateContentStream` returns) into
 * TokenChunks. Text parts become text chunks, parts with `thought: true` reasoning chunks, and
 * each `functionCall` part one `'tool-call'` chunk with its complete JSON arguments (Gemini
 * sends a call whole), under the call's `id` or, when Gemini sends none, an id made from the
 * response id and the call's position. Code the model ran itself (`executableCode`) and
 * server-side `toolCall` parts become tool calls with `providerExecuted: true`. Grounding chunks
 * (Google Search, Maps, retrieval) and citations become `'source'` chunks, each source once.
 * Only candidate 0 is relayed. The stream ends with exactly one chunk that carries the
 * `finishReason` and the usage; `'tool-calls'` when the answer stops with calls to run.
 *
 * Provider failures are thrown as `ProviderError` (`retryable` when sending again may help); a
 * stream that ends without a finish reason (and without a blocked prompt) throws a retryable
 * `ProviderError`. The SDK does not cancel its HTTP request when the loop is left early: abort
 * the `config.abortSignal` you gave it, or use {@link streamGoogle}, which does.
 *
 * @example
 * ```ts
 * const stream = await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents, config: { abortSignal: signal } });
 * for await (const chunk of fromGoogle(stream, { signal })) process.stdout.write(chunk.token);
 * ```
 */
export function fromGoogle(
  stream: AsyncIterable<GoogleStreamResponse>,
  options: FromGoogleOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (stream === null || typeof stream !== 'object' || typeof (stream as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`Expected \`stream\` to be a Gemini stream (an async iterable), got ${describe(stream)}`);
  }
  assertRelayOptions(options);
  const context: GoogleErrorContext = { provider: options.provider ?? 'google', signal: options.signal };
  return relay(() => stream, context, undefined);
}

/**
 * Starts `ai.models.generateContentStream(params)` and relays it as TokenChunks (see
 * {@link fromGoogle}). The request carries its own `config.abortSignal`, linked to `signal` (and
 * to a `config.abortSignal` you set): aborting either one, or breaking out of the loop, cancels
 * the HTTP request, and no listener stays on your signal afterwards.
 *
 * Bad arguments (a missing client, params that are not an object, an unknown option key) throw a
 * `TypeError` at once; the request is sent on the first `next()`.
 *
 * Errors are typed: an abort through `signal` throws `StreamAbortedError` (its `cause` is the
 * signal's reason); the SDK's `ApiError`s throw `ProviderError` with `status` (HTTP errors),
 * `providerType` (Google's status, e.g. `'RESOURCE_EXHAUSTED'`), `retryable` and `retryAfterMs`
 * (from `RetryInfo`); `httpOptions.timeout` and connection failures throw a retryable
 * `ProviderError`. Messages never contain the API key.
 *
 * @example
 * ```ts
 * const ai = new GoogleGenAI({ apiKey: process.env.GEMINI_API_KEY });
 * const source: TokenSourceFactory = (signal) =>
 *   streamGoogle(ai, { model: 'gemini-2.5-flash', contents: 'Hi' }, { signal });
 * ```
 */
export function streamGoogle(
  client: GoogleClientLike,
  params: StreamGoogleParams,
  options: StreamGoogleOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (client === null || typeof client !== 'object') {
    throw new TypeError(`Expected \`client\` to be a GoogleGenAI client, got ${describe(client)}`);
  }
  if (typeof client.models?.generateContentStream !== 'function') {
    throw new TypeError(`Expected \`client\` to be a GoogleGenAI client with \`models.generateContentStream\`, got ${describe(client)} without it`);
  }
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new TypeError(`Expected \`params\` to be the request parameters object, got ${describe(params)}`);
  }
  assertRelayOptions(options);
  const own = new AbortController();
  const context: GoogleErrorContext = {
    provider: options.provider ?? 'google',
    signal: options.signal,
    ownSignal: own.signal,
    secrets: secretsOf(client),
  };
  const start = () => {
    const config = { ...params.config, abortSignal: own.signal };
    return client.models.generateContentStream({ ...params, config });
  };
  return relay(start, context, { own, signals: [options.signal, params.config?.abortSignal] });
}

/** What `streamGoogle` links: the caller's signals, to the request's own controller. */
interface Link {
  own: AbortController;
  signals: (AbortSignal | undefined)[];
}

/**
 * One Gemini stream relayed as TokenChunks. The SDK ends an aborted stream with an error, never
 * silently; its `return()` only releases the body's lock, so `streamGoogle` aborts the request
 * itself on every early exit.
 */
async function* relay(
  start: () => AsyncIterable<GoogleStreamResponse> | PromiseLike<AsyncIterable<GoogleStreamResponse>>,
  context: GoogleErrorContext,
  link: Link | undefined,
): AsyncGenerator<TokenChunk, void, undefined> {
  const onAbort = (event: Event) => link?.own.abort((event.target as AbortSignal).reason);
  const signals = (link?.signals ?? []).filter((signal): signal is AbortSignal => signal !== undefined);
  let finished = false;
  try {
    const aborted = signals.find((signal) => signal.aborted);
    if (aborted !== undefined) throw new StreamAbortedError('The stream was aborted', { cause: aborted.reason });
    for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true });
    const reader = new GoogleResponseReader(context);
    const out: TokenChunk[] = [];
    let stream: AsyncIterable<GoogleStreamResponse>;
    try {
      stream = await start();
    } catch (error) {
      throw toGoogleError(error, context);
    }
    try {
      for await (const response of stream) {
        reader.read(response, out);
        for (const chunk of out) yield chunk;
        out.length = 0;
      }
    } catch (error) {
      throw toGoogleError(error, context);
    }
    finished = true;
    yield reader.finish();
  } finally {
    for (const signal of signals) signal.removeEventListener('abort', onAbort);
    if (!finished) link?.own.abort(new StreamAbortedError('The consumer stopped reading'));
  }
}

function secretsOf(client: object): string[] {
  const key = (client as { apiKey?: unknown }).apiKey;
  return typeof key === 'string' ? [key] : [];
}

const OPTION_KEYS = ['provider', 'signal'] as const;

/** `options` of both entry points: the same two keys, each checked. */
function assertRelayOptions(options: unknown): asserts options is FromGoogleOptions {
  assertOptions('options', options, OPTION_KEYS);
  const { provider, signal } = (options ?? {}) as FromGoogleOptions;
  if (signal !== undefined) assertSignal('options.signal', signal);
  if (provider !== undefined && (typeof provider !== 'string' || provider === '')) {
    throw new TypeError(`Expected \`options.provider\` to be a non-empty string, got ${describeValue(provider)}`);
  }
}

function describe(value: unknown): string {
  if (typeof (value as { then?: unknown } | null | undefined)?.then === 'function') return 'a Promise (did you forget `await`?)';
  return describeValue(value);
}
