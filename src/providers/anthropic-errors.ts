// How the Anthropic adapter turns what the SDK throws (or the stream's early end) into typed
// errors, with no API key in any message.
import { ProviderError, StreamAbortedError, isTokenRelayError } from '../core/errors.js';
import { parseRetryAfter, readHeader, type HeadersLike } from './retry-after.js';

export interface ErrorContext {
  provider: string;
  signal?: AbortSignal | undefined;
}

/**
 * The SDK ends a `Stream` quietly when its request is aborted, and a `MessageStream` iterator
 * ends quietly when it fails while nobody awaits `next()`: find out which it was.
 */
export async function whyEndedEarly(source: unknown, context: ErrorContext): Promise<Error> {
  if (isMessageStream(source)) {
    try {
      await source.done();
    } catch (error) {
      return toAnthropicError(error, context);
    }
  }
  if (wasAborted(source, context)) return abortedError(context, undefined);
  return new ProviderError('The stream ended before the provider finished', {
    retryable: true,
    provider: context.provider,
  });
}

/** Maps anything the SDK throws to a tokenrelay error whose message is safe to show. */
export function toAnthropicError(error: unknown, context: ErrorContext): Error {
  if (isTokenRelayError(error)) return error;
  if (context.signal?.aborted || hasName(error, 'APIUserAbortError') || hasName(error, 'AbortError')) {
    return abortedError(context, error);
  }
  const fields = (error ?? {}) as { status?: unknown; headers?: unknown; error?: unknown; message?: unknown };
  const body = errorBody(fields.error);
  if (typeof fields.status === 'number') return httpError(fields.status, body, fields.headers, context, error);
  // Older SDKs throw the `event: error` frame as an APIConnectionError whose message is the frame's JSON.
  const inBand = body.type === undefined ? errorBody(parseJSON(fields.message)) : body;
  if (inBand.type !== undefined) return inBandError({ type: inBand.type, message: inBand.message }, context, error);
  if (isSdkRejection(error)) {
    const detail = safeDetail((error as Error).message);
    return new ProviderError(`The Anthropic SDK rejected the stream${detail}`, {
      retryable: false,
      provider: context.provider,
      cause: error,
    });
  }
  if (hasName(error, 'APIConnectionTimeoutError')) {
    return new ProviderError('The request to Anthropic timed out', { retryable: true, provider: context.provider, cause: error });
  }
  const message = hasName(error, 'APIConnectionError') ? 'Could not connect to Anthropic' : 'The connection to Anthropic was lost';
  return new ProviderError(message, { retryable: true, provider: context.provider, cause: error });
}

/**
 * An error the SDK raised itself about what it received (events out of order, an event that is
 * not JSON, output it could not parse): sending the same request again would not help. A
 * `MessageStream` also wraps network failures in a bare `AnthropicError`, with the failure as
 * `cause`: those stay connection errors.
 */
function isSdkRejection(error: unknown): boolean {
  if (error instanceof SyntaxError) return true;
  if (error === null || typeof error !== 'object' || error.constructor?.name !== 'AnthropicError') return false;
  const cause = (error as { cause?: unknown }).cause;
  return cause === undefined || cause instanceof SyntaxError;
}

function httpError(status: number, body: ErrorBody, headers: unknown, context: ErrorContext, cause: unknown): ProviderError {
  const headerBag = isHeadersLike(headers) ? headers : undefined;
  const shouldRetry = headerBag === undefined ? undefined : readHeader(headerBag, 'x-should-retry');
  const detail = safeDetail(body.message);
  return new ProviderError(`Anthropic request failed with status ${status}${detail}`, {
    status,
    retryable: shouldRetry === 'true' ? true : shouldRetry === 'false' ? false : undefined,
    providerType: body.type,
    retryAfterMs: parseRetryAfter(headerBag),
    provider: context.provider,
    cause,
  });
}

const RETRYABLE_ERROR_TYPES = new Set(['overloaded_error', 'api_error', 'rate_limit_error', 'timeout_error']);

export function inBandError(error: { type: string; message?: string | undefined }, context: ErrorContext, cause: unknown): ProviderError {
  return new ProviderError(`Anthropic stream failed with ${error.type}${safeDetail(error.message)}`, {
    retryable: RETRYABLE_ERROR_TYPES.has(error.type),
    providerType: error.type,
    provider: context.provider,
    cause,
  });
}

function abortedError(context: ErrorContext, error: unknown): StreamAbortedError {
  const cause = context.signal?.aborted ? context.signal.reason : error;
  return new StreamAbortedError(undefined, cause === undefined ? {} : { cause });
}

function wasAborted(source: unknown, context: ErrorContext): boolean {
  if (context.signal?.aborted) return true;
  const controller = (source as { controller?: { signal?: AbortSignal } } | undefined)?.controller;
  return controller?.signal?.aborted === true;
}

interface ErrorBody {
  type?: string | undefined;
  message?: string | undefined;
}

/** Reads `{ error: { type, message } }` (an API error body) or `{ type, message }`. */
function errorBody(value: unknown): ErrorBody {
  if (value === null || typeof value !== 'object') return {};
  const outer = value as { error?: unknown; type?: unknown; message?: unknown };
  const inner = (outer.error !== null && typeof outer.error === 'object' ? outer.error : outer) as {
    type?: unknown;
    message?: unknown;
  };
  const body: ErrorBody = {};
  if (typeof inner.type === 'string' && inner.type !== 'error') body.type = inner.type;
  if (typeof inner.message === 'string') body.message = inner.message;
  return body;
}

/** The provider's own explanation, shortened and with anything shaped like a key blanked out. */
function safeDetail(message: string | undefined): string {
  if (message === undefined) return '';
  const clean = message.replace(/sk-ant-[\w-]+/g, 'sk-ant-***').replace(/\s+/g, ' ').trim();
  if (clean === '') return '';
  return `: ${clean.length > 200 ? `${clean.slice(0, 199)}…` : clean}`;
}

function parseJSON(text: unknown): unknown {
  if (typeof text !== 'string' || !text.startsWith('{')) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isHeadersLike(value: unknown): value is HeadersLike {
  return value !== null && typeof value === 'object';
}

/** Matches SDK errors by `name` or class name, so errors of any SDK copy are recognised. */
function hasName(error: unknown, name: string): boolean {
  if (error === null || typeof error !== 'object') return false;
  return (error as { name?: unknown }).name === name || error.constructor?.name === name;
}

interface MessageStreamLike {
  ended?: unknown;
  currentMessage?: unknown;
  done: () => Promise<void>;
}

export function isMessageStream(value: unknown): value is MessageStreamLike {
  return value !== null && typeof value === 'object' && typeof (value as MessageStreamLike).done === 'function' && 'ended' in value;
}
