/**
 * Codes whose answer cannot change on another try: the stream is gone (`producer-lost`,
 * `not-found`), the request is wrong (`invalid-cursor`), or the stream already ended with it.
 */
const TERMINAL_CODES = new Set(['producer-lost', 'not-found', 'invalid-cursor', 'aborted', 'backpressure', 'invalid-json', 'protocol', 'invalid-request', 'budget-exceeded']);

/** Codes that say "not now": the server's store is out and may come back. */
const TRANSIENT_CODES = new Set(['store-unavailable']);

/**
 * Whether an HTTP error answer is worth another connection. A typed tokenrelay error decides by
 * its code; anything else by the status (408, 429 and 5xx are). `resuming`: the request went to
 * the `resume` URL, where a provider error is the stored end of the stream, not a new attempt.
 */
export function isRetryableAnswer(status: number, typed: Error | undefined, resuming: boolean): boolean {
  const fields = (typed ?? {}) as { code?: unknown; retryable?: unknown; limit?: unknown };
  const code = fields.code;
  if (typeof code === 'string') {
    if (TRANSIENT_CODES.has(code)) return true;
    if (TERMINAL_CODES.has(code)) return false;
    if (code === 'limit' && fields.limit === 'chunks') return false;
    if (code === 'provider' && (resuming || fields.retryable === false)) return false;
  }
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Whether an `error` event inside an open stream calls for a reconnection rather than an end:
 * only when the server could not read its own store. Every other error event is the stream's
 * outcome, the same on any reconnection.
 */
export function isRetryableEvent(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}
