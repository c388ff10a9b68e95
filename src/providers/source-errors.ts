import { ProviderError, StreamAbortedError, isTokenRelayError } from '../core/errors.js';
import { redact } from './openai-errors.js';
import { parseRetryAfter, type HeadersLike } from './retry-after.js';

/** Where a source (`fromAISDK`, `fromLangChain`) failed, and how to name it. */
export interface SourceErrorContext {
  /** The `provider` stamped on chunks and errors. */
  provider: string;
  /** How messages name the source, e.g. `'AI SDK'`. */
  label: string;
  /** The caller's signal: once aborted, every failure is reported as an abort. */
  signal?: AbortSignal | undefined;
}

/** What provider errors carry across SDKs (AI SDK `APICallError`, OpenAI/Anthropic `APIError`, LangChain wrappers). */
interface ErrorFields {
  message?: unknown;
  statusCode?: unknown;
  status?: unknown;
  isRetryable?: unknown;
  responseHeaders?: unknown;
  headers?: unknown;
  type?: unknown;
  code?: unknown;
  lc_error_code?: unknown;
  lastError?: unknown;
  name?: unknown;
}

const NETWORK_CODES = /^(ECONNRESET|ECONNREFUSED|ECONNABORTED|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|UND_ERR_\w+)$/;
const RETRYABLE_LC_CODES = new Set(['MODEL_RATE_LIMIT']);

/**
 * Whatever a source failed with, as a tokenrelay error: an abort (the caller's signal fired, or
 * an `AbortError`) becomes `StreamAbortedError` with `cause: signal.reason`; tokenrelay errors
 * pass through; anything else becomes a `ProviderError` that keeps the original as `cause`,
 * with `status`, `retryable` and `retryAfterMs` read from the error where it has them (the
 * last attempt of an AI SDK `RetryError`). The message is redacted of anything shaped like a key.
 */
export function toSourceError(error: unknown, context: SourceErrorContext): unknown {
  if (isTokenRelayError(error)) return error;
  if (context.signal?.aborted === true) return abortedError(context.signal.reason);
  if (isAbortError(error)) return abortedError((error as { cause?: unknown }).cause ?? error);
  const fields = describeFields(error);
  const last = describeFields(fields.lastError);
  const status = statusOf(last) ?? statusOf(fields);
  const detail = messageOf(fields) ?? messageOf(last);
  const providerType = typeOf(last) ?? typeOf(fields);
  return new ProviderError(`${context.label} stream failed${detail === undefined ? '' : `: ${redact(detail)}`}`, {
    status,
    retryable: retryableOf(last, status) ?? retryableOf(fields, status) ?? (isNetworkError(error) || isNetworkError(fields.lastError)),
    providerType,
    retryAfterMs: parseRetryAfter(headersOf(last) ?? headersOf(fields)),
    provider: context.provider,
    cause: error,
  });
}

/** A stream that ended without its finish: an abort when the signal fired, else a retryable failure. */
export function earlyEndError(context: SourceErrorContext): StreamAbortedError | ProviderError {
  if (context.signal?.aborted === true) return abortedError(context.signal.reason);
  return new ProviderError('The stream ended before the provider finished', { retryable: true, provider: context.provider });
}

export function abortedError(cause: unknown): StreamAbortedError {
  return new StreamAbortedError('The stream was aborted', { cause });
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.constructor.name === 'APIUserAbortError');
}

function describeFields(error: unknown): ErrorFields {
  return error !== null && typeof error === 'object' ? (error as ErrorFields) : {};
}

function statusOf(fields: ErrorFields): number | undefined {
  const status = fields.statusCode ?? fields.status;
  return typeof status === 'number' && Number.isInteger(status) && status >= 100 && status <= 599 ? status : undefined;
}

function messageOf(fields: ErrorFields): string | undefined {
  return typeof fields.message === 'string' && fields.message !== '' ? fields.message : undefined;
}

function typeOf(fields: ErrorFields): string | undefined {
  for (const value of [fields.type, fields.lc_error_code, fields.code]) {
    if (typeof value === 'string' && value !== '' && value !== 'error') return value;
  }
  return undefined;
}

function retryableOf(fields: ErrorFields, status: number | undefined): boolean | undefined {
  if (typeof fields.isRetryable === 'boolean') return fields.isRetryable;
  if (typeof fields.lc_error_code === 'string' && RETRYABLE_LC_CODES.has(fields.lc_error_code)) return true;
  if (statusOf(fields) === undefined || status === undefined) return undefined;
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

function headersOf(fields: ErrorFields): HeadersLike | undefined {
  const headers = fields.responseHeaders ?? fields.headers;
  return headers !== null && typeof headers === 'object' ? (headers as HeadersLike) : undefined;
}

function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (hasNetworkCode(error) || hasNetworkCode(error.cause)) return true;
  return error.name === 'TypeError' && /^(terminated|fetch failed|network)/i.test(error.message);
}

function hasNetworkCode(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && NETWORK_CODES.test(code);
}
