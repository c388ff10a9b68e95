import { ProviderError, StreamAbortedError, isTokenRelayError } from '../../core/errors.js';
import { redact } from '../openai-errors.js';
import { parseRetryAfter, type HeadersLike } from '../retry-after.js';

/** Where an error happened and what must never appear in its message. */
export interface MistralErrorContext {
  /** The `provider` name stamped on chunks, `'mistral'` unless set. */
  provider: string;
  /** The caller's signal: once aborted, every failure is reported as an abort. */
  signal?: AbortSignal | undefined;
  /** Secrets to blank out of provider messages (the client's API key). */
  secrets?: readonly string[] | undefined;
}

/** The fields of the SDK's `MistralError` (and `SDKError`, `HTTPValidationError`) we read, by shape. */
interface MistralErrorLike {
  statusCode?: unknown;
  body?: unknown;
  headers?: unknown;
}

/** The SDK's own client-side errors (`models/errors/httpclienterrors`), by `name`. */
const CONNECTION_ERRORS = new Set(['ConnectionError']);
const TIMEOUT_ERRORS = new Set(['RequestTimeoutError', 'TimeoutError']);
const NETWORK_CODES = /^(ECONNRESET|ECONNREFUSED|ECONNABORTED|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|UND_ERR_\w+)$/;

/**
 * Turns whatever `@mistralai/mistralai` threw into a tokenrelay error: aborts become
 * `StreamAbortedError`; HTTP errors, timeouts, broken connections and events the SDK could not
 * parse become `ProviderError`. Errors we do not recognise (bugs, bad arguments) pass through.
 */
export function toMistralError(error: unknown, context: MistralErrorContext): unknown {
  if (isTokenRelayError(error)) return error;
  if (context.signal?.aborted === true || isUserAbort(error)) {
    const cause = context.signal?.aborted === true ? context.signal.reason : ((error as { cause?: unknown }).cause ?? error);
    return new StreamAbortedError('The stream was aborted', { cause });
  }
  if (!(error instanceof Error)) return error;
  if (isSchemaError(error)) {
    // The SDK parses every event against its schema: an in-band error object (no `id`, `model`
    // or `choices`) fails it, so this is how a failure the provider reported mid-stream arrives.
    const message = `${label(context)} stream failed: the SDK could not read an event (the provider may have reported an error)`;
    return new ProviderError(message, base(context, error));
  }
  const status = (error as Error & MistralErrorLike).statusCode;
  if (typeof status === 'number') return httpError(error as Error & MistralErrorLike, status, context);
  if (TIMEOUT_ERRORS.has(error.name)) return new ProviderError(`${label(context)} request timed out`, base(context, error));
  if (isNetworkError(error)) return new ProviderError(`${label(context)} connection failed`, base(context, error));
  if (error.name === 'UnexpectedClientError') {
    // What the SDK wraps when fetch fails in a way it does not recognise: sending again will not help.
    return new ProviderError(`${label(context)} request failed: ${redact(error.message, context.secrets)}`, {
      retryable: false,
      provider: context.provider,
      cause: error,
    });
  }
  return error;
}

function httpError(error: Error & MistralErrorLike, status: number, context: MistralErrorContext): ProviderError {
  const body = parseBody(error.body);
  const detail = describeBody(body);
  const headers = error.headers !== null && typeof error.headers === 'object' ? (error.headers as HeadersLike) : undefined;
  return new ProviderError(
    `${label(context)} request failed with status ${status}${detail === undefined ? '' : `: ${redact(detail, context.secrets)}`}`,
    {
      status,
      retryable: status === 408 || status === 409 || status === 429 || status >= 500,
      providerType: providerType(body),
      provider: context.provider,
      retryAfterMs: parseRetryAfter(headers),
      cause: error,
    },
  );
}

function base(context: MistralErrorContext, cause: Error) {
  return { retryable: true, provider: context.provider, cause };
}

function parseBody(body: unknown): Record<string, unknown> | undefined {
  if (typeof body !== 'string' || body === '') return undefined;
  try {
    const value: unknown = JSON.parse(body);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return { message: body.slice(0, 200) };
  }
}

/** Mistral answers `{ message }`, `{ object: 'error', message, type, code }`, or FastAPI's `{ detail }`. */
function describeBody(body: Record<string, unknown> | undefined): string | undefined {
  if (body === undefined) return undefined;
  const { message, detail, error } = body;
  if (typeof message === 'string' && message !== '') return message;
  // OpenAI's `{ error: { message } }`, from a proxy or gateway in front of Mistral.
  if (error !== null && typeof error === 'object') return describeBody(error as Record<string, unknown>);
  if (message !== null && typeof message === 'object') return describeBody(message as Record<string, unknown>);
  if (typeof detail === 'string' && detail !== '') return detail;
  if (Array.isArray(detail)) {
    const parts = detail.map((item) => (item as { msg?: unknown } | null)?.msg).filter((msg): msg is string => typeof msg === 'string');
    if (parts.length > 0) return parts.join('; ');
  }
  return undefined;
}

function providerType(body: Record<string, unknown> | undefined): string | undefined {
  const type = body?.['type'];
  if (typeof type === 'string' && type !== '' && type !== 'error') return type;
  const code = body?.['code'];
  if (typeof code === 'string' && code !== '') return code;
  return typeof code === 'number' ? String(code) : undefined;
}

function isUserAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'RequestAbortedError' || error.name === 'AbortError');
}

function isNetworkError(error: Error): boolean {
  if (CONNECTION_ERRORS.has(error.name) || isNetworkCause(error.cause)) return true;
  if (hasNetworkCode(error) || hasNetworkCode(error.cause)) return true;
  return error.name === 'TypeError' && /^(terminated|fetch failed|network)/i.test(error.message);
}

/** What undici throws when a socket fails: `TypeError('fetch failed' | 'terminated')`, or a coded error. */
function isNetworkCause(cause: unknown): boolean {
  if (!(cause instanceof Error)) return false;
  return hasNetworkCode(cause) || (cause.name === 'TypeError' && /^(terminated|fetch failed)/i.test(cause.message));
}

function hasNetworkCode(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && NETWORK_CODES.test(code);
}

/** zod's `ZodError` (thrown by the SDK's event parser) or the SDK's `SDKValidationError`. */
function isSchemaError(error: Error): boolean {
  return error.name === 'ZodError' || error.name === 'SDKValidationError' || error.name === 'ResponseValidationError';
}

function label(context: MistralErrorContext): string {
  return context.provider === 'mistral' ? 'Mistral' : context.provider;
}
