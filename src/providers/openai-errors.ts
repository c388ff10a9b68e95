import { ProviderError, StreamAbortedError, isTokenRelayError } from '../core/errors.js';
import { parseRetryAfter, readHeader, type HeadersLike } from './retry-after.js';

/** Where an error happened and what must never appear in its message. */
export interface OpenAIErrorContext {
  /** The `provider` name stamped on chunks, e.g. `'openai'` or `'ollama'`. */
  provider: string;
  /** The caller's signal: once aborted, every failure is reported as an abort. */
  signal?: AbortSignal | undefined;
  /** Secrets to blank out of provider messages (the client's API key). */
  secrets?: readonly string[] | undefined;
}

/** The fields of the SDK's `APIError` we read, matched by shape so any SDK copy works. */
interface APIErrorLike {
  status?: unknown;
  headers?: unknown;
  type?: unknown;
  code?: unknown;
  error?: unknown;
}

const CONNECTION_ERRORS = new Set(['APIConnectionError', 'APIConnectionTimeoutError', 'FetchError']);
const NETWORK_CODES = /^(ECONNRESET|ECONNREFUSED|ECONNABORTED|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|UND_ERR_\w+)$/;
const RETRYABLE_CODES = /server_error|rate_limit|overloaded|timeout|unavailable|internal|capacity/i;

/**
 * Turns whatever the OpenAI SDK threw into a tokenrelay error: aborts become
 * `StreamAbortedError`, HTTP, in-band and network failures become `ProviderError`. Errors we
 * do not recognise (bugs, bad arguments) pass through untouched.
 */
export function toOpenAIError(error: unknown, context: OpenAIErrorContext): unknown {
  if (isTokenRelayError(error)) return error;
  if (context.signal?.aborted === true || isUserAbort(error)) return abortedError(error, context.signal);
  if (!(error instanceof Error)) return error;
  const apiError = error as Error & APIErrorLike;
  if (typeof apiError.status === 'number') return httpError(apiError, apiError.status, context);
  if (isNetworkError(error)) return networkError(error, context);
  const body = errorBody(apiError);
  if (body !== undefined) return streamError(body, { ...context, cause: error, headers: apiError.headers });
  if (isSDKError(error)) return rejectedStreamError(error, context);
  return error;
}

/** An in-band failure (`error` event, `response.failed`) as a `ProviderError`. */
export function streamError(
  body: { message?: unknown; type?: unknown; code?: unknown },
  context: OpenAIErrorContext & { cause: unknown; headers?: unknown; what?: string },
): ProviderError {
  const providerType = describeType(body.type, body.code);
  const message = typeof body.message === 'string' ? `: ${redact(body.message, context.secrets)}` : '';
  return new ProviderError(`${label(context.provider)} ${context.what ?? 'stream'} failed${message}`, {
    retryable: RETRYABLE_CODES.test(`${String(body.type)} ${String(body.code)}`),
    providerType,
    provider: context.provider,
    retryAfterMs: parseRetryAfter(asHeaders(context.headers)),
    cause: context.cause,
  });
}

/**
 * The SDK's stream helpers (`chat.completions.stream()`, `responses.stream()`) validate what
 * they accumulate and throw a bare `OpenAIError` for a stream they reject (an unknown event, a
 * response id that changed, a missing `role`). Sending the same request again gives the same
 * stream, so it is not retryable.
 */
function rejectedStreamError(error: Error, context: OpenAIErrorContext): ProviderError {
  return new ProviderError(`${label(context.provider)} stream rejected by the SDK: ${redact(error.message, context.secrets)}`, {
    retryable: false,
    provider: context.provider,
    cause: error,
  });
}

/** An error of the SDK's own hierarchy (`OpenAIError` and its subclasses), from any copy of it. */
function isSDKError(error: Error): boolean {
  for (let proto: unknown = Object.getPrototypeOf(error); proto !== null && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
    if ((proto as { constructor?: { name?: unknown } }).constructor?.name === 'OpenAIError') return true;
  }
  return false;
}

function httpError(error: Error & APIErrorLike, status: number, context: OpenAIErrorContext): ProviderError {
  const body = errorBody(error);
  const headers = asHeaders(error.headers);
  const detail = typeof body?.message === 'string' ? `: ${redact(body.message, context.secrets)}` : '';
  const providerType = describeType(error.type ?? body?.type, error.code ?? body?.code);
  return new ProviderError(`${label(context.provider)} request failed with status ${status}${detail}`, {
    status,
    retryable: isRetryable(status, headers, providerType),
    providerType,
    provider: context.provider,
    retryAfterMs: parseRetryAfter(headers),
    cause: error,
  });
}

function networkError(error: Error, context: OpenAIErrorContext): ProviderError {
  const timedOut = error.constructor.name === 'APIConnectionTimeoutError';
  const what = timedOut ? 'request timed out' : 'connection failed';
  return new ProviderError(`${label(context.provider)} ${what}`, {
    retryable: true,
    provider: context.provider,
    cause: error,
  });
}

function abortedError(error: unknown, signal: AbortSignal | undefined): StreamAbortedError {
  const cause = signal?.aborted === true ? signal.reason : ((error as { cause?: unknown }).cause ?? error);
  return new StreamAbortedError('The stream was aborted', { cause });
}

function isUserAbort(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.constructor.name === 'APIUserAbortError' || error.name === 'AbortError';
}

function isNetworkError(error: Error): boolean {
  if (CONNECTION_ERRORS.has(error.constructor.name) || CONNECTION_ERRORS.has(error.name)) return true;
  if (hasNetworkCode(error) || hasNetworkCode(error.cause)) return true;
  return error.name === 'TypeError' && /^(terminated|fetch failed|network)/i.test(error.message);
}

function hasNetworkCode(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && NETWORK_CODES.test(code);
}

function isRetryable(status: number, headers: HeadersLike | undefined, providerType: string | undefined): boolean {
  const hint = headers === undefined ? undefined : readHeader(headers, 'x-should-retry');
  if (hint === 'true' || hint === 'false') return hint === 'true';
  if (providerType === 'insufficient_quota') return false;
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** The provider's `{ message, type, code }` object, from `APIError.error` or a raw body. */
function errorBody(error: APIErrorLike): { message?: unknown; type?: unknown; code?: unknown } | undefined {
  const body = error.error;
  if (typeof body === 'string') return { message: body };
  if (body === null || typeof body !== 'object') return undefined;
  const nested = (body as { error?: unknown }).error;
  return (nested !== null && typeof nested === 'object' ? nested : body) as { message?: unknown };
}

/** `type` when it says something (Responses error events all have type `'error'`), else `code`. */
function describeType(type: unknown, code: unknown): string | undefined {
  if (typeof type === 'string' && type !== '' && type !== 'error') return type;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

function asHeaders(headers: unknown): HeadersLike | undefined {
  return headers !== null && typeof headers === 'object' ? (headers as HeadersLike) : undefined;
}

function label(provider: string): string {
  return provider === 'openai' ? 'OpenAI' : provider;
}

/** Providers sometimes echo the key they rejected; blank it and anything shaped like one. */
export function redact(message: string, secrets: readonly string[] = []): string {
  let clean = message;
  for (const secret of secrets) if (secret.length >= 4) clean = clean.split(secret).join('[redacted]');
  return clean.replace(/\bsk-[\w*-]{4,}/g, 'sk-[redacted]').replace(/\bBearer\s+[\w.~+/=-]+/gi, 'Bearer [redacted]');
}
