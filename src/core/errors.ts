import type { ToolCallInfo } from './types.js';

/** The string `code` of every error tokenrelay throws. */
export type TokenRelayErrorCode =
  | 'provider'
  | 'aborted'
  | 'timeout'
  | 'backpressure'
  | 'not-found'
  | 'producer-lost'
  | 'invalid-cursor'
  | 'invalid-json'
  | 'invalid-request'
  | 'limit'
  | 'budget-exceeded'
  | 'store-unavailable';

/** Base class of every error tokenrelay throws; match it with {@link isTokenRelayError}. */
export abstract class TokenRelayError extends Error {
  /** What went wrong, as a stable string: what the SSE `error` event and the JSON error body carry as `code`. */
  abstract readonly code: TokenRelayErrorCode;
  /** The class name; the `isXError()` guards match by it, so they work across copies of the package. */
  override name = 'TokenRelayError';
}

/** Options of {@link ProviderError}. */
export interface ProviderErrorOptions {
  /** The HTTP status the provider answered with, when there was one. */
  status?: number | undefined;
  /** Whether the same request may succeed when sent again (429, 5xx, overload, reset). */
  retryable?: boolean | undefined;
  /** The provider's own error type, e.g. `'rate_limit_error'` or `'overloaded_error'`. */
  providerType?: string | undefined;
  /** How long the provider asked to wait before retrying, from `retry-after`, in ms. */
  retryAfterMs?: number | undefined;
  /** Which provider failed, e.g. `'openai'`. */
  provider?: string | undefined;
  /** The underlying error, passed through untouched. */
  cause?: unknown;
}

/**
 * The provider failed: an HTTP error before the stream, an error event inside it, or a broken
 * connection. The message never contains an API key or the request body.
 */
export class ProviderError extends TokenRelayError {
  readonly code = 'provider';
  override name = 'ProviderError';
  /** The HTTP status the provider answered with, when there was one (429 passes through to the client). */
  readonly status: number | undefined;
  /** Whether the same request may succeed when sent again (429, 5xx, overload, reset). */
  readonly retryable: boolean;
  /** The provider's own error type, e.g. `'rate_limit_error'`. */
  readonly providerType: string | undefined;
  /** How long the provider asked to wait before retrying, in ms (sent as `Retry-After`). */
  readonly retryAfterMs: number | undefined;
  /** Which provider failed, e.g. `'openai'`. */
  readonly provider: string | undefined;

  constructor(message: string, options: ProviderErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.retryable = options.retryable ?? isRetryableStatus(options.status);
    this.providerType = options.providerType;
    this.retryAfterMs = options.retryAfterMs;
    this.provider = options.provider;
  }
}

/** The stream was stopped through an `AbortSignal`; `cause` is the signal's `reason`. */
export class StreamAbortedError extends TokenRelayError {
  readonly code = 'aborted';
  override name = 'StreamAbortedError';

