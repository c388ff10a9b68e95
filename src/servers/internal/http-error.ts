import {
  isBudgetExceededError,
  isInvalidCursorError,
  isInvalidRequestError,
  isProviderError,
  isStoreUnavailableError,
  isStreamLimitError,
  isStreamNotFoundError,
  isStreamTimeoutError,
  isTokenRelayError,
} from '../../core/errors.js';
import type { Protocol } from '../../protocols/protocol.js';
import { describeError, type SSEErrorPayload } from '../../sse/encoder.js';

/** An error answered as a plain HTTP response, before any stream started. */
export interface HttpErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Maps an error that happened before the first chunk to the HTTP answer a client can act on:
 * a provider's 429 passes through with `Retry-After`, a request the provider rejected as
 * invalid stays a 4xx, timeouts become 504, and the provider's own failures (including a
 * rejected API key, which is the server's problem, not the client's) become 502.
 */
export function toHttpError(error: unknown, exposeErrors: boolean, protocol?: Protocol | undefined): HttpErrorResponse {
  const payload: SSEErrorPayload = describeError(error, exposeErrors);
  const headers: Record<string, string> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
  };
  const status = statusOf(error);
  if (status === 429 || status === 503) {
    const retryAfterMs = isProviderError(error) || isStreamLimitError(error) || isBudgetExceededError(error) ? error.retryAfterMs : undefined;
    if (retryAfterMs !== undefined) headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  }
  const body = protocol === undefined ? JSON.stringify({ error: payload }) : protocol.errorBody(payload);
  return { status, headers, body };
}

function statusOf(error: unknown): number {
  if (isStreamTimeoutError(error)) return 504;
  if (isProviderError(error)) {
    const status = error.status;
    if (status === 429) return 429;
    if (status === 408 || status === 504) return 504;
    if (status === 400 || status === 413 || status === 422) return status;
    return 502;
  }
  if (isInvalidCursorError(error) || isInvalidRequestError(error)) return 400;
  if (isStreamNotFoundError(error)) return 404;
  if (isStreamLimitError(error) || isBudgetExceededError(error)) return 429;
  if (isStoreUnavailableError(error)) return 503;
  if (isTokenRelayError(error)) return error.code === 'aborted' ? 499 : 500;
  return 500;
}
