import { ProviderError, StreamAbortedError, isTokenRelayError } from '../../core/errors.js';

/** Where an error happened and what must never appear in its message. */
export interface GoogleErrorContext {
  /** The `provider` name stamped on chunks, e.g. `'google'`. */
  provider: string;
  /** The caller's signal: once aborted, every failure is reported as an abort. */
  signal?: AbortSignal | undefined;
  /**
   * An abort the relay started itself (the consumer broke out of the loop): not the caller's, and
   * not the SDK's `httpOptions.timeout` either.
   */
  ownSignal?: AbortSignal | undefined;
  /** Secrets to blank out of provider messages (the client's API key). */
  secrets?: readonly string[] | undefined;
}

/** Google's error body: `{ error: { code, message, status, details } }`. */
interface GoogleStatus {
  code?: unknown;
  message?: unknown;
  status?: unknown;
  details?: unknown;
}

const NETWORK_CODES = /^(ECONNRESET|ECONNREFUSED|ECONNABORTED|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|UND_ERR_\w+)$/;
/** What the SDK throws for a body it could not read to the end or parse. */
const BROKEN_STREAM = /^(Incomplete JSON segment at the end|exception parsing stream chunk|Response body is empty)/;
const IN_STREAM = /^got status: [^.]*\. /;

/**
 * Turns whatever `@google/genai` threw into a tokenrelay error: aborts become
 * `StreamAbortedError`; `ApiError`s (an HTTP status, or an error object inside the stream),
 * timeouts and network failures become `ProviderError`. Errors we do not recognise (bad
 * arguments the SDK rejects, bugs) pass through untouched.
 */
export function toGoogleError(error: unknown, context: GoogleErrorContext): unknown {
  if (isTokenRelayError(error)) return error;
  if (context.signal?.aborted === true) return new StreamAbortedError('The stream was aborted', { cause: context.signal.reason });
  // Linked to the caller's signals: its reason is theirs (or the relay's own, after an early exit).
  if (context.ownSignal?.aborted === true) return new StreamAbortedError('The stream was aborted', { cause: context.ownSignal.reason });
  if (!(error instanceof Error)) return error;
  if (isApiError(error)) return apiError(error, context);
  if (error.name === 'AbortError' || error.name === 'TimeoutError') {
    // The caller's signal did not fire: the SDK's own `httpOptions.timeout` did (or, in
    // `fromGoogle` without `signal`, an abort we cannot tell apart from it).
    if (context.ownSignal === undefined && context.signal === undefined) {
      return new StreamAbortedError('The stream was aborted', { cause: error });
    }
    return new ProviderError(`${label(context.provider)} request timed out`, { retryable: true, provider: context.provider, cause: error });
  }
  if (isNetworkError(error)) {
    return new ProviderError(`The connection to ${label(context.provider)} was lost`, { retryable: true, provider: context.provider, cause: error });
  }
  if (BROKEN_STREAM.test(error.message)) {
    return new ProviderError(`${label(context.provider)} stream broke off: ${redact(error.message.slice(0, 60), context.secrets)}`, {
      retryable: true,
      provider: context.provider,
      cause: error,
    });
  }
  return error;
}

/** The SDK's `ApiError` (`name` and a numeric `status`), from any copy of it. */
function isApiError(error: Error): error is Error & { status: number } {
  return error.name === 'ApiError' && typeof (error as { status?: unknown }).status === 'number';
}

function apiError(error: Error & { status: number }, context: GoogleErrorContext): ProviderError {
  const inStream = IN_STREAM.test(error.message);
  const body = parseStatus(error.message);
  const status = error.status;
  const providerType = typeof body?.status === 'string' && body.status !== '' ? body.status : undefined;
  const detail = typeof body?.message === 'string' && body.message !== '' ? `: ${redact(body.message, context.secrets)}` : '';
  const message = inStream
    ? `${label(context.provider)} stream failed${providerType === undefined ? '' : ` with ${providerType}`}${detail}`
    : `${label(context.provider)} request failed with status ${status}${detail}`;
  return new ProviderError(message, {
    // An error inside a stream has no HTTP status of its own: its `code` says what kind it is.
    status: inStream ? undefined : status,
    retryable: status === 408 || status === 429 || status >= 500,
    providerType,
    retryAfterMs: retryDelay(body?.details),
    provider: context.provider,
    cause: error,
  });
}

/** The `error` object the SDK put in the message: the JSON body, after `got status: X. ` for in-stream errors. */
function parseStatus(message: string): GoogleStatus | undefined {
  const start = message.indexOf('{');
  if (start === -1) return undefined;
  try {
    const parsed: unknown = JSON.parse(message.slice(start));
    const inner = (parsed as { error?: unknown } | null)?.error;
    if (inner !== null && typeof inner === 'object') return inner as GoogleStatus;
    // A proxy's non-JSON answer: the SDK wraps its text as `{ error: { message } }` already.
    return undefined;
  } catch {
    return undefined;
  }
}

/** `google.rpc.RetryInfo.retryDelay` (`"37s"`, `"1.5s"`), in ms. Google sends no `retry-after` header. */
function retryDelay(details: unknown): number | undefined {
  if (!Array.isArray(details)) return undefined;
  for (const detail of details as unknown[]) {
    const { '@type': type, retryDelay: delay } = (detail ?? {}) as { '@type'?: unknown; retryDelay?: unknown };
    if (typeof type !== 'string' || !type.endsWith('google.rpc.RetryInfo') || typeof delay !== 'string') continue;
    const match = /^(\d+(?:\.\d+)?)s$/.exec(delay.trim());
    if (match !== null) return Math.round(Number(match[1]) * 1000);
  }
  return undefined;
}

function isNetworkError(error: Error): boolean {
  if (hasNetworkCode(error) || hasNetworkCode(error.cause)) return true;
  return error.name === 'TypeError' && /^(terminated|fetch failed|network)/i.test(error.message);
}

function hasNetworkCode(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && NETWORK_CODES.test(code);
}

function label(provider: string): string {
  return provider === 'google' ? 'Google' : provider;
}

/** Google rarely echoes a key, but a proxy might: blank the client's key and anything shaped like one. */
export function redact(message: string, secrets: readonly string[] = []): string {
  let clean = message;
  for (const secret of secrets) if (secret.length >= 4) clean = clean.split(secret).join('[redacted]');
  return clean
    .replace(/\bAIza[\w-]{8,}/g, 'AIza[redacted]')
    .replace(/([?&]key=)[^&\s"]+/g, '$1[redacted]')
    .replace(/\bBearer\s+[\w.~+/=-]+/gi, 'Bearer [redacted]');
}