  constructor(message = 'The stream was aborted', options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

/** Which deadline of `withTimeout` expired. */
export type TimeoutPhase = 'first-token' | 'idle' | 'total';

/** A deadline expired: no first chunk, no chunk for too long, or the whole stream took too long. */
export class StreamTimeoutError extends TokenRelayError {
  readonly code = 'timeout';
  override name = 'StreamTimeoutError';
  /** Which deadline expired: `firstTokenMs`, `idleMs` or `totalMs`. */
  readonly phase: TimeoutPhase;
  /** The deadline that expired, in ms. */
  readonly timeoutMs: number;

  constructor(phase: TimeoutPhase, timeoutMs: number, options: { cause?: unknown } = {}) {
    super(`No ${describePhase(phase)} within ${timeoutMs} ms`, options);
    this.phase = phase;
    this.timeoutMs = timeoutMs;
  }
}

/** A read-ahead buffer filled up under `overflow: 'error'`. */
export class BackpressureError extends TokenRelayError {
  readonly code = 'backpressure';
  override name = 'BackpressureError';
}

/** The streamed text is not JSON, or ended before the document was complete (`partialJSON`). */
export class InvalidJSONError extends TokenRelayError {
  readonly code = 'invalid-json';
  override name = 'InvalidJSONError';
  /** 0-based offset in the streamed text where parsing failed. */
  readonly position: number;
  /** The tool call whose arguments failed, from `partialToolCalls`. */
  readonly toolCall: ToolCallInfo | undefined;

  constructor(message: string, position: number, toolCall?: ToolCallInfo) {
    super(message);
    this.position = position;
    this.toolCall = toolCall;
  }
}

/** True for an {@link InvalidJSONError}, also from another copy of the package. */
export function isInvalidJSONError(error: unknown): error is InvalidJSONError {
  return hasName(error, 'InvalidJSONError');
}

/** True for any error tokenrelay throws, also across package copies (matched by `name`). */
export function isTokenRelayError(error: unknown): error is TokenRelayError {
  return (
    error instanceof TokenRelayError ||
    (error instanceof Error &&
      typeof (error as { code?: unknown }).code === 'string' &&
      KNOWN_NAMES.has(error.name))
  );
}

/** True for a {@link ProviderError}, also from another copy of the package. */
export function isProviderError(error: unknown): error is ProviderError {
  return hasName(error, 'ProviderError');
}

/** True for a {@link StreamAbortedError}, also from another copy of the package. */
export function isStreamAbortedError(error: unknown): error is StreamAbortedError {
  return hasName(error, 'StreamAbortedError');
}

/** True for a {@link StreamTimeoutError}, also from another copy of the package. */
export function isStreamTimeoutError(error: unknown): error is StreamTimeoutError {
  return hasName(error, 'StreamTimeoutError');
}

/** True for a {@link BackpressureError}, also from another copy of the package. */
export function isBackpressureError(error: unknown): error is BackpressureError {
  return hasName(error, 'BackpressureError');
}

const KNOWN_NAMES = new Set([
  'TokenRelayError',
  'ProviderError',
  'StreamAbortedError',
  'StreamTimeoutError',
  'BackpressureError',
  'StreamNotFoundError',
  'ProducerLostError',
  'InvalidCursorError',
  'InvalidJSONError',
  'StreamLimitError',
  'StoreUnavailableError',
  'BudgetExceededError',
]);

function hasName(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}

function isRetryableStatus(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
}

function describePhase(phase: TimeoutPhase): string {
  if (phase === 'first-token') return 'first token';
  if (phase === 'idle') return 'chunk';
  return 'end of stream';
}

/** A resumable stream is unknown, has expired, or the caller may not see it. */
export class StreamNotFoundError extends TokenRelayError {
  readonly code = 'not-found';
  override name = 'StreamNotFoundError';

  constructor(message = 'The stream does not exist or has expired', options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

/** A resumable stream's producer stopped sending heartbeats (its instance died) before the stream ended. */
export class ProducerLostError extends TokenRelayError {
  readonly code = 'producer-lost';
  override name = 'ProducerLostError';

  constructor(message = 'The stream stopped: its producer is gone', options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

/**
 * A resume cursor (`Last-Event-ID` or `lastEventId`) is not a non-negative integer, or points
 * beyond the last chunk of the stream. The message never repeats the cursor.
 */
export class InvalidCursorError extends TokenRelayError {
  readonly code = 'invalid-cursor';
  override name = 'InvalidCursorError';

  constructor(
    message = 'Expected the resume cursor to be a non-negative integer no greater than the last index of the stream',
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/**
 * A request body is not what the route reads (e.g. not an AG-UI `RunAgentInput` for
 * `readRunAgentInput`). Answered with 400 before a stream starts; `status` is `400` so
 * framework error handlers (Express, Koa) answer it alike. The message says which field is wrong.
 */
export class InvalidRequestError extends TokenRelayError {
  readonly code = 'invalid-request';
  override name = 'InvalidRequestError';
  /** Always `400`, for framework error handlers. */
  readonly status = 400;

  constructor(message = 'The request body is not valid', options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

/** True for an {@link InvalidRequestError}, also from another copy of the package. */
export function isInvalidRequestError(error: unknown): error is InvalidRequestError {
  return hasName(error, 'InvalidRequestError');
}

/** Which limit a {@link StreamLimitError} hit. */
export type StreamLimitKind = 'per-key' | 'streams' | 'bytes' | 'chunks' | 'requests' | 'tokens' | 'cost';

/** Options of {@link StreamLimitError}. */
export interface StreamLimitErrorOptions {
  /** Which limit was hit. */
  limit?: StreamLimitKind | undefined;
  /** When trying again may succeed, in ms (sent as `Retry-After`). */
  retryAfterMs?: number | undefined;
  /** The underlying error, passed through untouched. */
  cause?: unknown;
}

/**
 * A limit was reached: a user already has `maxPerKey` streams open (`limitStreams`), used up a
 * window of requests, tokens or cost (`limitRate`: `limit` is `'requests'`, `'tokens'` or
 * `'cost'`), the store is full, or a stream reached `maxChunks`. Answered with 429 and
 * `Retry-After` before a stream starts.
 */
export class StreamLimitError extends TokenRelayError {
  readonly code = 'limit';
  override name = 'StreamLimitError';
  /** Which limit was reached. */
  readonly limit: StreamLimitKind;
  /** When to try again, in ms (sent as `Retry-After`), when known. */
  readonly retryAfterMs: number | undefined;

  constructor(message = 'Too many streams', options: StreamLimitErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.limit = options.limit ?? 'per-key';
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** True for a {@link StreamNotFoundError}, also from another copy of the package. */
export function isStreamNotFoundError(error: unknown): error is StreamNotFoundError {
  return hasName(error, 'StreamNotFoundError');
}

/** True for a {@link ProducerLostError}, also from another copy of the package. */
export function isProducerLostError(error: unknown): error is ProducerLostError {
  return hasName(error, 'ProducerLostError');
}

/** True for an {@link InvalidCursorError}, also from another copy of the package. */
export function isInvalidCursorError(error: unknown): error is InvalidCursorError {
  return hasName(error, 'InvalidCursorError');
}

/** True for a {@link StreamLimitError}, also from another copy of the package. */
export function isStreamLimitError(error: unknown): error is StreamLimitError {
  return hasName(error, 'StreamLimitError');
}

/**
 * The relay's store could not be read or written for `livenessMs` (Redis down, unreachable, or
 * not answering). The producer is aborted (its provider request cancelled) and subscribers end
 * with it; answered with 503 before a stream starts. Worth retrying: new streams work again as
 * soon as the store is back.
 */
export class StoreUnavailableError extends TokenRelayError {
  readonly code = 'store-unavailable';
  override name = 'StoreUnavailableError';

  constructor(message = 'The relay store is unavailable', options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

/** True for a {@link StoreUnavailableError}, also from another copy of the package. */
export function isStoreUnavailableError(error: unknown): error is StoreUnavailableError {
  return hasName(error, 'StoreUnavailableError');
}

/** Which budget a {@link BudgetExceededError} used up. */
export type BudgetKind = 'tokens' | 'cost';

/** Options of {@link BudgetExceededError}. */
export interface BudgetExceededErrorOptions {
  /** Which budget ran out. */
  limit?: BudgetKind | undefined;
  /** When the window frees enough for a new request, in ms (sent as `Retry-After`). */
  retryAfterMs?: number | undefined;
  /** The underlying error, passed through untouched. */
  cause?: unknown;
}

/**
 * A user's token or cost budget (`limitRate`) ran out while their stream was running: the provider
 * request was stopped and the stream ends with this error after the chunks already sent (the SSE
 * `error` event, code `budget-exceeded`); 429 with `Retry-After` if it happens before the first chunk.
 */
export class BudgetExceededError extends TokenRelayError {
  readonly code = 'budget-exceeded';
  override name = 'BudgetExceededError';
  /** Which budget ran out. */
  readonly limit: BudgetKind;
  /** When the window frees enough for a new request, in ms (sent as `Retry-After`). */
  readonly retryAfterMs: number | undefined;

  constructor(message = 'The token budget is used up', options: BudgetExceededErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.limit = options.limit ?? 'tokens';
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** True for a {@link BudgetExceededError}, also from another copy of the package. */
export function isBudgetExceededError(error: unknown): error is BudgetExceededError {
  return hasName(error, 'BudgetExceededError');
}
