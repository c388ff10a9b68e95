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
  | 'invalid-json';

/** Base class of every error tokenrelay throws; match it with {@link isTokenRelayError}. */
export abstract class TokenRelayError extends Error {
  abstract readonly code: TokenRelayErrorCode;
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
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly providerType: string | undefined;
  readonly retryAfterMs: number | undefined;
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
  readonly phase: TimeoutPhase;
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
