import { isBudgetExceededError, isProviderError, isStreamLimitError, isTokenRelayError } from '../core/errors.js';
import type { FinishReason, Usage } from '../core/types.js';
import { describeValue } from '../core/validate.js';

/**
 * The fields of one Server-Sent Events frame. Every field is optional; the fields present are
 * written in the order comment, `retry`, `id`, `event`, `data`, then the blank line that ends
 * the frame.
 *
 * @example
 * ```ts
 * const frame: SSEFrame = { id: 3, event: 'token', data: '{"token":"Hi"}' };
 * ```
 */
export interface SSEFrame {
  /**
   * The event id, which the client sends back as `Last-Event-ID` when it reconnects. A
   * non-negative integer: tokenrelay ids are chunk indexes.
   * @defaultValue no `id` line
   */
  id?: number | undefined;
  /**
   * The event name. Must be non-empty and free of CR, LF, NUL and lone surrogates.
   * @defaultValue no `event` line (clients see a `message` event)
   */
  event?: string | undefined;
  /**
   * The payload. Split on `\r\n`, `\r` and `\n` into one `data:` line per line, so it can never
   * start a new field or event; the client joins the lines back with `\n`.
   * @defaultValue no `data` line (the client dispatches no event)
   */
  data?: string | undefined;
  /**
   * The reconnection delay the client should use, in ms; a non-negative integer.
   * @defaultValue no `retry` line
   */
  retry?: number | undefined;
  /**
   * A comment, ignored by clients (useful as a heartbeat). Split into one `:` line per line.
   * @defaultValue no comment
   */
  comment?: string | undefined;
}

const LINE_BREAKS = /\r\n|\r|\n/g;
// A lone surrogate cannot be encoded in UTF-8: the client would read U+FFFD instead.
const FORBIDDEN_IN_FIELD = /[\r\n\0]|\p{Cs}/u;

/** The comment frame sent while a stream is idle, to keep proxies from closing the connection. */
export const HEARTBEAT_FRAME = ': ping\n\n';

/**
 * Serializes one SSE frame, validating every field so that no value can inject another field or
 * event. Throws a `TypeError` for an invalid field or a frame with no field at all.
 *
 * @example
 * ```ts
 * encodeSSEFrame({ id: 0, event: 'token', data: 'line 1\nline 2' });
 * // 'id: 0\nevent: token\ndata: line 1\ndata: line 2\n\n'
 * ```
 */
export function encodeSSEFrame(frame: SSEFrame): string {
  if (frame === null || typeof frame !== 'object') {
    throw new TypeError(`Expected \`frame\` to be an object, got ${describeValue(frame)}`);
  }
  const { id, event, data, retry, comment } = frame;
  let text = '';
  if (comment !== undefined) {
    assertString('comment', comment);
    text += `: ${comment.replace(LINE_BREAKS, '\n: ')}\n`;
  }
  if (retry !== undefined) text += `retry: ${assertInteger('retry', retry)}\n`;
  if (id !== undefined) text += `id: ${assertInteger('id', id)}\n`;
  if (event !== undefined) text += `event: ${assertFieldValue('event', event)}\n`;
  if (data !== undefined) {
    assertString('data', data);
    text += encodeData(data);
  }
  if (text === '') {
    throw new TypeError('Expected `frame` to have at least one of `id`, `event`, `data`, `retry` or `comment`');
  }
  return `${text}\n`;
}

/** The `data:` lines of a payload (each ending in LF), without the blank line that ends a frame. */
export function encodeData(data: string): string {
  return `data: ${data.replace(LINE_BREAKS, '\ndata: ')}\n`;
}

/**
 * Checks a value for the `event` field: a non-empty string without CR, LF, NUL or lone
 * surrogates. Returns it.
 */
export function assertFieldValue(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || FORBIDDEN_IN_FIELD.test(value)) {
    throw new TypeError(`Expected \`${name}\` to be a non-empty string without CR, LF, NUL or lone surrogates, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * The response headers of an SSE stream. `Connection: keep-alive` is added only for HTTP/1.x:
 * HTTP/2 and later forbid connection-specific headers, and without a version none is assumed.
 *
 * @param httpVersion - The request's HTTP version, as Node's `req.httpVersion` gives it (`'1.1'`, `'2.0'`).
 * @defaultValue `httpVersion`: unknown (no `Connection` header)
 * @example
 * ```ts
 * res.writeHead(200, sseHeaders(req.httpVersion));
 * ```
 */
export function sseHeaders(httpVersion?: string | undefined): Record<string, string> {
  if (httpVersion !== undefined && (typeof httpVersion !== 'string' || !/^\d+(\.\d+)?$/.test(httpVersion))) {
    throw new TypeError(`Expected \`httpVersion\` to be a version such as '1.1' or '2.0', got ${describeValue(httpVersion)}`);
  }
  const headers: Record<string, string> = {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
  };
  if (httpVersion !== undefined && /^1(\.|$)/.test(httpVersion)) headers['Connection'] = 'keep-alive';
  return headers;
}

/** The JSON data of the `done` frame: how the stream ended, and what is known about it. */
export interface SSEDonePayload {
  /** Why the stream ended: the last chunk's `finishReason`, or `'stop'` when the source ended without one. */
  finishReason: FinishReason;
  /** The index of the last chunk, if there was one. */
  index?: number | undefined;
  /** The usage of the last chunk, or else the last usage seen. */
  usage?: Usage | undefined;
  /** The model that answered, when the provider said. */
  model?: string | undefined;
  /** The provider that answered, e.g. `'openai'`. */
  provider?: string | undefined;
}

/** The JSON data of the `error` frame. `status`, `retryable` and `retryAfterMs` come with provider errors. */
export interface SSEErrorPayload {
  /** A `TokenRelayErrorCode`, or `'internal'` for any other error. */
  code: string;
  /** A safe message (`'The provider failed'`, `'Internal error'`) unless `exposeErrors` is set; never a stack trace. */
  message: string;
  /** The provider's HTTP status, on provider errors that had one. */
  status?: number | undefined;
  /** Whether sending the same request again may succeed (429, 5xx, overload). */
  retryable?: boolean | undefined;
  /** How long the provider asked to wait before a retry, in ms. */
  retryAfterMs?: number | undefined;
  /** Which limit or budget was reached, for the `limit` and `budget-exceeded` codes. */
  limit?: string | undefined;
}

/**
 * The `error` frame payload for a thrown value. Provider and unknown errors keep their own
 * message only when `expose` is set; a stack trace is never included.
 */
export function describeError(error: unknown, expose: boolean): SSEErrorPayload {
  if (isProviderError(error)) {
    const payload: SSEErrorPayload = { code: 'provider', message: expose ? error.message : 'The provider failed' };
    if (typeof error.status === 'number') payload.status = error.status;
    if (typeof error.retryable === 'boolean') payload.retryable = error.retryable;
    if (typeof error.retryAfterMs === 'number') payload.retryAfterMs = error.retryAfterMs;
    return payload;
  }
  if (isStreamLimitError(error) || isBudgetExceededError(error)) {
    const payload: SSEErrorPayload = { code: error.code, message: error.message };
    if (error.limit !== undefined) payload.limit = error.limit;
    if (typeof error.retryAfterMs === 'number') payload.retryAfterMs = error.retryAfterMs;
    return payload;
  }
  if (isTokenRelayError(error)) return { code: error.code, message: error.message };
  if (!expose) return { code: 'internal', message: 'Internal error' };
  if (error instanceof Error) return { code: 'internal', message: error.message };
  try {
    return { code: 'internal', message: String(error) };
  } catch {
    return { code: 'internal', message: 'Internal error' };
  }
}

function assertString(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') {
    throw new TypeError(`Expected \`${name}\` to be a string, got ${describeValue(value)}`);
  }
}

/** Checks an `id` or `retry` value: a non-negative safe integer. Returns it. */
export function assertInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`Expected \`${name}\` to be an integer >= 0, got ${describeValue(value)}`);
  }
  return value;
}
